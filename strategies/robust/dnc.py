"""Divide-and-conquer, DnC (Shejwalkar and Houmansadr, NDSS 2021).

For ``iterations`` rounds of filtering: pick ``subsample`` coordinates at random (seeded),
centre the updates on their mean, take the top right singular vector ``v`` of the centred
matrix and score each update by its squared projection on ``v``; keep the
``n - filtering * num_malicious`` lowest scores. Banks kept in every iteration are averaged
(weighted). Attacks that stay inside the honest spread per coordinate (ALIE, Min-Max) share
a common direction, which the top singular vector finds. Needs plaintext updates.
"""

from __future__ import annotations

import numpy as np
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg


def dnc_keep(
    updates: np.ndarray,
    num_malicious: int,
    rng: np.random.Generator,
    *,
    iterations: int = 5,
    subsample: int | None = None,
    filtering: float = 1.0,
) -> np.ndarray:
    """Indices of the updates DnC keeps."""
    n, d = updates.shape
    keep = set(range(n))
    removed = int(filtering * num_malicious)
    size = d if subsample is None else min(d, int(subsample))
    for _ in range(iterations):
        cols = np.sort(rng.choice(d, size=size, replace=False))
        part = updates[:, cols]
        centred = part - part.mean(axis=0)
        top = np.linalg.svd(centred, full_matrices=False)[2][0]
        scores = (centred @ top) ** 2
        keep &= set(np.argsort(scores)[: n - removed].tolist())
    return np.array(sorted(keep), dtype=int)


class DnC(UpdateRuleFedAvg):
    """FedAvg of the updates DnC keeps (see module doc)."""

    def __init__(
        self,
        *,
        num_malicious: int = 1,
        iterations: int = 5,
        subsample: int | None = None,
        filtering: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_malicious = int(num_malicious)
        self.iterations = int(iterations)
        self.subsample = subsample
        self.filtering = float(filtering)

    def combine(self, updates, weights, server_round):
        """Weighted mean of the kept updates."""
        keep = dnc_keep(
            updates,
            self.num_malicious,
            self.rng(server_round),
            iterations=self.iterations,
            subsample=self.subsample,
            filtering=self.filtering,
        )
        if not len(keep):
            keep = np.arange(len(updates))
        w = weights[keep]
        return w @ updates[keep] / w.sum(), {"dnc-kept": len(keep)}


@register_defence("dnc")
def dnc(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """Divide-and-conquer: drop the updates farthest along the top singular direction."""
    return wrapped(DnC, wrap)(num_malicious=settings.num_malicious, seed=settings.seed, **common)
