"""Test metrics from summed per-class score histograms: federated evaluation without rows.

Each bank scores the global model on its own test rows and sends, through secure
aggregation, per-class counts of scores in public bins on the logit scale plus the sums of
the rows' Brier and log-loss terms. From the summed vector the coordinator computes

- AUC, KS and Gini exactly as for scores rounded to their bin (rows in one bin count as
  ties), so the only difference from the pooled rows' metrics is the binning;
- Brier score and log loss exactly (their per-row terms are summed, not binned).

Under DP (:func:`dp_metrics_from_histograms`) the banks release only the per-class score
histograms, on :data:`DP_EVALUATION_BINS` logit bins over the model's own score span: one
borrower moves one count by one (L2 sensitivity 1). The Brier and log-loss sums are not
released (the clipped log loss alone had sensitivity 9.2 and set the noise of every count).
Each metric comes with the sd of its noise, estimated by adding the known noise again; a
metric whose expected error exceeds :data:`MAX_DP_ERROR` is withheld with that reason.
"""

from __future__ import annotations

import numpy as np

from fl_credit.credit.thresholds import logit_edges

DP_EVALUATION_BINS = 10
MAX_DP_ERROR = 0.02
"""A DP metric whose noise sd exceeds this is withheld, not printed."""
NOISE_RESAMPLES = 200
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


def _rank_metrics(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """AUC and KS of binned scores from per-class counts (ties within a bin count half)."""
    n_pos, n_neg = pos.sum(), neg.sum()
    neg_below = np.cumsum(neg) - neg
    auc = float((pos * (neg_below + 0.5 * neg)).sum() / max(n_pos * n_neg, 1e-12))
    tpr = np.cumsum(pos[::-1])[::-1] / max(n_pos, 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(n_neg, 1e-12)
    return auc, float(np.max(np.abs(tpr - fpr)))


def metrics_from_vector(summed: np.ndarray, bins: int) -> dict[str, float]:
    """AUC, KS, Gini, Brier, log loss and counts from a summed evaluation vector."""
    summed = np.asarray(summed, dtype=np.float64)
    pos = np.clip(summed[:bins], 0.0, None)
    neg = np.clip(summed[bins : 2 * bins], 0.0, None)
    n_pos, n_neg = pos.sum(), neg.sum()
    rows = max(n_pos + n_neg, 1.0)
    auc, ks = _rank_metrics(pos, neg)
    return {
        "auc": auc,
        "ks": ks,
        "gini": 2.0 * auc - 1.0,
        "brier": float(np.clip(summed[2 * bins] / rows, 0.0, 1.0)),
        "log_loss": float(np.clip(summed[2 * bins + 1] / rows, 0.0, MAX_LOG_LOSS)),
        "rows": float(rows),
        "defaults": float(n_pos),
    }


def dp_metrics_from_histograms(summed: np.ndarray, count_sd: float, seed: int = 0) -> dict:
    """AUC, KS and Gini from noised score histograms, each with the sd of its noise.

    Parameters
    ----------
    summed : numpy.ndarray
        ``[defaults per bin, repaid per bin]`` summed over banks, noised.
    count_sd : float
        Standard deviation of the noise on each summed count (public: sigma of the
        evaluation release, sensitivity 1).
    seed : int, optional
        Seed of the noise re-draws that estimate each metric's error (post-processing).

    Returns
    -------
    dict
        ``auc``, ``ks``, ``gini`` (None when withheld), ``auc_sd``, ``ks_sd``,
        ``auc_interval`` (95%, noise only), noised ``rows`` and ``defaults``, ``brier`` and
        ``log_loss`` (None: not released), ``withheld`` (names) and a ``note``.
    """
    summed = np.asarray(summed, dtype=np.float64)
    bins = len(summed) // 2

    def metrics(vector: np.ndarray) -> tuple[float, float]:
        clipped = np.clip(vector, 0.0, None)
        return _rank_metrics(clipped[:bins], clipped[bins:])

    auc, ks = metrics(summed)
    rng = np.random.default_rng(seed)
    redrawn = np.array(
        [metrics(summed + rng.normal(0.0, count_sd, summed.shape)) for _ in range(NOISE_RESAMPLES)]
    )
    auc_sd, ks_sd = np.sqrt(np.mean((redrawn - [auc, ks]) ** 2, axis=0))
    withheld = [name for name, sd in (("auc", auc_sd), ("ks", ks_sd)) if sd > MAX_DP_ERROR]
    note = "loss sums are not released under DP (Brier and log loss: none)"
    if withheld:
        note += (
            f"; {', '.join(withheld)} withheld: expected error (noise sd) "
            f"{max(auc_sd, ks_sd):.3f} above {MAX_DP_ERROR} with about "
            f"{max(summed[:bins].sum(), 0):.0f} test defaults and count noise sd {count_sd:.1f} "
            "(more test rows or a larger dp.budget.evaluation share would bring it within reach)"
        )
    shown = "auc" not in withheld
    return {
        "auc": auc if shown else None,
        "gini": 2.0 * auc - 1.0 if shown else None,
        "ks": ks if "ks" not in withheld else None,
        "auc_sd": float(auc_sd),
        "ks_sd": float(ks_sd),
        "auc_interval": [float(auc - 1.96 * auc_sd), float(auc + 1.96 * auc_sd)],
        "rows": float(max(summed.sum(), 0.0)),
        "defaults": float(max(summed[:bins].sum(), 0.0)),
        "count_sd": float(count_sd),
        "bins": int(bins),
        "brier": None,
        "log_loss": None,
        "withheld": withheld,
        "note": note,
    }
