"""Class-imbalance handling, applied to one bank's own training rows only."""

from __future__ import annotations

import logging

import numpy as np

from fl_credit.config.errors import DataError

log = logging.getLogger(__name__)


def positive_weight(y: np.ndarray) -> float:
    """Loss weight of a default so both classes weigh the same: repaid / defaulted rows."""
    pos = float(np.sum(y))
    return float((len(y) - pos) / pos) if pos > 0 else 1.0


def balance(
    x: np.ndarray, y: np.ndarray, method: str, *, k_neighbors: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Rebalance a bank's training rows.

    Parameters
    ----------
    x, y : numpy.ndarray
        Training features (scaled) and 0/1 labels.
    method : {"smote", "class_weight", "none"}
        SMOTE oversampling, a positive-class loss weight, or nothing.
    k_neighbors : int
        SMOTE neighbours; lowered (with a log line) when the bank has too few defaults.
    seed : int
        SMOTE's random state.

    Returns
    -------
    tuple
        ``(x, y, pos_weight)`` to train on.
    """
    if method == "none":
        return x, y, 1.0
    if method == "class_weight":
        return x, y, positive_weight(y)
    minority = int(min(np.sum(y), len(y) - np.sum(y)))
    if minority < 2:
        raise DataError(
            f"SMOTE needs at least 2 minority rows in a bank, found {minority}; "
            "use imbalance=class_weight"
        )
    k = min(k_neighbors, minority - 1)
    if k < k_neighbors:
        log.warning("SMOTE: bank has %d minority rows, using k_neighbors=%d", minority, k)
    from imblearn.over_sampling import SMOTE

    x_res, y_res = SMOTE(k_neighbors=k, random_state=seed).fit_resample(x, y)
    return x_res.astype(np.float32), y_res.astype(y.dtype), 1.0
