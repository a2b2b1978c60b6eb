"""Configuration checks: every bad value is refused with one line naming it."""

from __future__ import annotations

import pytest

from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict


def raw(**overrides) -> dict:
    base = {
        "seed": 0,
        "data": {"kind": "embedded"},
        "partition": {"scheme": "shares", "shares": [0.25, 0.25, 0.5]},
        "train": {"rounds": 2},
        "strategy": {"name": "fedavg"},
        "dp": {"mode": "off"},
        "imbalance": {"method": "class_weight"},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


def test_defaults_are_valid():
    cfg = from_dict(raw())
    assert cfg.partition.shares == (0.25, 0.25, 0.5)
    assert cfg.train.rounds == 2


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"partition": {"shares": [0.5, 0.6]}}, "sum to 1"),
        ({"partition": {"shares": [-0.5, 1.5]}}, "positive"),
        ({"partition": {"scheme": "two_banks", "share": 0.7}}, "partition.share"),
        ({"partition": {"scheme": "dirichlet", "alpha": 0}}, "alpha"),
        ({"train": {"rounds": 0}}, "train.rounds"),
        ({"train": {"optimizer": "lbfgs"}}, "train.optimizer"),
        ({"train": {"lr": -1}}, "train.lr"),
        ({"train": {"colour": 1}}, "unknown key"),
        ({"imbalance": {"method": "undersample"}}, "imbalance"),
        ({"dp": {"mode": "opacus", "epsilon": 1.0}, "imbalance": {"method": "smote"}}, "SMOTE"),
        ({"dp": {"mode": "opacus", "epsilon": -1.0}}, "dp.epsilon"),
        ({"data": {"kind": "csv", "path": "x.csv"}}, "data.target"),
        ({"data": {"kind": "lending_club_csv"}}, "data.path"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_values_name_the_problem(overrides, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(raw(**overrides))
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
