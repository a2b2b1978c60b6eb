"""Under DP the weights that combine the banks' updates are public, and bank-level DP weighs
every bank equally.

The decoding test runs a real ``dp=central`` federation under secure aggregation with the
banks' noise switched off (so the decoded sum is readable) and compares the released model
with the equal-weight and the row-weighted average of the banks' clipped updates. Under
row weights the largest bank's update would carry ``n_j / sum(n)`` of the sum, so its
effective noise multiplier would be below ``sigma``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import strategies.dp.central as central_dp
from fl_credit.config.schema import (
    DPConfig,
    EngineConfig,
    ExperimentConfig,
    ImbalanceConfig,
    TrainConfig,
)
from fl_credit.data.prepare import prepare
from fl_credit.model.logistic import new_model
from fl_credit.protocol.public_weights import public_weight, registered_weights
from fl_credit.run.experiment import run_experiment

pytestmark = pytest.mark.filterwarnings("ignore")

CENTRAL = ExperimentConfig(
    train=TrainConfig(rounds=1, optimizer="sgd"),
    engine=EngineConfig(backend="inprocess"),
    dp=DPConfig(mode="central", epsilon=4.0, clip_norm=0.05),
    imbalance=ImbalanceConfig(pos_weight=18.0),
    bootstrap=20,
)


def test_decoded_central_dp_sum_is_the_equal_weight_average(embedded, monkeypatch):
    """Each bank's clipped update enters the released average with weight 1 / m."""
    clipped: list[np.ndarray] = []
    real_clip = central_dp.clip_update

    def recording_clip(update, clip_norm):
        out, norm = real_clip(update, clip_norm)
        clipped.append(np.concatenate([u.ravel() for u in out]))
        return out, norm

    monkeypatch.setattr(central_dp, "clip_update", recording_clip)
    monkeypatch.setattr(central_dp, "add_noise_share", lambda update, std, rng: update)
    prepared = prepare(CENTRAL, embedded)
    outcome = run_experiment(CENTRAL, prepared)
    assert len(clipped) == 3
    start = new_model(prepared.x_test.shape[1], CENTRAL.seed).linear.weight.detach().numpy()
    final = outcome.federation.arrays.to_numpy_ndarrays()[0]
    released = (final - start).ravel()
    updates = np.stack([u[:-1] for u in clipped])  # weights only: the bias is re-calibrated
    rows = np.array([info["rows"] for info in prepared.bank_info.values()], dtype=float)
    equal = updates.mean(axis=0)
    by_rows = rows @ updates / rows.sum()
    assert np.abs(by_rows - equal).max() > 1e-3  # the two averages can be told apart
    np.testing.assert_allclose(released, equal, atol=1e-5)


def test_each_bank_carries_the_full_noise_multiplier():
    """With equal weights a bank's share of the sum is 1 / m, so its effective noise
    multiplier is sigma: noise std of the average sigma C / m over sensitivity C / m."""
    plan = central_dp.CentralDPAccountant.from_target(
        target_epsilon=4.0, total_rounds=20, min_contributors=3
    )
    weights = registered_weights("central", {"bank_0": 1000, "bank_1": 1000, "bank_2": 2000})
    share = {name: w / sum(weights.values()) for name, w in weights.items()}
    noise_of_average = plan.noise_std / sum(weights.values())
    for name in weights:
        sensitivity = share[name] * plan.clip_norm  # replace the bank's update by zero
        assert noise_of_average / sensitivity == pytest.approx(plan.noise_multiplier)


@pytest.mark.parametrize(
    ("mode", "rows", "expected"),
    [
        ("off", 1234, 1234.0),
        ("central", 1234, 1.0),
        ("opacus", 1234, 1024.0),
        ("opacus", 1600, 2048.0),
        ("opacus", 3, 4.0),
    ],
)
def test_public_weight_is_exact_only_without_dp(mode, rows, expected):
    assert public_weight(mode, rows) == expected


def test_simulated_roster_registers_public_weights(embedded, tmp_path, monkeypatch):
    """The roster the run writes carries the public weights, never the exact row counts."""
    import fl_credit.run.experiment as experiment

    seen = {}
    real = experiment.write_identities

    def recording(folder, banks, weights=None):
        seen.update(weights or {})
        return real(folder, banks, weights)

    monkeypatch.setattr(experiment, "write_identities", recording)
    cfg = dataclasses.replace(CENTRAL, dp=DPConfig(mode="opacus", epsilon=4.0))
    prepared = prepare(cfg, embedded)
    with pytest.raises(_StopError):
        monkeypatch.setattr(experiment, "simulate", _stop)
        experiment.federate(cfg, prepared)
    rows = {n: info["rows"] for n, info in prepared.bank_info.items()}
    assert seen == {n: public_weight("opacus", r) for n, r in rows.items()}
    assert all(seen[n] != r for n, r in rows.items())


def test_plain_dp_train_replies_carry_the_public_weight(embedded, tmp_path):
    """Under plain FedAvg with DP-SGD every train reply's num-examples is the size band."""
    from fl_credit.config.schema import AuditConfig, StrategyConfig
    from fl_credit.coordinator.view import ServerView

    cfg = dataclasses.replace(
        CENTRAL,
        dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp"),
        strategy=StrategyConfig(name="fedavg"),
        audit=AuditConfig(record_server_view=True),
    )
    prepared = prepare(cfg, embedded)
    run_experiment(cfg, prepared, tmp_path)
    sent = [
        e.metrics["metrics"]["num-examples"]
        for e in ServerView(tmp_path / "server_view").replies("train")
    ]
    bands = sorted(public_weight("opacus", i["rows"]) for i in prepared.bank_info.values())
    assert sorted(sent) == bands
    assert not set(sent) & {i["rows"] for i in prepared.bank_info.values()}


class _StopError(Exception):
    pass


def _stop(*args, **kwargs):
    raise _StopError


def test_protection_line_says_what_dp_covers_and_what_it_does_not():
    from fl_credit.coordinator.protection import describe

    opacus = describe(dataclasses.replace(CENTRAL, dp=DPConfig(mode="opacus", epsilon=4.0)), 3, 2)
    releases = "statistics, validation, validation counts and training"
    assert f"epsilon 4 per bank over {releases}" in opacus
    assert "weights: public size bands" in opacus
    assert "not_private/" in opacus and "not covered" in opacus
    central = describe(CENTRAL, 3, 2)
    assert "every bank weighs 1" in central and "not_private/" in central
    plain = describe(dataclasses.replace(CENTRAL, dp=DPConfig()), 3, 2)
    assert "not_private" not in plain
