"""Build the configured Flower strategy and the matching way of summing bank vectors.

``strategy=secagg`` (the default) makes every sum the server needs, the standardisation
statistics and the validation histograms as well as the model updates, go through the same
secure aggregation: the server learns sums only. ``strategy=fedavg`` / ``fedprox`` sum in the
clear. The defences of :mod:`strategies.robust` (``fedmedian``, ``trimmed_mean``, ``krum``,
``multikrum``, ``bulyan``, ``norm_bound``) combine plaintext updates; ``grouped_secagg`` sums
securely within random groups and combines the group means robustly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from fl_credit.config import (
    ExperimentConfig,
    check_bank_count,
    check_group_count,
    resolve_optimizer,
)
from fl_credit.errors import ConfigError, FlCreditError

log = logging.getLogger(__name__)

# Update clip needed so bank-level DP noise shares are not cut off (about max|w| + C + 6 sd).
CENTRAL_DP_HEADROOM = 6.0


class BankSum:
    """Sums one vector per bank, in the clear or through the strategy's secure aggregation.

    Every summed query's reply holds one ArrayRecord ``"arrays"`` with the bank's vector.
    """

    def __init__(self, strategy: FedAvg, timeout: float) -> None:
        self.strategy = strategy
        self.timeout = timeout

    @property
    def secure(self) -> bool:
        """True when the server only ever sees the sum."""
        return hasattr(self.strategy, "secure_sum")

    def sum(
        self,
        grid: Grid,
        nodes: list[int],
        action: str,
        config: ConfigRecord,
        arrays: ArrayRecord | None = None,
        *,
        value_range: float,
        require_all: bool = True,
    ) -> np.ndarray:
        """Send ``query.<action>`` to ``nodes``; return the sum of their vectors.

        Under secure aggregation, values beyond ``value_range`` are clipped (and counted) and
        the fixed-point encoding gets as many fractional bits as the 64-bit ring allows for
        this many banks. With ``require_all``, a bank that fails makes the query fail with
        that bank's one-line reason.
        """
        from strategies.secagg import plain_sum

        records: dict = {"config": config}
        if arrays is not None:
            records["arrays"] = arrays
        content = RecordDict(records)
        kwargs = dict(node_ids=nodes, min_nodes=len(nodes), timeout=self.timeout)
        if self.secure:
            result = self.strategy.secure_sum(
                grid,
                content,
                f"query.{action}",
                value_range=value_range,
                quantization_bits=fractional_bits(len(nodes), value_range),
                label=action,
                **kwargs,
            )
        else:
            result = plain_sum(grid, content, f"query.{action}", **kwargs)
        report = result.report
        if report.dropped and (require_all or result.records is None):
            reasons = [last_line(r) for r in report.rejected.values()] or [report.reason]
            raise FlCreditError(f"query '{action}' failed at a bank: {reasons[0]}")
        if result.records is None:
            raise FlCreditError(f"query '{action}' failed: {report.reason}")
        if report.clipped:
            log.warning(
                "query '%s': %d values beyond +-%g were clipped",
                action,
                report.clipped,
                value_range,
            )
        return result.records["arrays"].to_numpy_ndarrays()[0]


def fractional_bits(num_banks: int, value_range: float) -> int:
    """Most fractional bits such that ``num_banks`` values of ``value_range`` cannot overflow
    the signed 64-bit ring (one bit of headroom), capped at 30."""
    return max(0, min(30, int(np.floor(np.log2(2.0**62 / (num_banks * value_range))))))


def last_line(text: str) -> str:
    """The last non-empty line of a (possibly multi-line) error text."""
    lines = [line.strip(" '>") for line in str(text).splitlines() if line.strip(" '>")]
    return lines[-1] if lines else str(text)


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
    connected, so a bank that drops out does not stall the run. ``consortium``: path of the
    banks' identity roster (secure aggregation: verified bank names, public weights).
    """
    cfg = resolve_optimizer(cfg)
    common = dict(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_available_nodes=1,
    )
    name = cfg.strategy.name
    if cfg.train.optimizer == "newton":
        return newton_strategy(
            cfg, num_banks=num_banks, threshold=threshold, consortium=consortium, **common
        )
    from strategies.tolerance import with_tolerance_stop

    common["tol"] = cfg.train.tol
    if name == "fedavg":
        return with_tolerance_stop(FedAvg)(**common)
    if name == "fedprox":
        return with_tolerance_stop(FedProx)(proximal_mu=cfg.strategy.proximal_mu, **common)
    if name == "secagg":
        check_bank_count(cfg, num_banks)
        from fl_credit.bank_identity import read_consortium
        from strategies.secagg import SecAggFedAvg

        return with_tolerance_stop(SecAggFedAvg)(
            consortium=read_consortium(Path(consortium)) if consortium else None,
            threshold=threshold or cfg.strategy.threshold,
            colluders=cfg.dp.colluders,
            clipping_range=update_clip(cfg, noise_std_share),
            quantization_bits=cfg.strategy.quantization_bits,
            metric_range=cfg.strategy.metric_range,
            max_weight=cfg.strategy.max_weight,
            secure_evaluate=False,
            timeout=cfg.engine.timeout,
            **common,
        )
    if name == "grouped_secagg":
        check_group_count(num_banks, cfg.strategy.group_size)
        from fl_credit.bank_identity import read_consortium
        from strategies.robust import GroupedSecAgg

        return with_tolerance_stop(GroupedSecAgg)(
            group_size=cfg.strategy.group_size,
            robust=cfg.strategy.robust,
            beta=cfg.strategy.beta,
            seed=cfg.seed,
            clipping_range=update_clip(cfg, noise_std_share),
            quantization_bits=cfg.strategy.quantization_bits,
            metric_range=cfg.strategy.metric_range,
            max_weight=cfg.strategy.max_weight,
            timeout=cfg.engine.timeout,
            consortium=read_consortium(Path(consortium)) if consortium else None,
            **common,
        )
    from strategies.robust import PLAINTEXT_ROBUST, build_robust_strategy

    if name in PLAINTEXT_ROBUST:
        try:
            return build_robust_strategy(
                name,
                num_banks=num_banks,
                beta=cfg.strategy.beta,
                num_malicious=cfg.strategy.num_malicious,
                num_selected=cfg.strategy.num_selected,
                max_norm=cfg.strategy.max_norm,
                seed=cfg.seed,
                wrap=with_tolerance_stop,
                **common,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None
    raise ConfigError(
        f"unknown strategy {name!r}; choose secagg, fedavg, fedprox, grouped_secagg or "
        f"{', '.join(PLAINTEXT_ROBUST)}"
    )


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

    settings = dict(l2=cfg.train.l2, tol=cfg.train.tol, **common)
    if cfg.strategy.name != "secagg":
        return FedNewton(**settings)
    check_bank_count(cfg, num_banks)
    from fl_credit.bank_identity import read_consortium
    from strategies.secagg import SecureAggregator

    aggregator = SecureAggregator(
        threshold=threshold or cfg.strategy.threshold,
        timeout=cfg.engine.timeout,
        consortium=read_consortium(Path(consortium)) if consortium else None,
    )
    return SecAggFedNewton(aggregator=aggregator, **settings)
