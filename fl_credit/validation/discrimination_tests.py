"""Discrimination on the master scale: AUC from per-grade counts and the ECB's AUC test.

With ``D_g`` defaults and ``R_g`` repaid loans in grade ``g`` (higher grade = riskier), the
AUC is ``P(grade of a default > grade of a repaid loan) + 1/2 P(tie)``. Its variance is
DeLong's: every default in grade ``g`` has ``V10 = (R below g + R_g / 2) / R``, every repaid
loan ``V01 = (D above g + D_g / 2) / D``, and
``s^2 = var(V10) / D + var(V01) / R`` (sample variances), all from the counts.

ECB (2019), section 2.5.3.1: ``S = (AUC_initial - AUC_current) / s_current``, one-sided
p-value ``1 - Phi(S)`` (small when the AUC dropped).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def auc_and_se(defaults: np.ndarray, repaid: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong standard error from per-grade defaults and repaid counts."""
    d = np.clip(np.asarray(defaults, dtype=np.float64), 0.0, None)
    r = np.clip(np.asarray(repaid, dtype=np.float64), 0.0, None)
    n_d, n_r = d.sum(), r.sum()
    if n_d < 2 or n_r < 2:
        return float("nan"), float("nan")
    r_below = np.cumsum(r) - r
    d_above = d.sum() - np.cumsum(d)
    v10 = (r_below + 0.5 * r) / n_r
    v01 = (d_above + 0.5 * d) / n_d
    auc = float(np.sum(d * v10) / n_d)
    s10 = np.sum(d * (v10 - auc) ** 2) / (n_d - 1)
    s01 = np.sum(r * (v01 - auc) ** 2) / (n_r - 1)
    return auc, float(np.sqrt(s10 / n_d + s01 / n_r))


def auc_test(initial_auc: float, current_auc: float, current_se: float) -> tuple[float, float]:
    """The ECB statistic ``S`` and its one-sided p-value (NaN without a positive error)."""
    if not current_se > 0:
        return float("nan"), float("nan")
    s = (initial_auc - current_auc) / current_se
    return float(s), float(stats.norm.sf(s))
