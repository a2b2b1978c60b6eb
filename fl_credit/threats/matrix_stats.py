"""Paired statistics for the threat matrix: intervals on the same test rows, Holm's correction.

A cell (split, defence, attack) compares, seed by seed, the attacked run with the clean run of
the same split, defence and seed. Both score the same held-out rows, so the comparison is
paired: :func:`paired_drop` bootstraps the AUC drop by resampling the seeds and, within each
drawn seed, the test rows (by class, the same rows for both models), and reads a two-sided
95% interval and a one-sided 95% upper bound from the replicates.

Claims are read from the bounds: "the defence holds within ``x``" means the 95% upper bound
of the drop is below ``x``; "the attack harms" means the lower bound is above 0. Each claim's
one-sided bootstrap p-value goes through Holm's step-down correction across all the claims
the report makes (:func:`holm`). The p-value reads the bootstrap distribution as normal
(the point estimate over the replicates' standard deviation), not as the share of replicates
past the bound: that share is never below ``1 / (resamples + 1)``, a floor which Holm
multiplies by the number of claims, so that over a full matrix no claim could pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged)."""
    y = np.asarray(y).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class PairedSeed:
    """One seed of a cell: labels and the clean and attacked models' scores on the same rows."""

    y: np.ndarray
    clean: np.ndarray
    attacked: np.ndarray


@dataclass(frozen=True)
class Interval:
    """A bootstrapped mean with its 95% interval and one-sided 95% bounds."""

    mean: float
    low: float
    high: float
    upper: float
    lower: float
    replicates: np.ndarray

    def p_above(self, x: float) -> float:
        """One-sided p-value of "the value is below ``x``" (normal reading of the bootstrap)."""
        return self._p(x - self.mean)

    def p_below(self, x: float) -> float:
        """One-sided p-value of "the value is above ``x``" (normal reading of the bootstrap)."""
        return self._p(self.mean - x)

    def _p(self, margin: float) -> float:
        """P(Z >= margin / sd) for the replicates' sd; without spread, 0 on the claim's side."""
        sd = float(np.std(self.replicates, ddof=1)) if len(self.replicates) > 1 else 0.0
        if sd == 0.0:
            return 0.0 if margin > 0 else 1.0
        return float(norm.sf(margin / sd))


def _interval(point: float, replicates: np.ndarray) -> Interval:
    low, high, lower, upper = np.percentile(replicates, [2.5, 97.5, 5.0, 95.0])
    return Interval(float(point), float(low), float(high), float(upper), float(lower), replicates)


def paired_drop(
    seeds: Sequence[PairedSeed], resamples: int = 500, seed: int = 0
) -> Interval | None:
    """AUC drop (clean minus attacked), averaged over seeds, with a two-level paired bootstrap
    (seeds, then rows by class within each seed). None without seeds."""
    if not seeds:
        return None
    point = float(np.mean([auc(s.y, s.clean) - auc(s.y, s.attacked) for s in seeds]))
    rng = np.random.default_rng(seed)
    classes = [(np.flatnonzero(s.y == 1), np.flatnonzero(s.y == 0)) for s in seeds]
    drawn = [
        (_DrawnAuc(s.clean, *c), _DrawnAuc(s.attacked, *c))
        for s, c in zip(seeds, classes, strict=True)
    ]
    out = np.empty(resamples)
    for b in range(resamples):
        drops = []
        for k in rng.integers(0, len(seeds), size=len(seeds)):
            pos, neg = classes[k]
            pos_rows, neg_rows = rng.choice(pos, len(pos)), rng.choice(neg, len(neg))
            clean, attacked = drawn[k]
            drops.append(clean(pos_rows, neg_rows) - attacked(pos_rows, neg_rows))
        out[b] = np.mean(drops)
    return _interval(point, out)


class _DrawnAuc:
    """AUC of one model on bootstrap draws of its rows, by counting the drawn negatives
    below each drawn positive (ties count half): equal to :func:`auc` on the drawn rows,
    without ranking them again for every draw."""

    def __init__(self, scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(self.scores[neg], kind="stable")
        self.sorted_neg = self.scores[neg][order]
        self.slot = np.empty(len(self.scores), dtype=np.int64)  # row -> place among sorted
        self.slot[neg[order]] = np.arange(len(neg))

    def __call__(self, pos_rows: np.ndarray, neg_rows: np.ndarray) -> float:
        counts = np.bincount(self.slot[neg_rows], minlength=len(self.sorted_neg))
        below = np.concatenate([[0], np.cumsum(counts)])
        s = self.scores[pos_rows]
        low = below[np.searchsorted(self.sorted_neg, s, side="left")]
        high = below[np.searchsorted(self.sorted_neg, s, side="right")]
        return float((low + 0.5 * (high - low)).sum() / (len(pos_rows) * len(neg_rows)))


def seed_mean(values: Sequence[float], resamples: int = 500, seed: int = 0) -> Interval | None:
    """Mean of per-seed values with a bootstrap over seeds (None without values)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return None
    rng = np.random.default_rng(seed)
    reps = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    return _interval(float(v.mean()), reps)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted
