"""Fang et al. (USENIX Security 2020), "Local model poisoning attacks to Byzantine-robust
federated learning": the full-knowledge attack tailored to the trimmed mean and the
coordinate-wise median.

The paper works on the local *models* (not the updates). Per parameter ``j``, with ``s_j``
the sign of the change the honest banks would make to it (the sign of the honest mean
update) and ``w_max``/``w_min`` the largest/smallest honest local model value: where the
parameter would increase (``s_j > 0``) each attacker sends a random value in
``[w_min / b, w_min]`` if ``w_min > 0`` else ``[b * w_min, w_min]``; where it would decrease,
in ``[w_max, b * w_max]`` if ``w_max > 0`` else ``[w_max / b, w_max]``. ``b = factor`` (the
paper's 2). The values lie just beyond the honest range on the side against the honest
direction, by up to ``(b - 1)`` times the parameter's own size, so every order statistic the
trimmed mean or median keeps shifts against the honest direction.

The honest local models of the round are estimated as the received global model plus each
bank's honest update of this round (:mod:`.full_knowledge`).
"""

from __future__ import annotations

import numpy as np

from .base import BankTools
from .exchange import TrainExchange, flatten
from .full_knowledge import FullKnowledge
from .registry import register_attack


def fang_trim_model(models: np.ndarray, up: np.ndarray, b: float, rng: np.random.Generator):
    """One attacker's model from the honest local models (rows) and the direction in which
    each parameter would move (``up``: True where it increases), see module doc."""
    w_min, w_max = models.min(axis=0), models.max(axis=0)
    low = np.where(w_min > 0, w_min / b, w_min * b)  # the range below the minimum
    high = np.where(w_max > 0, w_max * b, w_max / b)  # the range above the maximum
    u = rng.random(models.shape[1])
    return np.where(up, low + u * (w_min - low), w_max + u * (high - w_max))


@register_attack
class FangTrim(FullKnowledge):
    """Fang et al.'s trimmed-mean / median attack (see module doc). Knows every bank's
    honest update of this round."""

    name = "fang_trim"
    params = ("factor",)

    def __init__(self, *, factor: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The update to a random model just beyond the honest models, against the honest
        direction (each attacker draws its own)."""
        current = flatten(exchange.global_arrays)
        models = current + pool
        crafted = fang_trim_model(models, pool.mean(axis=0) > 0, self.factor, tools.rng)
        return crafted - current
