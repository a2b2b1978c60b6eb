"""Build the configured Flower strategy and the matching way of summing bank vectors."""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from fl_credit.config import ExperimentConfig
from fl_credit.errors import ConfigError, FlCreditError

log = logging.getLogger(__name__)


class Aggregator(Protocol):
    """Sums one vector per bank; how much the server sees of each depends on the kind."""

    def sum(
        self,
        grid: Grid,
        nodes: list[int],
        action: str,
        config: ConfigRecord,
        arrays: ArrayRecord | None = None,
    ) -> np.ndarray:
        """Send ``query.<action>`` to ``nodes`` and return the sum of their vectors."""


def query_messages(
    nodes: list[int], action: str, config: ConfigRecord, arrays: ArrayRecord | None
) -> list[Message]:
    """One ``query.<action>`` message per node carrying ``config`` (and ``arrays``)."""
    records: dict = {"config": config}
    if arrays is not None:
        records["arrays"] = arrays
    return [
        Message(content=RecordDict(records), message_type=f"query.{action}", dst_node_id=node)
        for node in nodes
    ]


class PlainAggregator:
    """Sums bank vectors in the clear: the server sees every bank's vector."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def sum(
        self,
        grid: Grid,
        nodes: list[int],
        action: str,
        config: ConfigRecord,
        arrays: ArrayRecord | None = None,
    ) -> np.ndarray:
        """Send ``query.<action>`` to ``nodes`` and return the sum of their vectors."""
        replies = list(
            grid.send_and_receive(
                query_messages(nodes, action, config, arrays), timeout=self.timeout
            )
        )
        errors = [r.error.reason for r in replies if r.has_error()]
        if errors or len(replies) < len(nodes):
            reason = errors[0] if errors else "no reply before the timeout"
            raise FlCreditError(f"query '{action}' failed at a bank: {last_line(reason)}")
        return np.sum([r.content["arrays"].to_numpy_ndarrays()[0] for r in replies], axis=0)


def last_line(text: str) -> str:
    """The last non-empty line of a (possibly multi-line) error text."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else str(text)


def build_aggregator(cfg: ExperimentConfig) -> Aggregator:
    """The aggregator matching the configured strategy."""
    return PlainAggregator(timeout=cfg.engine.timeout)


def build_strategy(cfg: ExperimentConfig, *, num_banks: int, aggregator: Aggregator) -> FedAvg:
    """The configured Message-API strategy, sampling every bank each round.

    Federated evaluation is off: banks report validation loss inside their train replies and the
    server scores the global model on the held-out test rows.
    """
    common = dict(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=num_banks,
        min_available_nodes=num_banks,
    )
    name = cfg.strategy.name
    if name == "fedavg":
        return FedAvg(**common)
    if name == "fedprox":
        return FedProx(proximal_mu=cfg.strategy.proximal_mu, **common)
    raise ConfigError(f"unknown strategy {name!r}; choose fedavg, fedprox or secagg")
