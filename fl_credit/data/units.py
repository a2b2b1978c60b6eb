"""Numbers written with units in a CSV column: ``"12.5%"``, ``"1,250"``, ``" 36 months"``.

A text column is read as numbers when every non-missing value is a number, optionally with a
leading currency sign, thousands separators and one trailing unit (``%`` or a word such as
``months``), and the whole column uses the same unit. Columns mixing units (``"3 years"`` and
``"36 months"``) are left as text: converting them would need a rule per unit pair.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["parse_with_units"]

_NUMBER_RE = re.compile(
    r"^\s*[$€£]?\s*([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[-+]?\.\d+)\s*(%|[a-z]+)?\s*$",
    re.IGNORECASE,
)


def _unit_value(text: str) -> tuple[float, str] | None:
    """The number and its lower-case unit (``""`` when none), or None when not a number."""
    match = _NUMBER_RE.match(text)
    if match is None:
        return None
    unit = (match.group(2) or "").lower()
    return float(match.group(1).replace(",", "")), unit.rstrip("s")


def parse_with_units(values: pd.Series) -> tuple[pd.Series, str] | None:
    """Parse a text column whose values are numbers with one shared unit.

    Parameters
    ----------
    values : pandas.Series
        A text (object or string dtype) column; missing values stay NaN.

    Returns
    -------
    tuple of (pandas.Series, str) or None
        Float values (same index and name) and the unit (``""`` for plain numbers with
        separators), or None when a value is not a number or the units differ.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = np.empty(len(uniques), dtype=float)
    units = set()
    for i, value in enumerate(uniques):
        result = _unit_value(str(value))
        if result is None:
            return None
        parsed[i], unit = result
        units.add(unit)
    if len(units) > 1:
        return None
    out = np.full(len(values), np.nan)
    present = codes >= 0
    out[present] = parsed[codes[present]]
    return pd.Series(out, index=values.index, name=values.name), units.pop() if units else ""
