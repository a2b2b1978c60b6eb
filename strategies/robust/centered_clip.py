"""Centered clipping with bucketing (Karimireddy, He and Jaggi, ICLR 2022, "Byzantine-robust
learning on heterogeneous datasets via bucketing"; centered clipping from Karimireddy et al.,
ICML 2021).

Each round the updates are shuffled (seeded) and averaged in buckets of ``bucket`` (the
paper's s = 2), which shrinks the honest spread; then ``iterations`` steps of
``v <- v + mean_i clip(x_i - v, tau)`` start from the previous round's aggregate (the
server's momentum), with ``clip(z, tau) = z min(1, tau / ||z||)``. ``tau`` unset: the median
distance of the buckets to the starting point, so honest buckets pass mostly unclipped and
an outlier moves ``v`` by at most ``tau / buckets``. Needs plaintext updates
(``strategy=centered_clip``), or runs over group means (``grouped_secagg`` with
``strategy.robust=centered_clip``, where the groups are the buckets).
"""

from __future__ import annotations

import numpy as np
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg


def buckets(updates: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Means of the shuffled updates in buckets of ``size`` (the last may be smaller)."""
    order = rng.permutation(len(updates))
    return np.stack([updates[order[i : i + size]].mean(axis=0) for i in range(0, len(order), size)])


def centered_clip(
    points: np.ndarray, start: np.ndarray, tau: float | None = None, iterations: int = 1
) -> tuple[np.ndarray, float]:
    """Centered clipping of ``points`` from ``start``; returns the result and ``tau`` used."""
    v = np.asarray(start, dtype=np.float64).copy()
    if tau is None:
        tau = float(np.median(np.linalg.norm(points - v, axis=1)))
    for _ in range(iterations):
        diff = points - v
        norms = np.linalg.norm(diff, axis=1)
        scale = np.minimum(1.0, tau / np.maximum(norms, 1e-12)) if tau > 0 else np.zeros(len(diff))
        v = v + (diff * scale[:, None]).mean(axis=0)
    return v, float(tau)


class CenteredClip(UpdateRuleFedAvg):
    """FedAvg with centered clipping over buckets (see module doc)."""

    def __init__(
        self, *, bucket: int = 2, tau: float | None = None, iterations: int = 3, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = int(bucket)
        self.tau = tau
        self.iterations = int(iterations)
        self._momentum: np.ndarray | None = None

    def combine(self, updates, weights, server_round):
        """Bucket, then clip around the previous aggregate."""
        points = buckets(updates, self.bucket, self.rng(server_round))
        start = self._momentum if self._momentum is not None else np.zeros(updates.shape[1])
        if start.shape != updates[0].shape:
            start = np.zeros(updates.shape[1])
        v, tau = centered_clip(points, start, self.tau, self.iterations)
        self._momentum = v
        return v, {"centered-clip-tau": tau}


@register_defence("centered_clip")
def centered_clip_defence(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """Centered clipping over seeded buckets of the banks' updates."""
    return wrapped(CenteredClip, wrap)(seed=settings.seed, **common)
