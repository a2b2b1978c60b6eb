"""Shared fixtures: the embedded data loaded once, and small fast experiment configs."""

from __future__ import annotations

import dataclasses

import hypothesis
import pytest

from fl_credit.config.schema import EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.data.embedded import load_embedded

# No per-example deadline: on a loaded machine hypothesis's default 200 ms fails correct code.
hypothesis.settings.register_profile("fl_credit", deadline=None)
hypothesis.settings.load_profile("fl_credit")


@pytest.fixture(scope="session")
def embedded():
    """The real embedded Lending Club loans."""
    return load_embedded()


@pytest.fixture
def fast_cfg() -> ExperimentConfig:
    """Three banks 25/25/50, few rounds, in-process engine, small bootstrap."""
    return ExperimentConfig(
        train=TrainConfig(rounds=3),
        engine=EngineConfig(backend="inprocess"),
        bootstrap=50,
    )


def with_(cfg: ExperimentConfig, **sections) -> ExperimentConfig:
    """Copy of ``cfg`` with whole sections or top-level fields replaced."""
    return dataclasses.replace(cfg, **sections)
