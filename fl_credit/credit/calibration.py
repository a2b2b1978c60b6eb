"""Calibrated probabilities of default: the prior correction and the reliability check.

A logistic model trained with defaults weighted by ``s`` (``imbalance=class_weight``) or on
rows rebalanced to equal classes (``imbalance=smote``) estimates the odds of default
multiplied by ``s``: its intercept is too high by exactly ``log(s)`` at the weighted
optimum (King and Zeng's prior correction for choice-based samples). Subtracting it gives
calibrated PDs; the ranking (AUC, KS) does not change. For SMOTE the correction is the
same oversampling ratio, approximate because synthetic rows are not copies. Models trained
under DP are left uncorrected (see :func:`prior_correction`).

The check: reliability bins on a logit-spaced grid (fine where PDs are small), summed over
banks as counts of rows, counts of defaults and sums of predicted PD per bin, and the
expected calibration error ``ECE = sum_b |sum PD_b - defaults_b| / rows``. numpy only, so
banks import it cheaply.
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import Array, ArrayRecord

BIAS = "linear.bias"
GBM_BASE = "gbm.base"  # a tree ensemble's base log-odds (fl_credit/boosting/tree.py)
# Reliability grid: edges equally spaced in logit between these PDs, plus 0 and 1.
LOWEST_PD, HIGHEST_PD = 0.005, 0.995


def prior_correction(method: str, pos_weight: float, *, private: bool = False) -> float:
    """What to subtract from the intercept: ``log(pos_weight)`` after class weighting or
    SMOTE (both shift the odds of default by the repaid/defaulted ratio), else 0.

    The correction is exact at the weighted optimum. Training under DP does not reach it
    (per-sample or per-update clipping undoes most of the weight, and 20 noisy rounds leave
    the intercept short): there it would push PDs far below the base rate (measured: mean
    PD 0.001 against a 0.052 default rate at epsilon 4), so with ``private`` it is 0 and the
    reported ECE says how (mis)calibrated the DP model is.
    """
    if private or method not in ("class_weight", "smote") or pos_weight <= 0:
        return 0.0
    return float(math.log(pos_weight))


def corrected(arrays: ArrayRecord, correction: float) -> ArrayRecord:
    """The model's arrays with ``correction`` subtracted from its bias (same dtype)."""
    out = ArrayRecord()
    for name, array in arrays.items():
        values = array.numpy()
        if name in (BIAS, GBM_BASE) and correction:
            values = (values.astype(np.float64) - correction).astype(values.dtype)
        out[name] = Array(np.asarray(values))
    return out


def reliability_edges(bins: int) -> np.ndarray:
    """``bins + 1`` PD edges: 0, ``bins - 1`` edges equally spaced in logit, 1."""
    lo, hi = (math.log(p / (1.0 - p)) for p in (LOWEST_PD, HIGHEST_PD))
    inner = 1.0 / (1.0 + np.exp(-np.linspace(lo, hi, bins - 1)))
    return np.concatenate([[0.0], inner, [1.0]])


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """One party's reliability vector ``[rows per bin..., defaults per bin..., sum PD per
    bin...]`` (``3 * bins`` values), ready to be summed over banks."""
    edges = reliability_edges(bins)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows = np.bincount(index, minlength=bins)
    defaults = np.bincount(index, weights=np.asarray(y, dtype=np.float64), minlength=bins)
    pd_sum = np.bincount(index, weights=np.asarray(p, dtype=np.float64), minlength=bins)
    return np.concatenate([rows, defaults, pd_sum]).astype(np.float64)


def reliability_summary(summed: np.ndarray) -> dict:
    """ECE, mean PD, default rate and the per-bin table from a (summed) reliability vector.

    Returns
    -------
    dict
        ``ece``, ``rows``, ``defaults``, ``base_rate`` (defaults / rows), ``mean_pd`` and
        ``bins`` (one entry per non-empty bin: PD range, rows, default rate, mean PD).
    """
    bins = len(summed) // 3
    rows, defaults, pd_sum = (np.asarray(summed[k * bins : (k + 1) * bins]) for k in range(3))
    total = float(rows.sum())
    edges = reliability_edges(bins)
    table = [
        {
            "pd_from": float(edges[b]),
            "pd_to": float(edges[b + 1]),
            "rows": float(rows[b]),
            "default_rate": float(defaults[b] / rows[b]),
            "mean_pd": float(pd_sum[b] / rows[b]),
        }
        for b in range(bins)
        if rows[b] > 0.5
    ]
    safe = max(total, 1e-12)
    return {
        "ece": float(np.abs(pd_sum - defaults).sum() / safe),
        "rows": total,
        "defaults": float(defaults.sum()),
        "base_rate": float(defaults.sum() / safe),
        "mean_pd": float(pd_sum.sum() / safe),
        "bins": table,
    }


def calibration_scores(y: np.ndarray, p: np.ndarray, bins: int) -> dict[str, float]:
    """Calibration figures of scores on labelled rows: ECE, mean PD, base rate and the
    Brier score of always predicting that base rate."""
    summary = reliability_summary(reliability_bins(y, p, bins))
    rate = summary["base_rate"]
    return {
        "ece": summary["ece"],
        "mean_pd": summary["mean_pd"],
        "base_rate": rate,
        "brier_base_rate": float(np.mean((np.asarray(y, dtype=np.float64) - rate) ** 2)),
    }
