"""The option names the config validation accepts are the YAMLs of their ``conf/`` groups:
one name, one file (attacks: tests/threats/test_attacks_units.py; strategies:
tests/robust/test_defence_registry.py)."""

from __future__ import annotations

import pytest

from fl_credit.config import schema
from fl_credit.config.compose import conf_dir
from fl_credit.data.registry import source_names


@pytest.mark.parametrize(
    ("group", "names"),
    [
        ("dp", schema.DP_MODES),
        ("imbalance", schema.IMBALANCE_METHODS),
        ("partition", schema.PARTITION_SCHEMES),
        ("features", schema.FEATURE_KINDS),
        ("model", schema.MODEL_KINDS),
        ("data", source_names()),
    ],
)
def test_a_group_offers_exactly_the_names_the_code_accepts(group, names):
    assert {p.stem for p in (conf_dir() / group).glob("*.yaml")} == set(names)
