"""Split finding and leaf values from summed histograms (the XGBoost rules).

For a node with sums ``G, H`` and a candidate split into ``(G_L, H_L)`` and ``(G_R, H_R)``,
each side's weight is ``w = -G / (H + lambda)`` clipped to the node's monotone bounds, its
score ``-(2 G w + (H + lambda) w^2)`` (``G^2 / (H + lambda)`` when not clipped), and the split's
gain ``0.5 * (score_L + score_R - score_parent) - gamma``. A candidate counts only when both
sides hold at least ``min_child_weight`` of Hessian and at least one row, and, for a feature
with a monotone constraint, when the two weights are in the constrained order. A split after
bin ``b`` is considered only when bin ``b`` holds rows in the node (a split after an empty bin
would cut the rows the same way as the one before it).

Ties: among candidates whose gain is within a relative ``1e-9`` of the best, the first in
(feature, bin) order wins. Exact ties occur (the two one-hot columns of a two-valued
characteristic cut the rows identically), and a secure sum decodes to within about 1e-9 of
the exact one; the tolerance makes the federated and the pooled trees pick the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.boosting.binning import Layout

TIE = 1e-9


@dataclass(frozen=True)
class TreeParams:
    """What one tree is grown with."""

    depth: int
    learning_rate: float
    reg_lambda: float
    gamma: float
    min_child_weight: float
    monotone: tuple[int, ...]
    """Per feature: +1 (PD rises with the value), -1, or 0."""
    colsample: int = 0
    """Features each tree may split on, drawn per tree from ``seed`` (0: all)."""
    seed: int = 0


def tree_features(params: TreeParams, tree_index: int, features: int) -> np.ndarray | None:
    """The features tree ``tree_index`` may split on (sorted), or None for all of them.

    Drawn from the run's seed and the tree's index only, so the coordinator, the pooled
    reference and the request carry the same draw, and it depends on no row.
    """
    if not 0 < params.colsample < features:
        return None
    rng = np.random.default_rng([params.seed, tree_index])
    return np.sort(rng.choice(features, size=params.colsample, replace=False))


@dataclass(frozen=True)
class Split:
    """The chosen split of a node and its two children's sums and bounds."""

    feature: int
    bin: int
    gain: float
    left: tuple[float, float, float]
    right: tuple[float, float, float]
    left_bounds: tuple[float, float]
    right_bounds: tuple[float, float]


def weight(g, h, reg_lambda: float, bounds: tuple[float, float]):
    """``-G / (H + lambda)`` clipped to ``bounds``."""
    return np.clip(-np.asarray(g) / (np.asarray(h) + reg_lambda), bounds[0], bounds[1])


def score(g, h, w, reg_lambda: float):
    """Twice the loss reduction of weight ``w`` on a node with sums ``g, h``."""
    return -(2.0 * g * w + (h + reg_lambda) * w * w)


def best_split(
    hist: np.ndarray,
    totals: tuple[float, float, float],
    bounds: tuple[float, float],
    layout: Layout,
    params: TreeParams,
    features: np.ndarray | None = None,
) -> Split | None:
    """The best split of one node from its ``(total bins, 3)`` histogram, or None.

    Parameters
    ----------
    hist : numpy.ndarray
        Sums of g, h and rows per feature and bin over the node's rows.
    totals : tuple of float
        The node's ``(G, H, rows)`` (from its parent's split, or the root's histogram).
    bounds : tuple of float
        The node's monotone bounds on its weight.
    layout : Layout
        The bins.
    params : TreeParams
        lambda, gamma, min child weight and monotone constraints.
    features : numpy.ndarray, optional
        The features the tree may split on (:func:`tree_features`); all when None.
    """
    g_all, h_all, c_all = totals
    lam = params.reg_lambda
    parent = score(g_all, h_all, weight(g_all, h_all, lam, bounds), lam)
    gains, where = [], []
    for j in range(len(layout.edges)) if features is None else features:
        seg = hist[layout.offsets[j] : layout.offsets[j + 1]]
        if len(seg) < 2:
            continue
        cum = np.cumsum(seg, axis=0)[:-1]
        gl, hl, cl = cum[:, 0], cum[:, 1], cum[:, 2]
        gr, hr, cr = g_all - gl, h_all - hl, c_all - cl
        wl, wr = weight(gl, hl, lam, bounds), weight(gr, hr, lam, bounds)
        valid = (seg[:-1, 2] > 0) & (hl >= params.min_child_weight)
        valid &= (hr >= params.min_child_weight) & (cl >= 1) & (cr >= 1)
        if params.monotone[j] > 0:
            valid &= wl <= wr
        elif params.monotone[j] < 0:
            valid &= wl >= wr
        gain = 0.5 * (score(gl, hl, wl, lam) + score(gr, hr, wr, lam) - parent) - params.gamma
        for b in np.flatnonzero(valid):
            gains.append(gain[b])
            where.append((j, int(b), (gl[b], hl[b], cl[b])))
    if not gains:
        return None
    gains = np.asarray(gains)
    best = gains.max()
    if not best > 0:
        return None
    pick = int(np.flatnonzero(gains >= best - TIE * max(1.0, abs(best)))[0])
    j, b, left = where[pick]
    right = (g_all - left[0], h_all - left[1], c_all - left[2])
    return Split(
        j, b, float(gains[pick]), left, right, *child_bounds(left, right, j, bounds, params)
    )


def child_bounds(
    left: tuple, right: tuple, feature: int, bounds: tuple[float, float], params: TreeParams
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The children's monotone bounds (XGBoost): a constrained split caps the side that must
    stay lower at the midpoint of the two weights, and floors the other side there."""
    direction = params.monotone[feature]
    if direction == 0:
        return bounds, bounds
    lam = params.reg_lambda
    mid = 0.5 * float(
        weight(left[0], left[1], lam, bounds) + weight(right[0], right[1], lam, bounds)
    )
    low, high = bounds
    if direction > 0:
        return (low, min(high, mid)), (max(low, mid), high)
    return (max(low, mid), high), (low, min(high, mid))
