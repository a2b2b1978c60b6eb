"""Shejwalkar and Houmansadr (NDSS 2021): the aggregation-agnostic Min-Sum attack.

As Min-Max (:mod:`.min_max`), with ``gamma`` the largest value for which the malicious
update's sum of squared distances to the honest updates is no more than the largest such
sum of an honest update.
"""

from __future__ import annotations

import numpy as np

from .base import BankTools
from .exchange import TrainExchange
from .min_max import MinMax, agnostic_update, min_sum_fits
from .registry import register_attack


@register_attack
class MinSum(MinMax):
    """Min-Sum (see module doc). Knows every bank's honest update of this round."""

    name = "min_sum"

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The Min-Sum update, the same at every attacker."""
        return agnostic_update(pool, min_sum_fits, self.perturbation)
