"""The in-memory form every data source is loaded into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fl_credit.config.errors import DataError


@dataclass
class CreditData:
    """Borrower features and default labels, before encoding.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per loan. Numeric columns are float; categorical columns hold strings.
    target : numpy.ndarray
        0/1 labels, 1 = default (the positive class), aligned with ``features``.
    categorical : list of str
        Names of the categorical columns in ``features`` (one-hot encoded later).
    region : pandas.Series or None
        Borrower's state (two-letter code) per row when the source has one; used by the
        regional partition. Not a model feature unless also listed in ``features``.
    dropped : dict of str to str
        Columns removed while loading, mapped to the reason.
    name : str
        Short name of the source, for reports.
    """

    features: pd.DataFrame
    target: np.ndarray
    categorical: list[str]
    region: pd.Series | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    name: str = "data"

    def __post_init__(self) -> None:
        if len(self.features) != len(self.target):
            raise DataError(
                f"{self.name}: {len(self.features)} feature rows but {len(self.target)} labels"
            )
        if len(self.target) == 0:
            raise DataError(f"{self.name}: no rows left after loading")
        positives = int(np.sum(self.target))
        if positives == 0:
            raise DataError(f"{self.name}: the target has no positive (default) rows")
        if positives == len(self.target):
            raise DataError(f"{self.name}: the target has no negative (repaid) rows")
        missing = [c for c in self.categorical if c not in self.features.columns]
        if missing:
            raise DataError(f"{self.name}: categorical columns not in the data: {missing}")
        numeric = self.features.drop(columns=self.categorical)
        bad = [c for c in numeric.columns if not pd.api.types.is_numeric_dtype(numeric[c])]
        if bad:
            raise DataError(f"{self.name}: non-numeric values in numeric columns {bad}")
        values = numeric.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            cols = numeric.columns[~np.isfinite(values).all(axis=0)].tolist()
            raise DataError(f"{self.name}: NaN or infinite values in columns {cols}")

    @property
    def numeric(self) -> list[str]:
        """Names of the numeric feature columns, in order."""
        return [c for c in self.features.columns if c not in self.categorical]

    def subset(self, rows: np.ndarray) -> CreditData:
        """Return the rows at integer positions ``rows`` (no validation repeated)."""
        sub = object.__new__(CreditData)
        sub.features = self.features.iloc[rows].reset_index(drop=True)
        sub.target = self.target[rows]
        sub.categorical = self.categorical
        sub.region = None if self.region is None else self.region.iloc[rows].reset_index(drop=True)
        sub.dropped = self.dropped
        sub.name = self.name
        return sub
