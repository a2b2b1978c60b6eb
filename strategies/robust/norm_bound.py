"""``NormBoundFedAvg``: FedAvg after server-side L2 clipping of each bank's update."""

from __future__ import annotations

from collections.abc import Iterable
from logging import INFO
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped


def clip_to_norm(update: list[np.ndarray], bound: float) -> tuple[list[np.ndarray], float]:
    """``update`` scaled to L2 norm at most ``bound`` (over all arrays), and its norm before."""
    norm = float(np.sqrt(sum(float(np.sum(u * u)) for u in update)))
    scale = min(1.0, bound / norm) if norm > 0 else 1.0
    return [u * scale for u in update], norm


class NormBoundFedAvg(FedAvg):
    """Federated averaging of updates clipped to an L2 bound (Sun et al. 2019, "Can you
    really backdoor federated learning?").

    Each bank's update ``w_k - w_global`` is scaled down to L2 norm ``max_norm`` if it is
    longer, then FedAvg averages the clipped updates by ``num-examples``. With
    ``max_norm=None`` the bound is the median update norm of the round, which needs no
    tuning and holds as long as most banks are honest. It bounds what one update can do
    (sign flip, scaling, noise); it does not stop a bank that stays within the bound
    (ALIE, data poisoning), nor an inflated weight. Needs plaintext updates.

    Parameters
    ----------
    max_norm : float, optional
        The L2 bound; None: the round's median update norm.
    **kwargs
        Passed to :class:`~flwr.serverapp.strategy.FedAvg`.
    """

    def __init__(self, *, max_norm: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_norm is not None and max_norm <= 0:
            raise ValueError("max_norm must be positive")
        self.max_norm = max_norm
        self._global: ArrayRecord | None = None
        self.clipped: dict[int, int] = {}

    def summary(self) -> None:
        """Log the bound."""
        log(INFO, "\t├──> NormBound settings: max_norm %s", self.max_norm or "round median")
        super().summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Like FedAvg; keeps the global model to compute updates from."""
        self._global = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Clip every valid reply's update, then average like FedAvg."""
        replies = list(replies)
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid or self._global is None:
            return super().aggregate_train(server_round, replies)
        names = list(self._global.keys())
        base = [self._global[n].numpy().astype(np.float64) for n in names]
        updates = []
        for msg in valid:
            record = msg.content[self.arrayrecord_key]
            updates.append(
                [record[n].numpy().astype(np.float64) - b for n, b in zip(names, base, strict=True)]
            )
        norms = [float(np.sqrt(sum(float(np.sum(u * u)) for u in upd))) for upd in updates]
        bound = self.max_norm if self.max_norm is not None else float(np.median(norms))
        self.clipped[server_round] = 0
        for msg, update in zip(valid, updates, strict=True):
            clipped, norm = clip_to_norm(update, bound)
            self.clipped[server_round] += int(norm > bound)
            record = ArrayRecord()
            for name, b, u in zip(names, base, clipped, strict=True):
                dtype = msg.content[self.arrayrecord_key][name].numpy().dtype
                record[name] = Array(np.asarray(b + u, dtype=dtype))
            msg.content[self.arrayrecord_key] = record
        log(
            INFO,
            "norm_bound round %d: bound %.4g, %d of %d updates clipped",
            server_round,
            bound,
            self.clipped[server_round],
            len(valid),
        )
        arrays, metrics = super().aggregate_train(server_round, valid)
        if metrics is not None:
            metrics["norm-bound"] = bound
            metrics["norm-bound-clipped"] = self.clipped[server_round]
        return arrays, metrics


@register_defence("norm_bound")
def norm_bound(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """FedAvg of updates clipped to ``max_norm`` (None: the round's median norm)."""
    return wrapped(NormBoundFedAvg, wrap)(max_norm=settings.max_norm, **common)
