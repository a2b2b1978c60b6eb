"""Weight-of-evidence (WoE) binning from summed per-bank counts, for ``features=woe``.

The federated flow this module serves (each step a plain sum over banks, so secure
aggregation can carry it and DP noise can be added to it):

1. Every bank counts its training rows on the *agreed grid* of each feature
   (:func:`fl_credit.psi.feature_edges`: fine bins placed from the federation's mean and
   standard deviation, open at both ends), separately for defaults (events) and repaid loans
   (non-events): :func:`bank_counts` returns one vector to sum.
2. The server splits the summed vector (:func:`split_summed`), merges fine bins into a few
   coarse bins per feature (:func:`woe_bins`: equal-population start, then adjacent merges
   until every bin holds a minimum share and, for numeric features, WoE is monotonic), and
   computes WoE and information value (:func:`woe_iv`) from the merged counts.
3. The server sends each bank the resulting :class:`WoeTable`; banks replace each feature by
   the WoE of its bin (:meth:`WoeTable.transform`) and train the logistic model on that.

Convention (Siddiqi): ``WoE = ln(share of non-events / share of events)``, so a positive WoE
marks a lower-risk bin, and ``IV = sum (share non-events - share events) * WoE``. Counts are
smoothed by adding a constant to every bin before taking shares, so an empty bin has a finite
WoE; negative counts (DP noise on a summed count) are taken as 0.

numpy only (banks import it in a fresh ClientApp process). A library such as ``optbinning``
solves the merge step as a mixed-integer programme, but it fits rows ``(x, y)``; it could be
fed the summed counts as weighted pseudo-rows at the fine-bin midpoints, at the cost of
OR-Tools and cvxpy as dependencies. On a few dozen fine bins per feature the greedy merges
here are exact enough and keep the bank side dependency-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.psi import coarsen, count_bins

SMOOTHING = 0.5
"""Count added to the events and to the non-events of every bin before taking shares."""
MAX_BINS = 6
MIN_SHARE = 0.05


def bank_counts(x: np.ndarray, y: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """One bank's events and non-events per fine bin of every feature, as one summable vector.

    Parameters
    ----------
    x : numpy.ndarray
        The bank's unscaled training rows, one column per feature.
    y : numpy.ndarray
        0/1 labels, 1 = default (event).
    edges : list of numpy.ndarray
        Each feature's agreed fine grid.

    Returns
    -------
    numpy.ndarray
        For feature 0: its fine-bin event counts then its non-event counts; then feature 1, ...
    """
    y = np.asarray(y).astype(bool)
    parts = []
    for j, e in enumerate(edges):
        parts += [count_bins(x[y, j], e), count_bins(x[~y, j], e)]
    return np.concatenate(parts)


def split_summed(
    vector: np.ndarray, edges: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Undo :func:`bank_counts`' layout: ``(events, non_events)`` per feature."""
    out, start = [], 0
    vector = np.asarray(vector, dtype=np.float64)
    for e in edges:
        k = len(e) - 1
        out.append((vector[start : start + k], vector[start + k : start + 2 * k]))
        start += 2 * k
    return out


def woe_iv(
    events: np.ndarray, non_events: np.ndarray, smoothing: float = SMOOTHING
) -> tuple[np.ndarray, float]:
    """WoE per bin and the information value of the binning.

    Parameters
    ----------
    events, non_events : numpy.ndarray
        Counts per bin (summed over banks, possibly noised).
    smoothing : float
        Added to every bin's events and non-events before taking shares.

    Returns
    -------
    tuple of (numpy.ndarray, float)
        ``ln(share non-events / share events)`` per bin, and ``IV``.
    """
    e = np.maximum(np.asarray(events, dtype=np.float64), 0.0) + smoothing
    n = np.maximum(np.asarray(non_events, dtype=np.float64), 0.0) + smoothing
    share_e, share_n = e / e.sum(), n / n.sum()
    woe = np.log(share_n / share_e)
    return woe, float(np.sum((share_n - share_e) * woe))


def _merge_pair(groups: np.ndarray, left: int) -> np.ndarray:
    """Merge coarse bin ``left + 1`` into ``left`` and renumber."""
    groups = groups.copy()
    groups[groups > left] -= 1
    return groups


def _sums(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups, weights=counts, minlength=groups.max() + 1)


