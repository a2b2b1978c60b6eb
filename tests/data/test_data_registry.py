"""Adding a data source is one module registering its loader (plus its ``conf/data`` YAML):
a toy source registered here is accepted by the config validation and loaded by ``prepare``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import DataConfig, ExperimentConfig
from fl_credit.config.validation import validate
from fl_credit.data.embedded import load_embedded
from fl_credit.data.registry import SOURCES, register_source, source_names


def toy(cfg: DataConfig, seed: int):
    """The embedded loans under another name."""
    return load_embedded()


@pytest.fixture
def registered():
    register_source("toy_loans")(toy)
    yield
    del SOURCES["toy_loans"]


def test_the_shipped_kinds_are_registered_by_their_modules():
    assert {"embedded", "lending_club_csv", "csv", "synthetic"} <= set(source_names())


def test_a_registered_source_is_validated_and_loaded(registered):
    from fl_credit.data.prepare import prepare

    cfg = replace(ExperimentConfig(), data=DataConfig(kind="toy_loans"))
    validate(cfg)
    assert len(prepare(cfg).y_test) == len(prepare(ExperimentConfig()).y_test)


def test_an_unregistered_kind_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="data.kind must be one of"):
        validate(replace(ExperimentConfig(), data=DataConfig(kind="toy_loans")))


def test_a_source_checks_its_own_settings(registered):
    from fl_credit.data.registry import CHECKS

    def needs(data: DataConfig) -> str | None:
        return None if data.rows >= 100 else "toy_loans needs 100 rows"

    register_source("toy_loans", check=needs)(toy)
    try:
        cfg = replace(ExperimentConfig(), data=DataConfig(kind="toy_loans", rows=10))
        with pytest.raises(ConfigError, match="^toy_loans needs 100 rows$"):
            validate(cfg)
        validate(replace(cfg, data=DataConfig(kind="toy_loans", rows=100)))
    finally:
        del CHECKS["toy_loans"]
