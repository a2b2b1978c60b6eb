"""The data-source registry: every ``data.kind`` registers its loader with
:func:`register_source`.

A data source is one module of :mod:`fl_credit.data.sources` (a loader decorated with
``@register_source(kind, check=...)``, the check naming a missing setting before anything
runs) plus its ``conf/data/<kind>.yaml``; :func:`source_names` imports
every module of that package first, so nothing else lists the kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fl_credit.config.schema import DataConfig

Loader = Callable[["DataConfig", int], Any]
"""``load(cfg.data, seed) -> CreditData`` (:class:`fl_credit.data.frame.CreditData`; not
imported here: the config validation imports this module, below the data layer)."""

Check = Callable[["DataConfig"], "str | None"]
"""``check(cfg.data) -> problem or None``: the settings the source needs, checked by the
config validation (one line naming what is missing)."""

SOURCES: dict[str, Loader] = {}
"""Loaders by ``data.kind``."""
CHECKS: dict[str, Check] = {}
"""Setting checks by ``data.kind`` (sources without one need no setting)."""

PACKAGE = "fl_credit.data.sources"


def register_source(kind: str, check: Check | None = None) -> Callable[[Loader], Loader]:
    """Decorator: register ``load`` as the loader of ``data.kind=<kind>``, and ``check`` as
    the check of its settings.

    Raises
    ------
    ValueError
        When another loader already holds ``kind``.
    """

    def register(load: Loader) -> Loader:
        held = SOURCES.get(kind)
        if held is not None and held.__qualname__ != load.__qualname__:
            raise ValueError(f"data kind {kind!r} is already registered")
        SOURCES[kind] = load
        if check is not None:
            CHECKS[kind] = check
        return load

    return register


def discover() -> None:
    """Import every module of :mod:`fl_credit.data.sources` (each registers its kind)."""
    package = importlib.import_module(PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{PACKAGE}.{module.name}")


def source_names() -> tuple[str, ...]:
    """Every registered ``data.kind``, sorted."""
    discover()
    return tuple(sorted(SOURCES))


def source_problem(cfg: DataConfig) -> str | None:
    """What the configured source still needs (None: nothing), from its registered check."""
    discover()
    check = CHECKS.get(cfg.kind)
    return check(cfg) if check is not None else None


def load_source(cfg: DataConfig, seed: int) -> Any:
    """Load the configured data source into a :class:`~fl_credit.data.frame.CreditData`."""
    discover()
    return SOURCES[cfg.kind](cfg, seed)
