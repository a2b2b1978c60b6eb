"""Federated evaluation: test metrics from summed per-class histograms, no coordinator rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from fl_credit.config.schema import (
    DPConfig,
    EngineConfig,
    EvalConfig,
    ExperimentConfig,
    TrainConfig,
)
from fl_credit.credit.binned_metrics import evaluation_vector, metrics_from_vector
from fl_credit.credit.thresholds import logit_edges
from fl_credit.data.prepare import prepare
from fl_credit.run.experiment import run_experiment

pytestmark = pytest.mark.filterwarnings("ignore")

BINS = 400


def binned(p: np.ndarray, bins: int) -> np.ndarray:
    edges = logit_edges(bins)
    logit = np.clip(np.log(p / (1 - p)), edges[0], edges[-1])
    return np.clip(np.searchsorted(edges, logit, side="right") - 1, 0, bins - 1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=20, max_value=300),
    rate=st.floats(min_value=0.05, max_value=0.5),
    banks=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_summed_vectors_give_the_pooled_metrics_of_binned_scores(n, rate, banks, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(float)
    y[:2] = [0.0, 1.0]
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 2)))
    parts = np.array_split(rng.permutation(n), banks)
    summed = sum(evaluation_vector(y[i], p[i], BINS) for i in parts)
    got = metrics_from_vector(summed, BINS)
    assert got["auc"] == pytest.approx(roc_auc_score(y, binned(p, BINS)), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert got["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    assert got["rows"] == n and got["defaults"] == y.sum()


def test_constant_scores_have_auc_half_and_ks_zero():
    y = np.array([0, 1, 0, 1, 0.0])
    got = metrics_from_vector(evaluation_vector(y, np.full(5, 0.3), BINS), BINS)
    assert got["auc"] == 0.5 and got["ks"] == 0.0


@pytest.fixture(scope="module")
def runs(embedded):
    cfg = ExperimentConfig(
        train=TrainConfig(rounds=3, optimizer="sgd"),
        engine=EngineConfig(backend="inprocess"),
        eval=EvalConfig(federated=True),
        bootstrap=20,
    )
    plain = run_experiment(cfg, prepare(cfg, embedded))
    dp_cfg = dataclasses.replace(cfg, dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp"))
    private = run_experiment(dp_cfg, prepare(dp_cfg, embedded))
    return plain, private


def test_federated_evaluation_matches_the_held_out_set(runs):
    """The banks' test rows are the held-out set dealt out: same loans, binned scores."""
    plain, _ = runs
    fed, pooled = plain.metrics["federated_evaluation"], plain.metrics["federated"]
    assert fed["rows"] == 1972  # the embedded data's held-out set, all of it
    assert fed["auc"] == pytest.approx(pooled["auc"], abs=2e-3)
    assert fed["brier"] == pytest.approx(pooled["brier"], abs=1e-6)
    assert fed["log_loss"] == pytest.approx(pooled["log_loss"], abs=1e-6)
    rounds = [row for row in plain.history if "fedeval_auc" in row]
    assert [row["round"] for row in rounds] == [1, 2, 3]


def test_under_dp_only_the_final_model_is_evaluated_as_one_accounted_release(runs):
    _, private = runs
    assert not any("fedeval_auc" in row for row in private.history)
    fed = private.metrics["federated_evaluation"]
    assert fed["auc_sd"] > 0 and fed["brier"] is None  # noise shown, no loss sums
    assert fed["auc"] is None if "auc" in fed["withheld"] else 0.0 <= fed["auc"] <= 1.0
    for bank in private.metrics["privacy"].values():
        done = {r["name"]: r["done"] for r in bank["releases"]}
        assert done["evaluation"] == 1
    assert "evaluation" in private.metrics["privacy_summary"]["epsilon_alone_by_release"]
