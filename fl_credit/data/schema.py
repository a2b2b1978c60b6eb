"""The consortium's shared data dictionary: feature order and one-hot vocabulary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.config.errors import DataError
from fl_credit.data.frame import CreditData


@dataclass(frozen=True)
class FeatureSchema:
    """Column order and category vocabularies every bank encodes its rows with.

    Parameters
    ----------
    numeric : tuple of str
        Numeric columns, in model order.
    categories : dict of str to tuple of str
        For each categorical column, its categories in one-hot order.
    integers : tuple of str, default ()
        Numeric columns holding whole numbers only (counts): reports cut them on integers.
    """

    numeric: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    integers: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: CreditData) -> FeatureSchema:
        """Build the data dictionary from the categories that occur in ``data``."""
        categories = {
            col: tuple(sorted(data.features[col].astype(str).unique())) for col in data.categorical
        }
        integers = tuple(
            col
            for col in data.numeric
            if np.all(np.mod(data.features[col].to_numpy(dtype=np.float64), 1.0) == 0.0)
        )
        return cls(numeric=tuple(data.numeric), categories=categories, integers=integers)

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded columns: numeric first, then ``column=category``."""
        names = list(self.numeric)
        for col, cats in self.categories.items():
            names.extend(f"{col}={cat}" for cat in cats)
        return names

    def encode(self, features: pd.DataFrame) -> np.ndarray:
        """One-hot encode ``features`` into a float matrix in schema order.

        Categories missing from the vocabulary encode as all zeros.
        """
        missing = [c for c in (*self.numeric, *self.categories) if c not in features.columns]
        if missing:
            raise DataError(f"data lacks columns of the shared schema: {missing}")
        blocks = [features[list(self.numeric)].to_numpy(dtype=np.float64)]
        for col, cats in self.categories.items():
            codes = pd.Categorical(features[col].astype(str), categories=list(cats)).codes
            onehot = np.zeros((len(features), len(cats)), dtype=np.float64)
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(onehot)
        return np.hstack(blocks)

    def to_json(self, path: Path) -> None:
        """Write the data dictionary to ``path``."""
        payload = {
            "numeric": list(self.numeric),
            "categories": self.categories,
            "integers": list(self.integers),
        }
        Path(path).write_text(json.dumps(payload, indent=1))

    @classmethod
    def from_json(cls, path: Path) -> FeatureSchema:
        """Read a data dictionary written by :meth:`to_json`."""
        payload = json.loads(Path(path).read_text())
        cats = {k: tuple(v) for k, v in payload["categories"].items()}
        integers = tuple(payload.get("integers", ()))
        return cls(numeric=tuple(payload["numeric"]), categories=cats, integers=integers)
