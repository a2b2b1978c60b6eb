"""The shape every attack shares, and the tools a malicious bank has at hand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .exchange import AttackError, TrainExchange


def _no_peers(partition_id: int) -> list[np.ndarray]:
    raise AttackError("attack: no other bank's rows are reachable here")


@dataclass
class BankTools:
    """What a malicious bank can do besides reading its honest reply.

    Attributes
    ----------
    retrain : callable
        ``retrain(spec) -> list of numpy.ndarray``: run the bank's own train handler again on
        the same global model with its rows poisoned by ``spec`` (see
        :func:`strategies.attacks.poison_rows`, e.g. ``{"kind": "resample", "seed": 3}`` for
        a bootstrap resample) and return the trained model. The bank's state is rolled back
        around the call, so the extra training leaves no trace in its accountants.
    rng : numpy.random.Generator
        Randomness seeded from the run's seed, the round and the bank.
    peer_model : callable
        ``peer_model(partition_id) -> list of numpy.ndarray``: the model the bank with that
        partition id trains honestly on the same global model this round (the simulation
        runs the train handler on that bank's rows; full-knowledge attacks only).
    """

    retrain: Callable[[Mapping[str, Any]], list[np.ndarray]]
    rng: np.random.Generator
    peer_model: Callable[[int], list[np.ndarray]] = field(default=_no_peers)


class Attack:
    """A malicious bank's behaviour in a train round.

    Subclasses set :attr:`name` (the ``attack=`` config name), :attr:`params` (the
    ``attack.*`` keys they read) and override :meth:`poison` (data poisoning: ask the bank's
    train handler to poison its own rows) and/or :meth:`rewrite` (model poisoning: change the
    trained model and the claimed weight after honest training). The default is honest.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ()
    observes_before_start: ClassVar[bool] = False
    """Whether :meth:`observe` also runs in rounds before ``start_round``."""
    min_banks: ClassVar[int] = 1
    """Fewest attacked banks the attack works with."""
    needs_bank_count: ClassVar[bool] = False
    """Whether the constructor takes ``num_banks`` and ``num_attackers``."""
    needs_channel: ClassVar[bool] = False
    """Whether the constructor takes ``channel`` (a folder the colluders share)."""
    poisons_rows: ClassVar[bool] = False
    """Whether the attack changes the bank's rows (the others rewrite its model update only)."""
    plants_trigger: ClassVar[bool] = False
    """Whether the attack plants the backdoor trigger (measured by ``backdoor_success``)."""
    free_rides: ClassVar[bool] = False
    """Whether the attack contributes nothing (measured by ``free_rider_gain``)."""

    @classmethod
    def rewrites(cls, settings: Mapping[str, Any]) -> bool:
        """Whether the attack configured with ``settings`` (its ``attack.*`` keys; missing or
        None: the attack's default) changes the model a bank sends. False: data poisoning
        only, which also works when the reply is not a model (e.g. a Newton round's sums)."""
        return True

    @property
    def rewrites_model(self) -> bool:
        """:meth:`rewrites` for this attack's own settings."""
        return type(self).rewrites(self.describe())

    def poison(self, server_round: int) -> dict[str, Any] | None:
        """Poisoning spec for the bank's own rows this round (None: train on clean rows)."""
        return None

    def observe(self, exchange: TrainExchange, tools: BankTools) -> None:
        """See the honest exchange (every round the attack is active, or from round 1 when
        :attr:`observes_before_start`); the default does nothing."""

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list[np.ndarray], float]:
        """The model and ``num-examples`` the malicious bank sends (default: honest)."""
        return exchange.honest_arrays, exchange.weight

    def describe(self) -> dict[str, Any]:
        """The attack's name and settings, for ``metrics.json``."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.params}}


def unit_gaussian(like: list[np.ndarray], norm: float, rng: np.random.Generator) -> list:
    """A Gaussian direction over all arrays, scaled to L2 norm ``norm``."""
    draws = [rng.standard_normal(a.shape) for a in like]
    total = float(np.sqrt(sum(float(np.sum(d * d)) for d in draws)))
    scale = norm / total if total > 0 else 0.0
    return [d * scale for d in draws]
