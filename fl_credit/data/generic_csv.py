"""Load any other credit CSV: one row per loan, a target column and feature columns.

Rules:

* Every column except the target, the optional region column and ``exclude`` is a feature.
* Categorical features are the columns listed in ``categorical``; when it is None, the columns
  whose dtype is text, category or bool. A text column whose values are nearly all numbers
  (at least 90%) is taken to be a numeric column with garbage in it and is an error, not a
  category; when ``categorical`` is given, every unlisted column must be numeric.
* The label is 1 where the target equals ``positive`` (one value or a list), compared as
  stripped strings and, when both sides are numbers, numerically (so ``positive=1`` matches
  ``1``, ``"1"`` and ``1.0``). Without ``negative`` every other value is 0, which is only
  accepted when there is exactly one other value: a target with three or more classes
  (``default`` / ``repaid`` / ``late``) is refused, naming the classes, unless ``negative``
  lists the values that mean repaid; then every value must be in one of the two lists.
* ``sep`` is the field delimiter. A file read as a single column whose header holds another
  delimiter (a semicolon- or tab-separated export read with the default ``,``) is refused
  with the ``data.sep`` to set.
* Rows with a missing value in the target, a feature or the region are dropped (the count is
  logged as a warning) with ``missing="drop"``, the default, or make loading fail with
  ``missing="error"``. Infinite values are always an error.
* A text column whose values are all numbers written with one unit (``"12.5%"``,
  ``"1,250"``, ``" 36 months"``) is read as numbers (see :mod:`fl_credit.data.units`).
* Identifier columns are dropped and reported in ``dropped``: columns named like ``id``,
  ``rownames``, ``index``, ``Unnamed: 0`` (a written pandas index) or ``<name>_id`` with one
  value per row, and integer columns counting rows (distinct consecutive integers).
* A categorical column with more than ``max_levels`` distinct values is refused (it is most
  likely free text or an identifier): exclude it or raise the limit.
* A positive (default) class holding more than half of the rows is refused unless
  ``majority_default`` confirms it: it usually means ``positive`` names the repaid class.
* Apart from all-empty and identifier columns, columns are never dropped because of their
  values, so banks loading their own files with the same arguments get the same features.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fl_credit.config.errors import DataError
from fl_credit.data.csv_file import read_csv_file
from fl_credit.data.frame import CreditData
from fl_credit.data.units import parse_with_units

__all__ = ["load_csv"]

logger = logging.getLogger(__name__)

NUMERIC_SHARE = 0.9
"""Share of number-like values above which a text column counts as numeric with garbage."""

MAX_LEVELS = 100
"""Default limit on the distinct values of a categorical column (``data.max_levels``)."""

IDENTIFIER_NAMES = re.compile(r"^(id|rownames|row_?names|row_?id|index|unnamed: ?\d+)$", re.I)
"""Column names that always hold identifiers."""

ROW_COUNT_MIN_ROWS = 20
"""Fewest rows for distinct consecutive integers to count as row numbers, not a feature."""

IDENTIFIER_REASON = "identifier (one value per row), not a borrower trait"

IDENTIFIER_SUFFIX = re.compile(r"(^|[_ ])id$", re.IGNORECASE)
"""Column names that hold identifiers when every row has its own value."""

MAX_SHOWN = 12

DELIMITERS = (";", "\t", "|", ":")
"""Delimiters suggested when a file is read as one column."""

Label = str | int | float | bool


def load_csv(
    path: str | Path,
    target: str,
    positive: Label | Sequence[Label],
    categorical: list[str] | None = None,
    *,
    region: str | None = None,
    exclude: Sequence[str] = (),
    missing: Literal["drop", "error"] = "drop",
    negative: Sequence[Label] | None = None,
    sep: str = ",",
    max_levels: int = MAX_LEVELS,
    majority_default: bool = False,
) -> CreditData:
    """Load a credit CSV with a binary default target.

    Parameters
    ----------
    path : str or Path
        The CSV file (optionally compressed).
    target : str
        Name of the label column.
    positive : str, int, float, bool or a sequence of them
        Target value(s) meaning default (label 1).
    categorical : list of str, optional
        Categorical feature columns. Default: detected from the column dtypes.
    region : str, optional
        Column holding each borrower's region (e.g. state), returned as ``region`` and not
        used as a feature.
    exclude : sequence of str, default ()
        Columns to leave out of the features (identifiers, dates, leaking columns).
    missing : {"drop", "error"}, default "drop"
        What to do with rows holding missing values.
    negative : sequence, optional
        Target values meaning repaid (label 0). Needed when the target has more than two
        classes; every target value must then be in ``positive`` or ``negative``.
    sep : str, default ","
        Field delimiter.
    max_levels : int, default MAX_LEVELS
        Most distinct values a categorical column may hold.
    majority_default : bool, default False
        Accept a positive class holding more than half of the rows.

    Returns
    -------
    CreditData
        Numeric features as float, categorical ones as strings, 0/1 target.

    Raises
    ------
    DataError
        The file is missing or unreadable, read as a single column, a named column does not
        exist, the target has no positive or no negative rows or more than two classes
        without ``negative``, the positive class is the majority without
        ``majority_default``, a numeric column holds text, a categorical column has more than
        ``max_levels`` values, a feature holds infinite values, or (with ``missing="error"``)
        missing values.
    """
    path = Path(path)
    if missing not in ("drop", "error"):
        raise DataError(f"missing must be 'drop' or 'error', got {missing!r}")
    raw = _read_csv(path, sep)
    _check_named_columns(raw, path, target, region, categorical, exclude)
    dropped = {c: "excluded by the caller" for c in exclude}
    feature_columns = [c for c in raw.columns if c not in (target, region, *exclude)]
    feature_columns = _drop_columns(
        raw, feature_columns, dropped, path, _is_empty, "all values missing"
    )
    feature_columns = _drop_columns(
        raw, feature_columns, dropped, path, _is_identifier, IDENTIFIER_REASON
    )
    raw = _parse_units(raw, feature_columns, categorical or [], path)
    raw = _handle_missing(raw, [*feature_columns, target, *_opt(region)], missing, path)
    labels = _labels(raw[target], positive, negative, path)
    cats = _categorical_columns(raw, feature_columns, categorical, path)
    features = _features(raw, feature_columns, cats, max_levels, path)
    _check_minority(labels, target, positive, majority_default, path)
    return CreditData(
        features=features,
        target=labels,
        categorical=cats,
        region=None if region is None else raw[region].astype(str).str.strip(),
        dropped=dropped,
        name=path.stem,
    )


# --- helpers --------------------------------------------------------------------------------


def _opt(column: str | None) -> list[str]:
    return [] if column is None else [column]


def _listing(names: Sequence[object]) -> str:
    """Comma-separated names, cut after ``MAX_SHOWN``."""
    shown = ", ".join(map(str, names[:MAX_SHOWN]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_SHOWN else "")


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    if not isinstance(sep, str) or len(sep) != 1:
        raise DataError(f"data.sep must be one character, got {sep!r}")
    raw = read_csv_file(path, sep=sep)
    if raw.empty:
        raise DataError(f"{path}: the file has a header but no rows")
    raw.columns = [str(c).strip() for c in raw.columns]
    if len(raw.columns) == 1 and _other_delimiter(raw.columns[0], sep):
        raise DataError(_one_column_message(path, raw.columns[0], sep))
    return raw


def _other_delimiter(header: str, sep: str) -> str | None:
    """The first of ``DELIMITERS`` (other than ``sep``) found in a one-column header."""
    return next((d for d in DELIMITERS if d != sep and d in header), None)


def _one_column_message(path: Path, header: str, sep: str) -> str:
    """Why a file read as one column is refused, with the delimiter its header suggests."""
    found = _other_delimiter(header, sep) or ""
    shown = header if len(header) <= 60 else header[:57] + "..."
    typed = {"\t": "\\t"}.get(found, found)
    # Quoted twice: Hydra needs the quotes around ';', the shell eats one pair.
    return (
        f"{path}: found one column ({shown!r}) when split on {sep!r}; it looks "
        f"{found!r}-separated: set \"data.sep='{typed}'\""
    )


def _check_named_columns(
    raw: pd.DataFrame,
    path: Path,
    target: str,
    region: str | None,
    categorical: list[str] | None,
    exclude: Sequence[str],
) -> None:
    """Every column named by the caller must exist."""
    available = list(raw.columns)
    if target not in available:
        raise DataError(f"{path}: no target column '{target}' (columns: {_listing(available)})")
    if region is not None and region not in available:
        raise DataError(f"{path}: no region column '{region}' (columns: {_listing(available)})")
    for role, names in (("categorical", categorical or []), ("excluded", exclude)):
        unknown = [c for c in names if c not in available]
        if unknown:
            raise DataError(
                f"{path}: {role} columns not in the file: {unknown} "
                f"(columns: {_listing(available)})"
            )
    clash = {target, *_opt(region)} & set(exclude)
    if clash:
        raise DataError(f"{path}: cannot exclude the target or region column {sorted(clash)}")
    if len(raw.columns) - 1 - len(_opt(region)) - len(set(exclude)) < 1:
        raise DataError(f"{path}: no feature columns left besides the target")


def _drop_columns(
    raw: pd.DataFrame,
    columns: list[str],
    dropped: dict[str, str],
    path: Path,
    rule: Callable[[str, pd.Series], bool],
    reason: str,
) -> list[str]:
    """Drop the feature columns ``rule`` picks, recording ``reason``; at least one must stay."""
    found = [c for c in columns if rule(c, raw[c])]
    for column in found:
        dropped[column] = reason
    kept = [c for c in columns if c not in found]
    if not kept:
        raise DataError(f"{path}: no feature column left: every one is {reason} ({found})")
    return kept


def _is_empty(name: str, values: pd.Series) -> bool:
    """No values at all (the column would otherwise remove every row)."""
    return bool(values.isna().all())


def _is_row_count(values: pd.Series) -> bool:
    """Distinct consecutive integers: a row number written into the file."""
    if not pd.api.types.is_integer_dtype(values) or len(values) < ROW_COUNT_MIN_ROWS:
        return False
    return bool(values.is_unique and values.max() - values.min() == len(values) - 1)


def _is_identifier(name: str, values: pd.Series) -> bool:
    """Named like an identifier, or row numbers (see module doc)."""
    if IDENTIFIER_NAMES.match(name) or _is_row_count(values):
        return True
    return bool(IDENTIFIER_SUFFIX.search(name)) and values.nunique() == len(values)


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)


def _parse_units(
    raw: pd.DataFrame, columns: list[str], categorical: Sequence[str], path: Path
) -> pd.DataFrame:
    """Text columns holding numbers with one unit (``"12.5%"``) as float columns."""
    raw = raw.copy()
    for column in columns:
        values = raw[column]
        if column in categorical or not _is_text(values):
            continue
        parsed = parse_with_units(values)
        if parsed is None:
            continue
        raw[column], unit = parsed
        logger.info("%s: column '%s' read as numbers (unit %r)", path.name, column, unit)
    return raw


def _check_minority(
    labels: np.ndarray, name: str, positive: object, confirmed: bool, path: Path
) -> None:
    """Refuse a default class holding most rows unless ``majority_default`` confirms it."""
    share = float(labels.mean())
    if share > 0.5 and not confirmed:
        raise DataError(
            f"{path}: positive={positive!r} makes {share:.0%} of '{name}' rows defaults; "
            "the default class is usually the minority: check data.positive names the "
            "default class, or confirm with data.majority_default=true"
        )


def _handle_missing(
    raw: pd.DataFrame, columns: list[str], missing: str, path: Path
) -> pd.DataFrame:
    """Drop rows with missing values in ``columns`` (logged), or raise with ``"error"``."""
    counts = raw[columns].isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return raw
    described = _listing([f"{c} ({n})" for c, n in counts.items()])
    if missing == "error":
        raise DataError(f"{path}: missing values in columns {described}")
    complete = raw[columns].notna().all(axis=1)
    if not complete.any():
        raise DataError(f"{path}: every row has a missing value (columns {described})")
    logger.warning(
        "%s: dropped %d of %d rows with missing values (columns %s)",
        path.name,
        int((~complete).sum()),
        len(raw),
        described,
    )
    return raw.loc[complete].reset_index(drop=True)


def _numeric_value(value: object) -> float | None:
    if isinstance(value, bool | int | float | np.number):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _as_list(values: Label | Sequence[Label]) -> list[Label]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        return [values]
    return list(values)


def _matches(values: pd.Series, text: pd.Series, wanted: list[Label]) -> np.ndarray:
    """Rows equal to any of ``wanted`` (as stripped strings, or as numbers)."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    match = np.zeros(len(values), dtype=bool)
    for item in wanted:
        match |= (text == str(item).strip()).to_numpy(dtype=bool)
        number = _numeric_value(item)
        if number is not None:
            match |= numbers == number
    return match


