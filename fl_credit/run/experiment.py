"""One experiment: federated model, pooled model, sklearn reference and each bank alone."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from fl_credit.bank.client_app import make_client_app
from fl_credit.bank.floors import BankFloors
from fl_credit.config.parsing import resolve_optimizer
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator import view as server_view
from fl_credit.coordinator.federation import (
    FederationResult,
    federated_test_scores,
    run_federation,
    score_federated,
)
from fl_credit.coordinator.privacy_accounting import privacy_summary
from fl_credit.coordinator.protection import check_bank_count
from fl_credit.coordinator.protection import describe as describe_protection
from fl_credit.coordinator.strategy_factory import secagg_threshold
from fl_credit.coordinator.summary import rounds_summary, summary_config
from fl_credit.coordinator.woe import on_woe_features
from fl_credit.credit.calibration import calibration_scores
from fl_credit.credit.metrics import evaluate_scores
from fl_credit.credit.outputs import federated_credit_outputs
from fl_credit.credit.woe import WoeFeatures
from fl_credit.data.prepare import Prepared, prepare, write_bank_files
from fl_credit.model.logistic import model_from_arrays
from fl_credit.protocol.identity import identity_provider, write_identities
from fl_credit.protocol.public_weights import registered_weights
from fl_credit.run import baselines
from fl_credit.runtime.engine import EngineRun, simulate
from fl_credit.threats.attacks import attack_metrics, attack_mods

log = logging.getLogger(__name__)


@dataclass
class ExperimentOutcome:
    """Everything a run reports: ``metrics`` is what goes into ``metrics.json``."""

    metrics: dict
    history: list[dict]
    federation: FederationResult
    engine: EngineRun
    scores: dict = field(default_factory=dict)
    """Test-set scores by model (``local`` maps bank to scores or None), for ``scores.csv``."""


def simulation_mods(cfg: ExperimentConfig, num_banks: int) -> list:
    """Extra client mods for simulated faults and malicious banks (none unless configured)."""
    mods = attack_mods(cfg, num_banks)
    if not cfg.drop_after_keys:
        return mods
    from strategies.secagg import dropout_mod

    return [dropout_mod(set(cfg.drop_after_keys)), *mods]


def federate(
    cfg: ExperimentConfig, prepared: Prepared, run_dir: Path | None = None
) -> tuple[FederationResult, EngineRun]:
    """Train the federated model with each bank in its own simulated SuperNode.

    With ``audit.record_server_view`` and a ``run_dir``, what the server sees is recorded
    under ``<run_dir>/server_view`` (and the banks' files kept under ``<run_dir>/banks``).
    Like :func:`run_experiment` it is an entry point for a configuration built in Python, so
    it resolves ``train.optimizer=auto`` (the code below it takes a resolved configuration).
    """
    cfg = resolve_optimizer(cfg)
    return _federate(cfg, prepared, run_dir, secagg_threshold(cfg, len(prepared.banks)))


def _federate(
    cfg: ExperimentConfig, prepared: Prepared, run_dir: Path | None, threshold: int | None
) -> tuple[FederationResult, EngineRun]:
    """:func:`federate` for a resolved ``cfg`` and its secure-aggregation ``threshold``."""
    record = run_dir is not None and cfg.audit.record_server_view
    if record:
        server_view.save_ground_truth(prepared, run_dir)
    with tempfile.TemporaryDirectory(prefix="fl_credit_banks_") as bank_dir:
        write_bank_files(prepared, Path(bank_dir), suffix=".npz")
        rows = {name: info["rows"] for name, info in prepared.bank_info.items()}
        # secagg identities, this run; under DP the roster holds public weights, not row counts
        write_identities(Path(bank_dir), rows, weights=registered_weights(cfg.dp.mode, rows))
        if cfg.model.kind == "gbm":  # the simulated banks' own floors (never in a message)
            from fl_credit.boosting.bank import write_limits

            write_limits(Path(bank_dir), cfg.model.bank_min_hessian, cfg.model.bank_min_rows)

        def server_main(grid):
            if record:
                grid = server_view.recording_grid(grid, run_dir)
            return run_federation(
                grid,
                cfg,
                num_banks=len(prepared.banks),
                x_test=prepared.x_test,
                y_test=prepared.y_test,
                bounds=prepared.bounds,
                bank_dir=bank_dir,
                feature_names=list(prepared.feature_names),
            )

        run = simulate(
            server_main,
            make_client_app(
                simulation_mods(cfg, len(prepared.banks)),
                identity_provider(bank_dir),
                BankFloors.from_experiment(cfg, threshold, len(prepared.banks)),
            ),
            len(prepared.banks),
            cfg.engine,
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
    cfg = resolve_optimizer(cfg)
    prepared = prepared if prepared is not None else prepare(cfg)
    log.info(
        "data: %s; %d test rows; banks: %s",
        prepared.source,
        len(prepared.y_test),
        {k: v["rows"] for k, v in prepared.bank_info.items()},
    )
    check_bank_count(cfg, len(prepared.banks))
    from fl_credit.validation.monotone import chains_for

    chains_for(cfg.train.monotone, prepared.feature_names)  # a bad name fails before the engine
    threshold = secagg_threshold(cfg, len(prepared.banks))
    protection = describe_protection(cfg, len(prepared.banks), threshold)
    log.info("%s", protection)
    fed, engine = _federate(cfg, prepared, run_dir, threshold)
    compared = prepared  # the baselines' rows: WoE features of the federation's table under WoE
    if isinstance(fed.scaler, WoeFeatures):
        table = fed.scaler.table.renamed(prepared.feature_names)
        fed.scaler = replace(fed.scaler, table=table)
        compared = on_woe_features(prepared, fed.scaler)

    def score(scored: baselines.Scored) -> dict:
        y, p = prepared.y_test, scored.test_scores
        return {
            **evaluate_scores(
                y, p, val_threshold=scored.threshold, resamples=cfg.bootstrap, seed=cfg.seed
            ),
            **calibration_scores(y, p, cfg.calibration_bins),
            "training": {"rounds": scored.rounds, "converged": scored.converged},
        }

    gbm = None
    if cfg.model.kind == "gbm":  # boosting rows on the federation's bins, LR rows beside them
        from fl_credit.boosting.comparison import gbm_baselines

        kept = len(model_from_arrays(fed.arrays).trees)
        gbm = gbm_baselines(prepared, cfg, fed.scaler, kept)
        central, ref, local = gbm.centralized, gbm.reference, gbm.local
    else:
        fitted = baselines.lr_baselines(compared, cfg)
        central, ref, local = fitted.centralized, fitted.reference, fitted.local
    metrics = {
        "federated": score_federated(fed, prepared.x_test, prepared.y_test, cfg),
        "federated_evaluation": fed.evaluation,
        "centralized": score(central),
        "reference": score(ref),
        "local": {name: None if s is None else score(s) for name, s in local.items()},
        "banks": prepared.bank_info,
        "credit": credit_outputs(prepared, fed, cfg),
        "privacy": fed.privacy,
        "privacy_summary": privacy_summary(cfg, fed.privacy),
        # Counterfactual references: the same borrowers trained on again (see the summary).
        "privacy_local": {n: s.privacy for n, s in local.items() if s and s.privacy},
        "dropped_columns": prepared.dropped,
        "config": summary_config(cfg, len(prepared.banks)),
        "protection": protection,
        "rounds": rounds_summary(fed),
        "timing": {
            "simulation_s": engine.wall_seconds,
            "server_app_s": engine.server_seconds,
            "engine_start_stop_s": engine.engine_seconds + fed.setup_seconds,
        },
    }
    metrics["attack"] = attack_metrics(cfg, prepared, fed, metrics)
    if gbm is not None:
        from fl_credit.boosting.comparison import boosting_metrics

        metrics.update(boosting_metrics(fed, gbm, score))
    scores = {
        "federated": federated_test_scores(fed, prepared.x_test),
        "centralized": central.test_scores,
        "reference": ref.test_scores,
        "local": {name: None if s is None else s.test_scores for name, s in local.items()},
    }
    if gbm is not None:
        scores["lr"] = {name: s.test_scores for name, s in gbm.lr.items()}
    return ExperimentOutcome(
        metrics=metrics, history=fed.history, federation=fed, engine=engine, scores=scores
    )


def credit_outputs(prepared: Prepared, fed: FederationResult, cfg: ExperimentConfig) -> dict:
    """``metrics.json``'s ``credit`` section for the run's model kind."""
    if cfg.model.kind == "gbm":
        from fl_credit.boosting.explain import gbm_credit_outputs

        return gbm_credit_outputs(prepared, fed.arrays, fed.scaler, fed.threshold)
    return federated_credit_outputs(prepared, fed.arrays, fed.scaler, fed.threshold)
