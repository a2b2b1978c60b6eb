"""Membership inference against a logistic-regression model: loss threshold and LiRA.

Both attacks score candidate rows; a higher score means "more likely a training row".

- Loss threshold (Yeom et al. 2018): the negative loss of the row under the target model.
- LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022): the
  logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of the row's true label (for a
  logistic model, the logit signed by the label) under the target is compared with its
  distribution over shadow models trained with the row (IN) and without it (OUT), each fitted
  by a Gaussian; the score is the log likelihood ratio (online) or the one-sided OUT tail
  (offline). With few shadows the variance is pooled over rows (the paper's fixed-variance
  variant).

:func:`attack_metrics` reports ROC AUC and the true-positive rate at 0.1% and 1% false-positive
rate (the paper's low-FPR regime).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

LOW_FPRS = (0.001, 0.01)


def label_logit(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``phi = log(p_y / (1 - p_y))``: the logit for defaults, minus the logit for repaid."""
    return np.where(np.asarray(y) == 1, logits, -np.asarray(logits))


def loss_scores(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Minus each row's (unweighted) binary cross-entropy."""
    return -np.logaddexp(0.0, -label_logit(logits, y))


def lira_scores(
    target_phi: np.ndarray,
    shadow_phi: np.ndarray,
    shadow_in: np.ndarray,
    *,
    online: bool = True,
    pooled_variance: bool = True,
) -> np.ndarray:
    """LiRA scores of every candidate row.

    Parameters
    ----------
    target_phi : numpy.ndarray
        ``phi`` of each row under the target model, shape ``(rows,)``.
    shadow_phi : numpy.ndarray
        ``phi`` of each row under each shadow model, shape ``(shadows, rows)``.
    shadow_in : numpy.ndarray
        Whether each row was in each shadow's training set, same shape (bool).
    online : bool
        Likelihood ratio of IN vs OUT (True) or the OUT tail only (False).
    pooled_variance : bool
        One IN and one OUT variance over all rows (robust with few shadows).

    Returns
    -------
    numpy.ndarray
        One score per row; rows with no IN (online) or no OUT shadow score ``nan``.
    """
    shadow_in = np.asarray(shadow_in, dtype=bool)
    mu_in, sd_in = _gaussian(shadow_phi, shadow_in, pooled_variance)
    mu_out, sd_out = _gaussian(shadow_phi, ~shadow_in, pooled_variance)
    if not online:
        return norm.logcdf(target_phi, loc=mu_out, scale=sd_out)
    return norm.logpdf(target_phi, loc=mu_in, scale=sd_in) - norm.logpdf(
        target_phi, loc=mu_out, scale=sd_out
    )


def _gaussian(phi: np.ndarray, mask: np.ndarray, pooled: bool) -> tuple[np.ndarray, np.ndarray]:
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, (phi * mask).sum(axis=0) / count, np.nan)
        dev = np.where(mask, phi - mean, 0.0)
        if pooled:
            var = (dev**2).sum() / max(int(count.sum()) - int((count > 0).sum()), 1)
            sd = np.full(phi.shape[1], np.sqrt(var))
        else:
            sd = np.sqrt((dev**2).sum(axis=0) / np.maximum(count - 1, 1))
    return mean, np.maximum(sd, 1e-6)


def tpr_at_fpr(scores: np.ndarray, member: np.ndarray, fpr_target: float) -> float:
    """Largest true-positive rate with a false-positive rate of at most ``fpr_target``."""
    fpr, tpr, _ = roc_curve(member, scores)
    ok = fpr <= fpr_target
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(scores: np.ndarray, member: np.ndarray) -> dict:
    """AUC and TPR at the low FPRs of one attack (rows with a ``nan`` score are left out).

    ``min_fpr`` is one false positive over the non-members: TPR at an FPR below it is the
    TPR at zero false positives.
    """
    scores, member = np.asarray(scores, dtype=np.float64), np.asarray(member, dtype=bool)
    keep = np.isfinite(scores)
    scores, member = scores[keep], member[keep]
    out = {
        "auc": float(roc_auc_score(member, scores)),
        "members": int(member.sum()),
        "non_members": int((~member).sum()),
        "min_fpr": 1.0 / max(int((~member).sum()), 1),
    }
    for alpha in LOW_FPRS:
        out[f"tpr_at_{alpha:g}_fpr"] = tpr_at_fpr(scores, member, alpha)
    return out
