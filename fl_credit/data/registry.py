"""The data-source registry: every ``data.kind`` registers its loader with
:func:`register_source`.

A data source is one module of :mod:`fl_credit.data.sources` (a loader decorated with
``@register_source(kind)``) plus its ``conf/data/<kind>.yaml``; :func:`source_names` imports
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

SOURCES: dict[str, Loader] = {}
"""Loaders by ``data.kind``."""

PACKAGE = "fl_credit.data.sources"


def register_source(kind: str) -> Callable[[Loader], Loader]:
    """Decorator: register ``load`` as the loader of ``data.kind=<kind>``.

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


def load_source(cfg: DataConfig, seed: int) -> Any:
    """Load the configured data source into a :class:`~fl_credit.data.frame.CreditData`."""
    discover()
    return SOURCES[cfg.kind](cfg, seed)
