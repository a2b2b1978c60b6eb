"""Colluding banks: several malicious banks pool their honest updates and send one vector.

How they talk: a shared folder stands for the colluders' private channel (simulation only).
Every round, from round 1 on, each colluder writes its honest update there. From
``start_round`` on, each reads the honest updates all colluders wrote in the *previous*
round, and all of them send the same malicious update computed from that pool:

- ``base=alie``: ``mu - z * sigma * sign(mu)`` with the pool's mean and standard deviation
  and the paper's ``z`` for ``m`` attackers (:func:`.alie.alie_z`);
- ``base=sign_flip``: ``-factor * mu``.

Using the previous round keeps the colluders independent of the order in which the
simulation runs the banks (they never wait for one another); updates of full-batch
training change little from one round to the next. In the first round there is no pool
yet, and each colluder uses its own honest update alone (for ``alie``: no shift).
Identical malicious updates sit at distance 0 from one another, which is what Krum's
"closest neighbours" score rewards.

Knows: the honest updates of all colluders (one round old), the number of banks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .alie import alie_update, alie_z
from .base import Attack, BankTools
from .bulletin import Bulletin
from .exchange import TrainExchange, flatten, unflatten
from .registry import register_attack

COLLUDING_BASES = ("alie", "sign_flip")


@register_attack
class Colluding(Attack):
    """Coordinated ALIE or sign flip by the banks in ``attack.banks`` (see module doc)."""

    name = "colluding"
    params = ("base", "factor", "z")
    min_banks = 2
    observes_before_start = True
    needs_bank_count = True
    needs_channel = True

    def __init__(
        self,
        *,
        channel: str | Path,
        num_banks: int,
        num_attackers: int,
        base: str = "alie",
        factor: float = 10.0,
        z: float | None = None,
    ) -> None:
        if base not in COLLUDING_BASES:
            raise ValueError(f"attack.base must be one of {COLLUDING_BASES}, got {base!r}")
        self.channel = str(channel)
        self.bulletin = Bulletin(channel)
        self.base = base
        self.factor = float(factor)
        self.z = alie_z(num_banks, num_attackers) if z is None else float(z)

    def observe(self, exchange: TrainExchange, tools: BankTools) -> None:
        """Publish this round's honest update to the other colluders."""
        self.bulletin.publish(exchange)

    def pool(self, exchange: TrainExchange) -> np.ndarray:
        """The colluders' honest updates of the previous round (own update if none)."""
        pool = self.bulletin.previous(exchange.server_round)
        return pool if len(pool) else flatten(exchange.update)[None, :]

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The colluders' common malicious update, with the honest weight."""
        pool = self.pool(exchange)
        mu = pool.mean(axis=0)
        if self.base == "sign_flip":
            malicious = -self.factor * mu
        else:
            sigma = pool.std(axis=0, ddof=1) if len(pool) > 1 else np.zeros_like(mu)
            malicious = alie_update(mu, sigma, self.z)
        update = unflatten(malicious, exchange.global_arrays)
        return exchange.model_from_update(update), exchange.weight
