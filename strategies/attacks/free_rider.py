"""The free rider: sends the global model back (plus optional noise), claims its weight.

Runs after the bank's honest training (the mod wraps its train handler); sees no other
bank's update.
"""

from __future__ import annotations

from .base import Attack, BankTools, unit_gaussian
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class FreeRider(Attack):
    """Send the global model back unchanged (``norm = 0``) or plus small Gaussian noise of
    L2 norm ``norm`` (to look like an update), claiming its true weight.

    Knows: nothing; it contributes nothing and receives the federated model. The bank's
    handler still runs so that the reply's metrics have an honest bank's layout (a real
    free rider would fake them). Its gain is its final model's AUC minus its model alone.
    """

    name = "free_rider"
    free_rides = True
    params = ("norm",)

    def __init__(self, norm: float = 0.0) -> None:
        self.norm = float(norm)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The global model (plus optional noise) with the honest weight."""
        if self.norm <= 0:
            return exchange.global_arrays, exchange.weight
        noise = unit_gaussian(exchange.global_arrays, self.norm, tools.rng)
        return exchange.model_from_update(noise), exchange.weight
