"""A finished run as an auditor sees it: its configuration, the banks' rows, the final model.

The banks' rows are the run's own bank files (``<run_dir>/banks``, kept when the run recorded
its server view) or, for a run without them, the same split prepared again from
``config_resolved.yaml`` (the split is a deterministic function of the configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fl_credit.config.errors import DataError
from fl_credit.config.parsing import from_dict
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.view import GROUND_TRUTH
from fl_credit.data.bank_file import BankData, read_bank, read_rows
from fl_credit.data.scaling import Standardizer
from fl_credit.run import files as run_files


@dataclass(frozen=True)
class RunData:
    """A run's configuration and the rows behind it.

    Attributes
    ----------
    cfg : ExperimentConfig
        The run's resolved configuration.
    banks : dict
        Bank name to its :class:`~fl_credit.data.bank_file.BankData` (unscaled rows).
    feature_names : list of str
        Encoded feature names in model order.
    x_test, y_test : numpy.ndarray
        The held-out test rows (unscaled) and labels.
    source : str
        Where the rows came from (``bank files`` or ``prepared again from the config``).
    """

    cfg: ExperimentConfig
    banks: dict[str, BankData]
    feature_names: list[str]
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """All banks' training rows (the federated model's members) and their labels."""
        banks = list(self.banks.values())
        return np.vstack([b.x_train for b in banks]), np.concatenate([b.y_train for b in banks])

    @property
    def non_members(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows no model weight was trained on: the test rows and the banks' validation rows."""
        banks = list(self.banks.values())
        x = np.vstack([self.x_test, *[b.x_val for b in banks]])
        y = np.concatenate([self.y_test, *[b.y_val for b in banks]])
        return x, y


@dataclass(frozen=True)
class FinalModel:
    """The released federated model: ``logit = weight . scaler(x) + bias`` (under DP the
    scaler first clips rows to the public ranges)."""

    weight: np.ndarray
    bias: float
    scaler: Standardizer
    threshold: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of unscaled rows ``x``."""
        return linear_logits(self.weight, self.bias, self.scaler.transform(x))


def linear_logits(weight: np.ndarray, bias: float, x_scaled: np.ndarray) -> np.ndarray:
    """``x_scaled @ weight + bias`` in float64."""
    return np.asarray(x_scaled, dtype=np.float64) @ np.asarray(weight, dtype=np.float64) + bias


def load_config(run_dir: str | Path) -> ExperimentConfig:
    """The run's configuration from ``config_resolved.yaml``."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / run_files.RESOLVED_CONFIG
    if not path.is_file():
        raise DataError(f"{run_dir} is not a run folder: no {run_files.RESOLVED_CONFIG}")
    return from_dict(OmegaConf.to_container(OmegaConf.load(path), resolve=True))


def load_run(run_dir: str | Path) -> RunData:
    """The run's configuration and its banks' rows (see the module docstring)."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    folder = run_dir / GROUND_TRUTH
    files = sorted(folder.glob("bank_*.npz"), key=lambda p: int(p.stem.split("_")[1]))
    if files and (folder / "test.npz").is_file():
        banks = {p.stem: read_bank(p) for p in files}
        names, x_test, y_test, _ = read_rows(folder / "test.npz")
        return RunData(cfg, banks, names, x_test, y_test, "bank files")
    from fl_credit.data.prepare import prepare

    prepared = prepare(cfg)
    return RunData(
        cfg,
        prepared.banks,
        prepared.feature_names,
        prepared.x_test,
        prepared.y_test,
        "prepared again from the config",
    )


def load_model(run_dir: str | Path) -> FinalModel:
    """The final federated model saved in ``model.pt``."""
    path = Path(run_dir) / run_files.MODEL
    if not path.is_file():
        raise DataError(f"{run_dir} has no {run_files.MODEL} (did the run finish?)")
    state = torch.load(path, weights_only=True)
    keys = ("scaler_mean", "scaler_std", "scaler_low", "scaler_high")
    scaler = [state[k].numpy().astype(np.float64) for k in keys if k in state]
    return FinalModel(
        weight=state["linear.weight"].numpy().reshape(-1).astype(np.float64),
        bias=float(state["linear.bias"].numpy().reshape(-1)[0]),
        scaler=Standardizer.from_arrays(scaler),
        threshold=float(state["threshold"]),
    )
