"""Load the Lending Club 2007-2015 ``loan.csv`` with the study's preprocessing.

The steps follow GUIDE.md section 1, in its order:

1. Drop columns with more than 1/3 missing values.
2. Drop rows that still have missing values.
3. Drop columns with a single distinct value.
4. Parse ``"13.56%"`` strings, ``emp_length`` ("10+ years" -> 10) and ``term``
   (" 36 months" -> 36) to numbers.
5. Drop identifiers, columns that describe the loan after issuance (they leak the outcome) and
   every other column outside the study's 17 features.
6. (One-hot encoding of the three categorical features happens later, in the encoder.)
7. Keep only loans whose status is "Fully Paid" (label 0) or "Charged Off" (label 1).

Decisions where the study's description leaves room (see the comments at each step):

* ``emp_length == "n/a"`` is a missing value. pandas' ``read_csv``, which the study's
  column/row-missingness steps imply, reads "n/a" as NaN by default, so those loans are removed
  at step 2 together with the other incomplete rows.
* Step 2 looks for missing values only in the columns that reach the model (the surviving
  study features, ``loan_status`` and ``addr_state``). Read literally ("any remaining column"),
  it would delete every finished loan in the real file: ``next_pymnt_d`` is empty for exactly
  the Fully Paid / Charged Off loans yet is only 28.5% missing, so it survives step 1; and
  ``tot_cur_bal`` / ``tot_coll_amt`` / ``total_rev_hi_lim`` (7.9% missing, all on the oldest,
  hence finished, loans) would remove some 70k more. The study's 242,851 rows out of 252,971
  finished loans (about 10k removed) fit this reading. Row filters commute, so steps 2 and 7
  give the same rows in either order.
* The "Does not meet the credit policy. Status:Fully Paid / Charged Off" loans are excluded by
  default: the study kept the two statuses by name, and 252,971 (the plain Fully Paid +
  Charged Off count) minus about 10k incomplete rows is its 242,851.
  ``include_policy_variants=True`` keeps them with the same labels.
* ``loan_status`` is never dropped as a column, and ``addr_state`` (kept as ``region``, not a
  feature) is dropped only by step 1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.config.errors import DataError
from fl_credit.data.csv_file import read_csv_file
from fl_credit.data.frame import CreditData

__all__ = [
    "CATEGORICAL",
    "STUDY_FEATURES",
    "describe_dropped",
    "load_lending_club_csv",
    "parse_emp_length",
    "parse_percent",
    "parse_term",
]

logger = logging.getLogger(__name__)

STUDY_FEATURES: tuple[str, ...] = (
    "loan_amnt", "term", "int_rate", "installment", "emp_length", "home_ownership",
    "annual_inc", "verification_status", "purpose", "dti", "delinq_2yrs", "inq_last_6mths",
    "open_acc", "pub_rec", "revol_bal", "revol_util", "total_acc",
)  # fmt: skip
"""The 17 features the study kept, in the order of the returned ``features``."""

CATEGORICAL: tuple[str, ...] = ("home_ownership", "verification_status", "purpose")
"""Study features returned as strings (one-hot encoded later)."""

TARGET_COLUMN = "loan_status"
REGION_COLUMN = "addr_state"

IDENTIFIERS: tuple[str, ...] = ("id", "member_id", "url", "zip_code")
LEAKAGE: tuple[str, ...] = (
    "pymnt_plan", "out_prncp", "out_prncp_inv", "total_pymnt", "total_pymnt_inv",
    "recoveries", "collection_recovery_fee", "next_pymnt_d", "last_credit_pull_d",
)  # fmt: skip
LEAKAGE_PREFIXES: tuple[str, ...] = ("total_rec_", "last_pymnt_")

LABELS: dict[str, int] = {"Fully Paid": 0, "Charged Off": 1}
POLICY_PREFIX = "Does not meet the credit policy. Status:"

REASON_IDENTIFIER = "identifier"
REASON_LEAKAGE = "leaks outcome (post-issuance)"
REASON_NOT_STUDY = (
    "not among the study's 17 features (data=lending_club_csv reproduces the study's "
    "preprocessing; the embedded data set has other columns, see docs/data.md)"
)

# pandas' default NA markers (they include "n/a"), spelled out so the reading of
# emp_length "n/a" as missing does not depend on a library default.
NA_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


# --- public API -----------------------------------------------------------------------------


def load_lending_club_csv(path: str | Path, *, include_policy_variants: bool = False) -> CreditData:
    """Load a Lending Club 2007-2015 ``loan.csv`` and apply the study's preprocessing.

    Parameters
    ----------
    path : str or Path
        The raw CSV (optionally compressed, e.g. ``loan.csv.gz``).
    include_policy_variants : bool, default False
        Also keep "Does not meet the credit policy. Status:Fully Paid / Charged Off" loans.

    Returns
    -------
    CreditData
        The surviving study features (normally all 17; ``home_ownership``,
        ``verification_status`` and ``purpose`` as strings, the rest float), target 1 for
        "Charged Off", ``region`` from ``addr_state`` and every dropped column with its reason.

    Raises
    ------
    DataError
        The file is missing or unreadable, lacks ``loan_status`` or study columns, holds
        unparseable values, or no usable rows remain.
    """
    path = Path(path)
    raw = _read_csv(path)
    _check_columns(raw, path)
    dropped: dict[str, str] = {}
    kept = _drop_sparse_columns(raw, dropped)  # step 1
    model_columns = [c for c in (*STUDY_FEATURES, TARGET_COLUMN, REGION_COLUMN) if c in kept]
    complete = _complete_rows(raw, model_columns, path)  # step 2
    kept = _drop_single_valued(raw, kept, complete, dropped)  # step 3
    frame = raw.loc[complete, [c for c in model_columns if c in kept]].reset_index(drop=True)
    del raw
    frame = _parse_formats(frame, path)  # step 4
    _drop_by_name(kept, dropped)  # step 5
    frame, target = _finished_loans(frame, include_policy_variants, path)  # step 7
    features = frame[[c for c in STUDY_FEATURES if c in frame.columns]]
    region = frame[REGION_COLUMN] if REGION_COLUMN in frame.columns else None
    return CreditData(
        features=features,
        target=target,
        categorical=[c for c in CATEGORICAL if c in features.columns],
        region=region,
        dropped=dropped,
        name="lending_club",
    )


def describe_dropped(data: CreditData) -> str:
    """Human-readable list of the columns dropped while loading, one per line with its reason.

    Parameters
    ----------
    data : CreditData
        Loaded data, e.g. from :func:`load_lending_club_csv`.

    Returns
    -------
    str
        A header line and one indented ``column  reason`` line per dropped column, in the order
        they were dropped.
    """
    if not data.dropped:
        return f"{data.name}: no columns dropped"
    width = max(len(c) for c in data.dropped)
    lines = [f"{data.name}: dropped {len(data.dropped)} columns"]
    lines += [f"  {column:<{width}}  {reason}" for column, reason in data.dropped.items()]
    return "\n".join(lines)


def parse_percent(values: pd.Series) -> pd.Series:
    """Parse ``"13.56%"`` strings (or plain numbers) to floats in percent.

    Parameters
    ----------
    values : pandas.Series
        Strings like ``"13.56%"``, ``" 9.4 %"`` or ``"13.56"``, or an already numeric column.
        Missing values stay NaN.

    Returns
    -------
    pandas.Series
        Float values, same index.

    Raises
    ------
    DataError
        A value is neither a number nor a number followed by ``%``.
    """
    return _parse_unique(values, _percent_value, "a percentage like '13.56%'")


def parse_emp_length(values: pd.Series) -> pd.Series:
    """Parse employment length strings to whole years.

    ``"< 1 year"`` -> 0, ``"1 year"`` -> 1, ``"N years"`` -> N, ``"10+ years"`` -> 10,
    ``"n/a"`` and missing -> NaN. Plain integers are accepted as years.

    Parameters
    ----------
    values : pandas.Series
        Raw ``emp_length`` values.

    Returns
    -------
    pandas.Series
        Float years (NaN for "n/a"), same index.

    Raises
    ------
    DataError
        A value is not one of the forms above.
    """
    return _parse_unique(values, _emp_length_value, "an employment length like '10+ years'")


def parse_term(values: pd.Series) -> pd.Series:
    """Parse loan terms like ``" 36 months"`` (or plain numbers) to months.

    Parameters
    ----------
    values : pandas.Series
        Raw ``term`` values.

    Returns
    -------
    pandas.Series
        Float months, same index; missing stays NaN.

    Raises
    ------
    DataError
        A value is not a whole number of months.
    """
    return _parse_unique(values, _term_value, "a term like ' 36 months'")


# --- parsing helpers ------------------------------------------------------------------------

_PERCENT_RE = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*%?\s*$")
_EMP_RE = re.compile(r"^\s*(?:(<\s*1)|(\d+)\s*\+?)\s*(?:years?)?\s*$", re.IGNORECASE)
_TERM_RE = re.compile(r"^\s*(\d+)\s*(?:months?)?\s*$", re.IGNORECASE)


def _percent_value(text: str) -> float | None:
    match = _PERCENT_RE.match(text)
    return float(match.group(1)) if match else None


def _emp_length_value(text: str) -> float | None:
    if text.strip().lower() == "n/a":
        return np.nan
    match = _EMP_RE.match(text)
    if not match:
        return None
    return 0.0 if match.group(1) else float(match.group(2))


def _term_value(text: str) -> float | None:
    match = _TERM_RE.match(text)
    return float(match.group(1)) if match else None


def _parse_unique(
    values: pd.Series, parse_one: Callable[[str], float | None], expected: str
) -> pd.Series:
    """Parse each distinct value once with ``parse_one`` (None = unparseable)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = np.empty(len(uniques), dtype=float)
    for i, value in enumerate(uniques):
        result = _parse_scalar(value, parse_one)
        if result is None:
            raise DataError(f"column '{values.name}' holds {value!r}, expected {expected}")
        parsed[i] = result
    out = np.full(len(values), np.nan)
    present = codes >= 0
    out[present] = parsed[codes[present]]
    return pd.Series(out, index=values.index, name=values.name)


