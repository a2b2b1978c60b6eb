"""ALIE, "A Little Is Enough" (Baruch, Baruch and Goldberg, NeurIPS 2019), for one bank.

The attacker sends, per coordinate ``j``, ``mu_j - z * sigma_j * sign(mu_j)``: the honest
mean update pulled against its own direction by ``z`` honest standard deviations. Staying
inside the honest spread is what lets it through median, trimmed mean and Krum, which drop
only outliers; repeated every round, the small shift adds up.

``z``: the paper's largest shift that still leaves the attackers' values inside the
majority, ``z = Phi^-1((n - s) / n)`` with ``s = floor(n / 2 + 1) - m`` for ``n`` banks and
``m`` attackers. For one attacker among 10 banks that is ``Phi^-1(0.5) = 0``: ALIE needs
several attackers, or a larger ``attack.z`` chosen by hand.

What it uses for ``mu`` and ``sigma`` (the literature assumes the attacker sees the honest
updates; a bank does not): a single attacker bootstraps them from its own rows. It trains
the received global model again on ``samples`` bootstrap resamples of its rows (same size,
with replacement), through its own train handler; ``mu`` is the mean of those updates and
its honest one, ``sigma`` their standard deviation. With banks of similar size and
similar borrowers (the 10 equal banks of the threat matrix), a bank-size bootstrap sample
varies as much as another bank's rows do, so this estimates the spread between honest
banks. Colluding banks pool their honest updates instead (:mod:`.colluding`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm as gaussian

from .base import Attack, BankTools
from .bulletin import bootstrap_pool
from .exchange import TrainExchange, unflatten
from .registry import register_attack


def alie_z(num_banks: int, num_attackers: int) -> float:
    """The paper's ``z_max`` for ``num_banks`` banks of which ``num_attackers`` attack
    (0 when no positive shift stays inside the majority)."""
    supporters = math.floor(num_banks / 2 + 1) - num_attackers
    share = (num_banks - supporters) / num_banks
    if share <= 0.5:
        return 0.0
    return float(gaussian.ppf(min(share, 1.0 - 1e-9)))


def alie_update(mu: np.ndarray, sigma: np.ndarray, z: float) -> np.ndarray:
    """``mu - z * sigma * sign(mu)``, coordinate-wise."""
    return mu - z * sigma * np.sign(mu)


@register_attack
class ALIE(Attack):
    """The "a little is enough" attack: shift the update by ``z`` honest standard deviations per
    coordinate against the honest direction, with ``mu`` and ``sigma`` bootstrapped from the
    bank's own rows (``samples`` extra trainings per round).

    Knows: its own rows and honest update, the number of banks and of attackers (for the
    default ``z``). It does not see other banks' updates.
    """

    name = "alie"
    params = ("z", "samples")
    needs_bank_count = True

    def __init__(
        self,
        *,
        num_banks: int,
        num_attackers: int = 1,
        z: float | None = None,
        samples: int = 5,
    ) -> None:
        self.z = alie_z(num_banks, num_attackers) if z is None else float(z)
        self.samples = int(samples)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Bootstrap the spread, then send the shifted update with the honest weight."""
        stacked = bootstrap_pool(exchange, tools, self.samples)
        mu = stacked.mean(axis=0)
        sigma = stacked[1:].std(axis=0, ddof=1) if self.samples > 1 else np.zeros_like(mu)
        shifted = unflatten(alie_update(mu, sigma, self.z), exchange.global_arrays)
        return exchange.model_from_update(shifted), exchange.weight
