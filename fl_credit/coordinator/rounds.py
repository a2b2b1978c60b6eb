"""The training-round loop: a Flower strategy's configure/aggregate calls, round by round.

Flower's ``Strategy.start`` runs a fixed number of rounds and keeps no account of rounds in
which nothing was aggregated. This loop calls the same strategy methods
(``configure_train`` -> ``Grid.send_and_receive`` -> ``aggregate_train``) and also

- stops once the strategy reports convergence (a ``converged_round`` attribute that is no
  longer ``None``, e.g. the Newton strategy's tolerance test);
- counts the rounds that were attempted but produced no aggregate (too few survivors, a
  failed sanity check, every reply an error), so a run whose model never trained cannot be
  reported as a success;
- evaluates the global model after every round through one callback, which is either the
  server's held-out test rows (simulation) or federated evaluation (deployment).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

log = logging.getLogger(__name__)

Evaluate = Callable[[int, ArrayRecord], None]


@dataclass
class RoundsResult:
    """What the loop produced.

    Attributes
    ----------
    arrays : ArrayRecord
        The final global model (the initial one when no round was applied).
    train_metrics : dict[int, MetricRecord]
        Aggregated training metrics by round.
    applied : list[int]
        Rounds whose aggregate replaced the global model.
    skipped : list[int]
        Rounds that were attempted (or due) but aggregated nothing.
    converged_round : int or None
        The round in which the strategy reported convergence.
    """

    arrays: ArrayRecord
    train_metrics: dict[int, MetricRecord] = field(default_factory=dict)
    applied: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    converged_round: int | None = None

    @property
    def rounds_run(self) -> int:
        """Rounds the loop went through (stops early on convergence)."""
        return len(self.applied) + len(self.skipped)


def _converged(strategy: Strategy) -> int | None:
    return getattr(strategy, "converged_round", None)


def run_rounds(
    strategy: Strategy,
    grid: Grid,
    initial: ArrayRecord,
    *,
    num_rounds: int,
    timeout: float,
    train_config: ConfigRecord,
    evaluate: Evaluate | None = None,
    project: Callable[[ArrayRecord], ArrayRecord] | None = None,
) -> RoundsResult:
    """Run up to ``num_rounds`` training rounds of ``strategy`` over ``grid``.

    Parameters
    ----------
    strategy : flwr.serverapp.strategy.Strategy
        Any Message-API strategy (FedAvg, secure aggregation, robust rules, Newton).
    grid : flwr.serverapp.Grid
        The ServerApp's grid.
    initial : ArrayRecord
        The initial global model.
    num_rounds : int
        Most rounds to run.
    timeout : float
        Seconds to wait for the replies of one round.
    train_config : ConfigRecord
        Sent to every bank with each round (the strategy adds ``server-round``).
    evaluate : callable, optional
        ``evaluate(round, arrays)``, called for round 0 and after every round.
    project : callable, optional
        Maps every aggregate onto a constraint set before it becomes the global model
        (projected gradient steps, e.g. monotone effects).

    Returns
    -------
    RoundsResult
        The final model and the round bookkeeping.
    """
    result = RoundsResult(arrays=initial)
    if evaluate is not None:
        evaluate(0, initial)
    for server_round in range(1, num_rounds + 1):
        messages = list(strategy.configure_train(server_round, result.arrays, train_config, grid))
        if not messages:
            if _converged(strategy) is not None:
                break
            result.skipped.append(server_round)
            continue
        replies = grid.send_and_receive(messages, timeout=timeout)
        arrays, metrics = strategy.aggregate_train(server_round, replies)
        if metrics is not None:
            result.train_metrics[server_round] = metrics
        if arrays is None or not arrays:
            result.skipped.append(server_round)
            log.warning("round %d: nothing aggregated; global model unchanged", server_round)
        else:
            result.arrays = arrays if project is None else project(arrays)
            result.applied.append(server_round)
        if evaluate is not None:
            evaluate(server_round, result.arrays)
        if _converged(strategy) is not None:
            break
    result.converged_round = _converged(strategy)
    return result


def training_failure(result: RoundsResult, max_skipped_share: float) -> str | None:
    """Why a run must be reported as failed, or None when it trained.

    A run fails when no round updated the model, or when more than ``max_skipped_share`` of
    the rounds it went through aggregated nothing.
    """
    if not result.applied:
        return (
            f"the model never trained: all {result.rounds_run} rounds were skipped "
            "(see the secure-aggregation warnings above); the global model is the initial one"
        )
    share = len(result.skipped) / max(result.rounds_run, 1)
    if share > max_skipped_share:
        return (
            f"{len(result.skipped)} of {result.rounds_run} rounds aggregated nothing "
            f"(rounds {result.skipped}), more than train.max_skipped_share="
            f"{max_skipped_share:g}"
        )
    return None
