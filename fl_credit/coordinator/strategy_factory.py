"""Build the configured Flower strategy (the summing of queries is :mod:`.bank_sum`).

Every ``strategy=`` is an entry of the registry of :mod:`strategies.robust`: this module
only turns the configuration into the entry's settings. ``strategy=secagg`` (the default)
makes every sum the server needs, the standardisation statistics and the validation
histograms as well as the model updates, go through the same secure aggregation: the server
learns sums only. ``fedavg`` / ``fedprox`` sum in the clear; the robust rules combine
plaintext updates, or (``grouped_secagg``) group means summed securely.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flwr.serverapp.strategy import FedAvg

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.config.validation import check_bank_count, check_banks

log = logging.getLogger(__name__)

# Update clip needed so bank-level DP noise shares are not cut off (about max|w| + C + 6 sd).
CENTRAL_DP_HEADROOM = 6.0


def update_clip(cfg: ExperimentConfig, noise_std_share: float) -> float:
    """Per-coordinate clip of a bank's update under secure aggregation."""
    clip = cfg.strategy.clipping_range
    if cfg.dp.mode == "central":
        clip = max(clip, cfg.dp.clip_norm + CENTRAL_DP_HEADROOM * noise_std_share + 4.0)
    return clip


def secagg_threshold(cfg: ExperimentConfig, num_banks: int) -> int | None:
    """The secure-aggregation threshold planned for the run (None without secure aggregation).

    The configured one, raised to a strict majority of the banks (honest banks refuse less)
    and to ``floor((n + c) / 2) + 1`` for ``c = dp.colluders`` banks colluding with the
    coordinator (below that, telling honest banks different stories about who dropped
    recovers a bank's input). The aggregator never re-keys below it: after dropouts it skips
    rounds instead, so bank-level DP noise shares sized for this threshold always add up.
    """
    if cfg.strategy.name != "secagg":
        return None
    from strategies.secagg import default_threshold

    colluder_bound = (num_banks + cfg.dp.colluders) // 2 + 1  # safe against c colluding banks
    threshold = max(cfg.strategy.threshold or 0, default_threshold(num_banks), colluder_bound)
    if threshold > num_banks:
        raise ConfigError(
            f"secure aggregation over {num_banks} banks cannot be safe against "
            f"dp.colluders={cfg.dp.colluders} colluding banks (it needs a threshold above "
            f"(banks + colluders) / 2, here {threshold} > {num_banks})"
        )
    return threshold


def build_strategy(
    cfg: ExperimentConfig,
    *,
    num_banks: int,
    noise_std_share: float = 0.0,
    threshold: int | None = None,
    consortium: str = "",
) -> FedAvg:
    """The configured Message-API strategy, sampling every connected bank each round.

    Federated evaluation is off: banks report validation loss inside their train replies and
    the server scores the global model on the held-out test rows. ``run_federation`` waits
    for all banks before round 1; afterwards a round trains whichever banks are still
    connected, so a bank that drops out does not stall the run. Flower's warning that its
    own evaluate round is skipped is dropped (the run evaluates with its federated queries).
    ``consortium``: path of the
    banks' identity roster (secure aggregation: verified bank names, public weights).
    """
    with _without_evaluation_warning():
        return _build(cfg, num_banks, noise_std_share, threshold, consortium)


class _EvaluationWarningFilter(logging.Filter):
    """Drops Flower's "Federated evaluation will be skipped" warning: the run evaluates with
    its own federated queries, not through the strategy's evaluate round it warns about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Federated evaluation will be skipped" not in record.getMessage()


@contextmanager
def _without_evaluation_warning() -> Iterator[None]:
    flower = logging.getLogger("flwr")
    quiet = _EvaluationWarningFilter()
    flower.addFilter(quiet)
    try:
        yield
    finally:
        flower.removeFilter(quiet)


def _build(
    cfg: ExperimentConfig,
    num_banks: int,
    noise_std_share: float,
    threshold: int | None,
    consortium: str,
) -> FedAvg:
    common = dict(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_available_nodes=1,
    )
    if cfg.train.optimizer == "newton":
        return newton_strategy(
            cfg, num_banks=num_banks, threshold=threshold, consortium=consortium, **common
        )
    from strategies.robust.registry import RobustSettings, build_defence, strategy
    from strategies.tolerance import with_tolerance_stop

    s = cfg.strategy
    try:
        entry = strategy(s.name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    check_banks(cfg, num_banks)
    settings = RobustSettings(
        num_banks,
        s.beta,
        s.num_malicious,
        s.num_selected,
        s.max_norm,
        seed=cfg.seed,
        proximal_mu=s.proximal_mu,
        threshold=threshold or s.threshold,
        colluders=cfg.dp.colluders,
        group_size=s.group_size,
        robust=s.robust,
    )
    common["tol"] = cfg.train.tol
    if not entry.plaintext:  # secure sums: the secure-aggregation settings
        from fl_credit.protocol.identity import read_consortium

        common.update(
            clipping_range=update_clip(cfg, noise_std_share),
            quantization_bits=s.quantization_bits,
            metric_range=s.metric_range,
            max_weight=s.max_weight,
            timeout=cfg.engine.timeout,
            consortium=read_consortium(Path(consortium)) if consortium else None,
        )
    try:
        return build_defence(s.name, settings, with_tolerance_stop, **common)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def newton_strategy(
    cfg: ExperimentConfig,
    *,
    num_banks: int,
    threshold: int | None = None,
    consortium: str = "",
    **common,
) -> FedAvg:
    """Federated Newton: sums in the clear (``fedavg``) or secure sums (``secagg``, with the
    same threshold and identity roster as secure FedAvg)."""
    from strategies.newton import FedNewton, SecAggFedNewton
    from strategies.robust.registry import strategy

    settings = dict(l2=cfg.train.l2, tol=cfg.train.tol, **common)
    if strategy(cfg.strategy.name).plaintext:
        return FedNewton(**settings)
    check_bank_count(cfg, num_banks)
    from fl_credit.protocol.identity import read_consortium
    from strategies.secagg import SecureAggregator

    aggregator = SecureAggregator(
        threshold=threshold or cfg.strategy.threshold,
        timeout=cfg.engine.timeout,
        consortium=read_consortium(Path(consortium)) if consortium else None,
    )
    return SecAggFedNewton(aggregator=aggregator, **settings)
