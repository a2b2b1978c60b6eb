"""Migration between two models' grades: the matrix and its summary.

``matrix[i, j]`` counts rows in grade ``i`` of the federated model and grade ``j`` of the
other model. Summary: the share on the diagonal, within one notch, the mean absolute notch
distance, and the shares the federated model puts in a worse or a better grade.
"""

from __future__ import annotations

import numpy as np


def migration_summary(matrix: np.ndarray) -> dict[str, float]:
    """Diagonal share, within-one-notch share, mean |notch|, worse and better shares."""
    m = np.clip(np.asarray(matrix, dtype=np.float64), 0.0, None)
    total = m.sum()
    i, j = np.indices(m.shape)
    return {
        "rows": float(total),
        "same_grade": float(m[i == j].sum() / total),
        "within_one": float(m[np.abs(i - j) <= 1].sum() / total),
        "mean_abs_notches": float(np.sum(m * np.abs(i - j)) / total),
        "federated_worse": float(m[i > j].sum() / total),
        "federated_better": float(m[i < j].sum() / total),
    }


def row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each federated grade's row as shares of the other model's grades."""
    m = np.clip(np.asarray(matrix, dtype=np.float64), 0.0, None)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
