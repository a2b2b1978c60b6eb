"""The config nodes Hydra reads from its ConfigStore instead of ``conf/``: the ones made from
the registries, so that no YAML repeats a registered name.

``+defence=<name>`` (the threat matrix's defence axis) is ``strategy=<name>`` for every
registered aggregation strategy; ``conf/defence/`` holds only the presets that combine a
strategy with other settings (e.g. ``secagg_dp``). :func:`register` must run before Hydra
composes; :mod:`fl_credit.config.compose` and ``python -m fl_credit.simulate`` call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strategies.robust.registry import strategy_names

DEFENCE_GROUP = "defence"


def defence_presets() -> dict[str, dict[str, Any]]:
    """The generated ``+defence=<name>`` nodes: ``strategy=<name>`` with its own settings."""
    return {name: {"defaults": [{"override /strategy": name}]} for name in strategy_names()}


def defence_options(conf: Path) -> tuple[str, ...]:
    """Every ``+defence=`` option: the generated presets and the files of ``conf/defence``."""
    files = {p.stem for p in (conf / DEFENCE_GROUP).glob("*.yaml")}
    return tuple(sorted(files | set(defence_presets())))


def register() -> None:
    """Put the generated nodes into Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, node in defence_presets().items():
        store.store(group=DEFENCE_GROUP, name=name, node=node, package="_global_")
