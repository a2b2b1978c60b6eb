"""The logistic model's coefficients on the original feature scale, and their odds ratios.

The model works on standardised features ``z = (x - mean) / std``, so its weight ``w`` is
per standard deviation. On the original scale the coefficient is ``w / std`` per unit of the
feature (per switch from 0 to 1 for a one-hot column), and ``exp(w / std)`` is the factor by
which one more unit multiplies the odds of default, other features fixed.
"""

from __future__ import annotations

import numpy as np


def odds_ratios(
    weights: np.ndarray, mean: np.ndarray, std: np.ndarray, bias: float, names: list[str]
) -> dict:
    """Coefficients and odds ratios per feature, and the intercept on the original scale.

    Parameters
    ----------
    weights : numpy.ndarray
        The model's weights on standardised features, shape ``(d,)``.
    mean, std : numpy.ndarray
        The standardiser's per-feature mean and standard deviation.
    bias : float
        The model's intercept on standardised features.
    names : list of str
        Feature names in model order.

    Returns
    -------
    dict
        ``intercept`` (on the original scale: ``bias - sum(w * mean / std)``) and
        ``features``: one dict per feature with ``feature``, ``coef_standardised`` (``w``),
        ``coef`` (``w / std``), ``odds_ratio`` (``exp(w / std)``, per unit) and
        ``odds_ratio_per_sd`` (``exp(w)``), in model order.
    """
    weights = np.asarray(weights, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    coef = weights / std
    rows = [
        {
            "feature": name,
            "coef_standardised": float(w),
            "coef": float(c),
            "odds_ratio": float(np.exp(c)),
            "odds_ratio_per_sd": float(np.exp(w)),
        }
        for name, w, c in zip(names, weights, coef, strict=True)
    ]
    return {"intercept": float(bias - np.sum(coef * mean)), "features": rows}
