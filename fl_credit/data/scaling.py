"""Feature standardisation from per-bank sums, never from pooled rows.

Without DP, two passes, both plain sums over banks (so secure aggregation can carry them):
``[n, sum x]`` gives the global mean; ``[sum (x - mean)^2]`` then gives the variance.
Centering before squaring keeps the second pass's values small enough for fixed point.

Under record-level DP, one pass over features clipped to the public ranges and mapped to
[0, 1] (:class:`~fl_credit.data.dictionary.FeatureBounds`): ``[defaults, n, sum u]`` has a
known L2 sensitivity to one borrower, so the banks can add distributed Gaussian noise to it.
Under bank-level DP nothing is summed: the standardiser is the ranges' midpoint and
half-width, which depend on no bank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.data.dictionary import FeatureBounds


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and standard deviation, and the public ranges rows are clipped to.

    ``low``/``high`` are set under DP: rows are clipped to the ranges before scaling, as they
    were for the statistics.
    """

    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Return ``(clip(x) - mean) / std`` as float32."""
        if self.low is not None and self.high is not None:
            x = np.clip(x, self.low, self.high)
        return ((x - self.mean) / self.std).astype(np.float32)

    def arrays(self) -> list[np.ndarray]:
        """``[mean, std]`` plus ``[low, high]`` when clipping."""
        if self.low is None or self.high is None:
            return [self.mean, self.std]
        return [self.mean, self.std, self.low, self.high]

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray]) -> Standardizer:
        """Inverse of :meth:`arrays`."""
        if len(arrays) == 4:
            return cls(mean=arrays[0], std=arrays[1], low=arrays[2], high=arrays[3])
        return cls(mean=arrays[0], std=arrays[1])


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


def private_moments(x: np.ndarray, y: np.ndarray, bounds: FeatureBounds) -> np.ndarray:
    """A bank's DP statistics vector ``[defaults, n, sum u (numeric features)]``.

    ``u`` is each numeric feature clipped to its public range and mapped to [0, 1].
    """
    u = bounds.unit(x)[:, ~bounds.binary]
    return np.concatenate([[float(y.sum()), float(len(y))], u.sum(axis=0)])


def private_moments_sensitivity(bounds: FeatureBounds) -> float:
    """L2 sensitivity of :func:`private_moments` to adding or removing one borrower.

    One row adds at most 1 to the default count, 1 to the row count and 1 to each ``sum u``.
    """
    return float(np.sqrt(2.0 + np.count_nonzero(~bounds.binary)))


def standardizer_from_private_sums(
    sums: np.ndarray, bounds: FeatureBounds
) -> tuple[Standardizer, float, float]:
    """Standardiser, row count and default count from noised :func:`private_moments` sums.

    Means of numeric features come from the noised sums; their scale is a quarter of the
    public range, and one-hot columns are centred at 0.5 with scale 0.5. Estimating
    variances too would need sums of squares, whose noise swamps the spread of features with
    a wide public range (measured: pooled DP-SGD at epsilon 4 reached AUC 0.57-0.61 with
    noised variances, 0.75-0.76 with this rule, 0.75-0.77 with the exact statistics). The
    model is fit on the scaled features either way; the scale only conditions DP-SGD.
    Noise can push counts out of range: they are clamped to what is possible (at least one
    row of each class), which is post-processing and costs no privacy.
    """
    numeric = ~bounds.binary
    count = max(float(sums[1]), 2.0)
    defaults = float(np.clip(sums[0], 1.0, count - 1.0))
    scaler = standardizer_from_bounds(bounds)
    width = bounds.high - bounds.low
    mean, std = scaler.mean.copy(), scaler.std.copy()
    mean[numeric] = bounds.low[numeric] + width[numeric] * np.clip(sums[2:] / count, 0.0, 1.0)
    std[numeric] = width[numeric] / 4.0
    return Standardizer(mean=mean, std=std, low=scaler.low, high=scaler.high), count, defaults


def standardizer_from_bounds(bounds: FeatureBounds) -> Standardizer:
    """Data-independent scaling to [-1, 1] from the public ranges (bank-level DP)."""
    return Standardizer(
        mean=(bounds.low + bounds.high) / 2.0,
        std=(bounds.high - bounds.low) / 2.0,
        low=bounds.low.copy(),
        high=bounds.high.copy(),
    )
