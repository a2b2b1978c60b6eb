"""ALIE (Baruch, Baruch and Goldberg, NeurIPS 2019) with full knowledge of the honest updates,
as the paper evaluates it: ``mu - z * sigma * sign(mu)`` with ``mu`` and ``sigma`` the mean and
standard deviation of every bank's honest update of this round, the same vector at every
attacker. ``z``: the paper's ``z_max`` for ``n`` banks and ``m`` attackers, or ``attack.z``.
"""

from __future__ import annotations

import numpy as np

from .alie import alie_update, alie_z
from .base import BankTools
from .exchange import TrainExchange
from .full_knowledge import FullKnowledge
from .registry import register_attack


@register_attack
class ALIEFull(FullKnowledge):
    """Full-knowledge ALIE (see module doc)."""

    name = "alie_full"
    params = ("z",)

    def __init__(self, *, z: float | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.z = alie_z(self.num_banks, self.num_attackers) if z is None else float(z)

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The shifted mean of the honest updates."""
        return alie_update(pool.mean(axis=0), pool.std(axis=0, ddof=1), self.z)
