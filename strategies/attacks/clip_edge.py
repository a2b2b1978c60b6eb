"""An update at the edge of secure aggregation's clip box.

Secure aggregation clips every coordinate of a bank's update to ``[-bound, bound]``
(``strategy.clipping_range``, public to every bank) before masking, and the server sees
only the sum: it cannot tell a bank that sends the largest update the box allows. The
attacker sends ``-bound * sign(own honest update)``: every coordinate at the box's edge,
against the direction its own data points to. Knows: its own update and the public bound.
"""

from __future__ import annotations

import numpy as np

from .base import Attack, BankTools
from .exchange import TrainExchange
from .registry import register_attack


@register_attack
class ClipEdge(Attack):
    """Every coordinate at ``-norm * sign(honest update)`` (``norm`` = the clip bound)."""

    name = "clip_edge"
    params = ("norm",)

    def __init__(self, norm: float = 4.0) -> None:
        self.norm = float(norm)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The box-edge update with the honest weight."""
        update = [-self.norm * np.sign(u) for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight
