"""Test metrics from summed per-class score histograms: federated evaluation without rows.

Each bank scores the global model on its own test rows and sends, through secure
aggregation, per-class counts of scores in public bins on the logit scale plus the sums of
the rows' Brier and log-loss terms. From the summed vector the coordinator computes

- AUC, KS and Gini exactly as for scores rounded to their bin (rows in one bin count as
  ties), so the only difference from the pooled rows' metrics is the binning;
- Brier score and log loss exactly (their per-row terms are summed, not binned).

Under DP the banks add noise to the vector: counts are then clipped at zero and the sums at
their possible range before use, which is post-processing.
"""

from __future__ import annotations

import numpy as np

from fl_credit.credit.thresholds import logit_edges

MAX_LOG_LOSS = float(np.log(1e4))  # per-row log loss is clipped here (bounded sensitivity)
EPSILON = 1e-7


def evaluation_vector(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """A bank's summable evaluation vector.

    Layout: ``[defaults per bin (bins), repaid per bin (bins), sum of (p - y)^2,
    sum of clipped log loss]``. One borrower adds 1 to one count, at most 1 to the Brier sum
    and at most :data:`MAX_LOG_LOSS` to the log-loss sum.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    edges = logit_edges(bins)
    logit = np.clip(np.log(p / (1.0 - p)), edges[0], edges[-1])
    pos = np.histogram(logit[y == 1], bins=edges)[0]
    neg = np.histogram(logit[y == 0], bins=edges)[0]
    brier = float(np.sum((p - y) ** 2))
    loss = np.minimum(-(y * np.log(p) + (1 - y) * np.log(1 - p)), MAX_LOG_LOSS)
    return np.concatenate([pos, neg, [brier, float(loss.sum())]]).astype(np.float64)


def evaluation_sensitivity() -> float:
    """L2 sensitivity of :func:`evaluation_vector` to one borrower."""
    return float(np.sqrt(1.0 + 1.0 + MAX_LOG_LOSS**2))


def metrics_from_vector(summed: np.ndarray, bins: int) -> dict[str, float]:
    """AUC, KS, Gini, Brier, log loss and counts from a summed evaluation vector."""
    summed = np.asarray(summed, dtype=np.float64)
    pos = np.clip(summed[:bins], 0.0, None)
    neg = np.clip(summed[bins : 2 * bins], 0.0, None)
    n_pos, n_neg = pos.sum(), neg.sum()
    rows = max(n_pos + n_neg, 1.0)
    # Rank statistic on binned scores: P(score_default > score_repaid) + 0.5 P(tie).
    neg_below = np.cumsum(neg) - neg
    auc = float((pos * (neg_below + 0.5 * neg)).sum() / max(n_pos * n_neg, 1e-12))
    tpr = np.cumsum(pos[::-1])[::-1] / max(n_pos, 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(n_neg, 1e-12)
    return {
        "auc": auc,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "gini": 2.0 * auc - 1.0,
        "brier": float(np.clip(summed[2 * bins] / rows, 0.0, 1.0)),
        "log_loss": float(np.clip(summed[2 * bins + 1] / rows, 0.0, MAX_LOG_LOSS)),
        "rows": float(rows),
        "defaults": float(n_pos),
    }
