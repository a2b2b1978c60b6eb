"""Shejwalkar and Houmansadr (NDSS 2021), "Manipulating the Byzantine": the
aggregation-agnostic Min-Max attack.

The attackers send ``mu + gamma * p``, ``mu`` the honest mean update and ``p = -std`` the
honest coordinate-wise standard deviation turned against the honest direction (the paper's
"inverse std" perturbation). ``gamma`` is the largest value (the paper's search: start at
10, step halving, tolerance 1e-5) for which the malicious update's largest distance to an
honest update is no more than the largest distance between two honest updates: it is no
further from any honest update than honest updates are from one another.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import BankTools
from .bulletin import FullKnowledge
from .exchange import TrainExchange
from .registry import register_attack

GAMMA_START = 10.0
TOLERANCE = 1e-5


def pairwise_sq(updates: np.ndarray) -> np.ndarray:
    """Squared L2 distances between the rows of ``updates``."""
    sq = np.square(updates).sum(axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * updates @ updates.T, 0.0)


def largest_gamma(fits: Callable[[float], bool]) -> float:
    """The paper's search for the largest ``gamma`` with ``fits(gamma)``."""
    gamma, step, best = GAMMA_START, GAMMA_START / 2.0, 0.0
    while abs(best - gamma) > TOLERANCE:
        if fits(gamma):
            best = gamma
            gamma += step / 2.0
        else:
            gamma -= step / 2.0
        step /= 2.0
        if step < TOLERANCE / 4.0:
            break
    return best


def min_max_fits(honest: np.ndarray, malicious: np.ndarray) -> bool:
    """Largest distance to an honest update no more than the honest diameter."""
    worst = float(np.square(honest - malicious).sum(axis=1).max())
    return worst <= float(pairwise_sq(honest).max())


def min_sum_fits(honest: np.ndarray, malicious: np.ndarray) -> bool:
    """Sum of squared distances to the honest updates no more than the largest such sum of
    an honest update."""
    total = float(np.square(honest - malicious).sum())
    return total <= float(pairwise_sq(honest).sum(axis=1).max())


def agnostic_update(
    honest: np.ndarray, fits: Callable[[np.ndarray, np.ndarray], bool]
) -> np.ndarray:
    """``mu - gamma * std * sign(mu)`` with the largest ``gamma`` for which ``fits``."""
    mu = honest.mean(axis=0)
    perturbation = -honest.std(axis=0) * np.sign(mu)
    gamma = largest_gamma(lambda g: fits(honest, mu + g * perturbation))
    return mu + gamma * perturbation


@register_attack
class MinMax(FullKnowledge):
    """Min-Max (see module doc). Knows every bank's honest update (one round old)."""

    name = "min_max"
    params = ()

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The Min-Max update, the same at every attacker."""
        return agnostic_update(pool, min_max_fits)
