"""Scaling: the honest update amplified (one bank, its own update only).

Runs after the bank's honest training (the mod wraps its train handler); sees no other
bank's update.
"""

from __future__ import annotations

from .base import Attack, BankTools
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class Scale(Attack):
    """Send ``global + factor * update`` (model replacement, Bagdasaryan et al. 2020).

    Knows: its own update and, to replace the global model outright, the total weight of the
    round (``factor = total / own weight`` makes the FedAvg result equal its own model's
    direction amplified). Alone it moves the model toward the bank's own data.
    """

    name = "scale"
    params = ("factor",)

    def __init__(self, factor: float = 10.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Amplified update with the honest weight."""
        update = [self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight
