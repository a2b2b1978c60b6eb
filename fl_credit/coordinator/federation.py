"""The server's side of one federated experiment, independent of how it is launched.

:func:`run_federation` is called by the simulation entry point and by the deployed ServerApp
alike. It (1) computes the standardisation statistics from per-bank sums, (2) runs the
configured strategy for the configured rounds, evaluating the global model on the held-out
test rows after every round, (3) picks the validation threshold from summed per-bank score
histograms and (4) collects the banks' privacy reports when DP is on. With class weights (or
SMOTE) and no DP, the model's intercept gets the prior correction, so its scores are
calibrated PDs (every evaluation scores the corrected model); a summed reliability query
checks the calibration on the banks' validation rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord
from flwr.serverapp import Grid

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum
from fl_credit.coordinator.defence_inputs import provide_defence_inputs
from fl_credit.coordinator.evaluation import (
    evaluation_releases,
    federated_evaluation,
    wants_round_evaluation,
)
from fl_credit.coordinator.privacy_accounting import central_dp_accountant, collect_privacy
from fl_credit.coordinator.rounds import run_rounds, training_failure
from fl_credit.coordinator.statistics import (
    calibration_check,
    federated_standardizer,
    validation_threshold,
    with_values,
)
from fl_credit.coordinator.strategy_factory import build_strategy, secagg_threshold
from fl_credit.coordinator.view import RecordingGrid
from fl_credit.coordinator.woe import federated_woe
from fl_credit.credit.calibration import corrected, prior_correction
from fl_credit.credit.metrics import evaluate_scores, round_metrics
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import Standardizer
from fl_credit.model.logistic import model_from_arrays, new_model, predict_proba, to_arrays
from fl_credit.protocol.identity import CONSORTIUM_FILE
from fl_credit.protocol.settings import BankSettings

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
    evaluation: dict | None = None
    intercept_correction: float = 0.0
    calibration: dict = field(default_factory=dict)
    threshold_report: dict | None = None
    """Under DP: the cut-off's estimated validation recall and noise (``dp_cutoff``)."""
    boosting: dict = field(default_factory=dict)
    """``model=gbm``: trees grown and kept, exchanges, seconds per tree, smallest leaves."""
    validation: dict = field(default_factory=dict)
    base_rate: float = float("nan")  # defaults / rows over all banks (noised under opacus)


def federated_test_scores(fed: FederationResult, x_test: np.ndarray) -> np.ndarray:
    """Default probabilities of the final federated model on unscaled rows."""
    return predict_proba(model_from_arrays(fed.arrays), fed.scaler.transform(x_test))


