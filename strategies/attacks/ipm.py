"""Inner-product manipulation, IPM (Xie, Koyejo and Gupta, UAI 2020, "Fall of empires").

The attackers send ``-epsilon * mu``, ``mu`` the honest mean update: the aggregate's inner
product with the true descent direction turns negative. A small ``epsilon`` (0.1 to 0.5)
keeps the malicious updates close to the honest ones (against Krum and the median); a large
one (above ``(n - m) / m`` for ``m`` attackers among ``n`` banks) reverses a plain mean.
``epsilon = factor``.
"""

from __future__ import annotations

import numpy as np

from .base import BankTools
from .exchange import TrainExchange
from .full_knowledge import FullKnowledge
from .registry import register_attack


@register_attack
class IPM(FullKnowledge):
    """IPM (see module doc). Knows every bank's honest update of this round."""

    name = "ipm"
    params = ("factor",)

    def __init__(self, *, factor: float = 5.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """``-epsilon`` times the honest mean update."""
        return -self.factor * pool.mean(axis=0)
