"""The aggregation registry: every ``strategy=`` (plain, secure or robust aggregation)
registers its builder here.

A strategy is one module of this package whose builder is decorated with
``@register_defence(name, plaintext=..., robust=..., sums=...)``, plus its
``conf/strategy/<name>.yaml`` (the threat matrix's ``+defence=<name>`` preset is made from
the registry); :func:`strategy_names` imports every module of the package first, so nothing
else lists the strategies.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.serverapp.strategy import FedAvg


@dataclass(frozen=True)
class RobustSettings:
    """The ``strategy.*`` settings the builders read, and the number of banks."""

    num_banks: int
    beta: float = 0.2
    num_malicious: int = 1
    num_selected: int | None = None
    max_norm: float | None = None
    seed: int = 0
    """Seed of the rules that draw at random (bucketing, subsampling, groups)."""
    proximal_mu: float = 0.0
    threshold: int | None = None
    """Secure-aggregation threshold (None: a strict majority)."""
    colluders: int = 0
    """Banks assumed to collude with the coordinator (secure aggregation)."""
    group_size: int = 3
    robust: str = "median"
    """The rule across group means (grouped secure aggregation)."""


Builder = Callable[..., FedAvg]
"""``build(settings, wrap, **common) -> FedAvg``; ``wrap`` (or None) is applied to the
strategy class first; ``common`` goes to the strategy's constructor."""


@dataclass(frozen=True)
class Defence:
    """A registered aggregation strategy: its ``strategy=`` name, builder and kind."""

    name: str
    build: Builder
    plaintext: bool = True
    """True when the coordinator sees each bank's update (no secure aggregation); False
    for secure sums, whose builder also gets the secure-sum settings in ``common``."""
    robust: bool = True
    """True for a rule against malicious banks (not a weighted mean of every update)."""
    sums: bool = False
    """True when the aggregate is the sum of the banks' replies, so that Newton rounds,
    summed histograms and bank-level DP noise can use it."""


DEFENCES: dict[str, Defence] = {}
"""Registered aggregation strategies by ``strategy=`` name."""


def register_defence(
    name: str, *, plaintext: bool = True, robust: bool = True, sums: bool = False
) -> Callable[[Builder], Builder]:
    """Decorator: register ``build`` as the aggregation ``strategy=<name>``.

    The defaults fit a robust rule over plaintext updates; see :class:`Defence` for the
    flags.

    Raises
    ------
    ValueError
        When another builder already holds ``name``.
    """

    def register(build: Builder) -> Builder:
        held = DEFENCES.get(name)
        if held is not None and held.build.__qualname__ != build.__qualname__:
            raise ValueError(f"defence {name!r} is already registered")
        DEFENCES[name] = Defence(name, build, plaintext, robust, sums)
        return build

    return register


def discover() -> None:
    """Import every module of :mod:`strategies.robust` (each registers its defences)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")


def strategy_names() -> tuple[str, ...]:
    """Every registered aggregation strategy (the values ``strategy=`` takes), sorted."""
    discover()
    return tuple(sorted(DEFENCES))


def defence_names() -> tuple[str, ...]:
    """The registered robust rules (plaintext or over secure group sums), sorted."""
    discover()
    return tuple(sorted(n for n, d in DEFENCES.items() if d.robust))


def plaintext_defences() -> tuple[str, ...]:
    """The registered robust rules that need each bank's update in plaintext, sorted."""
    discover()
    return tuple(sorted(n for n, d in DEFENCES.items() if d.robust and d.plaintext))


def summing_strategies() -> tuple[str, ...]:
    """The registered strategies whose aggregate is the sum of the replies, sorted."""
    discover()
    return tuple(sorted(n for n, d in DEFENCES.items() if d.sums))


def strategy(name: str) -> Defence:
    """The registered strategy ``name``.

    Raises
    ------
    ValueError
        For an unregistered name.
    """
    names = strategy_names()
    if name not in DEFENCES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(names)}")
    return DEFENCES[name]


def wrapped(cls: type, wrap: Callable[[type], type] | None) -> type:
    """``wrap(cls)``, or ``cls`` without a wrapper."""
    return wrap(cls) if wrap is not None else cls


def build_defence(
    name: str, settings: RobustSettings, wrap: Callable[[type], type] | None = None, **common: Any
) -> FedAvg:
    """The registered strategy ``name`` built with ``settings``.

    Raises
    ------
    ValueError
        For an unregistered name, or settings the rule cannot run with (one line).
    """
    return strategy(name).build(settings, wrap, **common)
