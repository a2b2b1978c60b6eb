"""Scores of a credit model on held-out rows: ranking, calibration and per-class quality."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

GAIN_GROUPS = 10


def auc_interval(
    y: np.ndarray, p: np.ndarray, resamples: int, seed: int, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap interval of ROC AUC.

    Resampling is stratified (defaults and repaid loans resampled separately), so every
    resample has both classes. Each resample's AUC is the Mann-Whitney statistic, counted
    exactly from the resample's multiplicities over the scores sorted once (no sort per
    resample, and memory for a block of resamples at a time rather than for all of them,
    with the same results as a rank sum over all resamples at once).
    """
    if resamples <= 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    pos, neg = p[y == 1], p[y == 0]
    n_pos, n_neg = len(pos), len(neg)
    pos_draws = rng.integers(0, n_pos, (resamples, n_pos))
    neg_draws = rng.integers(0, n_neg, (resamples, n_neg))
    order = np.argsort(neg, kind="stable")
    place = np.empty(n_neg, dtype=np.int64)
    place[order] = np.arange(n_neg)
    sorted_neg = neg[order]
    # For each default: how many repaid scores lie below it, and below or level with it.
    below = np.searchsorted(sorted_neg, pos, side="left")
    up_to = np.searchsorted(sorted_neg, pos, side="right")
    twice_u = np.empty(resamples, dtype=np.int64)
    block = max(1, 2_000_000 // max(n_neg, 1))
    for start in range(0, resamples, block):
        rows = slice(start, min(start + block, resamples))
        k = rows.stop - rows.start
        counts = np.bincount(
            (place[neg_draws[rows]] + (np.arange(k) * n_neg)[:, None]).ravel(),
            minlength=k * n_neg,
        ).reshape(k, n_neg)
        cum = np.zeros((k, n_neg + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=cum[:, 1:])
        drawn = pos_draws[rows]
        lower = np.take_along_axis(cum, below[drawn], axis=1)
        level_or_lower = np.take_along_axis(cum, up_to[drawn], axis=1)
        # 2U = sum over drawn defaults of (#repaid below) + (#repaid below or level).
        twice_u[rows] = (lower + level_or_lower).sum(axis=1)
    aucs = twice_u / (2.0 * n_pos * n_neg)
    tail = (1.0 - level) / 2.0
    return [float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1.0 - tail))]


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of defaults and repaid.

    The largest gap ``TPR - FPR`` over the ROC curve's thresholds (scikit-learn's
    :func:`~sklearn.metrics.roc_curve`, which moves past all rows with a tied score at once),
    so tied scores are never split: constant scores give 0. Equals
    ``scipy.stats.ks_2samp(p[y == 1], p[y == 0]).statistic`` whenever defaults score higher
    (the usual orientation); a model that ranks the wrong way round gets 0 here.
    """
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def gains_table(y: np.ndarray, p: np.ndarray, groups: int = GAIN_GROUPS) -> dict[str, list[float]]:
    """Cumulative gains and lift by depth (deciles by default), highest scores first.

    Depth ``q`` is the share of borrowers flagged when the highest-scored ``q`` of them are;
    ``cumulative_gains`` is the share of all defaults among them. Rows with tied scores cannot
    be ordered, so at a depth that falls inside a tie the tied rows count in proportion
    (linear interpolation of the gains curve between score thresholds): constant scores give
    gains equal to the depth and lift 1 everywhere.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels, 1 = default.
    p : numpy.ndarray
        Scores (higher = riskier).
    groups : int
        Number of equal-depth groups (10 = deciles).

    Returns
    -------
    dict of str to list of float
        ``depth`` (``1/groups .. 1``), ``cumulative_gains``, ``cumulative_lift`` (gains /
        depth), ``lift`` (the group's own default share over its population share) and
        ``default_rate`` (default rate within the group).
    """
    y = np.asarray(y)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    n_pos = float(y.sum())
    n = float(len(y))
    flagged = (tpr * n_pos + fpr * (n - n_pos)) / n
    depth = np.arange(1, groups + 1) / groups
    gains = np.interp(depth, flagged, tpr)
    own = np.diff(np.r_[0.0, gains]) * groups
    return {
        "depth": depth.tolist(),
        "cumulative_gains": gains.tolist(),
        "cumulative_lift": (gains / depth).tolist(),
        "lift": own.tolist(),
        "default_rate": (own * n_pos / n).tolist(),
    }


def class_report(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of both classes when ``p >= threshold`` predicts default."""
    pred = (p >= threshold).astype(int)
    prec, rec, f1, _ = precision_recall_fscore_support(y, pred, labels=[1, 0], zero_division=0)
    return {
        name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i])}
        for i, name in enumerate(("default", "repaid"))
    }


def evaluate_scores(
    y: np.ndarray,
    p: np.ndarray,
    *,
    val_threshold: float | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """All test-set metrics of one model.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels, 1 = default.
    p : numpy.ndarray
        Predicted default probabilities.
    val_threshold : float, optional
        Cut-off chosen on validation data; reported under ``at_val_threshold``.
    resamples : int
        Bootstrap resamples for ``auc_ci``.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``auc``, ``auc_ci``, ``ks``, ``gini``, ``brier``, ``log_loss``, per-class
        ``default`` / ``repaid`` precision-recall-F1 at 0.5, ``gains`` (lift and cumulative
        gains by decile, see :func:`gains_table`) and ``at_val_threshold``.
    """
    auc = float(roc_auc_score(y, p))
    p_clip = np.clip(p, 1e-7, 1 - 1e-7)
    out = {
        "auc": auc,
        "auc_ci": auc_interval(y, p, resamples, seed),
        "ks": ks_statistic(y, p),
        "gini": 2.0 * auc - 1.0,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p_clip, labels=[0, 1])),
        **class_report(y, p, 0.5),
        "gains": gains_table(y, p),
    }
    if val_threshold is not None:
        out["at_val_threshold"] = {"threshold": val_threshold, **class_report(y, p, val_threshold)}
    return out


def round_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The cheap per-round subset (no bootstrap) for the federated history."""
    p_clip = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y, p)),
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p_clip, labels=[0, 1])),
    }
