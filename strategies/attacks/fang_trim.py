"""Fang et al. (USENIX Security 2020): the full-knowledge attack tailored to the trimmed mean
and the coordinate-wise median.

Per coordinate ``j``, with ``s_j`` the sign of the honest mean update and ``w_min``/``w_max``
the smallest/largest honest value: where the honest banks push up (``s_j > 0``) each
attacker sends a random value beyond the smallest, in ``[w_min / b, w_min]`` if ``w_min > 0``
else ``[b * w_min, w_min]``; where they push down, beyond the largest, in
``[w_max, b * w_max]`` if ``w_max > 0`` else ``[w_max / b, w_max]``. ``b = factor``
(the paper's 2). The values stay just outside the honest range, so trimming removes no more
than what it would remove anyway, and every kept order statistic shifts against the honest
direction.
"""

from __future__ import annotations

import numpy as np

from .base import BankTools
from .bulletin import FullKnowledge
from .exchange import TrainExchange
from .registry import register_attack


def fang_trim_update(honest: np.ndarray, b: float, rng: np.random.Generator) -> np.ndarray:
    """One attacker's vector from the honest updates (rows), see module doc."""
    up = honest.mean(axis=0) > 0
    w_min, w_max = honest.min(axis=0), honest.max(axis=0)
    low_up = np.where(w_min > 0, w_min / b, w_min * b)  # range below the minimum
    high_down = np.where(w_max > 0, w_max * b, w_max / b)  # range above the maximum
    u = rng.random(honest.shape[1])
    below = low_up + u * (w_min - low_up)
    above = w_max + u * (high_down - w_max)
    return np.where(up, below, above)


@register_attack
class FangTrim(FullKnowledge):
    """Fang et al.'s trimmed-mean / median attack (see module doc). Knows every bank's
    honest update (one round old)."""

    name = "fang_trim"
    params = ("factor",)

    def __init__(self, *, factor: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """A random vector just beyond the honest range, against the honest direction."""
        return fang_trim_update(pool, self.factor, tools.rng)