def score_federated(
    fed: FederationResult, x_test: np.ndarray, y_test: np.ndarray, cfg: ExperimentConfig
) -> dict:
    """Test-set metrics of the final federated model (simulation and deployment alike), with
    how it was trained and its calibration check on the banks' validation rows."""
    from fl_credit.credit.calibration import calibration_scores

    scores = federated_test_scores(fed, x_test)
    return {
        **evaluate_scores(
            y_test, scores, val_threshold=fed.threshold, resamples=cfg.bootstrap, seed=cfg.seed
        ),
        **calibration_scores(y_test, scores, cfg.calibration_bins),
        "training": {
            "optimizer": cfg.train.optimizer,
            "rounds": len(fed.rounds_applied) + len(fed.rounds_skipped),
            "converged": fed.converged_round is not None,
            "converged_round": fed.converged_round,
            "tol": cfg.train.tol,
            "intercept_correction": fed.intercept_correction,
        },
        "calibration_validation": fed.calibration,
        **({"threshold_validation": fed.threshold_report} if fed.threshold_report else {}),
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


def make_round_evaluator(
    test: tuple[np.ndarray, np.ndarray] | None,
    federated: Callable[[int, ArrayRecord], dict | None] | None,
    history: list[dict],
) -> Callable[[int, ArrayRecord], None]:
    """Evaluate the global model after every round and append one history row.

    ``test``: the coordinator's held-out rows, already scaled (simulation); ``federated``:
    federated evaluation of a model, or None when this round is not evaluated that way.
    """

    def evaluate(server_round: int, arrays: ArrayRecord) -> None:
        row: dict = {"round": server_round}
        if test is not None:
            scores = predict_proba(model_from_arrays(arrays), test[0])
            row.update({f"test_{k}": v for k, v in round_metrics(test[1], scores).items()})
        fed = federated(server_round, arrays) if federated is not None and server_round else None
        if fed is not None:
            row.update({f"fedeval_{k}": v for k, v in fed.items() if k not in ("rows",)})
        history.append(row)
        auc = row.get("test_auc", row.get("fedeval_auc"))
        if auc is not None:
            where = "test" if "test_auc" in row else "federated test"
            ks = row.get("test_ks", row.get("fedeval_ks"))
            loss = row.get("test_log_loss", row.get("fedeval_log_loss"))
            log.info(
                "round %d: %s AUC %.4f  KS %.4f  log loss %.4f", server_round, where, auc, ks, loss
            )

    return evaluate


def run_federation(
    grid: Grid,
    cfg: ExperimentConfig,
    *,
    num_banks: int,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    bounds: FeatureBounds | None = None,
    bank_dir: str = "",
    secret_noise: bool = True,
    consortium: str = "",
    feature_names: list[str] | None = None,
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
    x_test, y_test : numpy.ndarray or None
        The coordinator's held-out test rows (encoded, unscaled) and labels (simulation); None
        when it holds none (deployment: federated evaluation only).
    bounds : FeatureBounds, optional
        The public feature ranges (required under DP).
    bank_dir : str
        Simulation only: the folder holding each simulated bank's file.
    secret_noise : bool
        Asks the banks for secret DP noise (default); each bank decides itself (its floors).
    consortium : str
        The banks' identity roster for secure aggregation (default: ``consortium.json`` in
        ``bank_dir``).
    feature_names : list of str, optional
        The public feature names (the data dictionary); the validation counts and
        ``train.monotone`` need them; ``model=gbm`` sets its monotone constraints by name.

    Returns
    -------
    FederationResult
        Final weights, the standardiser, the validation threshold and the per-round history.
    """
    started = time.perf_counter()
    nodes = wait_for_banks(grid, num_banks, cfg.engine.timeout)
    threshold = secagg_threshold(cfg, num_banks)
    central = central_dp_accountant(cfg, num_banks, threshold)
    bank_settings = BankSettings.from_experiment(
        cfg,
        bank_dir=bank_dir,
        secret_noise=secret_noise,
        evaluation_releases=evaluation_releases(cfg),
    )
    settings = with_values(bank_settings.to_config(), central.train_config() if central else {})
    strategy = build_strategy(
        cfg,
        num_banks=num_banks,
        noise_std_share=central.noise_std_share if central else 0.0,
        threshold=threshold,
        consortium=consortium or (str(Path(bank_dir) / CONSORTIUM_FILE) if bank_dir else ""),
    )
    banks = BankSum(strategy, timeout=cfg.engine.timeout)
    if isinstance(grid, RecordingGrid):
        grid.observe(strategy, banks)  # audit.record_server_view: record the decoded sums too
    scaler, pos_weight, count = federated_standardizer(banks, grid, nodes, settings, cfg, bounds)
    if cfg.features.kind == "woe":  # from here on, "scaler" maps raw rows to WoE features
        scaler = federated_woe(banks, grid, nodes, settings, cfg, scaler, bounds)
    if hasattr(strategy, "set_rows"):  # Newton: N and the row weight from the public sums
        strategy.set_rows(count, pos_weight if cfg.imbalance.method == "class_weight" else 1.0)
    provide_defence_inputs(
        strategy, cfg, scaler=scaler, pos_weight=pos_weight, bank_settings=bank_settings,
        bank_dir=bank_dir, num_banks=num_banks,
    )
    project = monotone_constraints(strategy, cfg, feature_names, scaler)
    correction = prior_correction(cfg.imbalance.method, pos_weight, private=cfg.dp.mode != "off")
    # Dominated by the engine starting its workers (Ray actors importing torch), not by work.
    setup_seconds = time.perf_counter() - started
    log.info("banks ready and standardiser agreed after %.2fs", setup_seconds)

    history: list[dict] = []
    initial = to_arrays(new_model(len(scaler.mean), cfg.seed))
    last_federated: dict = {}

    def federated(server_round: int, arrays: ArrayRecord) -> dict | None:
        if not wants_round_evaluation(cfg, server_round):
            return None
        last_federated["round"] = server_round
        last_federated["metrics"] = federated_evaluation(banks, grid, arrays, settings, cfg)
        return last_federated["metrics"]

    boosting: dict = {}
    if cfg.model.kind == "gbm":  # trees split unscaled rows on the agreed grid
        from fl_credit.boosting.inputs import RawInputs

        scaler = RawInputs.of(scaler)
    test = None if x_test is None else (scaler.transform(x_test), y_test)
    evaluate = make_round_evaluator(test, federated if cfg.eval.federated else None, history)
    if cfg.model.kind == "gbm":
        from fl_credit.boosting.federated import boosting_rounds

        rounds, boosting = boosting_rounds(
            banks,
            grid,
            nodes,
            settings,
            cfg,
            scaler,
            bounds,
            pos_weight,
            feature_names,
            evaluate=lambda trees, arrays: evaluate(trees, corrected(arrays, correction)),
        )
    else:
        rounds = run_rounds(
            strategy,
            grid,
            initial,
            num_rounds=cfg.train.rounds,
            timeout=cfg.engine.timeout,
            train_config=settings,
            evaluate=lambda r, arrays: evaluate(r, corrected(arrays, correction)),
            project=project,
        )
    for row in history:
        metrics = rounds.train_metrics.get(row["round"], {})
        row.update({k: float(v) for k, v in metrics.items() if k != "num-examples"})
        if central is not None:
            # One bank-level release per round that was aggregated; skipped rounds release nothing.
            releases = sum(1 for r in rounds.applied if r <= row["round"])
            row["dp_epsilon"] = central.epsilon_after(releases)

    final = corrected(rounds.arrays, correction)
    decision_threshold, threshold_report = validation_threshold(
        banks, grid, final, with_values(settings, {"bins": cfg.histogram_bins}), cfg
    )
    evaluation = None
    if cfg.eval.federated and cfg.dp.mode != "central":
        evaluated_last = last_federated.get("round") == history[-1]["round"]
        evaluation = last_federated.get("metrics") if evaluated_last else None
        if evaluation is None:  # under DP on the score span the validation release found
            span = (threshold_report or {}).get("span_logit")
            evaluation = federated_evaluation(banks, grid, final, settings, cfg, span)
    elif cfg.eval.federated:
        log.info("no federated evaluation under bank-level DP (a whole test set per bank)")
    nodes = sorted(grid.get_node_ids())
    calibration = calibration_check(
        banks, grid, final, with_values(settings, {"bins": cfg.calibration_bins}), cfg
    )
    validation = run_validation(
        banks, grid, final, settings, cfg, scaler, decision_threshold, feature_names,
        bank_settings, threshold,
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
        threshold_report=threshold_report,
        history=history,
        privacy=privacy,
        seconds=time.perf_counter() - started,
        setup_seconds=setup_seconds,
        rounds_applied=rounds.applied,
        rounds_skipped=rounds.skipped,
        converged_round=rounds.converged_round,
        failure=failure,
        evaluation=evaluation,
        intercept_correction=correction,
        calibration=calibration,
        base_rate=1.0 / (1.0 + pos_weight) if cfg.dp.mode != "central" else float("nan"),
        boosting=boosting,
        validation=validation,
    )


def monotone_constraints(strategy, cfg: ExperimentConfig, feature_names, scaler):
    """Impose ``train.monotone``: Newton steps within the constraints, or the projection
    of every first-order aggregate (returned; None when Newton or no constraint)."""
    from fl_credit.validation.monotone import chains_for, increments, project_arrays

    chains = chains_for(cfg.train.monotone, feature_names)
    if not chains:
        return None
    std = np.asarray(scaler.std, dtype=np.float64)
    if hasattr(strategy, "set_constraints"):
        strategy.set_constraints(*increments(chains, std, len(std) + 1))
        return None
    return lambda arrays: project_arrays(arrays, chains, std)


def run_validation(
    banks: BankSum,
    grid: Grid,
    final: ArrayRecord,
    settings,
    cfg: ExperimentConfig,
    scaler,
    decision_threshold: float,
    feature_names: list[str] | None,
    bank_settings: BankSettings,
    threshold: int | None,
) -> dict:
    """The summed validation counts of the final model ({} when not asked for or possible)."""
    if not cfg.validation.enabled:
        return {}
    if cfg.dp.mode == "central" or feature_names is None:
        why = "bank-level DP" if cfg.dp.mode == "central" else "no feature names"
        log.info("no validation counts (%s)", why)
        return {}
    from fl_credit.validation.query import federated_validation

    return federated_validation(
        banks,
        grid,
        final,
        settings,
        cfg,
        scaler=scaler,
        threshold=decision_threshold,
        feature_names=feature_names,
        bank_settings=bank_settings,
        secagg_threshold=threshold,
    )
