"""What a finished federation leaves in the run folder, for simulation and deployment alike:
the rounds summary, the settings a sweep groups by, and the saved model."""

from __future__ import annotations

from pathlib import Path

import torch

from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.federation import FederationResult
from fl_credit.coordinator.woe import model_state
from fl_credit.credit.woe import WoeFeatures


def rounds_summary(fed: FederationResult) -> dict:
    """How the training rounds went: applied, skipped, convergence, and any failure."""
    return {
        "applied": len(fed.rounds_applied),
        "skipped": list(fed.rounds_skipped),
        "converged_round": fed.converged_round,
        "failure": fed.failure,
    }


def summary_config(cfg: ExperimentConfig, num_banks: int) -> dict:
    """The few settings a sweep summary groups by."""
    return {
        "dp": cfg.dp.mode,
        "dp_epsilon": cfg.dp.epsilon if cfg.dp.mode != "off" else None,
        "private": cfg.dp.private,
        "strategy": cfg.strategy.name,
        "attack": cfg.attack.name,
        "partition": cfg.partition.scheme,
        "num_banks": num_banks,
        "seed": cfg.seed,
        "imbalance": cfg.imbalance.method,
        "rounds": cfg.train.rounds,
        "optimizer": cfg.train.optimizer,
        "features": cfg.features.kind,
        "model": cfg.model.kind,
    }


def save_model(path: Path, fed: FederationResult) -> None:
    """Final federated weights plus the standardiser needed to score new rows (under
    ``features=woe`` the WoE table, ``woe_*``, and a unit standardiser).

    The weights are the calibrated model: the prior correction is already subtracted from the
    bias and kept as ``intercept_correction``; ``prior_correction`` (what is still to be
    subtracted, read by :mod:`fl_credit.credit.scorecard`) is therefore 0.
    """
    state = fed.arrays.to_torch_state_dict()
    if isinstance(fed.scaler, WoeFeatures):  # features=woe: the table maps new rows to inputs
        state.update({k: torch.as_tensor(v) for k, v in model_state(fed.scaler).items()})
    state["scaler_mean"] = torch.as_tensor(fed.scaler.mean)
    state["scaler_std"] = torch.as_tensor(fed.scaler.std)
    if fed.scaler.low is not None and fed.scaler.high is not None:
        # Under DP rows are clipped to the public ranges before scaling.
        state["scaler_low"] = torch.as_tensor(fed.scaler.low)
        state["scaler_high"] = torch.as_tensor(fed.scaler.high)
    state["threshold"] = torch.tensor(fed.threshold)
    state["intercept_correction"] = torch.tensor(fed.intercept_correction)
    state["prior_correction"] = torch.tensor(0.0)
    state["base_rate"] = torch.tensor(fed.base_rate)
    torch.save(state, path)
    from fl_credit.boosting.tree import TreeEnsemble, is_ensemble, save_json

    if is_ensemble(fed.arrays):  # model=gbm: the documented tree file beside model.pt
        ensemble = TreeEnsemble.from_arrays(fed.arrays)
        ensemble.feature_names = list(fed.boosting.get("feature_names", []))
        save_json(path.with_name("model.json"), ensemble)
