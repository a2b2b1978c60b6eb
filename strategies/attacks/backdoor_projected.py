"""A boosted backdoor projected to stay inside ``norm_bound``'s bound (Sun et al. 2019 show
that norm clipping is what stops model replacement; Bagdasaryan et al. 2020 and Wang et al.
2020 "Attack of the tails" answer with projected gradient descent inside the bound).

The bank boosts its backdoored update like ``model_replacement``, then scales it down to the
L2 norm ``norm`` if it is longer. With ``norm`` unset it estimates the bound the way
``norm_bound`` sets it by default (the round's median update norm) from what it can
compute itself: the norm of its own clean update this round (one extra training on its
clean rows). The update then passes the bound unclipped and keeps its backdoor direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import BankTools
from .exchange import TrainExchange, flatten
from .model_replacement import ModelReplacement
from .registry import register_attack


def projected(update: list[np.ndarray], bound: float) -> list[np.ndarray]:
    """``update`` scaled to L2 norm at most ``bound``."""
    size = float(np.linalg.norm(flatten(update)))
    return [u * (bound / size) for u in update] if size > bound > 0 else update


@register_attack
class ProjectedBackdoor(ModelReplacement):
    """Boosted backdoor inside an L2 bound (see module doc)."""

    name = "backdoor_projected"
    params = ("fraction", "factor", "trigger", "norm")

    def __init__(self, *, norm: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.norm = norm

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The boosted update, projected onto the estimated bound."""
        bound = self.norm
        if bound is None:
            clean = flatten(tools.retrain({"kind": "clean"})) - flatten(exchange.global_arrays)
            bound = float(np.linalg.norm(clean))
        update = projected(self.boosted(exchange), bound)
        return exchange.model_from_update(update), exchange.weight
