"""Calibration tests per grade and overall, from per-grade counts (scipy.stats).

Per grade ``g`` with ``n`` rows, ``d`` defaults and mean PD ``p`` (the PD sum over ``n``):

- binomial test (one-sided, H0: the PD is not too low): ``P(X >= d)``, ``X ~ Bin(n, p)``;
- Jeffreys test (ECB 2019, section 2.5.3.1): ``Beta(d + 1/2, n - d + 1/2).cdf(p)``, small
  when the observed rate is above the PD; the same posterior gives the interval;
- traffic light on the Jeffreys p-value: red below ``red``, yellow below ``alpha``, else
  green.

Overall (grades with rows):

- Hosmer-Lemeshow: ``sum (d - n p)^2 / (n p (1 - p))``, chi-squared with as many degrees
  of freedom as grades (out-of-sample, as the ECB instructions and PDtoolkit);
- Spiegelhalter on the grade PDs: ``z = (MSE - E) / sqrt(V)`` with every row given its
  grade's PD, ``MSE = sum [d (1-p)^2 + (n-d) p^2] / N``, ``E = sum n p (1-p) / N``,
  ``V = sum n (1-2p)^2 p (1-p) / N^2``; two-sided p-value.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

JEFFREYS_LEVEL = 0.95


def grade_pd(n: np.ndarray, pd_sum: np.ndarray) -> np.ndarray:
    """Mean PD of each grade (NaN for an empty grade)."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.asarray(pd_sum) / np.where(n > 0, n, 1.0), np.nan)


def binomial_p(n: np.ndarray, d: np.ndarray, pd: np.ndarray) -> np.ndarray:
    """One-sided binomial p-values ``P(X >= d)`` (counts rounded to whole numbers)."""
    n, d = np.round(np.asarray(n, dtype=np.float64)), np.round(np.asarray(d, dtype=np.float64))
    return np.where(n > 0, stats.binom.sf(d - 1, n, pd), np.nan)


def jeffreys_p(n: np.ndarray, d: np.ndarray, pd: np.ndarray) -> np.ndarray:
    """Jeffreys p-values ``Beta(d + 1/2, n - d + 1/2).cdf(pd)``."""
    n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
    return np.where(n > 0, stats.beta.cdf(pd, d + 0.5, np.maximum(n - d, 0.0) + 0.5), np.nan)


def jeffreys_interval(
    n: np.ndarray, d: np.ndarray, level: float = JEFFREYS_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed Jeffreys interval of each grade's default rate."""
    n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
    a, b = d + 0.5, np.maximum(n - d, 0.0) + 0.5
    tail = (1.0 - level) / 2.0
    return stats.beta.ppf(tail, a, b), stats.beta.ppf(1.0 - tail, a, b)


def traffic_light(p_value: float, alpha: float, red: float) -> str:
    """``red`` below ``red``, ``yellow`` below ``alpha``, ``green`` otherwise (``n/a``: NaN)."""
    if not np.isfinite(p_value):
        return "n/a"
    return "red" if p_value < red else ("yellow" if p_value < alpha else "green")


def hosmer_lemeshow(n: np.ndarray, d: np.ndarray, pd: np.ndarray) -> tuple[float, int, float]:
    """Statistic, degrees of freedom and p-value over the grades with rows."""
    n, d, pd = (np.asarray(a, dtype=np.float64) for a in (n, d, pd))
    used = (n > 0) & (pd > 0) & (pd < 1)
    stat = float(
        np.sum((d[used] - n[used] * pd[used]) ** 2 / (n[used] * pd[used] * (1 - pd[used])))
    )
    dof = int(used.sum())
    return stat, dof, float(stats.chi2.sf(stat, dof)) if dof else float("nan")


def spiegelhalter(n: np.ndarray, d: np.ndarray, pd: np.ndarray) -> tuple[float, float]:
    """Spiegelhalter's z and two-sided p-value with every row at its grade's PD."""
    n, d, pd = (np.asarray(a, dtype=np.float64) for a in (n, d, pd))
    used = n > 0
    n, d, pd = n[used], d[used], pd[used]
    total = n.sum()
    mse = np.sum(d * (1 - pd) ** 2 + (n - d) * pd**2) / total
    expected = np.sum(n * pd * (1 - pd)) / total
    variance = np.sum(n * (1 - 2 * pd) ** 2 * pd * (1 - pd)) / total**2
    z = float((mse - expected) / np.sqrt(variance))
    return z, float(2 * stats.norm.sf(abs(z)))
