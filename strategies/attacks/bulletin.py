"""A private channel between simulated colluders, and a bank's bootstrap estimate of the
honest updates.

Simulation only: a shared folder stands for a channel the attackers control. Each bank that
publishes writes its update of the round there; a reader takes the updates of the *previous*
round, so that no bank waits for another and the order in which the simulation runs the
banks does not matter.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import BankTools
from .exchange import TrainExchange, flatten


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
