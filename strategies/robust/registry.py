"""The defence registry: every robust aggregation rule registers its builder here.

A defence is one module of this package whose builder is decorated with
``@register_defence(name, plaintext=...)``, plus its ``conf/strategy/<name>.yaml`` (and a
``conf/defence`` preset for the threat matrix); :func:`defence_names` imports every module
of the package first, so nothing else lists the defences.
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
    """The ``strategy.*`` settings a robust rule reads, and the number of banks."""

    num_banks: int
    beta: float = 0.2
    num_malicious: int = 1
    num_selected: int | None = None
    max_norm: float | None = None
    seed: int = 0
    """Seed of the rules that draw at random (bucketing, subsampling)."""


Builder = Callable[..., FedAvg]
"""``build(settings, wrap, **common) -> FedAvg``; ``wrap`` (or None) is applied to the
strategy class first; ``common`` goes to the strategy's constructor."""


@dataclass(frozen=True)
class Defence:
    """A registered defence: its ``strategy=`` name, builder and kind."""

    name: str
    build: Builder
    plaintext: bool
    """True when the rule needs each bank's update in plaintext (no secure aggregation)."""


DEFENCES: dict[str, Defence] = {}
"""Registered defences by ``strategy=`` name."""


def register_defence(name: str, *, plaintext: bool = True) -> Callable[[Builder], Builder]:
    """Decorator: register ``build`` as the defence ``strategy=<name>``.

    Raises
    ------
    ValueError
        When another builder already holds ``name``.
    """

    def register(build: Builder) -> Builder:
        held = DEFENCES.get(name)
        if held is not None and held.build.__qualname__ != build.__qualname__:
            raise ValueError(f"defence {name!r} is already registered")
        DEFENCES[name] = Defence(name, build, plaintext)
        return build

    return register


def discover() -> None:
    """Import every module of :mod:`strategies.robust` (each registers its defences)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")


def defence_names() -> tuple[str, ...]:
    """Every registered defence, sorted."""
    discover()
    return tuple(sorted(DEFENCES))


def plaintext_defences() -> tuple[str, ...]:
    """The registered defences that need each bank's update in plaintext, sorted."""
    discover()
    return tuple(sorted(n for n, d in DEFENCES.items() if d.plaintext))


def wrapped(cls: type, wrap: Callable[[type], type] | None) -> type:
    """``wrap(cls)``, or ``cls`` without a wrapper."""
    return wrap(cls) if wrap is not None else cls


def build_defence(
    name: str, settings: RobustSettings, wrap: Callable[[type], type] | None = None, **common: Any
) -> FedAvg:
    """The registered defence ``name`` built with ``settings``.

    Raises
    ------
    ValueError
        For an unregistered name, or settings the rule cannot run with (one line).
    """
    names = defence_names()
    if name not in DEFENCES:
        raise ValueError(f"unknown defence {name!r}; choose one of {names}")
    return DEFENCES[name].build(settings, wrap, **common)
