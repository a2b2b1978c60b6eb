"""Fang et al. (USENIX Security 2020), "Local model poisoning attacks to Byzantine-robust
federated learning": the full-knowledge attack tailored to Krum.

The attackers send ``-lambda * s``, with ``s`` the sign of the honest mean update (the
direction in which the global model would move), all of them the same vector. ``lambda``
starts at the paper's upper bound and is halved until Krum, run by the attackers on the
honest updates plus their copies, selects a copy (or reaches the paper's threshold ``1e-5``).
Copies sit at distance 0 from one another, which Krum's score rewards; once selected, the
global model moves against its honest direction every round. The attackers assume Krum
allows for ``f = num_attackers`` malicious banks.
"""

from __future__ import annotations

import numpy as np

from .base import BankTools
from .exchange import TrainExchange
from .full_knowledge import FullKnowledge
from .registry import register_attack

SMALLEST_LAMBDA = 1e-5


def krum_choice(updates: np.ndarray, num_malicious: int) -> int:
    """Index of the update Krum selects (sum of squared distances to its ``n - f - 2``
    nearest neighbours, smallest wins; the first on ties, as Flower's Krum)."""
    sq = np.square(updates).sum(axis=1)
    dist = sq[:, None] + sq[None, :] - 2.0 * updates @ updates.T
    closest = max(1, len(updates) - num_malicious - 2)
    scores = [np.sort(row)[1 : closest + 1].sum() for row in dist]
    return int(np.argmin(scores))


def fang_krum_lambda(honest: np.ndarray, direction: np.ndarray, copies: int) -> float:
    """The largest ``lambda`` (halving from the paper's upper bound) for which Krum over
    ``honest`` plus ``copies`` copies of ``-lambda * direction`` selects a copy; the paper's
    threshold :data:`SMALLEST_LAMBDA` if none above it does.

    The bound (Fang et al., eq. for the full-knowledge Krum attack), with ``m`` updates of
    which ``c`` are copies and ``d`` parameters: the smallest, over honest updates, sum of
    distances to its ``m - c - 2`` nearest honest neighbours, over ``(m - 2c - 1) sqrt(d)``,
    plus the largest honest update's norm (its distance to the received model) over
    ``sqrt(d)``.
    """
    m, d = len(honest) + copies, honest.shape[1]
    sq = np.square(honest).sum(axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * honest @ honest.T, 0.0))
    closest = min(len(honest) - 1, max(1, m - copies - 2))
    spread = min(np.sort(row)[1 : closest + 1].sum() for row in dist)
    lam = spread / (max(1, m - 2 * copies - 1) * np.sqrt(d)) + float(np.sqrt(sq.max())) / np.sqrt(d)
    while lam >= SMALLEST_LAMBDA:
        crafted = np.repeat((-lam * direction)[None, :], copies, axis=0)
        if krum_choice(np.vstack([honest, crafted]), copies) >= len(honest):
            return float(lam)
        lam /= 2.0
    return SMALLEST_LAMBDA


@register_attack
class FangKrum(FullKnowledge):
    """Fang et al.'s Krum attack (see module doc). Knows every bank's honest update of
    this round and the number of attackers."""

    name = "fang_krum"
    params = ()

    def craft(self, pool: np.ndarray, exchange: TrainExchange, tools: BankTools) -> np.ndarray:
        """``-lambda * sign(mean honest update)``, identical at every attacker."""
        direction = np.sign(pool.mean(axis=0))
        copies = max(1, self.num_attackers)
        return -fang_krum_lambda(pool, direction, copies) * direction
