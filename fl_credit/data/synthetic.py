"""Synthetic Lending Club 2007-2015 ``loan.csv`` with the raw schema and its messy formats.

The real file is not available here, so the Lending Club pipeline is tested on a generated
file with the same 74 columns, the same string formats (``" 36 months"``, ``"13.56%"``,
``"10+ years"``, ``"n/a"``, ``"Dec-2011"``), mostly-missing columns where the real file has
them (``desc``, ``mths_since_*``, the ``*_joint`` and ``open_*`` blocks), a single-valued
``policy_code``, ``next_pymnt_d`` empty for finished loans, and the real mix of loan
statuses.

Defaults are drawn from a known logistic model (:data:`TRUE_MODEL`) over a few of the study's
17 features, so a fitted model can be checked against the truth. Only loans old enough to be
finished get a final status ("Fully Paid" / "Charged Off"); which loans are finished depends
on issue date and term only, never on the label, so P(default | features) among finished
loans is exactly the true model.

Command line::

    python -m fl_credit.data.synthetic --rows 887379 --seed 0 --out loan.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

__all__ = [
    "RAW_COLUMNS",
    "TRUE_MODEL",
    "generate_lending_club_csv",
    "true_default_probability",
    "main",
]

RAW_COLUMNS: tuple[str, ...] = (
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate",
    "installment", "grade", "sub_grade", "emp_title", "emp_length", "home_ownership",
    "annual_inc", "verification_status", "issue_d", "loan_status", "pymnt_plan", "url", "desc",
    "purpose", "title", "zip_code", "addr_state", "dti", "delinq_2yrs", "earliest_cr_line",
    "inq_last_6mths", "mths_since_last_delinq", "mths_since_last_record", "open_acc", "pub_rec",
    "revol_bal", "revol_util", "total_acc", "initial_list_status", "out_prncp", "out_prncp_inv",
    "total_pymnt", "total_pymnt_inv", "total_rec_prncp", "total_rec_int", "total_rec_late_fee",
    "recoveries", "collection_recovery_fee", "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d",
    "last_credit_pull_d", "collections_12_mths_ex_med", "mths_since_last_major_derog",
    "policy_code", "application_type", "annual_inc_joint", "dti_joint",
    "verification_status_joint", "acc_now_delinq", "tot_coll_amt", "tot_cur_bal", "open_acc_6m",
    "open_il_6m", "open_il_12m", "open_il_24m", "mths_since_rcnt_il", "total_bal_il", "il_util",
    "open_rv_12m", "open_rv_24m", "max_bal_bc", "all_util", "total_rev_hi_lim", "inq_fi",
    "total_cu_tl", "inq_last_12m",
)  # fmt: skip
"""The 74 columns of the Lending Club 2007-2015 ``loan.csv``, in file order."""

TRUE_MODEL: dict = {
    "intercept": -4.85,
    "coefficients": {
        "int_rate": 0.13,  # per percentage point
        "term": 0.03,  # per month (60 vs 36 months: +0.72)
        "dti": 0.025,  # per point of debt-to-income
        "annual_inc": -4.0e-6,  # per dollar (-0.4 per 100k)
        "inq_last_6mths": 0.15,  # per inquiry
    },
    "indicators": {"home_ownership": {"RENT": 0.35}},
}
"""The logistic model the labels are drawn from, on the parsed scale of the study features.

