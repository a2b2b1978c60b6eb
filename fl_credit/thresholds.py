"""Score histograms and the validation cut-off chosen from them (numpy only).

Banks compute the histograms (cheap to import in a fresh ClientApp process); the server sums
them, through secure aggregation, and picks the cut-off.
"""

from __future__ import annotations

import numpy as np


def score_histograms(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """Counts of scores in ``bins`` equal bins on [0, 1], per class: ``[defaults, repaid]``."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    pos = np.histogram(p[y == 1], bins=edges)[0]
    neg = np.histogram(p[y == 0], bins=edges)[0]
    return np.concatenate([pos, neg]).astype(np.float64)


def threshold_from_histograms(hist: np.ndarray) -> float:
    """Cut-off maximising TPR - FPR (Youden's J, the KS point) from summed histograms.

    Works on sums over banks, so the federated model's threshold needs no pooled rows.
    """
    bins = len(hist) // 2
    pos, neg = hist[:bins], hist[bins:]
    tpr = np.cumsum(pos[::-1])[::-1] / max(pos.sum(), 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(neg.sum(), 1e-12)
    best = int(np.argmax(tpr - fpr))
    return float(best / bins)
