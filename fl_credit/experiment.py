"""One experiment: federated model, pooled model, sklearn reference and each bank alone."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fl_credit import baselines, server_view
from fl_credit.client_app import make_client_app
from fl_credit.config import ExperimentConfig
from fl_credit.data.prepare import Prepared, prepare, write_bank_files
from fl_credit.engine import EngineRun, simulate
from fl_credit.federation import FederationResult, run_federation, score_federated
from fl_credit.metrics import evaluate_scores

log = logging.getLogger(__name__)


@dataclass
class ExperimentOutcome:
    """Everything a run reports: ``metrics`` is what goes into ``metrics.json``."""

    metrics: dict
    history: list[dict]
    federation: FederationResult
    engine: EngineRun


def simulation_mods(cfg: ExperimentConfig) -> list:
    """Extra client mods for simulated faults (none unless configured)."""
    if not cfg.drop_after_keys:
        return []
    from strategies.secagg import dropout_mod

    return [dropout_mod(set(cfg.drop_after_keys))]


def federate(
    cfg: ExperimentConfig, prepared: Prepared, run_dir: Path | None = None
) -> tuple[FederationResult, EngineRun]:
    """Train the federated model with each bank in its own simulated SuperNode.

    With ``audit.record_server_view`` and a ``run_dir``, what the server sees is recorded
    under ``<run_dir>/server_view`` (and the banks' files kept under ``<run_dir>/banks``).
    """
    record = run_dir is not None and cfg.audit.record_server_view
    if record:
        server_view.save_ground_truth(prepared, run_dir)
    with tempfile.TemporaryDirectory(prefix="fl_credit_banks_") as bank_dir:
        write_bank_files(prepared, Path(bank_dir), suffix=".npz")

        def server_main(grid):
            if record:
                grid = server_view.recording_grid(grid, run_dir)
            return run_federation(
                grid,
                cfg,
                num_banks=len(prepared.banks),
                x_test=prepared.x_test,
                y_test=prepared.y_test,
                bank_dir=bank_dir,
            )

        run = simulate(
            server_main, make_client_app(simulation_mods(cfg)), len(prepared.banks), cfg.engine
        )
    return run.result, run


def run_experiment(
    cfg: ExperimentConfig, prepared: Prepared | None = None, run_dir: Path | None = None
) -> ExperimentOutcome:
    """Run the federated model and every baseline on the same split and score them all.

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment.
    prepared : Prepared, optional
        Already-split data (tests pass it to avoid reloading).
    run_dir : Path, optional
        The run folder (needed by ``audit.record_server_view``).

    Returns
    -------
    ExperimentOutcome
        ``metrics`` has top-level keys ``federated``, ``centralized``, ``reference``,
        ``local`` (bank name to metrics or None), ``banks``, ``privacy`` and ``config``.
    """
    torch.manual_seed(cfg.seed)
    prepared = prepared if prepared is not None else prepare(cfg)
    log.info(
        "data: %s; %d test rows; banks: %s",
        prepared.source,
        len(prepared.y_test),
        {k: v["rows"] for k, v in prepared.bank_info.items()},
    )
    fed, engine = federate(cfg, prepared, run_dir)

    def score(scores: np.ndarray, threshold: float) -> dict:
        return evaluate_scores(
            prepared.y_test, scores, val_threshold=threshold, resamples=cfg.bootstrap, seed=cfg.seed
        )

    central = baselines.centralized(prepared, cfg)
    ref = baselines.reference(prepared, cfg)
    local = baselines.local_only(prepared, cfg)
    metrics = {
        "federated": score_federated(fed, prepared.x_test, prepared.y_test, cfg),
        "centralized": score(central.test_scores, central.threshold),
        "reference": score(ref.test_scores, ref.threshold),
        "local": {
            name: None if s is None else score(s.test_scores, s.threshold)
            for name, s in local.items()
        },
        "banks": prepared.bank_info,
        "privacy": fed.privacy,
        "privacy_local": {n: s.privacy for n, s in local.items() if s and s.privacy},
        "dropped_columns": prepared.dropped,
        "config": summary_config(cfg, len(prepared.banks)),
        "timing": {
            "simulation_s": engine.wall_seconds,
            "server_app_s": engine.server_seconds,
            "engine_start_stop_s": engine.engine_seconds + fed.setup_seconds,
        },
    }
    return ExperimentOutcome(metrics=metrics, history=fed.history, federation=fed, engine=engine)


def summary_config(cfg: ExperimentConfig, num_banks: int) -> dict:
    """The few settings a sweep summary groups by."""
    return {
        "dp": cfg.dp.mode,
        "dp_epsilon": cfg.dp.epsilon if cfg.dp.mode != "off" else None,
        "strategy": cfg.strategy.name,
        "partition": cfg.partition.scheme,
        "num_banks": num_banks,
        "seed": cfg.seed,
        "imbalance": cfg.imbalance.method,
        "rounds": cfg.train.rounds,
    }


def save_model(path: Path, fed: FederationResult) -> None:
    """Final federated weights plus the standardiser needed to score new rows."""
    state = fed.arrays.to_torch_state_dict()
    state["scaler_mean"] = torch.as_tensor(fed.scaler.mean)
    state["scaler_std"] = torch.as_tensor(fed.scaler.std)
    state["threshold"] = torch.tensor(fed.threshold)
    torch.save(state, path)
