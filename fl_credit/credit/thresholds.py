"""Score histograms and the validation cut-off chosen from them (numpy only).

Banks compute the histograms (cheap to import in a fresh ClientApp process); the server sums
them, through secure aggregation, and picks the cut-off. Bins are equally spaced in logit
(log-odds) over :data:`LOGIT_RANGE`, not in probability: calibrated PDs of a portfolio with
a 5% default rate mostly lie below 0.2, where a [0, 1] grid of 200 bins would give the
cut-off a resolution of only 0.005 (a tenth of the base rate). Scores beyond the range fall
into the end bins. Under DP the histograms are noised and a fixed grid would put most of
its few bins where no score lies: a first release locates the scores (:func:`score_counts`,
:func:`span_from_counts`), the histograms' grid spans them, and the cut-off comes with its
noise (:func:`dp_cutoff`).
"""

from __future__ import annotations

import numpy as np

LOGIT_RANGE = (-10.0, 5.0)  # public grid: PDs from 4.5e-5 to 0.993


DP_THRESHOLD_BINS = 20
"""Bins of the DP validation histograms, over the span where the scores lie."""
SPAN_BINS = 15
"""Bins (one logit wide) of the DP release that locates the scores' span."""
SPAN_TAIL = 0.01
"""Share of the scores left outside the span at each end (they fall in the end bins)."""
NOISE_FLOOR_SDS = 3.0
"""Noised counts below this many noise sds are taken as empty when locating the span."""
DP_VALIDATION_RELEASES = 2
"""The validation budget pays for two releases: the span, then the per-class histograms."""
SPAN_SDS = 3.0
"""Half-width of :func:`model_logit_span`, in standard deviations of the logit."""
MIN_FLAGGED_SHARE = 0.25
"""A DP cut-off whose estimated validation recall is below this share is reported as
flagging too few defaults."""


def logit_edges(bins: int, span: tuple[float, float] = LOGIT_RANGE) -> np.ndarray:
    """``bins + 1`` equal-width bin edges on the logit scale over ``span``."""
    return np.linspace(float(span[0]), float(span[1]), bins + 1)


def model_logit_span(weight: np.ndarray, bias: float) -> tuple[float, float]:
    """Where a logistic model's logits lie on standardised inputs, from the model alone.

    With inputs of mean 0 and variance 1 the logit has mean ``bias`` and, for independent
    inputs, standard deviation ``|weight|_2``: the span is ``bias +- SPAN_SDS |weight|_2``
    inside :data:`LOGIT_RANGE`. A fallback only: under DP the inputs are not standardised
    (one-hot columns are scaled to -1 / +1), and the span comes from a release
    (:func:`span_from_counts`).
    """
    spread = max(float(np.linalg.norm(np.asarray(weight, dtype=np.float64))), 0.25)
    low = max(LOGIT_RANGE[0], float(bias) - SPAN_SDS * spread)
    high = min(LOGIT_RANGE[1], float(bias) + SPAN_SDS * spread)
    if high - low < 1.0:  # a span outside the public range: fall back to the whole range
        return LOGIT_RANGE
    return (low, high)


def score_counts(p: np.ndarray, bins: int = 0) -> np.ndarray:
    """Counts of scores (both classes together) in ``bins`` equal logit bins over
    :data:`LOGIT_RANGE` (default :data:`SPAN_BINS`); sensitivity 1."""
    bins = bins or SPAN_BINS
    edges = logit_edges(bins)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    logit = np.clip(np.log(p / (1.0 - p)), edges[0], edges[-1])
    return np.histogram(logit, bins=edges)[0].astype(np.float64)


def span_from_counts(
    counts: np.ndarray, count_sd: float = 0.0, tail: float = SPAN_TAIL
) -> tuple[float, float]:
    """The logit span holding all but ``tail`` of the scores at each end, from the noised
    :func:`score_counts` over :data:`LOGIT_RANGE` (post-processing).

    Bins whose noised count is below :data:`NOISE_FLOOR_SDS` noise sds are taken as empty, so
    the noise of empty bins does not stretch the span over the whole range.
    """
    counts = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    counts[counts < NOISE_FLOOR_SDS * count_sd] = 0.0
    edges = logit_edges(len(counts))
    if counts.sum() <= 0:
        return LOGIT_RANGE
    share = np.cumsum(counts) / counts.sum()
    first = int(np.searchsorted(share, tail, side="right"))
    last = int(np.searchsorted(share, 1.0 - tail))
    return (float(edges[first]), float(edges[min(last, len(counts) - 1) + 1]))