``logit P(Charged Off) = intercept + sum(coefficients[c] * x[c])
+ sum(indicators[c][v] * (x[c] == v))``. Features not named have coefficient 0.
"""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIRST_ISSUE = (2007, 6)  # Jun-2007
_N_ISSUE_MONTHS = 103  # Jun-2007 .. Dec-2015
_SNAPSHOT = _N_ISSUE_MONTHS  # month index of Jan-2016, when the file was pulled

_EMP_LENGTHS = (
    ("< 1 year", 0, 0.079), ("1 year", 1, 0.064), ("2 years", 2, 0.089), ("3 years", 3, 0.079),
    ("4 years", 4, 0.059), ("5 years", 5, 0.063), ("6 years", 6, 0.048), ("7 years", 7, 0.050),
    ("8 years", 8, 0.049), ("9 years", 9, 0.039), ("10+ years", 10, 0.330), ("n/a", -1, 0.051),
)  # fmt: skip
_HOME = (("MORTGAGE", 0.4995), ("RENT", 0.4013), ("OWN", 0.0989), ("OTHER", 0.0002),
         ("NONE", 0.00006), ("ANY", 0.00004))  # fmt: skip
_VERIFICATION = (("Not Verified", 0.30), ("Source Verified", 0.37), ("Verified", 0.33))
_PURPOSES = (
    ("debt_consolidation", "Debt consolidation", 0.590), ("credit_card", "Credit card refinancing",
    0.232), ("home_improvement", "Home improvement", 0.058), ("other", "Other", 0.048),
    ("major_purchase", "Major purchase", 0.019), ("small_business", "Business", 0.012),
    ("car", "Car financing", 0.010), ("medical", "Medical expenses", 0.010),
    ("moving", "Moving and relocation", 0.006), ("vacation", "Vacation", 0.005),
    ("house", "Home buying", 0.004), ("wedding", "Wedding Loan", 0.003),
    ("renewable_energy", "Green loan", 0.001), ("educational", "Student loan", 0.0005),
)  # fmt: skip
_STATES = (
    ("CA", 14.6), ("NY", 8.4), ("TX", 8.0), ("FL", 6.8), ("IL", 4.0), ("NJ", 3.7), ("PA", 3.5),
    ("OH", 3.3), ("GA", 3.3), ("VA", 3.0), ("NC", 2.8), ("MI", 2.5), ("MD", 2.4), ("MA", 2.3),
    ("AZ", 2.3), ("WA", 2.2), ("CO", 2.1), ("MN", 1.8), ("MO", 1.6), ("IN", 1.5), ("CT", 1.5),
    ("TN", 1.4), ("NV", 1.4), ("WI", 1.3), ("AL", 1.3), ("OR", 1.3), ("SC", 1.2), ("LA", 1.2),
    ("KY", 1.0), ("OK", 0.9), ("KS", 0.9), ("AR", 0.7), ("UT", 0.7), ("NM", 0.6), ("HI", 0.5),
    ("WV", 0.5), ("NH", 0.5), ("RI", 0.4), ("MS", 0.4), ("MT", 0.3), ("DE", 0.3), ("DC", 0.3),
    ("AK", 0.3), ("WY", 0.2), ("SD", 0.2), ("VT", 0.2), ("NE", 0.1), ("ME", 0.05), ("ND", 0.05),
    ("ID", 0.02), ("IA", 0.01),
)  # fmt: skip
_EMP_TITLES = (
    "Teacher", "Manager", "Registered Nurse", "RN", "Supervisor", "Sales", "Project Manager",
    "Owner", "Driver", "Office Manager", "General Manager", "Director", "Engineer", "Truck Driver",
    "Police Officer", "Accountant", "Software Engineer", "Administrative Assistant", "Nurse",
    "Operations Manager", "US Army", "Walmart", "Store Manager", "Technician", "Analyst",
)  # fmt: skip
_DESCS = (
    "  Borrower added on 12/22/11 > I need to upgrade my business technologies.<br>",
    'Borrower added on 03/14/12 > Paying off credit cards, "finally".\nThanks for looking!',
    "Consolidating high interest debt into one payment.",
    "  Borrower added on 01/05/12 > Home repairs, new roof\nand gutters.<br>",
    "Plan to pay this off in 2 years, stable job for 8 years",
)
_CURRENT_STATUSES = (
    ("Late (31-120 days)", 0.55), ("In Grace Period", 0.30), ("Late (16-30 days)", 0.11),
    ("Default", 0.04),
)  # fmt: skip
_POLICY_PREFIX = "Does not meet the credit policy. Status:"
# Share of loans whose final status carries the policy prefix, among loans issued before 2011.
_POLICY_VARIANT_SHARE = 0.14


def true_default_probability(features: pd.DataFrame) -> np.ndarray:
    """Default probability of each loan under :data:`TRUE_MODEL`.

    Parameters
    ----------
    features : pandas.DataFrame
        Parsed study features (``int_rate`` in percent, ``term`` in months, ...), e.g. the
        ``features`` of :func:`fl_credit.data.lending_club.load_lending_club_csv`.

    Returns
    -------
    numpy.ndarray
        Probability of "Charged Off" per row.
    """
    logit = np.full(len(features), TRUE_MODEL["intercept"], dtype=float)
    for column, coef in TRUE_MODEL["coefficients"].items():
        logit += coef * features[column].to_numpy(dtype=float)
    for column, levels in TRUE_MODEL["indicators"].items():
        values = features[column].astype(str).to_numpy()
        for level, coef in levels.items():
            logit += coef * (values == level)
    return 1.0 / (1.0 + np.exp(-logit))


def generate_lending_club_csv(path: str | Path, n_rows: int = 887_379, seed: int = 0) -> Path:
    """Write a synthetic Lending Club 2007-2015 ``loan.csv`` with the raw 74-column schema.

    Parameters
    ----------
    path : str or Path
        Destination file; parent folders are created. Written under a temporary name and
        renamed, so an interrupted run never leaves a truncated file at ``path``.
    n_rows : int, default 887_379
        Number of loans (the real file has 887,379).
    seed : int, default 0
        Seed of the random generator; the same seed gives a byte-identical file.

    Returns
    -------
    Path
        The path written.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns = _generate_columns(rng, n_rows)
    table = pa.table({name: columns[name] for name in RAW_COLUMNS})
    # Write next to the target and rename, so a cached file is never a half-written one.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        pa_csv.write_csv(table, partial, pa_csv.WriteOptions(quoting_style="needed"))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


