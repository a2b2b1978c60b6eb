"""The bins trees split on: the federation's agreed fine grid, fixed without rows.

The coordinator takes the same grid as ``features=woe`` (:func:`fl_credit.coordinator.woe.
agreed_grid`: ``fine_bins`` bins per numeric feature at ``mean + z * std`` of the federation's
standardiser, z evenly spaced on [-3, 3], two bins split at 0.5 for a one-hot column), so it
learns nothing new by choosing it, and every bank checks the grid it is sent against the one
its own copy of the standardiser gives (:func:`fl_credit.credit.woe.check_agreed_grid`). A bin is
``[edge_b, edge_b+1)``; the outer edges are infinite, so every row falls in a bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.credit.woe import agreed_grid
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import Standardizer


@dataclass(frozen=True)
class Layout:
    """Every feature's edges and where its bins start in a flat per-bin vector."""

    edges: tuple[np.ndarray, ...]

    @property
    def offsets(self) -> np.ndarray:
        """Start of each feature's bins (and the total as the last entry)."""
        return np.r_[0, np.cumsum([len(e) - 1 for e in self.edges])].astype(np.int64)

    @property
    def total(self) -> int:
        """Bins over all features."""
        return int(self.offsets[-1])

    def bins_of(self, feature: int) -> int:
        """How many bins ``feature`` has."""
        return len(self.edges[feature]) - 1

    def bin_index(self, x: np.ndarray) -> np.ndarray:
        """Bin of every value of unscaled rows ``x``, shape ``(n, features)``, int64."""
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.int64)
        for j, e in enumerate(self.edges):
            out[:, j] = np.clip(np.searchsorted(e, x[:, j], side="right") - 1, 0, len(e) - 2)
        return out

    def threshold(self, feature: int, bin_: int) -> float:
        """The raw value below which a row is in ``bin_`` or a lower bin of ``feature``."""
        return float(self.edges[feature][bin_ + 1])


def agreed_layout(scaler: Standardizer, bounds: FeatureBounds | None, fine_bins: int) -> Layout:
    """The bins of a run: the agreed grid of the federation's standardiser."""
    return Layout(tuple(agreed_grid(scaler, bounds, fine_bins)))
