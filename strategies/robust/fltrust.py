"""FLTrust (Cao, Fang, Liu and Gong, NDSS 2021, "FLTrust: Byzantine-robust federated learning
via trust bootstrapping").

The coordinator holds a small clean root set and each round trains the global model on it
exactly as a bank trains, giving the server update ``g0``. A bank's update ``g_i`` earns the
trust score ``TS_i = max(0, cos(g_i, g0))``, is rescaled to ``g0``'s norm, and the aggregate
is ``sum_i TS_i ||g0|| / ||g_i|| g_i / sum_i TS_i``: an update pointing away from the root
direction gets no weight, and no update can outweigh the others by its length. Needs each
bank's update in plaintext (a cosine per bank), so it cannot run under secure aggregation.

The root set and its training live with the caller (``fl_credit`` reads the consented rows
and trains the bank's model on them): :meth:`FLTrust.set_root_update` takes a callable
``(global ArrayRecord, server round) -> ArrayRecord trained on the root set``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg

RootUpdate = Callable[[ArrayRecord, int], ArrayRecord]
"""``(global model, server round) -> the global model trained on the root set``."""


def trust_scores(updates: np.ndarray, root: np.ndarray) -> np.ndarray:
    """``max(0, cos(update_i, root))`` per row (0 for a zero update or a zero root)."""
    norms = np.linalg.norm(updates, axis=1) * np.linalg.norm(root)
    cosine = np.divide(updates @ root, norms, out=np.zeros(len(updates)), where=norms > 0)
    return np.maximum(cosine, 0.0)


def fltrust_combine(updates: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLTrust's aggregate of ``updates`` (rows) against the root update, and the trust
    scores; the zero update when no bank earns trust."""
    scores = trust_scores(updates, root)
    if scores.sum() <= 0:
        return np.zeros_like(root, dtype=np.float64), scores
    norms = np.linalg.norm(updates, axis=1)
    rescale = np.divide(np.linalg.norm(root), norms, out=np.zeros(len(norms)), where=norms > 0)
    return (scores * rescale) @ updates / scores.sum(), scores


class FLTrust(UpdateRuleFedAvg):
    """FedAvg with FLTrust's trust-weighted, root-normalised update (see module doc)."""

    def __init__(self, *, root_update: RootUpdate | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._root_update = root_update

    def set_root_update(self, root_update: RootUpdate) -> None:
        """Give the strategy the coordinator's training on the root set."""
        self._root_update = root_update

    def combine(self, updates, weights, server_round):
        """Trust-weighted mean of the updates rescaled to the root update's norm."""
        if self._root_update is None or self._global is None:
            raise RuntimeError("FLTrust needs the coordinator's root set (set_root_update)")
        names = list(self._global.keys())
        trained = self._root_update(self._global, server_round)
        root = np.concatenate(
            [
                (trained[n].numpy().astype(np.float64) - self._global[n].numpy()).ravel()
                for n in names
            ]
        )
        vector, scores = fltrust_combine(updates, root)
        return vector, {
            "fltrust-trusted": int(np.sum(scores > 0)),
            "fltrust-min-trust": float(scores.min()),
            "fltrust-root-norm": float(np.linalg.norm(root)),
        }


@register_defence("fltrust")
def fltrust(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """FLTrust: trust by cosine to the coordinator's root-set update, root-norm rescaling."""
    return wrapped(FLTrust, wrap)(seed=settings.seed, **common)
