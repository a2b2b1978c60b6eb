"""The server's side of one federated experiment, independent of how it is launched.

:func:`run_federation` is called by the simulation entry point and by the deployed ServerApp
alike. It (1) computes the standardisation statistics from per-bank sums, (2) runs the
configured strategy for the configured rounds, evaluating the global model on the held-out
test rows after every round, (3) picks the validation threshold from summed per-bank score
histograms and (4) collects the banks' privacy reports when DP is on. With class weights (or
SMOTE) and no DP, the final model's intercept gets the prior correction, so its scores are
calibrated PDs; a summed reliability query checks the calibration on the banks' validation
rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import Grid

from fl_credit.bank_settings import BankSettings
from fl_credit.calibration import corrected, prior_correction
from fl_credit.config import ExperimentConfig, resolve_optimizer
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import Standardizer
from fl_credit.errors import FlCreditError
from fl_credit.federated_statistics import (
    calibration_check,
    federated_standardizer,
    validation_threshold,
    with_values,
)
from fl_credit.metrics import evaluate_scores, round_metrics
from fl_credit.model import model_from_arrays, new_model, predict_proba, to_arrays
from fl_credit.privacy_accounting import central_dp_accountant, collect_privacy
from fl_credit.rounds import run_rounds, training_failure
from fl_credit.strategy_factory import BankSum, build_strategy, secagg_threshold

log = logging.getLogger(__name__)


@dataclass
class FederationResult:
    """What the server learned: the final model and how it got there."""

    arrays: ArrayRecord
    scaler: Standardizer
    threshold: float
    history: list[dict] = field(default_factory=list)
    privacy: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    rounds_applied: list[int] = field(default_factory=list)
    rounds_skipped: list[int] = field(default_factory=list)
    converged_round: int | None = None
    failure: str | None = None
    intercept_correction: float = 0.0
    calibration: dict = field(default_factory=dict)


def federated_test_scores(fed: FederationResult, x_test: np.ndarray) -> np.ndarray:
    """Default probabilities of the final federated model on unscaled rows."""
    return predict_proba(model_from_arrays(fed.arrays), fed.scaler.transform(x_test))


def score_federated(
    fed: FederationResult, x_test: np.ndarray, y_test: np.ndarray, cfg: ExperimentConfig
) -> dict:
    """Test-set metrics of the final federated model (simulation and deployment alike), with
    how it was trained and its calibration check on the banks' validation rows."""
    from fl_credit.calibration import calibration_scores

    scores = federated_test_scores(fed, x_test)
    return {
        **evaluate_scores(
            y_test, scores, val_threshold=fed.threshold, resamples=cfg.bootstrap, seed=cfg.seed
        ),
        **calibration_scores(y_test, scores, cfg.calibration_bins),
        "training": {
            "optimizer": resolve_optimizer(cfg).train.optimizer,
            "rounds": len(fed.rounds_applied) + len(fed.rounds_skipped),
            "converged": fed.converged_round is not None,
            "converged_round": fed.converged_round,
            "tol": cfg.train.tol,
            "intercept_correction": fed.intercept_correction,
        },
        "calibration_validation": fed.calibration,
    }