def checked_span(low: float, high: float) -> tuple[float, float]:
    """A grid span a bank accepts: finite, ordered, inside :data:`LOGIT_RANGE` (any such
    grid keeps a histogram's sensitivity at 1, so the coordinator may choose it)."""
    low, high = float(low), float(high)
    if not (LOGIT_RANGE[0] <= low < high <= LOGIT_RANGE[1]):
        raise ValueError(f"score grid span ({low}, {high}) outside {LOGIT_RANGE}")
    return (low, high)


def logit_histograms(
    y: np.ndarray, p: np.ndarray, bins: int, span: tuple[float, float] = LOGIT_RANGE
) -> np.ndarray:
    """Per-class counts of scores in equal logit bins over ``span``: ``[defaults, repaid]``.

    Scores outside the grid fall in its first or last bin. Every row adds one to one count,
    so the vector's L2 sensitivity to one borrower is 1.
    """
    edges = logit_edges(bins, span)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    logit = np.clip(np.log(p / (1.0 - p)), edges[0], edges[-1])
    pos = np.histogram(logit[y == 1], bins=edges)[0]
    neg = np.histogram(logit[y == 0], bins=edges)[0]
    return np.concatenate([pos, neg]).astype(np.float64)


def score_histograms(y: np.ndarray, p: np.ndarray, bins: int) -> np.ndarray:
    """The validation-score histograms of a model: :func:`logit_histograms`."""
    return logit_histograms(y, p, bins)


def bin_thresholds(bins: int, span: tuple[float, float] = LOGIT_RANGE) -> np.ndarray:
    """The cut-off at the lower edge of each bin, as a PD (0 for the first bin, so that
    choosing it flags every row)."""
    out = 1.0 / (1.0 + np.exp(-logit_edges(bins, span)[:-1]))
    out[0] = 0.0
    return out


def _youden(hist: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Best bin by TPR - FPR, and the TPR per cut-off, of (clipped) summed histograms."""
    hist = np.clip(np.asarray(hist, dtype=np.float64), 0.0, None)
    bins = len(hist) // 2
    pos, neg = hist[:bins], hist[bins:]
    tpr = np.cumsum(pos[::-1])[::-1] / max(pos.sum(), 1e-12)
    fpr = np.cumsum(neg[::-1])[::-1] / max(neg.sum(), 1e-12)
    return int(np.argmax(tpr - fpr)), tpr, pos


def threshold_from_histograms(hist: np.ndarray, span: tuple[float, float] = LOGIT_RANGE) -> float:
    """Cut-off maximising TPR - FPR (Youden's J, the KS point) from summed histograms.

    Works on sums over banks, so the federated model's threshold needs no pooled rows. The
    cut-off is a PD (``p >= threshold`` predicts default). Negative counts left by DP noise
    are clipped to zero (post-processing).
    """
    best, _, _ = _youden(hist)
    return float(bin_thresholds(len(hist) // 2, span)[best])


def dp_cutoff(hist: np.ndarray, span: tuple[float, float], count_sd: float) -> dict:
    """The KS cut-off from noised histograms on the grid over ``span``, with its noise.

    Parameters
    ----------
    hist : numpy.ndarray
        Summed, noised ``[defaults, repaid]`` counts (:func:`logit_histograms` over ``span``).
    span : tuple of float
        The grid's logit span (:func:`model_logit_span`).
    count_sd : float
        Standard deviation of the noise on each summed count.

    Returns
    -------
    dict
        ``threshold``; ``validation_recall`` (share of the noised default count at or above
        it) and ``recall_sd`` (its noise, from the counts summed above the cut-off);
        ``count_sd``, ``bins``, ``span_logit``; ``flags_too_few`` when the estimated recall
        is below :data:`MIN_FLAGGED_SHARE`.
    """
    best, tpr, pos = _youden(hist)
    bins = len(hist) // 2
    defaults = max(float(pos.sum()), 1.0)
    recall = float(tpr[best])
    recall_sd = float(count_sd) * np.sqrt(bins - best) / defaults
    return {
        "threshold": float(bin_thresholds(bins, span)[best]),
        "validation_recall": recall,
        "recall_sd": float(recall_sd),
        "count_sd": float(count_sd),
        "bins": int(bins),
        "span_logit": [float(span[0]), float(span[1])],
        "flags_too_few": bool(recall < MIN_FLAGGED_SHARE),
    }
