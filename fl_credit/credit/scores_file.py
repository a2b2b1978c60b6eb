"""``scores.csv``: every model's test-set scores next to the label, one row per test loan.

Columns: ``default`` (1 = default), then one column per model that trained: ``federated``,
``centralized``, ``reference`` and ``local.<bank>`` (the same names as in ``metrics.json``).
Scores are written with 17 significant digits, so every metric recomputed from the file
equals the one in ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.run.files import write_atomic

SCORES = "scores.csv"
LABEL = "default"


def score_columns(scores: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Flatten ``{"federated": s, ..., "local": {bank: s}}`` to column names; untrained
    models (None) are left out."""
    columns: dict[str, np.ndarray] = {}
    for name, value in scores.items():
        if isinstance(value, dict):
            columns.update(score_columns({f"{name}.{k}": v for k, v in value.items()}))
        elif value is not None:
            columns[name] = np.asarray(value, dtype=np.float64)
    return columns


def write_scores(path: Path, y: np.ndarray, scores: dict) -> Path:
    """Atomically write ``scores.csv`` (see the module docstring for the columns)."""
    frame = pd.DataFrame({LABEL: np.asarray(y, dtype=int), **score_columns(scores)})
    return write_atomic(Path(path), frame.to_csv(index=False, float_format="%.17g"))


def read_scores(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and each model's scores from a ``scores.csv``."""
    frame = pd.read_csv(path)
    y = frame.pop(LABEL).to_numpy(dtype=int)
    return y, {name: frame[name].to_numpy(dtype=np.float64) for name in frame.columns}
