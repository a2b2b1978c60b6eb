"""Noise: a random update of a set norm (a broken or vandalising bank).

Runs after the bank's honest training (the mod wraps its train handler); sees no other
bank's update.
"""

from __future__ import annotations

from .base import Attack, BankTools, unit_gaussian
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class Noise(Attack):
    """Send ``global + g`` with ``g`` a Gaussian direction of L2 norm ``norm``.

    Knows: nothing beyond the global model (a broken or vandalising bank).
    """

    name = "noise"
    params = ("norm",)

    def __init__(self, norm: float = 1.0) -> None:
        self.norm = float(norm)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Random update of the configured norm with the honest weight."""
        update = unit_gaussian(exchange.global_arrays, self.norm, tools.rng)
        return exchange.model_from_update(update), exchange.weight
