"""The direction in which a credit characteristic usually moves the risk of default.

Credit analysts expect more delinquencies, inquiries, utilisation, debt or a higher rate to
mean more risk, and more income, assets or years employed to mean less. A fitted coefficient
against that direction is not necessarily wrong (collinear features share their effect), but a
scorecard giving points for a current delinquency must say so. Names are matched by the words
they contain (``acc_now_delinq`` contains ``delinq``), so any data set's columns are covered.
"""

from __future__ import annotations

__all__ = ["RISK_FALLS_WITH", "RISK_RISES_WITH", "expected_direction"]

RISK_RISES_WITH = (
    "delinq",
    "inq",
    "util",
    "dti",
    "int_rate",
    "pub_rec",
    "collection",
    "derog",
    "chargeoff",
    "bankrupt",
    "late",
    "debt",
)
"""Name fragments of characteristics whose larger values usually mean more risk."""

RISK_FALLS_WITH = ("annual_inc", "income", "emp_length", "seniority", "assets")
"""Name fragments of characteristics whose larger values usually mean less risk."""


def expected_direction(name: str) -> int:
    """+1 when larger values usually raise the risk of default, -1 when they lower it, 0 when
    no usual direction is known (or the name matches both lists).

    Parameters
    ----------
    name : str
        A numeric characteristic's column name.

    Returns
    -------
    int
        The sign a default-probability coefficient is expected to have.
    """
    words = name.lower()
    rises = any(fragment in words for fragment in RISK_RISES_WITH)
    falls = any(fragment in words for fragment in RISK_FALLS_WITH)
    return int(rises) - int(falls)
