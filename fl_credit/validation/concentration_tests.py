"""Concentration of the rating scale: the Herfindahl index and the ECB's test.

With ``K`` grades and shares ``c_g``: ``HI = sum c_g^2`` and the coefficient of variation
``CV = sqrt(K sum (c_g - 1/K)^2)``. ECB (2019), section 2.5.4: the current against the
initial distribution, ``z = sqrt(K - 1) (CV_cur - CV_init) / sqrt(CV_cur^2 (1/2 + CV_cur^2))``,
one-sided p-value ``1 - Phi(z)`` (small when the grades got more concentrated).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def herfindahl(counts: np.ndarray) -> tuple[float, float]:
    """Herfindahl index and coefficient of variation of the grade counts."""
    counts = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    share = counts / counts.sum()
    k = len(counts)
    return float(np.sum(share**2)), float(np.sqrt(k * np.sum((share - 1.0 / k) ** 2)))


def herfindahl_test(initial: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The ECB statistic ``z`` and its one-sided p-value."""
    _, cv_initial = herfindahl(initial)
    _, cv_current = herfindahl(current)
    k = len(current)
    z = np.sqrt(k - 1) * (cv_current - cv_initial) / np.sqrt(cv_current**2 * (0.5 + cv_current**2))
    return float(z), float(stats.norm.sf(z))
