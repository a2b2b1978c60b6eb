"""Score histograms and the validation cut-off chosen from them (numpy only).

Banks compute the histograms (cheap to import in a fresh ClientApp process); the server sums
them, through secure aggregation, and picks the cut-off. Bins are equally spaced in logit
(log-odds) between ``-LOGIT_RANGE`` and ``LOGIT_RANGE``, not in probability: calibrated PDs
of a portfolio with a 5% default rate mostly lie below 0.2, where a [0, 1] grid of 200 bins
would give the cut-off a resolution of only 0.005 (a tenth of the base rate). Scores beyond
the range fall into the end bins.
"""

from __future__ import annotations

import numpy as np

LOGIT_RANGE = 10.0  # PDs from about 4.5e-5 to 1 - 4.5e-5


def logit_edges(bins: int) -> np.ndarray:
    """``bins + 1`` histogram edges on the logit scale."""
    return np.linspace(-LOGIT_RANGE, LOGIT_RANGE, bins + 1)


def score_logits(p: np.ndarray) -> np.ndarray:
    """Log-odds of scores, finite for scores of exactly 0 or 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1.0)
    return np.log(p) - np.log1p(-np.minimum(p, 1.0 - 1e-16))


def score_histograms(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """Counts of scores in ``bins`` logit-spaced bins, per class: ``[defaults, repaid]``."""
    edges = logit_edges(bins)
    z = np.clip(score_logits(p), edges[0], edges[-1])
    pos = np.histogram(z[y == 1], bins=edges)[0]
    neg = np.histogram(z[y == 0], bins=edges)[0]
    return np.concatenate([pos, neg]).astype(np.float64)


def bin_thresholds(bins: int) -> np.ndarray:
    """The cut-off at the lower edge of each bin, as a PD (0 for the first bin)."""
    lower = logit_edges(bins)[:-1]
    out = 1.0 / (1.0 + np.exp(-lower))
    out[0] = 0.0
    return out


def threshold_from_histograms(hist: np.ndarray) -> float:
    """Cut-off maximising TPR - FPR (Youden's J, the KS point) from summed histograms.

    Works on sums over banks, so the federated model's threshold needs no pooled rows.
    The cut-off is a PD: ``p >= threshold`` predicts default.
    """
    bins = len(hist) // 2
    pos, neg = hist[:bins], hist[bins:]
    tpr = np.cumsum(pos[::-1])[::-1] / max(pos.sum(), 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(neg.sum(), 1e-12)
    best = int(np.argmax(tpr - fpr))
    return float(bin_thresholds(bins)[best])
