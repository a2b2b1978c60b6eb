"""Score histograms and the validation cut-off chosen from them (numpy only).

Banks compute the histograms (cheap to import in a fresh ClientApp process); the server sums
them, through secure aggregation, and picks the cut-off. Bins are equally spaced in logit
(log-odds) over :data:`LOGIT_RANGE`, not in probability: calibrated PDs of a portfolio with
a 5% default rate mostly lie below 0.2, where a [0, 1] grid of 200 bins would give the
cut-off a resolution of only 0.005 (a tenth of the base rate). Scores beyond the range fall
into the end bins. The same grid, coarser, carries the DP-noised histograms.
"""

from __future__ import annotations

import numpy as np

LOGIT_RANGE = (-10.0, 5.0)  # public grid: PDs from 4.5e-5 to 0.993


def logit_edges(bins: int) -> np.ndarray:
    """``bins + 1`` equal-width bin edges on the logit scale over :data:`LOGIT_RANGE`."""
    return np.linspace(*LOGIT_RANGE, bins + 1)


def logit_histograms(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """Per-class counts of scores in equal logit bins: ``[defaults, repaid]``.

    Scores outside the grid fall in its first or last bin. Every row adds one to one count,
    so the vector's L2 sensitivity to one borrower is 1.
    """
    edges = logit_edges(bins)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    logit = np.clip(np.log(p / (1.0 - p)), edges[0], edges[-1])
    pos = np.histogram(logit[y == 1], bins=edges)[0]
    neg = np.histogram(logit[y == 0], bins=edges)[0]
    return np.concatenate([pos, neg]).astype(np.float64)


def score_histograms(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """The validation-score histograms of a model: :func:`logit_histograms`."""
    return logit_histograms(y, p, bins)


def bin_thresholds(bins: int) -> np.ndarray:
    """The cut-off at the lower edge of each bin, as a PD (0 for the first bin, so that
    choosing it flags every row)."""
    out = 1.0 / (1.0 + np.exp(-logit_edges(bins)[:-1]))
    out[0] = 0.0
    return out


def threshold_from_histograms(hist: np.ndarray) -> float:
    """Cut-off maximising TPR - FPR (Youden's J, the KS point) from summed histograms.

    Works on sums over banks, so the federated model's threshold needs no pooled rows. The
    cut-off is a PD (``p >= threshold`` predicts default). Negative counts left by DP noise
    are clipped to zero (post-processing).
    """
    hist = np.clip(np.asarray(hist, dtype=np.float64), 0.0, None)
    bins = len(hist) // 2
    pos, neg = hist[:bins], hist[bins:]
    tpr = np.cumsum(pos[::-1])[::-1] / max(pos.sum(), 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(neg.sum(), 1e-12)
    best = int(np.argmax(tpr - fpr))
    return float(bin_thresholds(bins)[best])


def threshold_from_logit_histograms(hist: np.ndarray) -> float:
    """The KS cut-off from summed, possibly noised, logit histograms (same as
    :func:`threshold_from_histograms`; kept for the DP path's callers)."""
    return threshold_from_histograms(hist)
