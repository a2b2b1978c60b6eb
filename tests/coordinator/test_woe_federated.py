"""``features=woe`` end to end: the federation's WoE table equals the one fitted on the pooled
rows' counts, the model trains on it, the run's files and scorecard follow it, DP noises the
counts and composes their release, and bad settings end with one line."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fl_credit.config.schema import (
    DPConfig,
    EngineConfig,
    ExperimentConfig,
    FeaturesConfig,
    TrainConfig,
)
from fl_credit.coordinator.woe import agreed_grid
from fl_credit.credit.woe import WoeFeatures, WoeTable, bank_counts, counts_sensitivity
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.protocol.settings import BankSettings
from fl_credit.run.baselines import pooled
from fl_credit.run.experiment import run_experiment

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
WOE = FeaturesConfig(kind="woe")


def woe_config(**changes) -> ExperimentConfig:
    base = ExperimentConfig(
        train=TrainConfig(rounds=5),
        engine=EngineConfig(backend="inprocess"),
        features=WOE,
        bootstrap=50,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def secure_run(embedded):
    """The default secure aggregation, no DP."""
    cfg = woe_config()
    prepared = prepare(cfg, embedded)
    return cfg, prepared, run_experiment(cfg, prepared)


def pooled_counts(prepared, edges: list[np.ndarray]) -> np.ndarray:
    rows = pooled(list(prepared.banks.values()))
    return bank_counts(rows.x_train, rows.y_train, edges)


def test_secure_sums_give_the_pooled_rows_table_exactly(secure_run) -> None:
    cfg, prepared, outcome = secure_run
    features = outcome.federation.scaler
    assert isinstance(features, WoeFeatures)
    edges = agreed_grid(features.standardizer, prepared.bounds, cfg.features.fine_bins)
    exact = pooled_counts(prepared, edges)
    # What the server received through secure aggregation is the pooled rows' counts.
    np.testing.assert_allclose(features.counts, exact, atol=1e-6)
    names = prepared.feature_names
    pooled_table = WoeTable.from_summed(exact, edges, names, binary=list(prepared.bounds.binary))
    for fed, ref in zip(features.table.binnings, pooled_table.binnings, strict=True):
        np.testing.assert_array_equal(fed.inner_edges, ref.inner_edges)
        np.testing.assert_array_equal(fed.woe, ref.woe)
        assert fed.iv == ref.iv
    # The WoE features' moments are the pooled rows' (what the pooled baseline standardises).
    rows = pooled(list(prepared.banks.values()))
    reference = pooled_standardizer(features.woe(rows.x_train))
    np.testing.assert_allclose(features.mean, reference.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(features.std, reference.std, rtol=1e-9)
    ivs = outcome.metrics["credit"]["woe"]["features"]
    assert list(ivs)[0] == "int_rate" and ivs["int_rate"]["iv"] > 0.3


def test_reason_codes_add_up_to_the_woe_logit(secure_run) -> None:
    from fl_credit.credit.outputs import model_parts
    from fl_credit.credit.reason_codes import contributions

    _, prepared, outcome = secure_run
    fed = outcome.federation
    weights, _ = model_parts(fed.arrays)
    inputs = fed.scaler.transform(prepared.x_test).astype(np.float64)
    zeros, ones = np.zeros(len(weights)), np.ones(len(weights))
    contrib, _ = contributions(inputs, weights, zeros, ones, prepared.feature_names)
    # Relative to the federation's mean WoE borrower (inputs 0): w . inputs exactly.
    np.testing.assert_allclose(contrib.sum(axis=1), inputs @ weights, atol=1e-9)
    from fl_credit.credit.outputs import reason_codes

    reasons, _ = reason_codes(prepared.x_test[:50], fed.arrays, fed.scaler, prepared.feature_names)
    first = contrib[:50].max(axis=1)
    got = np.array([r[0][1] if r else 0.0 for r in reasons])
    np.testing.assert_allclose(got[got > 0], first[got > 0], atol=1e-9)


def test_woe_model_trains_like_the_pooled_woe_model(secure_run) -> None:
    _, _, outcome = secure_run
    m = outcome.metrics
    assert m["config"]["features"] == "woe"
    assert m["federated"]["auc"] > 0.72
    # Newton on the same standardised WoE features reaches the pooled optimum.
    assert m["federated"]["auc"] == pytest.approx(m["centralized"]["auc"], abs=1e-3)
    assert m["federated"]["auc"] == pytest.approx(m["reference"]["auc"], abs=1e-3)
    assert m["federated"]["auc"] > m["local"]["bank_0"]["auc"]


@pytest.fixture(scope="module")
def fedavg_folder(tmp_path_factory) -> Path:
    from fl_credit.config.compose import compose_config
    from fl_credit.run.simulate import run_in_folder

    overrides = [
        "features=woe",
        "strategy=fedavg",
        "engine.backend=inprocess",
        "train.rounds=4",
        "metrics.bootstrap=20",
    ]
    folder = tmp_path_factory.mktemp("woe_run")
    run_in_folder(compose_config(overrides), folder, overrides)
    return folder


def test_run_files_and_a_scorecard_that_reproduces_the_scores(fedavg_folder, embedded) -> None:
    from fl_credit.credit.scorecard import FederatedModel, Scaling, build_scorecard
    from fl_credit.credit.scores_file import read_scores

    folder = fedavg_folder
    for name in ("metrics.json", "history.csv", "model.pt", "scores.csv", "report.md"):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["federated"]["auc"] > 0.72
    assert "## Weight of evidence (federated bins)" in (folder / "report.md").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "fl_credit.scorecard", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "WoE features" in result.stdout and "int_rate" in result.stdout
    # Base points plus each characteristic's bin points give every test borrower's score.
    model = FederatedModel.load(folder / "model.pt")
    assert model.woe is not None
    from fl_credit.data.schema import FeatureSchema

    schema = FeatureSchema.from_json(folder / "schema.json")
    scaling = Scaling(20, 600, 50)
    card, summary = build_scorecard(model, schema, scaling)
    cfg = woe_config()
    x = prepare(cfg, embedded).x_test
    names = schema.feature_names
    points = np.full(len(x), summary["base_points"])
    for j, name in enumerate(schema.numeric):
        rows = card[card.characteristic == name]
        for lower, upper, p in zip(rows.lower, rows.upper, rows.points, strict=True):
            points += np.where((x[:, j] >= lower) & (x[:, j] < upper), p, 0.0)
    for column, cats in schema.categories.items():
        rows = card[card.characteristic == column].set_index("attribute")
        cols = [names.index(f"{column}={c}") for c in cats]
        chosen = np.where(x[:, cols].max(axis=1) > 0.5, x[:, cols].argmax(axis=1), -1)
        labels = np.array([*cats, "(other)"], dtype=object)[chosen]
        points += rows.loc[labels, "points"].to_numpy()
    pd_fed = read_scores(folder / "scores.csv")[1]["federated"]
    logit = np.log(pd_fed / (1 - pd_fed))
    np.testing.assert_allclose(points, scaling.score(logit), atol=1e-3)


def test_dp_noises_the_counts_and_composes_their_release(embedded) -> None:
    dp = DPConfig(mode="opacus", epsilon=4.0, accountant="rdp")
    cfg = woe_config(dp=dp, train=TrainConfig(rounds=2))
    prepared = prepare(cfg, embedded)
    outcome = run_experiment(cfg, prepared)
    features = outcome.federation.scaler
    edges = agreed_grid(features.standardizer, prepared.bounds, cfg.features.fine_bins)
    noise = features.counts - pooled_counts(prepared, edges)
    settings = BankSettings.from_experiment(outcome_cfg(cfg))
    budget = settings.dp_settings().budget()
    planned_std = budget.noise_multiplier("woe") * counts_sensitivity(len(edges))
    # Noised: the server never sees the exact counts, and the sum carries the planned noise.
    assert np.mean(noise != 0) > 0.99
    assert np.std(noise) >= 0.9 * planned_std
    # The WoE release is part of every bank's composed epsilon.
    summary = outcome.metrics["privacy_summary"]
    assert "woe" in summary["epsilon_alone_by_release"]
    for report in outcome.metrics["privacy"].values():
        done = {r["name"]: r["done"] for r in report["releases"]}
        assert done["woe"] == 1
        without = budget.epsilon_spent({**done, "woe": 0})
        assert without < report["epsilon_spent"] <= cfg.dp.epsilon + 1e-6
    assert math.isfinite(outcome.metrics["federated"]["auc"])


def outcome_cfg(cfg: ExperimentConfig) -> ExperimentConfig:
    from fl_credit.config.parsing import resolve_optimizer

    return resolve_optimizer(cfg)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("features.max_bins=1", "features.max_bins must be at least 2"),
        ("features.min_share=0.7", "features.min_share must be in [0, 0.5)"),
        ("features.fine_bins=3", "features.fine_bins must be in"),
        ("dp=central", "features=woe needs per-bin counts"),
    ],
)
def test_bad_settings_end_with_one_line(override: str, expected: str) -> None:
    extra = ["imbalance.pos_weight=18"] if override == "dp=central" else []
    result = subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", "features=woe", override, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_model_file_alone_scores_new_rows(fedavg_folder, embedded) -> None:
    from fl_credit.credit.scores_file import read_scores
    from fl_credit.credit.woe import features_from_lists

    state = torch.load(fedavg_folder / "model.pt", weights_only=True)
    features = features_from_lists(state)
    weights = state["linear.weight"].numpy().ravel().astype(np.float64)
    assert len(features.table.binnings) == len(weights)
    x = prepare(woe_config(), embedded).x_test
    logit = features.transform(x).astype(np.float64) @ weights + float(state["linear.bias"])
    expected = read_scores(fedavg_folder / "scores.csv")[1]["federated"]
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), expected, rtol=1e-4, atol=1e-7)


@pytest.fixture
def bank_zero(embedded, tmp_path, monkeypatch):
    """Bank 0's ClientApp and context after the federation's standardiser, without DP."""
    from tests.conftest import bank_zero_app

    return bank_zero_app(woe_config(), embedded, tmp_path, monkeypatch)


def ask_counts(app, context, settings, edges):
    from flwr.app import ConfigRecord, Message, RecordDict

    from fl_credit.credit.woe import grid_to_lists

    config = ConfigRecord({**settings.to_config(), **grid_to_lists(edges)})
    message = Message(RecordDict({"config": config}), dst_node_id=5, message_type="query.woe")
    message.metadata.__dict__["_message_id"] = "m"
    return app(message, context)


def test_a_crafted_grid_cannot_single_out_a_borrowers_label(bank_zero) -> None:
    """Attack: a coordinator sends a grid with a tiny bin around a known borrower's income;
    that bin's default / repaid counts then give the borrower's label. The bank answers
    only the agreed grid (the one its stored standardiser gives), and only once."""
    prepared, scaler, settings, context, app = bank_zero
    bank = prepared.banks["bank_0"]
    j = prepared.feature_names.index("annual_inc")
    values, counts = np.unique(bank.x_train[:, j], return_counts=True)
    target = values[counts == 1][0]
    label = int(bank.y_train[bank.x_train[:, j] == target][0])
    agreed = agreed_grid(scaler, prepared.bounds, 50)
    crafted = list(agreed)
    crafted[j] = np.array([-np.inf, target - 1e-6, target + 1e-6, np.inf])
    reply = ask_counts(app, context, settings, crafted)
    if not reply.has_error():  # what the attack would read off the reply
        vector = reply.content["arrays"].to_numpy_ndarrays()[0]
        start = sum(2 * (len(e) - 1) for e in crafted[:j])
        events, non_events = vector[start + 1], vector[start + 3 + 1]
        assert (events, non_events) != (label, 1 - label), "the reply gave the label away"
    assert reply.has_error()
    assert not ask_counts(app, context, settings, agreed).has_error()
    # Asked again (e.g. on a shifted grid, to difference the answers): refused.
    assert ask_counts(app, context, settings, agreed).has_error()
