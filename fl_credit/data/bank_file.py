"""One bank's own rows on disk: encoded features, the default label and its local split.

A bank file is what a SuperNode reads in deployment (``--node-config data-path=...``) and what
a simulated bank reads too. ``.csv`` is the exchange format; ``.npz`` is a faster twin used by
large simulations. The held-out test set uses the same format with every row in split "test".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.config.errors import DataError

LABEL = "default"
SPLIT = "split"


@dataclass(frozen=True)
class BankData:
    """A bank's encoded (unscaled) training, validation and own test rows.

    The test rows are the bank's share of the held-out loans, used only for federated
    evaluation (each bank scores the global model on its own rows; the coordinator sees
    summed histograms). Empty when the file has none.
    """

    feature_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def write_rows(path: Path, feature_names: list[str], parts: dict[str, tuple]) -> Path:
    """Write ``{split: (x, y)}`` to ``path`` (.csv or .npz) atomically."""
    path = Path(path)
    x = np.vstack([p[0] for p in parts.values()])
    y = np.concatenate([p[1] for p in parts.values()]).astype(np.int8)
    split = np.concatenate([[name] * len(p[1]) for name, p in parts.items()])
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".npz":
        with open(tmp, "wb") as fh:
            np.savez(fh, x=x, y=y, split=split, names=np.array(feature_names))
    else:
        frame = pd.DataFrame(x, columns=feature_names)
        frame[LABEL] = y
        frame[SPLIT] = split
        frame.to_csv(tmp, index=False, float_format="%.10g")
    os.replace(tmp, path)
    return path


def read_rows(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Read a bank or test file: feature names, features, labels and split names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"bank data file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                return [str(n) for n in z["names"]], z["x"], z["y"], z["split"].astype(str)
        frame = pd.read_csv(path)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"cannot read bank data file {path}: {err}") from None
    for col in (LABEL, SPLIT):
        if col not in frame.columns:
            raise DataError(f"bank data file {path} has no '{col}' column")
    names = [c for c in frame.columns if c not in (LABEL, SPLIT)]
    try:
        x = frame[names].to_numpy(dtype=np.float64)
    except ValueError:
        raise DataError(f"bank data file {path} holds non-numeric feature values") from None
    if not np.isfinite(x).all():
        raise DataError(f"bank data file {path} holds NaN or infinite feature values")
    return names, x, frame[LABEL].to_numpy(dtype=np.int8), frame[SPLIT].astype(str).to_numpy()


def read_bank(path: str | Path) -> BankData:
    """Read one bank's file into its training and validation rows."""
    names, x, y, split = read_rows(path)
    train, val, test = split == "train", split == "val", split == "test"
    if not train.any():
        raise DataError(f"bank data file {path} has no training rows")
    return BankData(tuple(names), x[train], y[train], x[val], y[val], x[test], y[test])
