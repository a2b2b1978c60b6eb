"""The config nodes Hydra reads from its ConfigStore instead of ``conf/``: the ones made from
the registries and the schema, so that no YAML repeats a registered name or a default.

``base`` (first in ``conf/config.yaml``'s defaults list) holds the defaults of the sections
that are not config groups, made from :class:`~fl_credit.config.schema.ExperimentConfig`:
the dataclasses are their only source.

``+defence=<name>`` (the threat matrix's defence axis) is ``strategy=<name>`` for every
registered aggregation strategy; ``conf/defence/`` holds only the presets that combine a
strategy with other settings (e.g. ``secagg_dp``). :func:`register` must run before Hydra
composes; :mod:`fl_credit.config.compose` and ``python -m fl_credit.simulate`` call it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from fl_credit.config.schema import ExperimentConfig
from strategies.robust.registry import strategy_names

DEFENCE_GROUP = "defence"
BASE = "base"
"""The node of the non-group defaults, named in ``conf/config.yaml``'s defaults list."""
LAYOUT = {
    "seed": "seed",
    "test_size": "test_size",
    "val_size": "val_size",
    "train": "train",
    "metrics": ("bootstrap", "histogram_bins", "calibration_bins"),
    "eval": "eval",
    "engine": "engine",
    "validation": "validation",
    "audit": "audit",
    "faults": ("drop_after_keys",),
}
"""The non-group part of the Hydra tree, in order: a key and the :class:`ExperimentConfig`
field it holds, or the fields it nests (``metrics.bootstrap`` is ``ExperimentConfig.bootstrap``)."""


def base_tree() -> dict[str, Any]:
    """The defaults of :data:`LAYOUT`'s keys, from ``ExperimentConfig()``, as plain YAML
    values (lists for tuples)."""
    defaults = _plain(asdict(ExperimentConfig()))
    return {
        key: defaults[field] if isinstance(field, str) else {f: defaults[f] for f in field}
        for key, field in LAYOUT.items()
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


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
    store.store(name=BASE, node=base_tree())
    for name, node in defence_presets().items():
        store.store(group=DEFENCE_GROUP, name=name, node=node, package="_global_")
