"""``UpdateRuleFedAvg``: a FedAvg whose aggregate update comes from a rule over every bank's
plaintext update (the base of the defences that need per-bank updates)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg


class UpdateRuleFedAvg(FedAvg):
    """FedAvg with the update replaced by :meth:`combine` of the banks' updates.

    Metrics are FedAvg's weighted average of the valid replies; the rule's own figures
    (:meth:`combine`'s second value) are added to them. Needs plaintext updates.
    """

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = int(seed)
        self._global: ArrayRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Like FedAvg; keeps the global model to compute updates from."""
        self._global = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def rng(self, server_round: int) -> np.random.Generator:
        """Randomness of the rule in ``server_round`` (seeded by the run's seed)."""
        return np.random.default_rng([self.seed, server_round, 15_485_863])

    def combine(
        self, updates: np.ndarray, weights: np.ndarray, server_round: int
    ) -> tuple[np.ndarray, dict[str, float]]:
        """The aggregate update from the banks' updates (rows) and weights (override)."""
        raise NotImplementedError

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Apply the rule to the valid replies' updates."""
        replies = list(replies)
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid or self._global is None:
            return super().aggregate_train(server_round, replies)
        names = list(self._global.keys())
        base = [self._global[n].numpy().astype(np.float64) for n in names]
        flat_base = np.concatenate([b.ravel() for b in base])
        updates, weights = [], []
        for msg in valid:
            record = msg.content[self.arrayrecord_key]
            flat = np.concatenate([record[n].numpy().astype(np.float64).ravel() for n in names])
            updates.append(flat - flat_base)
            weights.append(float(msg.content["metrics"][self.weighted_by_key]))
        vector, info = self.combine(np.stack(updates), np.array(weights), server_round)
        _, metrics = super().aggregate_train(server_round, valid)
        out, start = ArrayRecord(), 0
        for name, b in zip(names, base, strict=True):
            delta = vector[start : start + b.size].reshape(b.shape)
            start += b.size
            out[name] = Array(np.asarray(b + delta, dtype=self._global[name].numpy().dtype))
        metrics = metrics if metrics is not None else MetricRecord()
        for key, value in info.items():
            metrics[key] = float(value)
        return out, metrics
