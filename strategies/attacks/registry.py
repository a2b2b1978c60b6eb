"""The attack registry: every attack registers itself with :func:`register_attack`.

An attack is one module of this package (a subclass of :class:`~.base.Attack` decorated with
``@register_attack``) plus its ``conf/attack/<name>.yaml``; :func:`attack_names` imports
every module of the package first, so nothing else lists the attacks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any, TypeVar

from .base import Attack

NONE = "none"
"""The ``attack=`` value of a run without malicious banks."""

ATTACKS: dict[str, type[Attack]] = {}
"""Attack classes by ``attack=`` name."""

A = TypeVar("A", bound=type[Attack])


def register_attack(cls: A) -> A:
    """Class decorator: make ``cls`` the attack of ``attack=<cls.name>``.

    Raises
    ------
    ValueError
        When ``cls`` has no name, or another class already holds that name.
    """
    if not cls.name or cls.name == NONE:
        raise ValueError(f"an attack needs a name other than {NONE!r}: {cls.__qualname__}")
    held = ATTACKS.get(cls.name)
    if held is not None and held.__qualname__ != cls.__qualname__:
        raise ValueError(f"attack {cls.name!r} is already registered ({held.__qualname__})")
    ATTACKS[cls.name] = cls
    return cls


def discover() -> None:
    """Import every module of :mod:`strategies.attacks` (each registers its attacks)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")


def rewrites_model(name: str, settings: Mapping[str, Any]) -> bool:
    """Whether attack ``name`` with ``settings`` (its ``attack.*`` keys) changes the model a
    bank sends (``"none"`` and data poisoning alone do not).

    Raises
    ------
    ValueError
        For an unregistered name.
    """
    if name == NONE:
        return False
    names = attack_names()
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(names)}")
    return ATTACKS[name].rewrites(settings)


def attack_names() -> tuple[str, ...]:
    """``"none"`` and every registered attack's name, sorted: the values ``attack=`` takes."""
    discover()
    return (NONE, *sorted(ATTACKS))
