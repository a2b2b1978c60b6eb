"""A tolerance stop for model-update strategies (FedAvg and its subclasses).

Once a round changes no coordinate of the global model by more than ``tol``, the strategy
records ``converged_round`` and sends no more training messages (``configure_train``
returns ``[]``), under Flower's ``Strategy.start`` or any other round loop. The decision
uses only the aggregated models the server already holds, so under DP it is
post-processing: stopping early spends less privacy budget, never more (the banks'
accountants count the rounds actually trained).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from logging import INFO
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid


def largest_change(before: ArrayRecord, after: ArrayRecord) -> float:
    """Largest absolute change of any coordinate between two models with the same arrays."""
    return max(
        (
            float(np.max(np.abs(after[name].numpy().astype(np.float64) - array.numpy())))
            for name, array in before.items()
            if name in after and array.numpy().size
        ),
        default=0.0,
    )


class ToleranceStop:
    """Mixin in front of a Flower Message-API strategy (see :func:`with_tolerance_stop`).

    Parameters
    ----------
    tol : float
        Stop once a round changes no coordinate by more than ``tol`` (0: never stop).
    **kwargs
        Passed to the strategy.
    """

    def __init__(self, *, tol: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tol = float(tol)
        self.converged_round: int | None = None
        self._before: ArrayRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The strategy's messages, or none once converged."""
        if self.converged_round is not None:
            return []
        self._before = arrays
        return super().configure_train(server_round, arrays, config, grid)  # type: ignore[misc]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The strategy's aggregate; records the round in which the change fell to ``tol``."""
        arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        before, self._before = self._before, None
        if arrays is None or before is None:
            return arrays, metrics
        change = largest_change(before, arrays)
        if metrics is not None:
            metrics["max-change"] = change
        if self.tol > 0 and change <= self.tol:
            self.converged_round = server_round
            log(
                INFO,
                "round %d changed no coefficient by more than %g: stopping",
                server_round,
                self.tol,
            )
        return arrays, metrics


@cache
def with_tolerance_stop(strategy_cls: type) -> type:
    """``strategy_cls`` with :class:`ToleranceStop` in front (same name in logs)."""
    return type(strategy_cls.__name__, (ToleranceStop, strategy_cls), {})