def wait_for_banks(grid: Grid, count: int, timeout: float) -> list[int]:
    """Node ids of the banks once ``count`` of them are connected."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= count:
            return nodes
        if time.monotonic() > deadline:
            raise FlCreditError(f"only {len(nodes)} of {count} banks connected within {timeout}s")
        time.sleep(0.2)


def make_test_evaluator(
    x_test: np.ndarray, y_test: np.ndarray, history: list[dict], intercept_correction: float = 0.0
) -> Callable[[int, ArrayRecord], MetricRecord]:
    """``evaluate_fn`` for the strategy: score the global model on the test rows each round
    (as calibrated PDs, after ``intercept_correction``)."""

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = model_from_arrays(corrected(arrays, intercept_correction))
        scores = predict_proba(model, x_test)
        metrics = round_metrics(y_test, scores)
        history.append({"round": server_round, **{f"test_{k}": v for k, v in metrics.items()}})
        log.info(
            "round %d: test AUC %.4f  KS %.4f  log loss %.4f",
            server_round,
            metrics["auc"],
            metrics["ks"],
            metrics["log_loss"],
        )
        return MetricRecord(metrics)

    return evaluate


def run_federation(
    grid: Grid,
    cfg: ExperimentConfig,
    *,
    num_banks: int,
    x_test: np.ndarray,
    y_test: np.ndarray,
    bounds: FeatureBounds | None = None,
    bank_dir: str = "",
    secret_noise: bool = False,
) -> FederationResult:
    """Run one federated experiment over the banks connected to ``grid``.

    Parameters
    ----------
    grid : flwr.serverapp.Grid
        The Flower grid (simulation or deployment).
    cfg : ExperimentConfig
        The experiment's settings.
    num_banks : int
        How many banks must be connected before the run starts.
    x_test, y_test : numpy.ndarray
        Held-out test rows (encoded, unscaled) and labels.
    bounds : FeatureBounds, optional
        The public feature ranges (required under DP).
    bank_dir : str
        Simulation only: the folder holding each simulated bank's file.
    secret_noise : bool
        Banks draw DP noise from the OS instead of the seed (deployment).

    Returns
    -------
    FederationResult
        Final weights, the standardiser, the validation threshold and the per-round history.
    """
    started = time.perf_counter()
    cfg = resolve_optimizer(cfg)
    nodes = wait_for_banks(grid, num_banks, cfg.engine.timeout)
    threshold = secagg_threshold(cfg, num_banks)
    central = central_dp_accountant(cfg, num_banks, threshold)
    bank_settings = BankSettings.from_experiment(cfg, bank_dir=bank_dir, secret_noise=secret_noise)
    settings = with_values(bank_settings.to_config(), central.train_config() if central else {})
    strategy = build_strategy(
        cfg,
        num_banks=num_banks,
        noise_std_share=central.noise_std_share if central else 0.0,
        threshold=threshold,
    )
    banks = BankSum(strategy, timeout=cfg.engine.timeout)
    scaler, pos_weight, count = federated_standardizer(banks, grid, nodes, settings, cfg, bounds)
    if hasattr(strategy, "set_rows"):  # Newton: N and the row weight from the public sums
        strategy.set_rows(count, pos_weight if cfg.imbalance.method == "class_weight" else 1.0)
    correction = prior_correction(cfg.imbalance.method, pos_weight, private=cfg.dp.mode != "off")
    # Dominated by the engine starting its workers (Ray actors importing torch), not by work.
    setup_seconds = time.perf_counter() - started
    log.info("banks ready and standardiser agreed after %.2fs", setup_seconds)

    history: list[dict] = []
    initial = to_arrays(new_model(x_test.shape[1], cfg.seed))
    rounds = run_rounds(
        strategy,
        grid,
        initial,
        num_rounds=cfg.train.rounds,
        timeout=cfg.engine.timeout,
        train_config=settings,
        evaluate=make_test_evaluator(scaler.transform(x_test), y_test, history, correction),
    )
    for row in history:
        metrics = rounds.train_metrics.get(row["round"], {})
        row.update({k: float(v) for k, v in metrics.items() if k != "num-examples"})
        if central is not None:
            # One bank-level release per round that was aggregated; skipped rounds release nothing.
            releases = sum(1 for r in rounds.applied if r <= row["round"])
            row["dp_epsilon"] = central.epsilon_after(releases)

    final = corrected(rounds.arrays, correction)
    nodes = sorted(grid.get_node_ids())
    decision_threshold = validation_threshold(
        banks, grid, final, with_values(settings, {"bins": cfg.histogram_bins}), cfg
    )
    calibration = calibration_check(
        banks, grid, final, with_values(settings, {"bins": cfg.calibration_bins}), cfg
    )
    privacy = {}
    if cfg.dp.mode == "opacus":
        privacy = collect_privacy(grid, nodes, bank_settings, cfg.engine.timeout)
    elif central is not None:
        privacy = {"all_banks": central.report(len(rounds.applied))}
    failure = training_failure(rounds, cfg.train.max_skipped_share)
    if failure:
        log.error("run failed: %s", failure)
    return FederationResult(
        arrays=final,
        scaler=scaler,
        threshold=decision_threshold,
        history=history,
        privacy=privacy,
        seconds=time.perf_counter() - started,
        setup_seconds=setup_seconds,
        rounds_applied=rounds.applied,
        rounds_skipped=rounds.skipped,
        converged_round=rounds.converged_round,
        failure=failure,
        intercept_correction=correction,
        calibration=calibration,
    )
