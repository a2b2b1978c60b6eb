"""What leaves a bank under DP: the attacks on the released statistics, and their fixes.

Each test plays an adversary who knows every training row but one target borrower and reads
what the coordinator releases (the standardiser in ``model.pt``, the class weight, the
summed threshold histogram, the banks' privacy replies). The positive controls show the
attack recovering the target exactly without DP -- as it did under ``dp=opacus`` before the
statistics were noised (the standardiser was exact: reconstruction error 1e-6). With the
noised, accounted releases the same attack learns nothing useful.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from fl_credit.config.schema import DPConfig, EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.coordinator.privacy_accounting import privacy_summary
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import (
    pooled_standardizer,
    private_moments,
    private_moments_sensitivity,
)
from fl_credit.protocol.settings import BankSettings
from fl_credit.run.experiment import run_experiment
from strategies.dp.noise import noise_std_share

pytestmark = pytest.mark.filterwarnings("ignore")

FAST = ExperimentConfig(
    train=TrainConfig(rounds=2, optimizer="sgd"),
    engine=EngineConfig(backend="inprocess"),
    bootstrap=20,
)
DP = dataclasses.replace(  # reproducible noise: the same releases every run (a study setting)
    FAST, dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp", reproducible_noise=True)
)


@pytest.fixture(scope="module")
def runs(embedded):
    plain = run_experiment(FAST, prepare(FAST, embedded))
    private_prepared = prepare(DP, embedded)
    private = run_experiment(DP, private_prepared)
    return plain, private, private_prepared


def reconstruct_from_means(mean, n_total, others_sum):
    """The differencing attack: target = n * mean - (sum of every other row)."""
    return n_total * mean - others_sum


def test_exact_standardiser_gives_away_a_row(runs, embedded):
    """Positive control: the released means of a non-DP run rebuild the target row."""
    plain, _, _ = runs
    prepared = prepare(FAST, embedded)
    x = np.vstack([b.x_train for b in prepared.banks.values()])
    target, others = x[0], x[1:]
    mean = plain.federation.scaler.mean
    guess = reconstruct_from_means(mean, len(x), others.sum(axis=0))
    assert np.max(np.abs(guess - target) / np.maximum(1.0, np.abs(target))) < 1e-4
    assert np.allclose(mean, pooled_standardizer(x).mean)


def test_noised_standardiser_does_not(runs):
    _, private, prepared = runs
    bounds = prepared.bounds
    x = np.vstack([b.x_train for b in prepared.banks.values()])
    u = bounds.unit(x)[:, ~bounds.binary]
    target, others = u[0], u[1:]
    scaler = private.federation.scaler
    numeric = ~bounds.binary
    mean_u = (scaler.mean[numeric] - bounds.low[numeric]) / (bounds.high - bounds.low)[numeric]
    guess = reconstruct_from_means(mean_u, len(x), others.sum(axis=0))
    # Each unit feature is in [0, 1]; the guess misses by the noise (std about 40 here).
    assert np.median(np.abs(guess - target)) > 5.0
    # The noise the coordinator sees is the planned one: std sigma * Delta on each sum.
    sigma = private.metrics["privacy"]["bank_0"]["releases"][0]["noise_multiplier"]
    total = noise_std_share(
        noise_multiplier=sigma, sensitivity=private_moments_sensitivity(bounds), contributors=1
    )
    assert total > 30.0
    exact = private_moments(x, np.zeros(len(x)), bounds)[2:] / len(x)
    assert not np.allclose(mean_u, exact, atol=1e-3)


def test_dp_run_reports_the_composed_epsilon_of_every_release(runs):
    _, private, _ = runs
    summary = private.metrics["privacy_summary"]
    assert summary["mode"] == "opacus" and summary["level"] == "record"
    releases = {"statistics", "validation", "grades", "training"}
    assert set(summary["epsilon_alone_by_release"]) == releases
    assert summary["epsilon_per_bank"] <= 4.0 + 1e-9
    assert summary["epsilon_per_bank"] > max(summary["epsilon_alone_by_release"].values())
    for bank in private.metrics["privacy"].values():
        done = {r["name"]: r["done"] for r in bank["releases"]}
        assert done == {"statistics": 1, "validation": 2, "grades": 1, "training": 2 * 10}
    assert "counterfactual" in summary["counterfactual"]
    assert privacy_summary(FAST, {})["mode"] == "off"


def test_privacy_reply_carries_nothing_that_depends_on_the_rows(runs, embedded):
    """Before: the reply held sample_rate = batch / rows, i.e. each bank's row count."""
    _, private, _ = runs
    for bank in private.metrics["privacy"].values():
        assert "sample_rate" not in {k for k in bank if k != "releases"}
        assert "n_rows" not in bank and "steps" not in bank
        assert {r["sample_rate"] for r in bank["releases"]} <= {1.0, 0.1}
    # The banks (1,576 / 1,576 / 3,154 rows) get identical public reports.
    reports = list(private.metrics["privacy"].values())
    assert all(r["epsilon_spent"] == reports[0]["epsilon_spent"] for r in reports)


def test_no_per_round_loss_leaves_a_dp_bank(runs):
    _, private, _ = runs
    for row in private.history:
        assert not {"train_loss", "val_loss_before"} & set(row)


def test_a_bank_refuses_a_statistics_release_beyond_its_plan(embedded, tmp_path):
    """A coordinator asking the DP statistics twice (to average the noise away) is refused."""
    from fl_credit.bank import client_app
    from fl_credit.data.prepare import write_bank_files
    from fl_credit.data.scaling import private_moments as _  # noqa: F401

    prepared = prepare(DP, embedded)
    write_bank_files(prepared, tmp_path, suffix=".npz")
    settings = BankSettings.from_experiment(DP, bank_dir=str(tmp_path))
    config = ConfigRecord({**settings.to_config(), "pass": "private", **prepared.bounds.to_lists()})
    context = Context(
        run_id=1, node_id=5, node_config={"partition-id": 0}, state=RecordDict(), run_config={}
    )
    from fl_credit.bank.floors import BankFloors
    from strategies.secagg.floors import Floors

    # A bank of a plaintext (fedavg) consortium that requires DP: the request is answered.
    plain = BankFloors(secagg=Floors(secure_aggregation=False), dp_mode="opacus")
    app = client_app.make_client_app(floors=plain)

    def ask() -> Message:
        message = Message(
            RecordDict({"config": config}), dst_node_id=5, message_type="query.moments"
        )
        message.metadata.__dict__["_message_id"] = "m"
        return app(message, context)

    first = ask()
    assert not first.has_error()
    second = ask()
    assert second.has_error()
