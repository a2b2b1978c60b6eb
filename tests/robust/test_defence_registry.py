"""Adding a defence is one file plus its YAML: a toy defence registered here, from a test
module, is composed from its ``conf/strategy`` YAML (and as ``+defence=``, made from the
registry), accepted by the config validation and built by the strategy factory. Nothing
else names it. Also: the registry and ``conf/`` name the same strategies, once each."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from flwr.serverapp.strategy import FedAvg

from fl_credit.config.compose import compose_experiment, conf_dir
from fl_credit.config.errors import ConfigError
from fl_credit.config.store import defence_options, defence_presets
from fl_credit.coordinator.strategy_factory import build_strategy
from strategies.robust.registry import DEFENCES, register_defence, strategy_names, wrapped

# --- the one file a new defence is (in strategies/robust/, with ``@register_defence`` on the
# builder; here the fixture below registers it, so that it leaves the registry after this module)


class HalfMean(FedAvg):
    """Toy rule: FedAvg (a real defence would override ``aggregate_train``)."""


def toy_half_mean(settings, wrap=None, **common):
    return wrapped(HalfMean, wrap)(**common)


YAML = """# Toy: FedAvg under another name, with one setting of its own.
name: toy_half_mean
num_malicious: 2
"""

# --- the checks ----------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def registered():
    register_defence("toy_half_mean")(toy_half_mean)
    yield
    del DEFENCES["toy_half_mean"]


@pytest.fixture
def conf_with_toy(tmp_path):
    folder = tmp_path / "conf"
    shutil.copytree(conf_dir(), folder)
    (folder / "strategy" / "toy_half_mean.yaml").write_text(YAML)
    return folder


@pytest.mark.parametrize("override", ["strategy=toy_half_mean", "+defence=toy_half_mean"])
def test_the_toy_defence_runs_through_config_and_factory(conf_with_toy, override):
    cfg, _ = compose_experiment([override], config_dir=conf_with_toy)
    assert cfg.strategy.name == "toy_half_mean" and cfg.strategy.num_malicious == 2
    assert cfg.train.optimizer == "sgd"  # a robust rule combines model updates
    assert isinstance(build_strategy(cfg, num_banks=3), HalfMean)


def test_the_validation_applies_the_registry_flags_to_the_toy(conf_with_toy):
    cfg, _ = compose_experiment(["strategy=toy_half_mean"], config_dir=conf_with_toy)
    with pytest.raises(ConfigError, match="plaintext"):
        from fl_credit.config.validation import validate

        validate(replace(cfg, strategy=replace(cfg.strategy, threshold=2)))


def test_an_unregistered_strategy_is_refused_in_one_line(conf_with_toy):
    (conf_with_toy / "strategy" / "not_registered.yaml").write_text("name: not_registered\n")
    with pytest.raises(ConfigError, match="strategy must be one of"):
        compose_experiment(["strategy=not_registered"], config_dir=conf_with_toy)


def test_every_registered_strategy_has_its_yaml_and_no_other():
    yamls = {p.stem for p in (conf_dir() / "strategy").glob("*.yaml")}
    assert yamls == set(strategy_names()) - {"toy_half_mean"}


def test_conf_defence_holds_only_presets_the_registry_cannot_make():
    files = {p.stem for p in (conf_dir() / "defence").glob("*.yaml")}
    assert files and not files & set(defence_presets())
    for name in files:  # each combines a strategy with other settings: not a bare alias
        text = (conf_dir() / "defence" / f"{name}.yaml").read_text()
        body = [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]
        assert len(body) > 2, f"conf/defence/{name}.yaml is a bare alias of a strategy"


@pytest.mark.parametrize("option", defence_options(conf_dir()))
def test_every_defence_option_composes_and_validates(option):
    cfg, _ = compose_experiment([f"+defence={option}", "+threat_split=ten_equal"])
    assert cfg.strategy.name in strategy_names()