def _classes(values: pd.Series) -> pd.Series:
    """Row counts per distinct target value (``1`` and ``1.0`` count as one value)."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(values, errors="coerce")
    key = text.where(numbers.isna(), numbers.astype(str))
    first = text.groupby(key, sort=False).first()
    counts = key.value_counts()
    return pd.Series(counts.to_numpy(), index=first.loc[counts.index].to_numpy())


def _class_list(counts: pd.Series) -> str:
    return _listing([f"{v!r} ({n})" for v, n in counts.items()])


def _labels(
    values: pd.Series,
    positive: Label | Sequence[Label],
    negative: Sequence[Label] | None,
    path: Path,
) -> np.ndarray:
    """1 where the target is one of ``positive``, 0 for the other class (see module doc)."""
    text = values.astype(str).str.strip()
    match = _matches(values, text, _as_list(positive))
    name = values.name
    if not match.any():
        raise DataError(
            f"{path}: no rows of '{name}' equal positive={positive!r}, so there is no default "
            f"class (values: {_class_list(_classes(values))})"
        )
    if negative is not None:
        repaid = _matches(values, text, _as_list(negative))
        both = _classes(values[match & repaid])
        if len(both):
            raise DataError(
                f"{path}: target '{name}' values in both data.positive and data.negative: "
                f"{_class_list(both)}"
            )
        neither = _classes(values[~match & ~repaid])
        if len(neither):
            raise DataError(
                f"{path}: target '{name}' values in neither data.positive nor data.negative: "
                f"{_class_list(neither)}; list each in one of them"
            )
    else:
        others = _classes(values[~match])
        if len(others) > 1:
            everything = _classes(values)
            raise DataError(
                f"{path}: target '{name}' has {len(everything)} classes "
                f"({_class_list(everything)}) but a binary target is needed: map them with "
                f"data.positive=[...] (default) and data.negative=[...] (repaid)"
            )
    if match.all():
        raise DataError(
            f"{path}: only rows of '{name}' equal positive={positive!r}, so there is no repaid "
            f"class (values: {_class_list(_classes(values))})"
        )
    return match.astype(np.int64)


def _categorical_columns(
    raw: pd.DataFrame, columns: list[str], categorical: list[str] | None, path: Path
) -> list[str]:
    """The listed categorical columns, or the text/category/bool ones (see module doc)."""
    if categorical is not None:
        return [c for c in columns if c in categorical]
    found = []
    for column in columns:
        values = raw[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        if not pd.api.types.is_bool_dtype(values) and _mostly_numbers(values):
            bad = _first_non_number(values)
            if bad is None:
                continue  # numbers stored as text: converted in _numeric
            raise DataError(
                f"{path}: column '{column}' is numeric but holds {bad!r}; fix the value or "
                "list the column in categorical"
            )
        found.append(column)
    return found


def _mostly_numbers(values: pd.Series) -> bool:
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(str)
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(numbers.notna().mean() >= NUMERIC_SHARE)


def _first_non_number(values: pd.Series) -> object | None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    return None if bad.empty else bad.iloc[0]


def _features(
    raw: pd.DataFrame, columns: list[str], cats: list[str], max_levels: int, path: Path
) -> pd.DataFrame:
    """Numeric columns as float (text is an error, inf is an error), categorical as strings."""
    out = {}
    for column in columns:
        values = raw[column]
        if column in cats:
            out[column] = values.astype(str).str.strip()
            levels = out[column].nunique()
            if levels > max_levels:
                raise DataError(
                    f"{path}: categorical column '{column}' has {levels} distinct values "
                    f"(limit {max_levels}): if it holds numbers, fix its format; otherwise "
                    f"drop it with data.exclude=[{column}] or raise data.max_levels"
                )
        else:
            out[column] = _numeric(values, path)
    features = pd.DataFrame(out)
    numeric = features.drop(columns=cats)
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy()).any()]
    if infinite:
        raise DataError(f"{path}: infinite values in columns {infinite}")
    return features


def _numeric(values: pd.Series, path: Path) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise DataError(
            f"{path}: column '{values.name}' should be numeric but holds "
            f"{values[bad].iloc[0]!r}; fix the value or list the column in categorical"
        )
    return numbers.astype(float)
