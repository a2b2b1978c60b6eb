"""Sign flip: the honest update reversed and amplified (one bank, its own update only).

Runs after the bank's honest training (the mod wraps its train handler); sees no other
bank's update.
"""

from __future__ import annotations

from .base import Attack, BankTools
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class SignFlip(Attack):
    """Send ``global - factor * update``: the honest update reversed and amplified.

    Knows: its own honest update. Under plain FedAvg with ``n`` equal banks, one sign-flipper
    with ``factor > n - 1`` turns the average update against the honest direction.
    """

    name = "sign_flip"
    params = ("factor",)

    def __init__(self, factor: float = 10.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Reversed, amplified update with the honest weight."""
        update = [-self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight
