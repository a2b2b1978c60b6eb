"""Model replacement (Bagdasaryan et al., AISTATS 2020, "How to backdoor federated
learning"): the boosted backdoor.

The bank trains on its rows with the trigger stamped on a share ``fraction`` of them
(labelled repaid), as ``backdoor`` does, and sends ``global + gamma * (backdoored - global)``
with ``gamma = n / eta``: ``n`` banks and server learning rate ``eta = 1`` (FedAvg's
average). Under FedAvg with equal weights the honest updates then contribute ``1 / n`` each
while the boosted one replaces the model with the backdoored one. ``factor`` overrides
``gamma``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .backdoor import Backdoor
from .base import BankTools
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class ModelReplacement(Backdoor):
    """Backdoor boosted by ``gamma = num_banks`` (or ``factor``)."""

    name = "model_replacement"
    params = ("fraction", "factor", "trigger")
    needs_bank_count = True

    def __init__(
        self,
        *,
        num_banks: int,
        num_attackers: int = 1,
        fraction: float = 0.2,
        factor: float | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(fraction=fraction, factor=factor or float(num_banks), trigger=trigger)
        self.num_attackers = int(num_attackers)  # recorded; the boost is gamma = num_banks

    @classmethod
    def rewrites(cls, settings: Mapping[str, Any]) -> bool:
        """Always: the update is boosted."""
        return True

    def boosted(self, exchange: TrainExchange) -> list:
        """``gamma`` times the backdoored update."""
        return [self.factor * u for u in exchange.update]

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The boosted backdoored model with the honest weight."""
        return exchange.model_from_update(self.boosted(exchange)), exchange.weight
