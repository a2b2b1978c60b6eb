"""The attacks that the literature evaluates with full knowledge of the honest updates.

Fang et al. 2020, Shejwalkar and Houmansadr 2021, Xie et al. 2020 and Baruch et al. 2019
evaluate their attacks against an attacker who knows every bank's honest update of the round
it attacks: the strongest attacker they consider, an upper bound on what a consortium member
who learns its peers' updates can do. In the simulation every bank's rows sit in one folder,
so an attacking bank computes each bank's honest update of this round itself: it runs the
ClientApp's train handler on the received global model once per partition id
(:attr:`strategies.attacks.base.BankTools.peer_model`). Without DP, local training is
deterministic under the run's seed, so the pool is exactly what the banks send; under DP the
peers' noise is drawn from the attacker's own state, so the pool is an estimate.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import Attack, BankTools
from .exchange import TrainExchange, flatten, unflatten


class FullKnowledge(Attack):
    """An attack crafted from every bank's honest update of the current round.

    Subclasses implement :meth:`craft` (honest updates, one row per bank in partition
    order, and the exchange -> the update to send). The attacking banks send the crafted
    update with their honest weight; the attack knows the number of banks ``num_banks`` and
    of attackers ``num_attackers``.
    """

    needs_bank_count: ClassVar[bool] = True

    def __init__(self, *, num_banks: int, num_attackers: int) -> None:
        self.num_banks = int(num_banks)
        self.num_attackers = int(num_attackers)

    def honest_pool(self, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """Every bank's honest update of this round, one row per partition id."""
        base = flatten(exchange.global_arrays)
        rows = [
            flatten(exchange.update)
            if pid == exchange.partition_id
            else flatten(tools.peer_model(pid)) - base
            for pid in range(self.num_banks)
        ]
        return np.stack(rows)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The update crafted from this round's honest pool."""
        update = self.craft(self.honest_pool(exchange, tools), exchange, tools)
        model = exchange.model_from_update(unflatten(update, exchange.global_arrays))
        return model, exchange.weight

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The malicious update from the honest ``pool`` (override)."""
        raise NotImplementedError
