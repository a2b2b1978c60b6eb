"""``NormBoundFedAvg``: FedAvg after server-side L2 clipping of each bank's update."""

from __future__ import annotations

from logging import INFO
from typing import Any

import numpy as np
from flwr.common import log
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg


def clip_to_norm(update: list[np.ndarray], bound: float) -> tuple[list[np.ndarray], float]:
    """``update`` scaled to L2 norm at most ``bound`` (over all arrays), and its norm before."""
    norm = float(np.sqrt(sum(float(np.sum(u * u)) for u in update)))
    scale = min(1.0, bound / norm) if norm > 0 else 1.0
    return [u * scale for u in update], norm


class NormBoundFedAvg(UpdateRuleFedAvg):
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
        self.clipped: dict[int, int] = {}

    def summary(self) -> None:
        """Log the bound."""
        log(INFO, "\t├──> NormBound settings: max_norm %s", self.max_norm or "round median")
        super().summary()

    def combine(
        self, updates: np.ndarray, weights: np.ndarray, server_round: int
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Clip every update to the bound, then average them by weight like FedAvg."""
        norms = np.linalg.norm(updates, axis=1)
        bound = self.max_norm if self.max_norm is not None else float(np.median(norms))
        scale = np.where(norms > bound, bound / np.maximum(norms, 1e-300), 1.0)
        self.clipped[server_round] = int(np.sum(norms > bound))
        log(
            INFO,
            "norm_bound round %d: bound %.4g, %d of %d updates clipped",
            server_round,
            bound,
            self.clipped[server_round],
            len(updates),
        )
        clipped = updates * scale[:, None]
        vector = weights @ clipped / weights.sum()
        return vector, {"norm-bound": bound, "norm-bound-clipped": self.clipped[server_round]}


@register_defence("norm_bound")
def norm_bound(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """FedAvg of updates clipped to ``max_norm`` (None: the round's median norm)."""
    return wrapped(NormBoundFedAvg, wrap)(max_norm=settings.max_norm, **common)
