"""Weight inflation: the honest model with an inflated ``num-examples`` claim.

Runs after the bank's honest training (the mod wraps its train handler); sees no other
bank's update.
"""

from __future__ import annotations

from .base import Attack, BankTools
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class WeightInflation(Attack):
    """Send the honest model but claim ``factor`` times its number of examples.

    Knows: that FedAvg weighs updates by the claimed ``num-examples``. With plaintext
    FedAvg its update then dominates the average; secure aggregation clips the claim to
    ``strategy.max_weight``; median, Krum and Bulyan ignore weights.
    """

    name = "weight_inflation"
    params = ("factor",)

    def __init__(self, factor: float = 1000.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Honest model, inflated weight."""
        return exchange.honest_arrays, exchange.weight * self.factor