def _parse_scalar(value: object, parse_one: Callable[[str], float | None]) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return parse_one(str(value))


def _to_float(values: pd.Series) -> pd.Series:
    """A numeric column as float; names the column and a bad value otherwise."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(f"column '{values.name}' holds non-numeric value {example!r}")
    return numbers.astype(float)


# --- pipeline steps -------------------------------------------------------------------------


def _read_csv(path: Path) -> pd.DataFrame:
    """Read the whole file (the C engine handles the quoted newlines in ``desc``)."""
    return read_csv_file(path, na_values=list(NA_VALUES), keep_default_na=False)


def _check_columns(raw: pd.DataFrame, path: Path) -> None:
    """The file must hold ``loan_status``, all 17 study features and at least one row."""
    if TARGET_COLUMN not in raw.columns:
        shown = ", ".join(map(str, raw.columns[:8])) + (", ..." if raw.shape[1] > 8 else "")
        raise DataError(
            f"{path}: no '{TARGET_COLUMN}' column, so loans cannot be labelled "
            f"(columns: {shown}); is this a Lending Club loan.csv?"
        )
    missing = [c for c in STUDY_FEATURES if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: Lending Club study columns missing from the file: {missing}")
    if raw.empty:
        raise DataError(f"{path}: the file has a header but no rows")


def _drop_sparse_columns(raw: pd.DataFrame, dropped: dict[str, str]) -> list[str]:
    """Step 1: drop columns with more than 1/3 missing (keep if at least 2/3 are present)."""
    n_rows = len(raw)
    missing = raw.isna().sum()
    kept = []
    for column in raw.columns:
        count = int(missing[column])
        if 3 * count > n_rows and column != TARGET_COLUMN:
            dropped[column] = f"missing {100 * count / n_rows:.1f}% > 1/3"
        else:
            kept.append(column)
    return kept


def _complete_rows(raw: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """Step 2: mask of rows with no missing value in the columns that reach the model.

    Only those columns are checked; see the module docstring for why the literal reading
    ("all remaining columns") would drop every finished loan of the real file.
    """
    complete = raw[columns].notna().all(axis=1).to_numpy()
    removed = len(complete) - int(complete.sum())
    logger.info("%s: dropped %d of %d rows with missing values", path.name, removed, len(raw))
    if not complete.any():
        raise DataError(f"{path}: every row has a missing value in one of the columns {columns}")
    return complete


def _drop_single_valued(
    raw: pd.DataFrame, kept: list[str], rows: np.ndarray, dropped: dict[str, str]
) -> list[str]:
    """Step 3: drop columns with at most one distinct value among the complete rows."""
    remaining = []
    for column in kept:
        if column in (TARGET_COLUMN, REGION_COLUMN):
            remaining.append(column)
            continue
        values = raw[column][rows].dropna()
        if values.empty:
            dropped[column] = "single value (all missing in the complete rows)"
        elif bool((values == values.iloc[0]).all()):
            dropped[column] = f"single value ({_show(values.iloc[0])})"
        else:
            remaining.append(column)
    return remaining


def _show(value: object) -> str:
    """A value for a message: strings quoted, numpy scalars as plain numbers."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def _parse_formats(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Step 4: numbers from the raw string formats; categorical columns as stripped strings."""
    parsers = {
        "int_rate": parse_percent,
        "revol_util": parse_percent,
        "emp_length": parse_emp_length,
        "term": parse_term,
    }
    out = {}
    try:
        for column in frame.columns:
            if column in (*CATEGORICAL, TARGET_COLUMN, REGION_COLUMN):
                out[column] = frame[column].astype(str).str.strip()
            else:
                out[column] = parsers.get(column, _to_float)(frame[column])
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc
    return pd.DataFrame(out)


def _drop_by_name(kept: list[str], dropped: dict[str, str]) -> None:
    """Step 5: identifiers, post-issuance columns and everything outside the study's 17."""
    for column in kept:
        if column in (*STUDY_FEATURES, TARGET_COLUMN, REGION_COLUMN):
            continue
        if column in IDENTIFIERS:
            dropped[column] = REASON_IDENTIFIER
        elif column in LEAKAGE or column.startswith(LEAKAGE_PREFIXES):
            dropped[column] = REASON_LEAKAGE
        else:
            dropped[column] = REASON_NOT_STUDY


def _label_of(status: str, include_policy_variants: bool) -> int:
    """0/1 label of a status, -1 for statuses that are not kept."""
    if include_policy_variants and status.startswith(POLICY_PREFIX):
        status = status[len(POLICY_PREFIX) :].strip()
    return LABELS.get(status, -1)


def _finished_loans(
    frame: pd.DataFrame, include_policy_variants: bool, path: Path
) -> tuple[pd.DataFrame, np.ndarray]:
    """Step 7: keep "Fully Paid" / "Charged Off" loans and label them (1 = Charged Off)."""
    statuses = frame[TARGET_COLUMN]
    distinct = statuses.unique()
    label_of = {s: _label_of(s, include_policy_variants) for s in distinct}
    labels = statuses.map(label_of).to_numpy()
    if not (labels >= 0).any():
        shown = sorted(map(str, distinct))[:6]
        raise DataError(
            f"{path}: no complete 'Fully Paid' or 'Charged Off' loans (statuses found: {shown})"
        )
    for label, name in ((1, "Charged Off"), (0, "Fully Paid")):
        if not (labels == label).any():
            raise DataError(f"{path}: no complete '{name}' loans, so the model cannot be fit")
    keep = labels >= 0
    logger.info("%s: kept %d finished loans", path.name, int(keep.sum()))
    return frame.loc[keep].reset_index(drop=True), labels[keep].astype(np.int64)
