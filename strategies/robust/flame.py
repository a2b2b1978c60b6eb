"""FLAME (Nguyen et al., USENIX Security 2022, "FLAME: Taming backdoors in federated
learning").

Each round: (1) cluster the banks' updates on their pairwise cosine distances with HDBSCAN
(``min_cluster_size = n/2 + 1``, ``min_samples = 1``, one cluster allowed) and drop every
update outside the majority cluster; (2) clip each kept update to ``S``, the median L2 norm
of all the round's updates; (3) average the kept clipped updates; (4) add Gaussian noise of
standard deviation ``noise_factor * S`` to every coordinate (the paper's lambda; 0.001 for its
image tasks). The paper clusters local models; this clusters their updates from the global
model, the same directions without the shared offset of the global weights (which makes
every model's cosine to every other close to 1 for a 70-weight logistic regression).

The clustering is the caller's (``fl_credit`` passes scikit-learn's HDBSCAN, see
:meth:`Flame.set_clusterer`): ``strategies`` needs only Flower, torch and numpy. Needs each
bank's update in plaintext (pairwise cosines), so it cannot run under secure aggregation;
the noise is a robustness device sized by the updates, not a differential-privacy
guarantee (nothing accounts for it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg

Clusterer = Callable[[np.ndarray, int], np.ndarray]
"""``(pairwise distances n x n, min_cluster_size) -> cluster label per row (-1: noise)``."""

NOISE_FACTOR = 0.001
"""FLAME's lambda for its image-classification tasks (noise sd = lambda x median norm)."""


def cosine_distances(updates: np.ndarray) -> np.ndarray:
    """``1 - cos(u_i, u_j)`` for every pair of rows (a zero row is at distance 1)."""
    norms = np.linalg.norm(updates, axis=1)
    unit = np.divide(updates, norms[:, None], out=np.zeros_like(updates), where=norms[:, None] > 0)
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0)


def flame_admitted(updates: np.ndarray, cluster: Clusterer) -> np.ndarray:
    """Indices of the updates in the majority cluster (none when no cluster forms)."""
    labels = np.asarray(cluster(cosine_distances(updates), len(updates) // 2 + 1))
    found = labels[labels >= 0]
    if not found.size:
        return np.array([], dtype=int)
    majority = np.bincount(found).argmax()
    return np.flatnonzero(labels == majority)


def flame_combine(
    updates: np.ndarray,
    cluster: Clusterer,
    rng: np.random.Generator,
    noise_factor: float = NOISE_FACTOR,
) -> tuple[np.ndarray, dict[str, float]]:
    """FLAME's noised mean of the admitted, median-clipped updates, and its figures."""
    admitted = flame_admitted(updates, cluster)
    norms = np.linalg.norm(updates, axis=1)
    bound = float(np.median(norms))
    if admitted.size:
        kept = updates[admitted]
        scale = np.minimum(
            1.0,
            np.divide(bound, norms[admitted], out=np.ones(len(kept)), where=norms[admitted] > 0),
        )
        mean = (kept * scale[:, None]).mean(axis=0)
    else:
        mean = np.zeros(updates.shape[1])
    noised = mean + rng.normal(0.0, noise_factor * bound, size=mean.shape)
    return noised, {"flame-admitted": int(admitted.size), "flame-clip": bound}


class Flame(UpdateRuleFedAvg):
    """FedAvg replaced by FLAME's filter, clip and noise (see module doc)."""

    def __init__(
        self,
        *,
        cluster: Clusterer | None = None,
        noise_factor: float = NOISE_FACTOR,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._cluster = cluster
        self.noise_factor = float(noise_factor)

    def set_clusterer(self, cluster: Clusterer) -> None:
        """Give the strategy its density clustering (HDBSCAN on precomputed distances)."""
        self._cluster = cluster

    def combine(self, updates, weights, server_round):
        """Cluster, clip at the median norm, average, add noise."""
        if self._cluster is None:
            raise RuntimeError("FLAME needs a clusterer (set_clusterer)")
        return flame_combine(updates, self._cluster, self.rng(server_round), self.noise_factor)


@register_defence("flame")
def flame(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """FLAME: HDBSCAN on cosine distances, clipping at the median norm, Gaussian noise."""
    return wrapped(Flame, wrap)(seed=settings.seed, **common)
