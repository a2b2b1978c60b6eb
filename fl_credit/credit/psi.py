"""Population stability index (PSI) from bin counts, and the agreed bin grids it counts on.

PSI compares two distributions over the same bins::

    PSI = sum_b (a_b - e_b) * ln(a_b / e_b)

with ``e`` the expected (reference) and ``a`` the actual shares per bin. It is the symmetric
Kullback-Leibler divergence, ``KL(a || e) + KL(e || a)``. Conventional reading: below 0.1
stable, 0.1 to 0.25 a moderate shift, above 0.25 a major shift.

Everything here works on counts, never on rows, so the counts can come from anywhere: one
party's own rows, or sums over banks through secure aggregation (noised under DP). The rows
are counted on an *agreed grid* that needs no rows to define: equal bins on [0, 1] for
scores, and for each feature bins placed by the federation's standardiser (mean and standard
deviation), open at both ends. A fine grid is coarsened into a few bins of about equal
reference mass with :func:`coarsen`, from the (summed) reference counts alone.

numpy only: banks import it in a fresh ClientApp process.
"""

from __future__ import annotations

import numpy as np

SMOOTHING = 1e-4
"""Share added to every bin's share (then renormalised), so an empty bin gives a finite PSI.
Added to shares, not counts, so the PSI does not depend on the populations' sizes."""

PSI_STABLE, PSI_SHIFT = 0.1, 0.25
FEATURE_GRID_Z = np.linspace(-3.0, 3.0, 49)
"""Fine-grid edges of a numeric feature, in standard deviations from the federation's mean."""


def shares(counts: np.ndarray, smoothing: float = SMOOTHING) -> np.ndarray:
    """Bin shares ``(c / sum c + smoothing) / (1 + bins * smoothing)``.

    Negative counts (DP noise on a summed count) are taken as 0; all-zero counts give equal
    shares.
    """
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    total = counts.sum()
    raw = counts / total if total > 0 else np.full(len(counts), 1.0 / max(len(counts), 1))
    return (raw + smoothing) / (1.0 + len(counts) * smoothing)


def psi(expected: np.ndarray, actual: np.ndarray, smoothing: float = SMOOTHING) -> float:
    """Population stability index of ``actual`` against ``expected`` counts on the same bins.

    Parameters
    ----------
    expected, actual : numpy.ndarray
        Counts per bin (any scale; they need not sum to the same total).
    smoothing : float
        Share added to each bin of both (see :data:`SMOOTHING`).

    Returns
    -------
    float
        ``sum (a - e) ln(a / e)`` over the smoothed shares; 0 for identical distributions.
    """
    e, a = shares(expected, smoothing), shares(actual, smoothing)
    if e.shape != a.shape:
        raise ValueError(f"bin counts differ in shape: {e.shape} and {a.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def stability(value: float) -> str:
    """Conventional reading of a PSI value: ``stable``, ``moderate shift`` or ``major shift``."""
    if value < PSI_STABLE:
        return "stable"
    return "moderate shift" if value < PSI_SHIFT else "major shift"


def score_edges(bins: int) -> np.ndarray:
    """The agreed score grid: ``bins`` equal bins on [0, 1] (as the validation histograms)."""
    return np.linspace(0.0, 1.0, bins + 1)


def feature_edges(mean: float, std: float, binary: bool) -> np.ndarray:
    """Agreed fine-grid edges of one feature, open at both ends.

    A one-hot (0/1) feature gets two bins split at 0.5; a numeric one gets
    ``mean + z * std`` for ``z`` in :data:`FEATURE_GRID_Z`.
    """
    if binary:
        inner = np.array([0.5])
    else:
        inner = np.unique(mean + FEATURE_GRID_Z * (std if std > 0 else 1.0))
    return np.r_[-np.inf, inner, np.inf]


def count_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per bin ``[edges[i], edges[i+1])`` (last bin closed)."""
    return np.histogram(np.asarray(values, dtype=np.float64), bins=edges)[0].astype(np.float64)


def feature_counts(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """One party's counts of every feature on its grid, concatenated into one summable vector.

    Parameters
    ----------
    x : numpy.ndarray
        Rows (unscaled), one column per feature.
    edges : list of numpy.ndarray
        Each feature's grid (:func:`feature_edges`).

    Returns
    -------
    numpy.ndarray
        ``len(edges[0]) - 1`` counts of feature 0, then feature 1, ...; split it again with
        :func:`split_counts`.
    """
    return np.concatenate([count_bins(x[:, j], e) for j, e in enumerate(edges)])


def split_counts(vector: np.ndarray, edges: list[np.ndarray]) -> list[np.ndarray]:
    """Undo :func:`feature_counts`' concatenation (e.g. of a summed vector)."""
    sizes = np.cumsum([len(e) - 1 for e in edges])[:-1]
    return np.split(np.asarray(vector, dtype=np.float64), sizes)


def coarsen(reference: np.ndarray, bins: int) -> np.ndarray:
    """Group consecutive fine bins into at most ``bins`` of about equal reference mass.

    Parameters
    ----------
    reference : numpy.ndarray
        Counts of the reference population on the fine grid (e.g. summed over banks).
    bins : int
        Wanted number of coarse bins (10 = deciles of the reference).

    Returns
    -------
    numpy.ndarray
        For every fine bin, the index of its coarse bin (non-decreasing, starting at 0). Fine
        bins are never split, so a mass concentrated in one fine bin gives fewer coarse bins;
        every coarse bin holds some reference mass.
    """
    reference = np.maximum(np.asarray(reference, dtype=np.float64), 0.0)
    total = reference.sum()
    if total <= 0:
        return np.zeros(len(reference), dtype=int)
    # A coarse bin ends after the fine bin in which the cumulative share crosses the next
    # multiple of 1 / bins, unless no mass is left after it.
    upper = np.cumsum(reference) / total
    level = np.floor(upper * bins + 1e-9)
    cut_after = (level > np.r_[0.0, level[:-1]]) & (upper < 1.0 - 1e-12)
    return np.r_[0, np.cumsum(cut_after)[:-1]].astype(int)


def merge(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sum fine-bin counts into the coarse bins of :func:`coarsen`."""
    return np.bincount(groups, weights=np.asarray(counts, dtype=np.float64))


def coarse_psi(reference: np.ndarray, actual: np.ndarray, bins: int) -> tuple[float, np.ndarray]:
    """PSI of ``actual`` against ``reference`` after coarsening the fine grid on the reference.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        The PSI and the fine-to-coarse grouping used.
    """
    groups = coarsen(reference, bins)
    return psi(merge(reference, groups), merge(actual, groups)), groups
