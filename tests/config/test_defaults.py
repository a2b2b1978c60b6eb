"""Every default is written once: the non-group settings in the dataclasses of
``fl_credit/config/schema.py`` only (``conf/config.yaml`` holds the group choices), and a
group's default option agrees with the dataclass defaults on every key it writes."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest
import yaml

from fl_credit.config.compose import compose_experiment, conf_dir
from fl_credit.config.schema import ExperimentConfig
from fl_credit.config.store import LAYOUT, base_tree


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "bands":  # bands is one value (a mapping)
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _yaml(path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def group_defaults() -> dict[str, str]:
    """``group: option`` of ``conf/config.yaml``'s defaults list."""
    entries = _yaml(conf_dir() / "config.yaml")["defaults"]
    return {k: v for e in entries if isinstance(e, dict) for k, v in e.items()}


def test_config_yaml_writes_no_value():
    assert set(_yaml(conf_dir() / "config.yaml")) == {"defaults", "hydra"}


def test_the_layout_covers_every_field_that_is_not_a_group():
    groups = set(group_defaults())
    laid_out = {f for f in LAYOUT.values() if isinstance(f, str)}
    laid_out |= {f for fs in LAYOUT.values() if not isinstance(fs, str) for f in fs}
    assert laid_out == {f.name for f in fields(ExperimentConfig)} - groups


def test_the_composed_default_holds_the_dataclass_defaults():
    cfg, raw = compose_experiment([])
    default = asdict(ExperimentConfig())
    composed = asdict(cfg)
    for key, field in LAYOUT.items():
        names = [field] if isinstance(field, str) else list(field)
        for name in names:
            if name == "train":  # train.optimizer=auto is resolved for the run
                assert composed[name] == {**default[name], "optimizer": "newton"}
            else:
                assert composed[name] == default[name], key
    assert _flat({k: raw[k] for k in LAYOUT}) == _flat(base_tree())


@pytest.mark.parametrize(("group", "option"), sorted(group_defaults().items()))
def test_a_default_option_agrees_with_the_dataclass(group, option):
    """A key the default option writes has the dataclass default's value and type, unless
    the dataclass leaves it unset (None: the option's own value, e.g. a data source's label)."""
    written = _flat({k: v for k, v in _yaml(conf_dir() / group / f"{option}.yaml").items()})
    default = _flat(asdict(getattr(ExperimentConfig(), group)))
    for key, value in written.items():
        expected = default[key]
        if expected is None:
            continue
        if isinstance(expected, tuple):
            expected = list(expected)
        assert (value, type(value)) == (expected, type(expected)), f"{group}={option}: {key}"


def test_no_preset_writes_a_default_again():
    """``@package _global_`` presets (experiments, splits, defences) write only changes."""
    base = _flat(base_tree())
    for path in sorted(conf_dir().rglob("*.yaml")):
        if "@package _global_" not in path.read_text():
            continue
        tree = {k: v for k, v in _yaml(path).items() if k not in ("defaults", "hydra")}
        for key, value in _flat(tree).items():
            assert key not in base or base[key] != value, f"{path.name} repeats {key}={value}"
