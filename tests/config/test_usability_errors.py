"""Errors Hydra raises before our code runs, turned into one line with the closest fix."""

from __future__ import annotations

import pytest

from fl_credit.config.cli_errors import catalogue, explain
from fl_credit.config.compose import compose_config, conf_dir, resolve
from fl_credit.config.errors import ConfigError

STRATEGY_PRESETS = sorted(p.stem for p in (conf_dir() / "strategy").glob("*.yaml"))
"""The ``strategy=`` options Hydra lists (one YAML each)."""


def hydra_error(overrides: list[str]) -> BaseException:
    """What Hydra raises for ``overrides`` (composed as ``simulate`` composes them)."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            compose(config_name="config", overrides=overrides)
    except Exception as err:  # noqa: BLE001 - the error is what we test
        return err
    raise AssertionError(f"{overrides} composed without error")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.round=5"], "unknown config key 'train.round'; did you mean train.rounds?"),
        (["engine.backnd=ray"], "unknown config key 'engine.backnd'; did you mean engine.backend?"),
        (["partitions=shares"], "unknown config key 'partitions'; did you mean partition=shares?"),
        (
            ["strategy=secure"],
            f"no option 'secure' for strategy (options: {', '.join(STRATEGY_PRESETS)}); "
            "did you mean strategy=secagg?",
        ),
        (
            ["+experiment=dp_onoff"],
            "no option 'dp_onoff' for experiment (options: bank_count, distribution_sweep, "
            "dp_on_off, label_skew, threat_matrix); did you mean +experiment=dp_on_off?",
        ),
        (["dp.epsilon=-1"], "dp.epsilon is not a setting of dp=off: use dp=opacus (or dp=central)"),
        (
            ["strategy=fedavg", "strategy.proximal_mu=0.1"],
            "strategy.proximal_mu is not a setting of strategy=fedavg: use strategy=fedprox",
        ),
        (["zzz=1"], "unknown config key 'zzz'"),
    ],
)
def test_hydra_errors_become_one_line_with_a_suggestion(overrides, expected):
    line = explain(hydra_error(overrides), overrides, conf_dir())
    assert line == expected
    assert "\n" not in line


def test_unparseable_override_is_named():
    line = explain(hydra_error(["train.rounds=[1"]), ["train.rounds=[1"], conf_dir())
    assert line.startswith("cannot parse the overrides:") and "\n" not in line


def test_os_errors_name_the_folder_setting():
    err = NotADirectoryError(20, "Not a directory", "/tmp/file/run")
    line = explain(err, [], conf_dir())
    assert line.startswith("cannot create /tmp/file/run: Not a directory;")
    assert "hydra.run.dir" in line


def test_catalogue_knows_every_group_and_default():
    cat = catalogue(conf_dir())
    assert cat.defaults["strategy"] == "secagg"
    assert {"fedavg", "fedprox", "secagg"} <= set(cat.groups["strategy"])
    assert "epsilon" in cat.groups["dp"]["opacus"] and "epsilon" not in cat.groups["dp"]["off"]
    assert "train.rounds" in cat.keys_with({})


def test_missing_mandatory_values_are_named_together():
    with pytest.raises(ConfigError) as err:
        resolve(compose_config(["data=csv", "data.path=x.csv"]))
    assert str(err.value) == (
        "missing config values data.positive, data.target: set data.positive=... data.target=..."
    )


def test_quoted_separator_reaches_the_config():
    raw = resolve(
        compose_config(
            ["data=csv", "data.path=x", "data.target=t", "data.positive=1", "data.sep=';'"]
        )
    )
    assert raw["data"]["sep"] == ";"


@pytest.mark.parametrize("multirun", [[], ["-m"]])
def test_a_strategy_setting_beside_a_sweep_over_defences_names_the_fix(
    multirun, tmp_path, capsys, monkeypatch
):
    # Before: with +experiment=threat_matrix (a multirun config) Hydra's own "Ambiguous value
    # for argument '+defence=krum,dnc'"; with -m "strategy.num_malicious is not a setting of
    # strategy=secagg: use strategy=multikrum (...)", although the sweep chose Krum and DnC.
    # Hydra composes the sweep's base config without the swept choices, so the key must be
    # forced in (++).
    import sys

    from fl_credit.run.simulate import cli

    # cli() sets HYDRA_FULL_ERROR and sys.argv for the process; keep both to this test
    monkeypatch.setenv("HYDRA_FULL_ERROR", "")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    argv = [
        *multirun,
        "+experiment=threat_matrix",
        "+defence=krum,dnc",
        "strategy.num_malicious=2",
        f"hydra.sweep.dir={tmp_path}",
    ]
    with pytest.raises(SystemExit) as ended:
        cli(argv)
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: strategy.num_malicious is not a setting of strategy=secagg, the configuration "
        "Hydra composes before sweeping over +defence=krum,dnc: write "
        "++strategy.num_malicious=2 to set it in every swept run"
    ]


def test_a_strategy_setting_beside_a_sweep_over_strategies_names_the_fix():
    overrides = ["strategy=krum,dnc", "strategy.num_malicious=2"]
    line = explain(hydra_error(["strategy.num_malicious=2"]), overrides, conf_dir())
    assert line.endswith(
        "sweeping over strategy=krum,dnc: write ++strategy.num_malicious=2 "
        "to set it in every swept run"
    ), line