# --- helpers --------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, table: tuple, n: int, weight_index: int = -1) -> np.ndarray:
    """Indices into ``table`` drawn with the weights in column ``weight_index``."""
    weights = np.array([row[weight_index] for row in table], dtype=float)
    return rng.choice(len(table), size=n, p=weights / weights.sum())


def _labels(values: tuple[str, ...], index: np.ndarray, valid: np.ndarray | None = None):
    """String array ``values[index]``, null where ``valid`` is False."""
    out = pa.array(values, type=pa.string()).take(pa.array(index))
    if valid is None:
        return out
    return pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def _money(x: np.ndarray, valid: np.ndarray | None = None, decimals: int = 2) -> pa.Array:
    """Float column rounded to ``decimals``, null where ``valid`` is False."""
    mask = None if valid is None else ~valid
    return pa.array(np.round(x, decimals), mask=mask)


def _ints(x: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Integer column, null where ``valid`` is False."""
    mask = None if valid is None else ~valid
    return pa.array(np.asarray(x, dtype=np.int64), mask=mask)


def _month_labels(month_index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Labels like "Dec-2011" for month indices counted from Jun-2007 (may be negative)."""
    absolute = _FIRST_ISSUE[0] * 12 + (_FIRST_ISSUE[1] - 1) + month_index
    lo = int(absolute.min())
    names = tuple(f"{_MONTHS[m % 12]}-{m // 12}" for m in range(lo, int(absolute.max()) + 1))
    return _labels(names, absolute - lo, valid)


def _join(prefix: str, values: np.ndarray, suffix: str = "") -> pa.Array:
    """String column ``prefix + str(value) + suffix``."""
    text = pc.cast(pa.array(values), pa.string())
    return pc.binary_join_element_wise(prefix, text, suffix, "")


def _percent(x: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Strings like "13.56%" (null where ``valid`` is False)."""
    text = pc.cast(pa.array(x), pa.string())
    out = pc.binary_join_element_wise(text, "%", "")
    if valid is None:
        return out
    return pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def _rare(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Boolean mask, True with probability ``rate``."""
    return rng.random(n) < rate


# --- column groups --------------------------------------------------------------------------


def _generate_columns(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    """All 74 raw columns (as Arrow arrays) for ``n`` loans."""
    loan = _loan_terms(rng, n)
    borrower = _borrower(rng, n, loan["issue"])
    parsed = pd.DataFrame(
        {
            "int_rate": loan["int_rate"],
            "term": loan["term"],
            "dti": borrower["dti"],
            "annual_inc": borrower["annual_inc"],
            "inq_last_6mths": borrower["inq_last_6mths"],
            "home_ownership": np.array([h for h, _ in _HOME])[borrower["home"]],
        }
    )
    default = rng.random(n) < true_default_probability(parsed)
    status = _status(rng, loan, default)
    columns: dict[str, pa.Array] = {}
    columns.update(_loan_columns(rng, loan))
    columns.update(_borrower_columns(rng, borrower, loan))
    columns.update(_payment_columns(rng, loan, status))
    columns.update(_late_columns(rng, loan, borrower))
    return columns


def _loan_terms(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Issue month, amounts, term, grade, rate and instalment."""
    growth = np.exp(0.0626 * np.arange(_N_ISSUE_MONTHS))
    issue = rng.choice(_N_ISSUE_MONTHS, size=n, p=growth / growth.sum())
    sixty_allowed = issue >= 35  # 60-month loans from May 2010
    term = np.where(sixty_allowed & (rng.random(n) < 0.30), 60, 36)
    grade_index = _choice(rng, ((0.17,), (0.29,), (0.28,), (0.16,), (0.08,), (0.02,), (0.005,)), n)
    sub_grade = grade_index * 5 + rng.integers(0, 5, n)
    int_rate = 6.0 + 0.6 * sub_grade + rng.normal(0, 0.4, n) + (term == 60) * 1.0
    int_rate = np.round(np.clip(int_rate, 5.32, 28.99), 2)
    amount = np.round(np.clip(rng.lognormal(np.log(12_000), 0.6, n), 500, 35_000) / 25) * 25
    funded = np.where(rng.random(n) < 0.02, np.round(amount * 0.8 / 25) * 25, amount)
    haircut = np.where(rng.random(n) < 0.1, rng.integers(0, 20, n) * 25, 0)
    monthly = int_rate / 1200
    installment = np.round(funded * monthly / (1 - (1 + monthly) ** -term), 2)
    return {
        "issue": issue,
        "term": term,
        "grade": grade_index,
        "sub_grade": sub_grade,
        "int_rate": int_rate,
        "amount": amount,
        "funded": funded,
        "funded_inv": np.maximum(funded - haircut, 0),
        "installment": installment,
        "id": 1_077_501 + np.arange(n) * 73 + rng.integers(0, 50, n),
    }


def _borrower(rng: np.random.Generator, n: int, issue: np.ndarray) -> dict[str, np.ndarray]:
    """Borrower attributes known at application."""
    open_acc = rng.poisson(10.5, n) + 1
    old = issue < 40  # the few loans with missing credit-file counts are old ones
    return {
        "emp_length": _choice(rng, _EMP_LENGTHS, n),
        "home": _choice(rng, _HOME, n),
        "annual_inc": np.round(np.clip(rng.lognormal(np.log(65_000), 0.55, n), 4_000, 9.5e6), -2),
        "verification": _choice(rng, _VERIFICATION, n),
        "purpose": _choice(rng, _PURPOSES, n),
        "state": _choice(rng, _STATES, n),
        "dti": np.round(np.clip(rng.gamma(4.0, 4.5, n), 0, 39.99), 2),
        "delinq_2yrs": rng.poisson(0.3, n),
        "inq_last_6mths": rng.poisson(0.7, n),
        "open_acc": open_acc,
        "pub_rec": rng.poisson(0.2, n),
        "revol_bal": np.round(rng.lognormal(np.log(11_000), 0.9, n)),
        "revol_util": np.round(np.clip(rng.beta(2.2, 2.0, n) * 110, 0, 150), 1),
        "total_acc": open_acc + rng.poisson(14, n),
        "credit_file_missing": old & _rare(rng, n, 4e-4),
        "credit_years": np.clip(rng.lognormal(np.log(14), 0.5, n), 3, 60),
    }


def _status(rng: np.random.Generator, loan: dict, default: np.ndarray) -> np.ndarray:
    """Loan status strings; finished loans take the label, the rest are current or late."""
    n = len(default)
    age = _SNAPSHOT - loan["issue"]
    progress = np.clip(age / loan["term"], 0, 1)
    finished = rng.random(n) < progress**1.6  # depends on issue date and term only
    status = np.full(n, "Current", dtype=object)
    status[(age <= 1) & (rng.random(n) < 0.2)] = "Issued"
    behind = ~finished & (age > 1) & default & (rng.random(n) < 0.25)
    late = np.array([s for s, _ in _CURRENT_STATUSES], dtype=object)
    status[behind] = late[_choice(rng, _CURRENT_STATUSES, int(behind.sum()))]
    status[finished] = np.where(default[finished], "Charged Off", "Fully Paid")
    variant = finished & (loan["issue"] < 43) & (rng.random(n) < _POLICY_VARIANT_SHARE)
    status[variant] = _POLICY_PREFIX + status[variant]
    return status.astype(str)


def _loan_columns(rng: np.random.Generator, loan: dict) -> dict[str, pa.Array]:
    """Identifier and loan-term columns."""
    n = len(loan["id"])
    grades = tuple("ABCDEFG")
    sub_grades = tuple(f"{g}{k}" for g in grades for k in range(1, 6))
    return {
        "id": _ints(loan["id"]),
        "member_id": _ints(loan["id"] + 219_198 + rng.integers(0, 40, len(loan["id"]))),
        "loan_amnt": _money(loan["amount"]),
        "funded_amnt": _money(loan["funded"]),
        "funded_amnt_inv": _money(loan["funded_inv"]),
        "term": _labels((" 36 months", " 60 months"), (loan["term"] == 60).astype(np.int64)),
        "int_rate": _percent(loan["int_rate"]),
        "installment": _money(loan["installment"]),
        "grade": _labels(grades, loan["grade"]),
        "sub_grade": _labels(sub_grades, loan["sub_grade"]),
        "issue_d": _month_labels(loan["issue"]),
        "url": _join("https://www.lendingclub.com/browse/loanDetail.action?loan_id=", loan["id"]),
        "initial_list_status": _labels(
            ("f", "w"), (rng.random(n) < loan["issue"] / 180).astype(int)
        ),
        "policy_code": _ints(np.ones(n)),
    }


def _borrower_columns(rng: np.random.Generator, b: dict, loan: dict) -> dict[str, pa.Array]:
    """Borrower and credit-file columns, with the real file's missing-value patterns."""
    n = len(b["dti"])
    has_record = ~b["credit_file_missing"]
    emp_title_ok = ~_rare(rng, n, 0.058)
    desc_ok = rng.random(n) < np.where(loan["issue"] < 70, 0.45, 0.03)
    purposes = tuple(p for p, _, _ in _PURPOSES)
    titles = tuple(t for _, t, _ in _PURPOSES)
    delinq_months = rng.integers(0, 152, n)
    earliest = loan["issue"] - np.round(b["credit_years"] * 12).astype(np.int64)
    return {
        "emp_title": _labels(_EMP_TITLES, rng.integers(0, len(_EMP_TITLES), n), emp_title_ok),
        "emp_length": _labels(tuple(e for e, _, _ in _EMP_LENGTHS), b["emp_length"]),
        "home_ownership": _labels(tuple(h for h, _ in _HOME), b["home"]),
        "annual_inc": _money(b["annual_inc"], ~_rare(rng, n, 5e-6)),
        "verification_status": _labels(tuple(v for v, _ in _VERIFICATION), b["verification"]),
        "pymnt_plan": _labels(("n", "y"), _rare(rng, n, 1.2e-5).astype(np.int64)),
        "desc": _labels(_DESCS, rng.integers(0, len(_DESCS), n), desc_ok),
        "purpose": _labels(purposes, b["purpose"]),
        "title": _labels(titles, b["purpose"], ~_rare(rng, n, 2e-4)),
        "zip_code": _join("", rng.integers(100, 1000, n), "xx"),
        "addr_state": _labels(tuple(s for s, _ in _STATES), b["state"]),
        "dti": _money(b["dti"]),
        "delinq_2yrs": _ints(b["delinq_2yrs"], has_record),
        "earliest_cr_line": _month_labels(earliest, has_record),
        "inq_last_6mths": _ints(b["inq_last_6mths"], has_record),
        "mths_since_last_delinq": _ints(delinq_months, rng.random(n) < 0.49),
        "mths_since_last_record": _ints(rng.integers(0, 130, n), rng.random(n) < 0.155),
        "open_acc": _ints(b["open_acc"], has_record),
        "pub_rec": _ints(b["pub_rec"], has_record),
        "revol_bal": _money(b["revol_bal"]),
        "revol_util": _percent(b["revol_util"], ~_rare(rng, n, 6e-4)),
        "total_acc": _ints(b["total_acc"], has_record),
    }


def _payment_columns(rng: np.random.Generator, loan: dict, status: np.ndarray):
    """Post-issuance columns consistent with the status (these leak the outcome)."""
    n = len(status)
    age = _SNAPSHOT - loan["issue"]
    final = np.char.endswith(status, "Fully Paid")
    charged = np.char.endswith(status, "Charged Off")
    finished = final | charged
    term, funded, inst = loan["term"], loan["funded"], loan["installment"]
    span = np.maximum(np.minimum(age, term), 1)
    paid_months = np.where(
        finished, rng.integers(0, span, n) + final, np.maximum(age - 1, 0)
    ).astype(np.int64)
    share_left = np.clip(1 - paid_months / term, 0, 1) ** 0.85
    out_prncp = np.where(finished, 0.0, funded * share_left)
    rec_prncp = np.where(final, funded, funded * (1 - share_left))
    rec_int = np.maximum(inst * paid_months - funded * (1 - share_left), 0)
    late_fee = np.where(rng.random(n) < 0.02, rng.uniform(5, 60, n), 0.0)
    recoveries = np.where(charged & (rng.random(n) < 0.6), funded * share_left * 0.1, 0.0)
    total = rec_prncp + rec_int + late_fee + recoveries
    inv_share = loan["funded_inv"] / np.maximum(funded, 1)
    last_pay = loan["issue"] + paid_months
    return {
        "out_prncp": _money(out_prncp),
        "out_prncp_inv": _money(out_prncp * inv_share),
        "total_pymnt": _money(total),
        "total_pymnt_inv": _money(total * inv_share),
        "total_rec_prncp": _money(rec_prncp),
        "total_rec_int": _money(rec_int),
        "total_rec_late_fee": _money(late_fee),
        "recoveries": _money(recoveries),
        "collection_recovery_fee": _money(recoveries * 0.18),
        "last_pymnt_d": _month_labels(last_pay, paid_months > 0),
        "last_pymnt_amnt": _money(np.where(final, funded * share_left + inst, inst)),
        "next_pymnt_d": _month_labels(_SNAPSHOT + (rng.random(n) < 0.97), ~finished),
        "last_credit_pull_d": _month_labels(
            np.minimum(last_pay + rng.integers(0, 6, n), _SNAPSHOT), ~_rare(rng, n, 6e-5)
        ),
        "loan_status": pa.array(status, type=pa.string()),
    }


def _late_columns(rng: np.random.Generator, loan: dict, b: dict) -> dict[str, pa.Array]:
    """Columns added to the file in later years: mostly missing for older loans."""
    n = len(loan["issue"])
    issue = loan["issue"]
    joint = (issue >= 100) & _rare(rng, n, 0.02)
    has_totals = issue >= 62  # tot_* and total_rev_hi_lim start in Aug-2012 (~8% missing)
    has_new = (issue >= 102) & (rng.random(n) < 0.4)  # open_* block: ~97.6% missing
    inc_joint = b["annual_inc"] + np.round(rng.lognormal(np.log(40_000), 0.6, n), -2)
    cols = {
        "collections_12_mths_ex_med": _ints(rng.poisson(0.015, n), ~_rare(rng, n, 1.6e-4)),
        "mths_since_last_major_derog": _ints(rng.integers(0, 160, n), rng.random(n) < 0.25),
        "application_type": _labels(("INDIVIDUAL", "JOINT"), joint.astype(np.int64)),
        "annual_inc_joint": _money(inc_joint, joint),
        "dti_joint": _money(np.clip(b["dti"] * 0.8, 0, 40), joint),
        "verification_status_joint": _labels(
            tuple(v for v, _ in _VERIFICATION), b["verification"], joint
        ),
        "acc_now_delinq": _ints(rng.poisson(0.005, n), ~b["credit_file_missing"]),
        "tot_coll_amt": _ints(
            np.where(rng.random(n) < 0.13, rng.integers(1, 3000, n), 0), has_totals
        ),
        "tot_cur_bal": _ints(np.round(rng.lognormal(np.log(80_000), 1.0, n)), has_totals),
        "total_rev_hi_lim": _ints(np.round(b["revol_bal"] / 0.55 + 500), has_totals),
    }
    for name, lam in (("open_acc_6m", 1.0), ("open_il_6m", 2.7), ("open_il_12m", 0.7),
                      ("open_il_24m", 1.6), ("open_rv_12m", 1.4), ("open_rv_24m", 2.9),
                      ("inq_fi", 0.9), ("total_cu_tl", 1.5), ("inq_last_12m", 1.9)):  # fmt: skip
        cols[name] = _ints(rng.poisson(lam, n), has_new)
    cols["mths_since_rcnt_il"] = _ints(rng.integers(0, 200, n), has_new & ~_rare(rng, n, 0.02))
    cols["total_bal_il"] = _ints(np.round(rng.lognormal(np.log(25_000), 1.0, n)), has_new)
    cols["il_util"] = _money(rng.uniform(0, 120, n), has_new & ~_rare(rng, n, 0.13), 1)
    cols["max_bal_bc"] = _ints(np.round(rng.lognormal(np.log(5_000), 0.9, n)), has_new)
    cols["all_util"] = _money(rng.uniform(0, 130, n), has_new, 1)
    return cols


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: write a synthetic ``loan.csv``."""
    parser = argparse.ArgumentParser(
        prog="python -m fl_credit.data.synthetic",
        description="Write a synthetic Lending Club 2007-2015 loan.csv (raw 74-column schema).",
    )
    parser.add_argument("--rows", type=int, default=887_379, help="number of loans")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    start = time.perf_counter()
    path = generate_lending_club_csv(args.out, n_rows=args.rows, seed=args.seed)
    elapsed = time.perf_counter() - start
    print(f"wrote {args.rows:,} rows x {len(RAW_COLUMNS)} columns to {path} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
