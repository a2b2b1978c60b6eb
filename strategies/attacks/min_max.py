"""Shejwalkar and Houmansadr (NDSS 2021), "Manipulating the Byzantine": the
aggregation-agnostic Min-Max attack.

The attackers send ``mu + gamma * p``, ``mu`` the honest mean update and ``p`` one of the
paper's three perturbations, each turned against the honest direction: the inverse unit
vector ``-mu / ||mu||``, the inverse sign ``-sign(mu)`` or the inverse standard deviation
``-std`` (``perturbation`` = ``unit_vec``, ``sign``, ``std``). ``gamma`` is the largest value
for which the malicious update's largest distance to an honest update is no more than the
largest distance between two honest updates: it is no further from any honest update than
honest updates are from one another. The paper's search: start at ``gamma = 10``, move by
half the last step (first 5) up on success and down on failure, until the step is below
``1e-5``; it finds any ``gamma`` in ``(0, 20)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import BankTools
from .exchange import AttackError, TrainExchange
from .full_knowledge import FullKnowledge
from .registry import register_attack

GAMMA_START = 10.0
TOLERANCE = 1e-5
PERTURBATIONS = ("unit_vec", "sign", "std")
DEFAULT_PERTURBATION = "unit_vec"


def pairwise_sq(updates: np.ndarray) -> np.ndarray:
    """Squared L2 distances between the rows of ``updates``."""
    sq = np.square(updates).sum(axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * updates @ updates.T, 0.0)


def largest_gamma(fits: Callable[[float], bool]) -> float:
    """The paper's search for the largest ``gamma`` in ``(0, 2 * GAMMA_START)`` with
    ``fits(gamma)`` (0 if none is found)."""
    gamma, step, best = GAMMA_START, GAMMA_START, 0.0
    while abs(best - gamma) > TOLERANCE and step > TOLERANCE:
        if fits(gamma):
            best = gamma
            gamma += step / 2.0
        else:
            gamma -= step / 2.0
        step /= 2.0
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


def perturbation_vector(honest: np.ndarray, kind: str) -> np.ndarray:
    """The paper's perturbation ``p`` (against the honest mean direction), see module doc.

    Raises
    ------
    AttackError
        On an unknown ``kind``.
    """
    mu = honest.mean(axis=0)
    if kind == "unit_vec":
        size = float(np.linalg.norm(mu))
        return -mu / size if size > 0 else np.zeros_like(mu)
    if kind == "sign":
        return -np.sign(mu)
    if kind == "std":
        return -honest.std(axis=0)
    raise AttackError(f"attack: perturbation must be one of {PERTURBATIONS}, got {kind!r}")


def agnostic_update(
    honest: np.ndarray, fits: Callable[[np.ndarray, np.ndarray], bool], perturbation: str
) -> np.ndarray:
    """``mu + gamma * p`` with the largest ``gamma`` for which ``fits``."""
    mu = honest.mean(axis=0)
    p = perturbation_vector(honest, perturbation)
    gamma = largest_gamma(lambda g: fits(honest, mu + g * p))
    return mu + gamma * p


@register_attack
class MinMax(FullKnowledge):
    """Min-Max (see module doc). Knows every bank's honest update of this round."""

    name = "min_max"
    params = ("perturbation",)

    def __init__(self, *, perturbation: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.perturbation = perturbation or DEFAULT_PERTURBATION
        perturbation_vector(np.zeros((1, 1)), self.perturbation)  # fail early on a bad name

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """The Min-Max update, the same at every attacker."""
        return agnostic_update(pool, min_max_fits, self.perturbation)
