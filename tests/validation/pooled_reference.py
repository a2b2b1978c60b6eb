"""Independent implementations of the validation statistics on pooled rows.

Written from the formulas of meliora 0.1.2 (``meliora/core.py``: ``_binomial``, ``_jeffreys``,
``_hosmer``, ``_herfindahl``, ``herfindahl_multiple_period_test``; meliora itself does not
install: it depends on the deprecated ``sklearn`` PyPI package) and from the ECB's
*Instructions for reporting the validation results of internal models* (2019), row by row,
with pandas and scikit-learn: nothing here uses the project's count-based code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta, binom, chi2, norm
from sklearn.metrics import roc_auc_score


def grade_frame(grade: np.ndarray, y: np.ndarray, pd_: np.ndarray, grades: int) -> pd.DataFrame:
    """Per grade: rows, defaults, mean PD (meliora's groupby), all grades listed."""
    frame = pd.DataFrame({"grade": grade, "y": y, "pd": pd_})
    table = frame.groupby("grade").agg(n=("y", "count"), d=("y", "sum"), p=("pd", "mean"))
    return table.reindex(range(grades))


def binomial(table: pd.DataFrame) -> np.ndarray:
    """meliora ``_binomial``: ``1 - binom.cdf(d - 1, n, p)``."""
    return np.asarray(1 - binom.cdf(table.d - 1, table.n, table.p))


def jeffreys(table: pd.DataFrame) -> np.ndarray:
    """meliora ``_jeffreys``: ``beta.cdf(p, d + 1/2, n - d + 1/2)``."""
    return beta.cdf(table.p, table.d + 0.5, table.n - table.d + 0.5)


def hosmer(table: pd.DataFrame) -> tuple[float, float]:
    """meliora ``_hosmer`` (degrees of freedom = grades), over non-empty grades."""
    t = table.dropna()
    kr = float(sum((t.d - t.p * t.n) ** 2 / (t.n * t.p * (1 - t.p))))
    return kr, float(1 - chi2.cdf(kr, len(t)))


def spiegelhalter_rows(y: np.ndarray, p: np.ndarray) -> float:
    """Spiegelhalter's z row by row (``p``: each row's PD)."""
    mse = np.mean((y - p) ** 2)
    expected = np.mean(p * (1 - p))
    variance = np.sum((1 - 2 * p) ** 2 * p * (1 - p)) / len(y) ** 2
    return float((mse - expected) / np.sqrt(variance))


def herfindahl_cv(grade: np.ndarray, grades: int) -> tuple[float, float]:
    """meliora ``_herfindahl`` on ``value_counts`` of the grades (empty grades count as 0)."""
    counts = pd.Series(grade).value_counts().reindex(range(grades), fill_value=0)
    n_tot = counts.sum()
    cv = (grades * ((counts / n_tot - 1 / grades) ** 2).sum()) ** 0.5
    return float((counts**2).sum() / n_tot**2), float(cv)


def herfindahl_z(initial: np.ndarray, current: np.ndarray, grades: int) -> float:
    """meliora ``herfindahl_multiple_period_test``'s statistic."""
    c1, c2 = herfindahl_cv(initial, grades)[1], herfindahl_cv(current, grades)[1]
    return float((grades - 1) ** 0.5 * (c2 - c1) / (c2**2 * (0.5 + c2**2)) ** 0.5)


def auc_delong(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC (scikit-learn) and DeLong's standard error from the pairwise comparisons."""
    pos, neg = score[y == 1], score[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = roc_auc_score(y, score)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    return float(auc), float(np.sqrt(var))


def ecb_auc_p(initial: float, current: float, se: float) -> float:
    """ECB 2019: ``1 - Phi((AUC_init - AUC_cur) / s)``."""
    return float(1 - norm.cdf((initial - current) / se))


def psi_formula(expected: np.ndarray, actual: np.ndarray, smoothing: float = 1e-4) -> float:
    """``sum (a - e) ln(a / e)`` over shares smoothed by ``smoothing``."""
    e = (expected / expected.sum() + smoothing) / (1 + len(expected) * smoothing)
    a = (actual / actual.sum() + smoothing) / (1 + len(actual) * smoothing)
    return float(np.sum((a - e) * np.log(a / e)))


def fairness_rows(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Approval rate, TPR (defaults declined), FPR (repaid declined), O/E, row by row."""
    declined = p >= threshold
    return {
        "approval_rate": float(np.mean(~declined)),
        "tpr": float(np.mean(declined[y == 1])) if (y == 1).any() else float("nan"),
        "fpr": float(np.mean(declined[y == 0])) if (y == 0).any() else float("nan"),
        "observed_over_expected": float(y.sum() / p.sum()),
    }
