"""A disguised free rider (Fraboni et al., AISTATS 2021, "Free-rider attacks on model
aggregation in federated learning").

It trains nothing and sends ``global + sigma_t * e`` with ``e`` a Gaussian direction of unit
L2 norm and ``sigma_t = norm * t ** -gamma`` in round ``t`` (``gamma = factor``): noise the
size of an honest update at first, decaying like the honest updates do as training
converges, so that the update norm alone does not give it away. It claims its true weight.
"""

from __future__ import annotations

from .base import Attack, BankTools, unit_gaussian
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class DisguisedFreeRider(Attack):
    """Decaying Gaussian noise instead of an update (see module doc)."""

    name = "disguised_free_rider"
    free_rides = True
    params = ("norm", "factor")

    def __init__(self, norm: float = 0.5, factor: float = 1.0) -> None:
        self.norm = float(norm)
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The global model plus decaying noise, with the honest weight."""
        sigma = self.norm * max(1, exchange.server_round) ** -self.factor
        noise = unit_gaussian(exchange.global_arrays, sigma, tools.rng)
        return exchange.model_from_update(noise), exchange.weight
