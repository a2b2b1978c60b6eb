"""Per-bank DP-SGD: cumulative accounting across rounds, persistence, noise scale, edge cases."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, RecordDict
from flwr.common import serde
from hypothesis import given, settings
from hypothesis import strategies as st

from fl_credit.model.logistic import LogisticRegression, new_model, to_arrays
from fl_credit.protocol.settings import BankSettings
from strategies.dp import BudgetExhausted, privacy_report, rdp_epsilon
from strategies.dp import train_private as dp_train_private
from strategies.dp.errors import PrivacyConfigError
from strategies.dp.opacus_training import epsilon_spent, poisson_batches

# DP-SGD alone: no statistics or threshold releases in these unit tests' budgets.
SETTINGS = BankSettings(
    seed=3,
    lr=0.5,
    l2=0.01,
    dp_mode="opacus",
    dp_epsilon=2.0,
    dp_accountant="rdp",
    dp_sample_rate=0.1,
    dp_max_grad_norm=1.0,
    dp_budget_statistics=0.0,
    dp_budget_validation=0.0,
    total_rounds=3,
    local_epochs=2,
)


def train_private(model, x, y, pos_weight, settings: BankSettings, state, server_round, **kw):
    """The bank's call: public DP settings and local steps from its BankSettings."""
    return dp_train_private(
        model,
        x,
        y,
        pos_weight,
        settings.dp_settings(),
        state,
        server_round,
        steps=settings.local_steps(),
        seed=settings.seed,
        **kw,
    )


def bank_rows(n: int = 400, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0.8).astype(np.float32)
    return x, y


def run_rounds(settings: BankSettings, rounds: int, x, y, state=None, model=None):
    state = RecordDict() if state is None else state
    model = new_model(x.shape[1], 0) if model is None else model
    reports = []
    for r in range(1, rounds + 1):
        train_private(model, x, y, 2.0, settings, state, r)
        reports.append(privacy_report(state))
    return model, state, reports


