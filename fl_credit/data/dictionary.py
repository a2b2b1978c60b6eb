"""Public feature ranges: the consortium's data dictionary, never computed from bank rows.

Under DP every value that leaves a bank must have a bounded sensitivity to one borrower. The
banks clip each numeric feature to a range agreed in advance, from public knowledge (the
lender's product limits and the published data dictionary), not from anyone's rows. One-hot
columns are in [0, 1] by construction. Values outside a range are clipped (winsorised) before
the statistics and before scaling; the ranges below are wide enough that clipping touches
few rows (checked in ``tests/test_dp_statistics.py``).

For any other CSV the ranges come from a JSON file ``{"column": [low, high], ...}`` given as
``data.bounds``; DP runs without it are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fl_credit.config.errors import DataError
from fl_credit.data.schema import FeatureSchema

# modeldata/lending_club (Q1 2016): Lending Club's product limits and field definitions.
EMBEDDED_BOUNDS: dict[str, tuple[float, float]] = {
    "funded_amnt": (500.0, 40_000.0),
    "int_rate": (5.0, 31.0),
    "annual_inc": (0.0, 400_000.0),
    "delinq_2yrs": (0.0, 10.0),
    "inq_last_6mths": (0.0, 6.0),
    "revol_util": (0.0, 150.0),
    "acc_now_delinq": (0.0, 3.0),
    "open_il_6m": (0.0, 20.0),
    "open_il_12m": (0.0, 10.0),
    "open_il_24m": (0.0, 20.0),
    "total_bal_il": (0.0, 300_000.0),
    "all_util": (0.0, 200.0),
    "inq_fi": (0.0, 10.0),
    "inq_last_12m": (0.0, 20.0),
    "delinq_amnt": (0.0, 50_000.0),
    "num_il_tl": (0.0, 60.0),
    "total_il_high_credit_limit": (0.0, 300_000.0),
}

# The study's 17 features of the 2007-2015 export (numeric ones; the rest are one-hot).
LENDING_CLUB_BOUNDS: dict[str, tuple[float, float]] = {
    "loan_amnt": (500.0, 40_000.0),
    "term": (36.0, 60.0),
    "int_rate": (5.0, 31.0),
    "installment": (0.0, 1_600.0),
    "emp_length": (0.0, 10.0),
    "annual_inc": (0.0, 400_000.0),
    "dti": (0.0, 60.0),
    "delinq_2yrs": (0.0, 10.0),
    "inq_last_6mths": (0.0, 10.0),
    "open_acc": (0.0, 60.0),
    "pub_rec": (0.0, 10.0),
    "revol_bal": (0.0, 200_000.0),
    "revol_util": (0.0, 150.0),
    "total_acc": (0.0, 100.0),
}


@dataclass(frozen=True)
class FeatureBounds:
    """Clipping range of every encoded feature, in model order.

    Attributes
    ----------
    low, high : numpy.ndarray
        Range of each feature (``high > low``).
    binary : numpy.ndarray
        True for one-hot columns (values 0 or 1).
    """

    low: np.ndarray
    high: np.ndarray
    binary: np.ndarray

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Rows clipped to the ranges."""
        return np.clip(x, self.low, self.high)

    def unit(self, x: np.ndarray) -> np.ndarray:
        """Rows clipped and mapped to [0, 1] per feature."""
        return (self.clip(x) - self.low) / (self.high - self.low)

    def to_lists(self) -> dict[str, list]:
        """For a ConfigRecord or JSON."""
        return {
            "bounds-low": self.low.tolist(),
            "bounds-high": self.high.tolist(),
            "bounds-binary": [bool(b) for b in self.binary],
        }

    @classmethod
    def from_lists(cls, values: dict) -> FeatureBounds:
        """Inverse of :meth:`to_lists`."""
        return cls(
            low=np.asarray(values["bounds-low"], dtype=np.float64),
            high=np.asarray(values["bounds-high"], dtype=np.float64),
            binary=np.asarray(values["bounds-binary"], dtype=bool),
        )


def column_bounds(kind: str, path: str | None) -> dict[str, tuple[float, float]] | None:
    """Public ranges of the raw numeric columns of a data source (None if it has none)."""
    if path:
        file = Path(path)
        if not file.is_file():
            raise DataError(f"data.bounds file not found: {file}")
        try:
            raw = json.loads(file.read_text())
            return {str(k): (float(v[0]), float(v[1])) for k, v in raw.items()}
        except (ValueError, TypeError, IndexError, AttributeError) as err:
            raise DataError(
                f"data.bounds {file} must map each column to [low, high]: {err}"
            ) from None
    if kind == "embedded":
        return EMBEDDED_BOUNDS
    if kind in ("lending_club_csv", "synthetic"):
        return LENDING_CLUB_BOUNDS
    return None


def feature_bounds(
    schema: FeatureSchema, columns: dict[str, tuple[float, float]] | None
) -> FeatureBounds | None:
    """Ranges of the encoded features; None when some numeric column has no public range."""
    if columns is None:
        return None
    missing = [c for c in schema.numeric if c not in columns]
    if missing:
        raise DataError(f"no public range for numeric columns {missing}: add them to data.bounds")
    bad = [c for c in schema.numeric if not columns[c][1] > columns[c][0]]
    if bad:
        raise DataError(f"data.bounds: high must exceed low for {bad}")
    n_onehot = len(schema.feature_names) - len(schema.numeric)
    low = [columns[c][0] for c in schema.numeric] + [0.0] * n_onehot
    high = [columns[c][1] for c in schema.numeric] + [1.0] * n_onehot
    binary = [False] * len(schema.numeric) + [True] * n_onehot
    return FeatureBounds(
        low=np.asarray(low, dtype=np.float64),
        high=np.asarray(high, dtype=np.float64),
        binary=np.asarray(binary, dtype=bool),
    )
