"""RFA, the geometric median of the updates (Pillutla, Kakade and Harchaoui, IEEE TSP 2022,
"Robust aggregation for federated learning"), by the smoothed Weiszfeld algorithm.

``v = sum_i beta_i x_i / sum_i beta_i`` with ``beta_i = alpha_i / max(nu, ||v - x_i||)``,
``alpha_i`` the banks' weights, from the weighted mean, for ``iterations`` steps (the paper
uses 3-4) or until ``v`` moves less than ``1e-8``. The geometric median has breakdown point
1/2: fewer than half the weight cannot move it arbitrarily far. Pillutla et al. run each
Weiszfeld step as a secure average (the banks receive ``v`` and send ``beta_i x_i``); here it
runs over plaintext updates (``strategy=rfa``) or over group means (``grouped_secagg`` with
``strategy.robust=geomed``).
"""

from __future__ import annotations

import numpy as np
from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped
from .update_rule import UpdateRuleFedAvg

SMOOTHING = 1e-6


def geometric_median(
    points: np.ndarray, weights: np.ndarray | None = None, iterations: int = 4
) -> np.ndarray:
    """Smoothed Weiszfeld geometric median of the rows of ``points``."""
    alpha = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    v = alpha @ points / alpha.sum()
    for _ in range(iterations):
        beta = alpha / np.maximum(SMOOTHING, np.linalg.norm(points - v, axis=1))
        new = beta @ points / beta.sum()
        moved = float(np.linalg.norm(new - v))
        v = new
        if moved < 1e-8:
            break
    return v


class RFA(UpdateRuleFedAvg):
    """FedAvg with the geometric median of the updates (see module doc)."""

    def __init__(self, *, iterations: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.iterations = int(iterations)

    def combine(self, updates, weights, server_round):
        """The weighted geometric median."""
        return geometric_median(updates, weights, self.iterations), {}


@register_defence("rfa")
def rfa(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """The weighted geometric median of the banks' updates (smoothed Weiszfeld)."""
    return wrapped(RFA, wrap)(seed=settings.seed, **common)
