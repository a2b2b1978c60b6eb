"""Feature standardisation from per-bank sums, never from pooled rows.

Two passes, both plain sums over banks (so secure aggregation can carry them):
``[n, sum x]`` gives the global mean; ``[sum (x - mean)^2]`` then gives the variance.
Centering before squaring keeps the second pass's values small enough for fixed point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and standard deviation."""

    mean: np.ndarray
    std: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Return ``(x - mean) / std`` as float32."""
        return ((x - self.mean) / self.std).astype(np.float32)


def first_moments(x: np.ndarray) -> np.ndarray:
    """A bank's first-pass vector: ``[n, sum of each feature]``."""
    return np.concatenate([[float(len(x))], x.sum(axis=0)])


def centered_squares(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """A bank's second-pass vector: the sum of squared deviations from the global mean."""
    return ((x - mean) ** 2).sum(axis=0)


def mean_from_sums(first: np.ndarray) -> tuple[float, np.ndarray]:
    """Total row count and global mean from the summed first-pass vectors."""
    count = float(first[0])
    return count, first[1:] / count


def standardizer_from_sums(count: float, mean: np.ndarray, squares: np.ndarray) -> Standardizer:
    """Global standardizer; constant features get unit scale instead of zero."""
    std = np.sqrt(np.maximum(squares, 0.0) / max(count - 1.0, 1.0))
    std = np.where(std > 1e-12, std, 1.0)
    return Standardizer(mean=np.asarray(mean, dtype=np.float64), std=std)


def pooled_standardizer(x: np.ndarray) -> Standardizer:
    """The same statistics computed in one place, for tests and the pooled baseline."""
    count, mean = mean_from_sums(first_moments(x))
    return standardizer_from_sums(count, mean, centered_squares(x, mean))
