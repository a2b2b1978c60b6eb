"""Secure aggregation and bank-level DP inside the real experiment, on the embedded loans."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from fl_credit.config.schema import (
    DPConfig,
    EngineConfig,
    ExperimentConfig,
    ImbalanceConfig,
    PartitionConfig,
    StrategyConfig,
    TrainConfig,
)
from fl_credit.data.prepare import prepare
from fl_credit.run.experiment import run_experiment

pytestmark = pytest.mark.filterwarnings("ignore")

FAST = ExperimentConfig(
    train=TrainConfig(rounds=4), engine=EngineConfig(backend="inprocess"), bootstrap=20
)


def run(cfg, embedded):
    return run_experiment(cfg, prepare(cfg, embedded))


def weights(outcome) -> np.ndarray:
    state = outcome.federation.arrays.to_torch_state_dict()
    return np.concatenate([v.numpy().ravel() for v in state.values()])


def test_secure_aggregation_matches_plain_fedavg(embedded):
    secure = run(dataclasses.replace(FAST, strategy=StrategyConfig(name="secagg")), embedded)
    plain = run(dataclasses.replace(FAST, strategy=StrategyConfig(name="fedavg")), embedded)
    np.testing.assert_allclose(weights(secure), weights(plain), atol=1e-4)
    np.testing.assert_allclose(
        secure.federation.scaler.std, plain.federation.scaler.std, rtol=1e-6, atol=1e-5
    )
    assert abs(secure.metrics["federated"]["auc"] - plain.metrics["federated"]["auc"]) < 1e-3


FIVE_BANKS = dataclasses.replace(
    FAST,
    partition=PartitionConfig(scheme="power", banks=5, skew=0.0),
    strategy=StrategyConfig(name="secagg", threshold=3),
)


def test_banks_dropping_between_the_statistics_and_the_first_round_stop_training(
    embedded, caplog
):
    """The statistics over five banks minus a first round over three would give the two
    banks' statistics: the survivors refuse it (their ledger), so training never starts.
    Dropouts between two training rounds are recovered (tests/test_secagg_simulation.py)."""
    cfg = dataclasses.replace(FIVE_BANKS, drop_after_keys=(1, 3))
    with caplog.at_level(logging.WARNING):
        outcome = run(cfg, embedded)
    assert "ledger" in caplog.text
    assert outcome.metrics["rounds"]["applied"] == 0


def test_three_banks_dropping_skip_rounds_without_crashing(embedded, caplog):
    cfg = dataclasses.replace(FIVE_BANKS, drop_after_keys=(0, 1, 3))
    with caplog.at_level(logging.WARNING):
        outcome = run(cfg, embedded)
    assert "SKIPPED" in caplog.text
    assert outcome.metrics["federated"]["auc"] == pytest.approx(0.5)
    assert "never trained" in outcome.metrics["rounds"]["failure"]


def test_bank_level_dp_reports_its_budget(embedded):
    cfg = dataclasses.replace(
        FAST,
        dp=DPConfig(mode="central", epsilon=8.0, clip_norm=1.0),
        imbalance=ImbalanceConfig(method="class_weight", pos_weight=18.0),
    )
    outcome = run(cfg, embedded)
    report = outcome.metrics["privacy"]["all_banks"]
    assert report["epsilon"] <= 8.0 + 1e-6
    assert [h["dp_epsilon"] for h in outcome.history][-1] == pytest.approx(report["epsilon"])
    assert 0.0 < outcome.history[1]["dp_epsilon"] < report["epsilon"]


def test_federation_class_weight_keeps_fedavg_on_the_pooled_objective_under_label_skew(embedded):
    cfg = dataclasses.replace(
        FAST, partition=PartitionConfig(scheme="dirichlet", banks=3, alpha=0.1)
    )
    outcome = run(cfg, embedded)
    rates = [b["default_rate"] for b in outcome.metrics["banks"].values()]
    assert max(rates) > 3 * min(rates)
    assert outcome.metrics["federated"]["auc"] == pytest.approx(
        outcome.metrics["centralized"]["auc"], abs=0.005
    )