def woe_bins(
    events: np.ndarray,
    non_events: np.ndarray,
    max_bins: int = MAX_BINS,
    min_share: float = MIN_SHARE,
    monotonic: bool = True,
    smoothing: float = SMOOTHING,
) -> np.ndarray:
    """Group a feature's fine bins into coarse WoE bins from summed counts.

    Starts from at most ``max_bins`` bins of about equal population, then repeatedly merges
    the adjacent pair that costs least information value while a bin holds less than
    ``min_share`` of the rows or (``monotonic``) the WoE sequence changes direction.

    Returns
    -------
    numpy.ndarray
        For every fine bin, its coarse bin (0, 1, ...; non-decreasing).
    """
    events = np.maximum(np.asarray(events, dtype=np.float64), 0.0)
    non_events = np.maximum(np.asarray(non_events, dtype=np.float64), 0.0)
    groups = coarsen(events + non_events, max_bins)
    while groups.max() > 0:
        e, n = _sums(events, groups), _sums(non_events, groups)
        share = (e + n) / max((e + n).sum(), 1e-12)
        woe, _ = woe_iv(e, n, smoothing)
        steps = np.sign(np.diff(woe))
        small = share < min_share
        bumpy = monotonic and len(steps) > 1 and not (np.all(steps >= 0) or np.all(steps <= 0))
        if not small.any() and not bumpy:
            break
        candidates = range(groups.max())
        if small.any() and not bumpy:
            worst = int(np.argmin(share))
            candidates = [c for c in (worst - 1, worst) if 0 <= c < groups.max()]
        costs = []
        for left in candidates:
            merged = _merge_pair(groups, left)
            costs.append((-woe_iv(_sums(events, merged), _sums(non_events, merged))[1], left))
        groups = _merge_pair(groups, min(costs)[1])
    return groups


@dataclass(frozen=True)
class WoeBinning:
    """One feature's coarse bins: inner edges, WoE per bin, information value."""

    inner_edges: np.ndarray
    woe: np.ndarray
    iv: float

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The WoE of each value's bin (bins are ``[edge_i, edge_i+1)``)."""
        return self.woe[np.searchsorted(self.inner_edges, values, side="right")]


def fit_binning(
    events: np.ndarray,
    non_events: np.ndarray,
    fine_edges: np.ndarray,
    *,
    binary: bool = False,
    max_bins: int = MAX_BINS,
    min_share: float = MIN_SHARE,
    smoothing: float = SMOOTHING,
) -> WoeBinning:
    """Coarse bins, WoE and IV of one feature from its summed fine-grid counts.

    A binary (one-hot) feature keeps its two bins and is not made monotonic.
    """
    if binary:
        groups = np.arange(len(events))
    else:
        groups = woe_bins(events, non_events, max_bins, min_share, True, smoothing)
    e, n = _sums(np.asarray(events, float), groups), _sums(np.asarray(non_events, float), groups)
    woe, iv = woe_iv(e, n, smoothing)
    inner = np.asarray(fine_edges, dtype=np.float64)[1:-1]
    cuts = np.flatnonzero(np.diff(groups))
    return WoeBinning(inner_edges=inner[cuts], woe=woe, iv=iv)


@dataclass(frozen=True)
class WoeTable:
    """Every feature's :class:`WoeBinning`, in model order."""

    names: tuple[str, ...]
    binnings: tuple[WoeBinning, ...]

    @classmethod
    def from_summed(
        cls,
        vector: np.ndarray,
        edges: list[np.ndarray],
        names: list[str],
        smoothing: float = SMOOTHING,
    ) -> WoeTable:
        """Fit every feature from the summed :func:`bank_counts` vector (``col=cat`` names
        are binary one-hot columns)."""
        binnings = [
            fit_binning(e, n, grid, binary="=" in name, smoothing=smoothing)
            for name, grid, (e, n) in zip(names, edges, split_summed(vector, edges), strict=True)
        ]
        return cls(names=tuple(names), binnings=tuple(binnings))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Rows with every feature replaced by the WoE of its bin."""
        return np.column_stack([b.transform(x[:, j]) for j, b in enumerate(self.binnings)])

    def information_values(self) -> dict[str, float]:
        """IV per feature, largest first."""
        ivs = {name: b.iv for name, b in zip(self.names, self.binnings, strict=True)}
        return dict(sorted(ivs.items(), key=lambda item: -item[1]))
