"""End to end on the real embedded loans: federated vs pooled vs banks alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fl_credit.config.schema import EngineConfig, TrainConfig
from fl_credit.data.prepare import prepare
from fl_credit.run.experiment import run_experiment

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def outcome(embedded):
    from fl_credit.config.schema import ExperimentConfig

    cfg = ExperimentConfig(
        train=TrainConfig(rounds=5), engine=EngineConfig(backend="inprocess"), bootstrap=100
    )
    return cfg, run_experiment(cfg, prepare(cfg, embedded))


def test_metrics_have_the_documented_shape(outcome):
    _, result = outcome
    m = result.metrics
    for key in ("federated", "centralized", "reference", "local", "banks"):
        assert key in m
    assert set(m["local"]) == set(m["banks"]) == {"bank_0", "bank_1", "bank_2"}
    for model in (m["federated"], m["centralized"], m["reference"], *m["local"].values()):
        for key in ("auc", "auc_ci", "ks", "brier", "default", "repaid", "at_val_threshold"):
            assert key in model
        assert set(model["default"]) == {"precision", "recall", "f1"}
        lo, hi = model["auc_ci"]
        assert lo < model["auc"] < hi
    rows = [m["banks"][b]["rows"] for b in ("bank_0", "bank_1", "bank_2")]
    assert rows[2] == pytest.approx(2 * rows[0], abs=2)


def test_federation_matches_pooling_and_beats_small_banks(outcome):
    _, result = outcome
    m = result.metrics
    assert m["federated"]["auc"] > m["centralized"]["auc"] - 0.01
    assert m["federated"]["auc"] > m["local"]["bank_0"]["auc"]
    assert m["federated"]["auc"] > 0.7


def test_history_has_one_row_per_round(outcome):
    cfg, result = outcome
    assert [h["round"] for h in result.history] == list(range(cfg.train.rounds + 1))
    assert all("train_loss" in h for h in result.history[1:])


def test_same_seed_same_model_and_ray_matches_inprocess(outcome, embedded):
    cfg, first = outcome
    ray_cfg = dataclasses.replace(cfg, engine=EngineConfig(backend="ray"))
    second = run_experiment(ray_cfg, prepare(ray_cfg, embedded))
    a = first.federation.arrays.to_torch_state_dict()
    b = second.federation.arrays.to_torch_state_dict()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=0, atol=1e-6)
    assert second.metrics["federated"]["auc"] == pytest.approx(first.metrics["federated"]["auc"])


def test_lending_club_csv_pipeline_runs_end_to_end(tmp_path):
    from fl_credit.config.schema import DataConfig, ExperimentConfig
    from fl_credit.data.synthetic import generate_lending_club_csv

    path = generate_lending_club_csv(tmp_path / "loan.csv", n_rows=12_000, seed=0)
    cfg = ExperimentConfig(
        data=DataConfig(kind="lending_club_csv", path=str(path)),
        train=TrainConfig(rounds=3),
        engine=EngineConfig(backend="inprocess"),
        bootstrap=20,
    )
    prepared = prepare(cfg)
    assert len(prepared.schema.numeric) == 14
    assert set(prepared.schema.categories) == {"home_ownership", "verification_status", "purpose"}
    result = run_experiment(cfg, prepared)
    assert result.metrics["federated"]["auc"] > 0.6
    assert "id" in result.metrics["dropped_columns"]