def weights(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def reload(state: RecordDict) -> RecordDict:
    """Serialise ``state`` to protobuf bytes and back, as across processes."""
    data = serde.recorddict_to_proto(state).SerializeToString()
    proto = serde.ProtoRecordDict()
    proto.ParseFromString(data)
    return serde.recorddict_from_proto(proto)


def test_rdp_report_equals_independent_rdp_computation():
    x, y = bank_rows()
    _, _, reports = run_rounds(SETTINGS, 2, x, y)
    rep = reports[-1]
    assert rep["accountant"] == "rdp" and rep["rounds_done"] == 2
    assert rep["sample_rate"] == pytest.approx(40 / 400)
    assert rep["steps"] == 2 * SETTINGS.local_epochs * 10
    independent = rdp_epsilon(
        rep["noise_multiplier"], rep["sample_rate"], rep["steps"], rep["delta"]
    )
    assert rep["epsilon"] == pytest.approx(independent, rel=1e-12)
    assert rep["epsilon_rdp"] == pytest.approx(independent, rel=1e-12)


def test_prv_report_is_close_to_and_below_rdp():
    x, y = bank_rows()
    _, _, reports = run_rounds(replace(SETTINGS, dp_accountant="prv", total_rounds=2), 2, x, y)
    rep = reports[-1]
    rdp = rdp_epsilon(rep["noise_multiplier"], rep["sample_rate"], rep["steps"], rep["delta"])
    assert rep["accountant"] == "prv"
    assert 0.7 * rdp <= rep["epsilon"] <= rdp
    assert rep["epsilon"] == pytest.approx(2.0, abs=0.011)


def test_epsilon_is_cumulative_and_reaches_the_target_at_the_horizon():
    x, y = bank_rows()
    settings = replace(SETTINGS, total_rounds=4, local_epochs=1)
    _, state, reports = run_rounds(settings, 4, x, y)
    eps = [r["epsilon"] for r in reports]
    assert all(a < b for a, b in zip(eps, eps[1:], strict=False))
    assert 2.0 - 0.011 <= eps[-1] <= 2.0
    assert {r["noise_multiplier"] for r in reports} == {reports[0]["noise_multiplier"]}
    assert [r["steps"] for r in reports] == [10, 20, 30, 40]
    assert epsilon_spent(state) == eps[-1]


def test_a_round_beyond_the_horizon_raises_and_changes_nothing():
    x, y = bank_rows()
    model, state, reports = run_rounds(SETTINGS, 3, x, y)
    before, record = weights(model), dict(state["dp"])
    with pytest.raises(BudgetExhausted, match="3 of 3 planned"):
        train_private(model, x, y, 2.0, SETTINGS, state, 4)
    assert np.array_equal(weights(model), before)
    assert dict(state["dp"]) == record
    assert privacy_report(state)["epsilon"] == reports[-1]["epsilon"] <= SETTINGS.dp_epsilon


def test_state_survives_serialisation_between_rounds():
    x, y = bank_rows()
    model, state, _ = run_rounds(SETTINGS, 1, x, y)
    twin_model, twin_state = LogisticRegression(x.shape[1]), reload(state)
    twin_model.load_state_dict(model.state_dict())
    assert isinstance(twin_state["dp"], ConfigRecord)
    train_private(model, x, y, 2.0, SETTINGS, state, 2)
    train_private(twin_model, x, y, 2.0, SETTINGS, twin_state, 2)
    assert np.array_equal(weights(model), weights(twin_model))
    assert privacy_report(twin_state) == privacy_report(state)


FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    from flwr.common import serde
    from fl_credit.protocol.settings import BankSettings
    from fl_credit.model.logistic import new_model
    from strategies.dp import privacy_report, train_private

    proto = serde.ProtoRecordDict()
    proto.ParseFromString(sys.stdin.buffer.read())
    state = serde.recorddict_from_proto(proto)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=400) > 0.8).astype(np.float32)
    settings = BankSettings.from_config(serde.recorddict_from_proto(proto)["settings"])
    train_private(
        new_model(6, 0), x, y, 2.0, settings.dp_settings(), state, 2,
        steps=settings.local_steps(), seed=settings.seed,
    )
    print(privacy_report(state)["steps"], privacy_report(state)["epsilon"])
    """
)


@pytest.mark.slow
def test_state_survives_a_fresh_process():
    x, y = bank_rows()
    _, state, reports = run_rounds(SETTINGS, 1, x, y)
    state["settings"] = SETTINGS.to_config()
    data = serde.recorddict_to_proto(state).SerializeToString()
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], input=data, capture_output=True, check=True
    )
    steps, epsilon = out.stdout.decode().split()
    assert int(steps) == 2 * reports[0]["steps"]
    assert float(epsilon) > reports[0]["epsilon"]


def test_noise_on_the_weights_has_the_dp_sgd_scale():
    # With all-zero features the data gradient of every weight is exactly zero, so each
    # weight moves only by the DP noise and the L2 decay:
    #   w_{t+1} = (1 - lr * l2) * w_t - lr * N(0, (sigma * C / B)^2),
    # hence after T steps: mean = (1 - lr l2)^T and var = (lr sigma C / B)^2 sum_j (1 - lr l2)^2j.
    n, d = 400, 3000
    x, y = np.zeros((n, d), dtype=np.float32), bank_rows(n)[1]
    settings = replace(SETTINGS, lr=0.3, l2=0.05, dp_max_grad_norm=0.7, total_rounds=2)
    model = new_model(d, 0)
    with torch.no_grad():
        model.linear.weight.fill_(1.0)
    state = RecordDict()
    train_private(model, x, y, 2.0, settings, state, 1)
    rep = privacy_report(state)
    steps, decay = rep["steps"], 1 - settings.lr * settings.l2
    step_std = settings.lr * rep["noise_multiplier"] * settings.dp_max_grad_norm / 40
    expected_std = step_std * math.sqrt(sum(decay ** (2 * j) for j in range(steps)))
    w = model.linear.weight.detach().numpy().ravel()
    assert w.std() == pytest.approx(expected_std, rel=0.06)
    assert w.mean() == pytest.approx(decay**steps, abs=4 * expected_std / math.sqrt(d))


def test_same_seed_same_weights_other_bank_other_noise():
    x, y = bank_rows()
    runs = []
    for key in ("bank_0", "bank_0", "bank_1"):
        model = new_model(x.shape[1], 0)
        train_private(model, x, y, 2.0, SETTINGS, RecordDict(), 1, bank_key=key)
        runs.append(weights(model))
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    secret = [new_model(x.shape[1], 0) for _ in range(2)]
    for model in secret:
        train_private(model, x, y, 2.0, SETTINGS, RecordDict(), 1, secret_noise=True)
    assert not np.allclose(weights(secret[0]), weights(secret[1]))


def test_a_replayed_round_number_gets_fresh_noise():
    x, y = bank_rows()
    state, runs = RecordDict(), []
    for _ in range(2):
        model = new_model(x.shape[1], 0)
        train_private(model, x, y, 2.0, SETTINGS, state, 1)
        runs.append(weights(model))
    assert not np.allclose(runs[0], runs[1])


def test_weights_come_back_as_plain_module_weights():
    x, y = bank_rows()
    model = new_model(x.shape[1], 0)
    start = weights(model)
    train_private(model, x, y, 2.0, SETTINGS, RecordDict(), 1)
    assert type(model) is LogisticRegression
    assert list(model.state_dict()) == ["linear.weight", "linear.bias"]
    assert list(to_arrays(model).keys()) == ["linear.weight", "linear.bias"]
    assert not any(
        hasattr(p, "grad_sample") and p.grad_sample is not None for p in model.parameters()
    )
    assert not np.array_equal(weights(model), start)
    assert np.isfinite(weights(model)).all()


def test_tiny_bank_with_many_empty_batches_trains_and_counts_every_step():
    x, y = bank_rows(n=30)
    settings = replace(SETTINGS, dp_sample_rate=1 / 30, total_rounds=2, local_epochs=1)
    sizes = [len(b) for b in poisson_batches(30, 1 / 30, 300, np.random.default_rng(0))]
    assert sizes.count(0) > 50  # (29/30)^30: about 36% of the batches are empty at this rate
    model, state = new_model(x.shape[1], 0), RecordDict()
    for server_round in (1, 2):
        loss = train_private(model, x, y, 2.0, settings, state, server_round)
    assert privacy_report(state)["steps"] == 60
    assert np.isfinite(weights(model)).all() and math.isfinite(loss)


def test_an_all_empty_round_applies_noise_only_and_is_counted(monkeypatch):
    def only_empty(n_rows, rate, steps, rng):
        return (torch.empty(0, dtype=torch.int64) for _ in range(steps))

    monkeypatch.setattr("strategies.dp.opacus_training.poisson_batches", only_empty)
    x, y = bank_rows()
    model, state = new_model(x.shape[1], 0), RecordDict()
    loss = train_private(model, x, y, 2.0, replace(SETTINGS, l2=0.0), state, 1)
    assert math.isnan(loss)  # no row was seen
    assert np.abs(weights(model)).sum() > 0  # the noise was still applied
    assert privacy_report(state)["steps"] == SETTINGS.local_epochs * 10


def test_impossible_epsilon_is_a_config_error():
    x, y = bank_rows()
    with pytest.raises(PrivacyConfigError, match="cannot be met"):
        train_private(
            new_model(6, 0), x, y, 2.0, replace(SETTINGS, dp_epsilon=1e-7), RecordDict(), 1
        )
    with pytest.raises(PrivacyConfigError, match="positive"):
        train_private(
            new_model(6, 0), x, y, 2.0, replace(SETTINGS, dp_epsilon=0.0), RecordDict(), 1
        )


def test_changing_the_horizon_mid_run_is_a_config_error():
    x, y = bank_rows()
    _, state, _ = run_rounds(SETTINGS, 1, x, y)
    with pytest.raises(PrivacyConfigError, match="total_rounds 3 -> 5"):
        train_private(new_model(6, 0), x, y, 2.0, replace(SETTINGS, total_rounds=5), state, 2)


def test_default_delta_is_well_below_one_over_rows_and_public():
    """Before: delta = min(1e-5, 0.1 / rows) -- rows x delta = 0.1 for large banks, and a
    delta that depends on the row count. Now a public 1e-7, and a bank refuses any delta with
    rows x delta above 0.01."""
    x, y = bank_rows(n=400)
    _, state, _ = run_rounds(replace(SETTINGS, total_rounds=1), 1, x, y)
    assert privacy_report(state)["delta"] == 1e-7
    _, state, _ = run_rounds(replace(SETTINGS, total_rounds=1, dp_delta=1e-6), 1, x, y)
    assert privacy_report(state)["delta"] == 1e-6
    with pytest.raises(PrivacyConfigError, match="not well below 1/rows"):
        run_rounds(replace(SETTINGS, total_rounds=1, dp_delta=1e-4), 1, x, y)


def test_report_before_training_is_empty():
    report = privacy_report(RecordDict())
    assert report["accountant"] == "none" and report["epsilon"] == 0.0
    assert report["rounds_done"] == 0 and report["releases"] == {}


def test_report_is_json_after_training():
    x, y = bank_rows()
    _, state, reports = run_rounds(replace(SETTINGS, total_rounds=1), 1, x, y)
    assert json.loads(json.dumps(reports[0])) == reports[0]


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(min_value=1, max_value=5_000),
    rate=st.floats(min_value=1e-4, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_poisson_batches_are_distinct_rows_in_range(n_rows, rate, seed):
    for idx in poisson_batches(n_rows, rate, 5, np.random.default_rng(seed)):
        values = idx.tolist()
        assert len(set(values)) == len(values)
        assert all(0 <= v < n_rows for v in values)


def test_poisson_batch_sizes_have_binomial_moments():
    n, q = 2_000, 0.01
    sizes = np.array([len(b) for b in poisson_batches(n, q, 4_000, np.random.default_rng(1))])
    assert sizes.mean() == pytest.approx(n * q, rel=0.03)
    assert sizes.var() == pytest.approx(n * q * (1 - q), rel=0.1)
