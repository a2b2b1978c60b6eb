"""A private channel between simulated banks, and the attacks that read every honest update.

Simulation only: a shared folder stands for a channel the attackers control. Each bank that
publishes writes its honest update of the round there; a reader takes the updates of the
*previous* round, so that no bank waits for another and the order in which the simulation
runs the banks does not matter (full-batch updates change little from one round to the next).

:class:`FullKnowledge` is the base of the attacks that the literature evaluates with full
knowledge of the honest updates (Fang et al. 2020; Shejwalkar and Houmansadr 2021; Xie et
al. 2020; Baruch et al. 2019): every bank, honest or not, publishes its honest update, and
the attackers craft their update from the pool. It is the strongest attacker the papers
consider, an upper bound on what a consortium member who learns its peers' updates can do.
Before any round is published (round 1) each attacker stands in its own honest update and
bootstrap retrainings on its own rows for the pool (as :mod:`.alie` does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from .base import Attack, BankTools
from .exchange import TrainExchange, flatten, unflatten

FIRST_ROUND_SAMPLES = 4
"""Bootstrap retrainings standing in for the honest pool before any round is published."""


def bootstrap_pool(exchange: TrainExchange, tools: BankTools, samples: int) -> np.ndarray:
    """The bank's honest update and ``samples`` updates trained on bootstrap resamples of its
    rows (one row each): an estimate of the honest updates from its own data alone."""
    base = flatten(exchange.global_arrays)
    rows = [flatten(exchange.update)]
    for sample in range(samples):
        seed = np.random.SeedSequence(
            [exchange.server_round, exchange.partition_id, sample]
        ).generate_state(1)[0]
        rows.append(flatten(tools.retrain({"kind": "resample", "seed": int(seed)})) - base)
    return np.stack(rows)


class Bulletin:
    """Honest updates by round and bank in the folder ``channel``."""

    def __init__(self, channel: str | Path) -> None:
        self.channel = str(channel)

    def _file(self, server_round: int, partition_id: int) -> Path:
        return Path(self.channel) / f"round_{server_round}" / f"bank_{partition_id}.npy"

    def publish(self, exchange: TrainExchange) -> None:
        """Write this bank's honest update of the round (atomically)."""
        path = self._file(exchange.server_round, exchange.partition_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, flatten(exchange.update))
        os.replace(tmp, path)

    def previous(self, server_round: int) -> np.ndarray:
        """The updates published in round ``server_round - 1``, one row per bank (may be
        empty)."""
        folder = Path(self.channel) / f"round_{server_round - 1}"
        files = sorted(folder.glob("bank_*.npy")) if folder.is_dir() else []
        return np.stack([np.load(f) for f in files]) if files else np.empty((0, 0))


class FullKnowledge(Attack):
    """An attack crafted from every bank's honest update of the previous round.

    Subclasses implement :meth:`craft` (honest updates, one row per bank, and the exchange
    -> the update to send). The attacking banks send the crafted update with their honest
    weight; the attack knows the number of banks ``num_banks`` and of attackers
    ``num_attackers``.
    """

    observes_before_start: ClassVar[bool] = True
    observes_honest: ClassVar[bool] = True
    needs_bank_count: ClassVar[bool] = True
    needs_channel: ClassVar[bool] = True

    def __init__(self, *, channel: str | Path, num_banks: int, num_attackers: int) -> None:
        self.bulletin = Bulletin(channel)
        self.num_banks = int(num_banks)
        self.num_attackers = int(num_attackers)

    def observe(self, exchange: TrainExchange, tools: BankTools) -> None:
        """Publish the honest update (every bank, every round)."""
        self.bulletin.publish(exchange)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The crafted update (from its own bootstrap pool while no round has been published)."""
        pool = self.bulletin.previous(exchange.server_round)
        if len(pool) < 2 or pool.shape[1] != flatten(exchange.update).size:
            pool = bootstrap_pool(exchange, tools, FIRST_ROUND_SAMPLES)
        update = unflatten(self.craft(pool, exchange, tools), exchange.global_arrays)
        return exchange.model_from_update(update), exchange.weight

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The malicious update from the honest ``pool`` (override)."""
        raise NotImplementedError
