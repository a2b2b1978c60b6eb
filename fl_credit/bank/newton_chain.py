"""The bank's own configuration of Newton's model chain (:mod:`strategies.secagg.chain`).

The chain makes a bank train only at the model it recomputes itself; what it recomputes
with -- ``l2``, the convergence tolerance ``tol`` and the monotone constraints -- is the
bank's own configuration, never the request's (a coordinator that chose them would choose
the chain's points). The start is the zero model and ``N`` the roster's registered rows of
the chain's first banks (both fixed in :mod:`strategies.secagg.chain`).

Where the values come from. Deployment: the SuperNode's ``--node-config`` keys below (a bank
that sets none holds the defaults of :class:`~fl_credit.config.schema.TrainConfig`).
Simulation: the run's agreed Hydra configuration, handed to the simulated banks' ClientApp
when it is built, as their floors are (:class:`fl_credit.bank.floors.BankFloors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp.typing import ClientAppCallable, Mod

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig, TrainConfig
from strategies.secagg.chain import OWN_KEY
from strategies.secagg.records import SECAGG_KEY

log = logging.getLogger(__name__)

NODE_L2 = "newton-l2"
NODE_TOL = "newton-tol"
NODE_MONOTONE = "newton-monotone"
MONOTONE_SEPARATOR = ";"  # between specs in the node config (a spec may hold commas)

_DEFAULT = TrainConfig()


@dataclass(frozen=True)
class NewtonPins:
    """The chain configuration a bank holds itself.

    Attributes
    ----------
    l2 : float
        L2 penalty of the objective.
    tol : float
        Convergence tolerance (the bank trains no further once the chain converged).
    monotone : tuple of str
        ``train.monotone`` specs: the step constraints.
    """

    l2: float = _DEFAULT.l2
    tol: float = _DEFAULT.tol
    monotone: tuple[str, ...] = _DEFAULT.monotone

    @classmethod
    def from_experiment(cls, cfg: ExperimentConfig) -> NewtonPins:
        """The values of the agreed configuration ``cfg`` (simulated banks)."""
        return cls(float(cfg.train.l2), float(cfg.train.tol), tuple(cfg.train.monotone))

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, object]) -> NewtonPins:
        """A deployed bank's values (raises ValueError on one that does not parse)."""
        specs = str(node_config.get(NODE_MONOTONE, ""))
        return cls(
            l2=float(node_config.get(NODE_L2, _DEFAULT.l2)),  # type: ignore[arg-type]
            tol=float(node_config.get(NODE_TOL, _DEFAULT.tol)),  # type: ignore[arg-type]
            monotone=tuple(s.strip() for s in specs.split(MONOTONE_SEPARATOR) if s.strip()),
        )

    def node_config_entries(self) -> dict[str, object]:
        """The ``--node-config`` entries that differ from a bank's defaults."""
        entries: dict[str, object] = {}
        if self.l2 != _DEFAULT.l2:
            entries[NODE_L2] = self.l2
        if self.tol != _DEFAULT.tol:
            entries[NODE_TOL] = self.tol
        if self.monotone:
            entries[NODE_MONOTONE] = MONOTONE_SEPARATOR.join(self.monotone)
        return entries


def _chained(msg: Message) -> bool:
    if msg.metadata.message_type != "train" or not msg.has_content():
        return False
    request = msg.content.config_records.get(SECAGG_KEY)
    return request is not None and "chain" in request


HeldInputs = Callable[[Message, Context], tuple[list[str], np.ndarray]]
"""``(msg, context) -> (feature names, standardiser std)``: what the bank holds itself (its
file's feature names, the standardiser it kept), for the monotone constraints."""


def own_chain(
    pins: NewtonPins, arrays: Sequence[str], msg: Message, context: Context, held: HeldInputs
) -> ConfigRecord:
    """The bank's chain configuration for a chained ``train`` request: its own values, the
    model's array names it loads, and the constraints of its own monotone specs."""
    own: dict = {"chain": "newton", "chain-arrays": list(arrays)}
    own.update({"chain-l2": pins.l2, "chain-tol": pins.tol})
    if pins.monotone:
        from fl_credit.validation.monotone import chains_for, increments
        from strategies.newton import chain_constraints

        names, std = held(msg, context)
        steps = increments(chains_for(pins.monotone, names), std, len(std) + 1)
        own.update(chain_constraints(steps))
    return ConfigRecord(own)


def chain_pins_mod(
    floors_of: Callable[[Context], Any], arrays: Sequence[str], held: HeldInputs
) -> Mod:
    """Client mod: write the bank's own chain configuration (``floors_of(context).newton``)
    into its ``context.state`` for a chained ``train`` request, where
    :mod:`strategies.secagg.client_mod` reads it; remove it for any other message. Place it
    outside the secure-aggregation mod."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if OWN_KEY in context.state:
            del context.state[OWN_KEY]
        if _chained(msg):
            try:
                pins = floors_of(context).newton
                context.state[OWN_KEY] = own_chain(pins, arrays, msg, context, held)
            except (FlCreditError, KeyError, ValueError) as err:  # the chain then refuses
                log.warning("newton chain: no configuration of this bank's own: %s", err)
        return call_next(msg, context)

    return _mod
