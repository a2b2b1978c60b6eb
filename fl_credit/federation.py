"""The server's side of one federated experiment, independent of how it is launched.

:func:`run_federation` is called by the simulation entry point and by the deployed ServerApp
alike. It (1) computes the standardisation statistics from per-bank sums, (2) runs the
configured strategy for the configured rounds, evaluating the global model on the held-out
test rows after every round, (3) picks the validation threshold from summed per-bank score
histograms and (4) collects the banks' privacy reports when DP is on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fl_credit.bank_settings import BankSettings
from fl_credit.client_app import POS_WEIGHT, SCALER_MEAN, SCALER_STD
from fl_credit.config import ExperimentConfig
from fl_credit.data.scaling import Standardizer, mean_from_sums, standardizer_from_sums
from fl_credit.errors import FlCreditError
from fl_credit.metrics import evaluate_scores, round_metrics
from fl_credit.model import model_from_arrays, new_model, predict_proba, to_arrays
from fl_credit.server_view import RecordingGrid
from fl_credit.strategy_factory import BankSum, build_strategy, last_line
from fl_credit.thresholds import threshold_from_histograms

log = logging.getLogger(__name__)

# Clip ranges of summed statistics under secure aggregation (ignored in the clear): sums of
# raw feature values stay below 1e13, variance shares below 1e11, histogram counts below 1e8.
SUM_ENCODING = {"value_range": 1e13}
VARIANCE_ENCODING = {"value_range": 1e11}
HISTOGRAM_ENCODING = {"value_range": 1e8}


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


def score_federated(
    fed: FederationResult, x_test: np.ndarray, y_test: np.ndarray, cfg: ExperimentConfig
) -> dict:
    """Test-set metrics of the final federated model (simulation and deployment alike)."""
    scores = predict_proba(model_from_arrays(fed.arrays), fed.scaler.transform(x_test))
    return evaluate_scores(
        y_test, scores, val_threshold=fed.threshold, resamples=cfg.bootstrap, seed=cfg.seed
    )


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


def federated_standardizer(
    banks: BankSum, grid: Grid, nodes: list[int], settings: ConfigRecord, timeout: float
) -> Standardizer:
    """Global feature means and deviations from two summed passes over the banks.

    Pass 1 also sums the defaults, giving the federation's class weight (repaid / defaulted
    rows over all banks): with ``imbalance=class_weight`` every bank weighs defaults alike, so
    the federated objective is the pooled one even when banks' default rates differ. Pass 2
    sums each bank's squared deviations divided by the total row count, so the summed values
    stay within fixed-point range under secure aggregation.
    """
    first = banks.sum(grid, nodes, "moments", _with(settings, {"pass": 1}), **SUM_ENCODING)
    defaults, sums = first[0], first[1:]
    count, mean = mean_from_sums(sums)
    pass_two = _with(settings, {"pass": 2, SCALER_MEAN: mean.tolist(), "count": count})
    variance = banks.sum(grid, nodes, "moments", pass_two, **VARIANCE_ENCODING)
    scaler = standardizer_from_sums(count, mean, variance * count)
    pos_weight = (count - defaults) / max(defaults, 1.0)
    share_standardizer(grid, nodes, scaler, pos_weight, settings, timeout)
    return scaler


def share_standardizer(
    grid: Grid,
    nodes: list[int],
    scaler: Standardizer,
    pos_weight: float,
    settings: ConfigRecord,
    timeout: float,
) -> None:
    """Send every bank the agreed standardiser and class weight; it keeps them in its
    ``context.state``."""
    agreed = {
        SCALER_MEAN: scaler.mean.tolist(),
        SCALER_STD: scaler.std.tolist(),
        POS_WEIGHT: pos_weight,
    }
    config = _with(settings, agreed)
    replies = list(
        grid.send_and_receive(query_messages(nodes, "standardizer", config), timeout=timeout)
    )
    failed = [r for r in replies if r.has_error()]
    if failed or len(replies) < len(nodes):
        reason = failed[0].error.reason if failed else "no reply before the timeout"
        raise FlCreditError(f"a bank did not take the standardiser: {last_line(reason)}")


def query_messages(nodes: list[int], action: str, config: ConfigRecord) -> list[Message]:
    """One ``query.<action>`` message per node carrying ``config``."""
    return [
        Message(RecordDict({"config": config}), message_type=f"query.{action}", dst_node_id=n)
        for n in nodes
    ]


def _with(base: ConfigRecord, extra: dict) -> ConfigRecord:
    merged = ConfigRecord(dict(base))
    for key, value in extra.items():
        merged[key] = value
    return merged


def make_test_evaluator(
    x_test: np.ndarray, y_test: np.ndarray, history: list[dict]
) -> Callable[[int, ArrayRecord], MetricRecord]:
    """``evaluate_fn`` for the strategy: score the global model on the test rows each round."""

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        scores = predict_proba(model_from_arrays(arrays), x_test)
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
    nodes = wait_for_banks(grid, num_banks, cfg.engine.timeout)
    central = central_dp_accountant(cfg, num_banks)
    bank_settings = BankSettings.from_experiment(cfg, bank_dir=bank_dir, secret_noise=secret_noise)
    settings = _with(bank_settings.to_config(), central.train_config() if central else {})
    strategy = build_strategy(
        cfg, num_banks=num_banks, noise_std_share=central.noise_std_share if central else 0.0
    )
    banks = BankSum(strategy, timeout=cfg.engine.timeout)
    if isinstance(grid, RecordingGrid):
        grid.observe(strategy, banks)  # audit.record_server_view: record the decoded sums too
    scaler = federated_standardizer(banks, grid, nodes, settings, cfg.engine.timeout)
    # Dominated by the engine starting its workers (Ray actors importing torch), not by work.
    setup_seconds = time.perf_counter() - started
    log.info("banks ready and standardiser agreed after %.2fs", setup_seconds)

    history: list[dict] = []
    initial = to_arrays(new_model(x_test.shape[1], cfg.seed))
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=cfg.train.rounds,
        timeout=cfg.engine.timeout,
        train_config=settings,
        evaluate_fn=make_test_evaluator(scaler.transform(x_test), y_test, history),
    )
    for row in history:
        metrics = result.train_metrics_clientapp.get(row["round"], {})
        row.update({k: float(v) for k, v in metrics.items() if k != "num-examples"})
        if central is not None:
            row["dp_epsilon"] = central.epsilon_after(row["round"]) if row["round"] else 0.0

    # Result.arrays stays an empty record when every round was skipped.
    final = result.arrays if result.arrays else initial
    nodes = sorted(grid.get_node_ids())
    threshold = validation_threshold(
        banks, grid, final, _with(settings, {"bins": cfg.histogram_bins})
    )
    privacy = {}
    if cfg.dp.mode == "opacus":
        privacy = collect_privacy(grid, nodes, cfg, settings)
    elif central is not None:
        privacy = {"all_banks": central.report(cfg.train.rounds)}
    return FederationResult(
        arrays=final,
        scaler=scaler,
        threshold=threshold,
        history=history,
        privacy=privacy,
        seconds=time.perf_counter() - started,
        setup_seconds=setup_seconds,
    )


def validation_threshold(
    banks: BankSum, grid: Grid, arrays: ArrayRecord, config: ConfigRecord
) -> float:
    """The KS-maximising cut-off from the banks' summed validation-score histograms.

    Falls back to 0.5, with a warning, when too few banks are left to form a sum.
    """
    nodes = sorted(grid.get_node_ids())
    try:
        hist = banks.sum(
            grid,
            nodes,
            "histogram",
            config,
            arrays=arrays,
            require_all=False,
            **HISTOGRAM_ENCODING,
        )
    except FlCreditError as err:
        log.warning("no validation threshold (%s); using 0.5", err)
        return 0.5
    return threshold_from_histograms(hist)


def central_dp_accountant(cfg: ExperimentConfig, num_banks: int):
    """Bank-level DP accountant for ``dp=central`` (None otherwise).

    The noise is split so that every sum the server can release holds the full noise: the
    fewest banks any released sum can contain is the secure-aggregation threshold (or all
    banks when summing in the clear).
    """
    if cfg.dp.mode != "central":
        return None
    from strategies.dp.central import CentralDPAccountant, min_contributors
    from strategies.secagg import default_threshold

    threshold = None
    if cfg.strategy.name == "secagg":
        threshold = cfg.strategy.threshold or default_threshold(num_banks)
    return CentralDPAccountant.from_target(
        target_epsilon=float(cfg.dp.epsilon),
        total_rounds=cfg.train.rounds,
        min_contributors=min_contributors(num_banks, secagg_threshold=threshold),
        clip_norm=cfg.dp.clip_norm,
        delta=float(cfg.dp.delta or 0.0),
    )


def collect_privacy(
    grid: Grid, nodes: list[int], cfg: ExperimentConfig, settings: ConfigRecord
) -> dict[str, dict]:
    """Each bank's privacy report (its accountant's totals), keyed by bank name."""
    messages = [
        Message(
            content=RecordDict({"config": settings}),
            message_type="query.privacy",
            dst_node_id=node,
        )
        for node in nodes
    ]
    reports = {}
    for reply in grid.send_and_receive(messages, timeout=cfg.engine.timeout):
        if reply.has_error():
            log.warning(
                "bank %s sent no privacy report: %s", reply.metadata.src_node_id, reply.error.reason
            )
            continue
        report = dict(reply.content["privacy"])
        reports[str(report.pop("bank", reply.metadata.src_node_id))] = report
    return dict(sorted(reports.items()))
