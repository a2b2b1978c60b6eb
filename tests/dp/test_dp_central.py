"""Bank-level DP: the client mod (clip, noise share, equal weight) and the server accountant."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fl_credit.protocol.settings import BankSettings
from strategies.dp import BudgetExhausted, CentralDPAccountant, central_dp_mod, min_contributors
from strategies.dp.accounting import rdp_epsilon
from strategies.dp.central import clip_update
from strategies.dp.errors import PrivacyConfigError


def make_message(
    weights: dict[str, np.ndarray], config: dict, message_type: str = "train"
) -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="m-1",
        src_node_id=0,
        dst_node_id=7,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type=message_type,
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in weights.items()}),
            "config": ConfigRecord(config),
        }
    )
    return Message(content=content, metadata=metadata)


def make_context(partition: int = 0) -> Context:
    return Context(
        run_id=1,
        node_id=7,
        node_config={"partition-id": partition},
        state=RecordDict(),
        run_config={},
    )


def trainer(delta: dict[str, np.ndarray]):
    """A stand-in ClientApp: replies the received weights plus ``delta``, with loss metrics."""

    def call_next(message: Message, context: Context) -> Message:
        sent = message.content["arrays"]
        new = {
            k: Array(a + delta[k])
            for k, a in zip(sent.keys(), sent.to_numpy_ndarrays(), strict=True)
        }
        metrics = MetricRecord({"num-examples": 1234, "train_loss": 0.4, "val_loss_before": 0.5})
        return Message(
            content=RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}), reply_to=message
        )

    return call_next


def central_config(clip: float, std: float, **extra) -> dict:
    config = dict(BankSettings(dp_mode="central", dp_clip_norm=clip, seed=5).to_config())
    return {**config, "dp-noise-std": std, "server-round": 3, **extra}


GLOBAL = {
    "linear.weight": np.full((1, 4), 0.5, dtype=np.float32),
    "linear.bias": np.zeros(1, dtype=np.float32),
}


def reply_update(reply: Message, base: dict[str, np.ndarray] = GLOBAL) -> np.ndarray:
    """The reply's weights minus ``base``, flattened."""
    arrays = reply.content["arrays"]
    pairs = zip(arrays.keys(), arrays.to_numpy_ndarrays(), strict=True)
    return np.concatenate([(a - base[k]).ravel() for k, a in pairs])


def test_large_update_is_clipped_to_the_norm_and_weighted_one():
    delta = {
        "linear.weight": np.full((1, 4), 3.0, np.float32),
        "linear.bias": np.ones(1, np.float32),
    }
    context = make_context()
    reply = central_dp_mod(make_message(GLOBAL, central_config(1.5, 0.0)), context, trainer(delta))
    update = reply_update(reply)
    assert np.linalg.norm(update) == pytest.approx(1.5, rel=1e-6)
    direction = np.concatenate([delta["linear.weight"].ravel(), delta["linear.bias"]])
    assert np.allclose(update / 1.5, direction / np.linalg.norm(direction), atol=1e-6)
    assert dict(reply.content["metrics"]) == {"num-examples": 1}
    assert list(reply.content.metric_records) == ["metrics"]
    assert reply.content["arrays"].to_numpy_ndarrays()[0].dtype == np.float32
    stats = context.state["central-dp"]
    assert stats["rounds"] == 1 and stats["clipped-rounds"] == 1
    assert stats["last-update-norm"] == pytest.approx(np.linalg.norm(direction))


def test_mod_works_inside_a_flower_client_app():
    app = ClientApp(mods=[central_dp_mod])
    app.train()(trainer({k: np.full_like(v, 10.0) for k, v in GLOBAL.items()}))
    context = make_context()
    reply = app(make_message(GLOBAL, central_config(1.0, 0.0)), context)
    assert not reply.has_error()
    assert np.linalg.norm(reply_update(reply)) == pytest.approx(1.0, rel=1e-6)
    assert dict(reply.content["metrics"]) == {"num-examples": 1}
    assert context.state["central-dp"]["clipped-rounds"] == 1


def test_small_update_is_left_alone_and_counted_as_not_clipped():
    delta = {
        "linear.weight": np.full((1, 4), 0.1, np.float32),
        "linear.bias": np.zeros(1, np.float32),
    }
    context = make_context()
    for _ in range(2):
        reply = central_dp_mod(
            make_message(GLOBAL, central_config(1.0, 0.0)), context, trainer(delta)
        )
    assert np.allclose(reply_update(reply)[:4], 0.1, atol=1e-7)
    assert context.state["central-dp"]["rounds"] == 2
    assert context.state["central-dp"]["clipped-rounds"] == 0


def test_noise_share_has_the_requested_std():
    big = {
        "linear.weight": np.zeros((1, 40_000), np.float32),
        "linear.bias": np.zeros(1, np.float32),
    }
    message = make_message(big, central_config(1.0, 0.3))
    noise = reply_update(central_dp_mod(message, make_context(), trainer(big)), base=big)
    assert noise.std() == pytest.approx(0.3, rel=0.02)
    assert abs(noise.mean()) < 4 * 0.3 / math.sqrt(noise.size)


def test_seeded_noise_repeats_per_bank_and_secret_noise_does_not():
    """Noise is secret unless the bank opts into seeded noise (``dp-secret-noise`` false)."""
    zero = {k: np.zeros_like(v) for k, v in GLOBAL.items()}
    seeded = {"dp-secret-noise": False}

    def noise(partition: int, **extra) -> np.ndarray:
        message = make_message(GLOBAL, central_config(1.0, 0.5, **extra))
        return reply_update(central_dp_mod(message, make_context(partition), trainer(zero)))

    assert np.array_equal(noise(0, **seeded), noise(0, **seeded))
    assert not np.allclose(noise(0, **seeded), noise(1, **seeded))
    assert not np.allclose(noise(0), noise(0))  # the default: secret
    assert not np.allclose(
        noise(0, **{"dp-secret-noise": True}), noise(0, **{"dp-secret-noise": True})
    )


def test_a_replayed_round_number_gets_fresh_noise():
    zero = {k: np.zeros_like(v) for k, v in GLOBAL.items()}
    context = make_context(0)
    first, second = (
        reply_update(
            central_dp_mod(make_message(GLOBAL, central_config(1.0, 0.5)), context, trainer(zero))
        )
        for _ in range(2)
    )
    assert not np.allclose(first, second)


@pytest.mark.parametrize(
    ("config", "message_type"),
    [
        (dict(BankSettings(dp_mode="off").to_config()), "train"),
        (central_config(1.0, 0.5), "evaluate"),
        (central_config(1.0, 0.5), "query.histogram"),
    ],
)
def test_other_messages_pass_through_untouched(config, message_type):
    delta = {k: np.full_like(v, 5.0) for k, v in GLOBAL.items()}
    reply = central_dp_mod(
        make_message(GLOBAL, config, message_type), make_context(), trainer(delta)
    )
    assert np.allclose(reply_update(reply), 5.0)
    assert reply.content["metrics"]["num-examples"] == 1234


def test_missing_noise_key_is_an_error_reply():
    config = dict(BankSettings(dp_mode="central").to_config())
    config.pop("dp-noise-std")
    reply = central_dp_mod(make_message(GLOBAL, config), make_context(), trainer(GLOBAL))
    assert reply.has_error() and "dp-noise-std" in reply.error.reason


@settings(max_examples=40, deadline=None)
@given(
    update=arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e3, 1e3)),
    clip=st.floats(0.01, 100.0),
)
def test_clip_update_bounds_the_norm_and_keeps_the_direction(update, clip):
    (clipped,), norm = clip_update([update], clip)
    assert norm == pytest.approx(np.linalg.norm(update))
    assert np.linalg.norm(clipped) <= clip * (1 + 1e-9) + 1e-12
    if norm <= clip:
        assert np.array_equal(clipped, update)
    else:
        assert np.allclose(clipped * norm / clip, update, atol=1e-6 * max(norm, 1.0))


def test_accountant_spends_the_target_at_the_horizon_and_no_more():
    acc = CentralDPAccountant.from_target(
        target_epsilon=3.0, total_rounds=20, min_contributors=3, clip_norm=0.5
    )
    eps = [acc.epsilon_after(r) for r in range(1, 21)]
    assert all(a < b for a, b in zip(eps, eps[1:], strict=False))
    assert 3.0 - 0.011 <= eps[-1] <= 3.0
    assert eps[-1] == pytest.approx(rdp_epsilon(acc.noise_multiplier, 1.0, 20, 1e-5), rel=1e-12)
    acc.check_round(20)
    with pytest.raises(BudgetExhausted, match="beyond the 20 planned"):
        acc.check_round(21)
    assert acc.report(20)["epsilon"] == eps[-1]
    assert dict(ConfigRecord(acc.report(20))) == acc.report(20)


def test_noise_shares_add_up_to_the_full_noise_for_any_released_sum():
    acc = CentralDPAccountant.from_target(
        target_epsilon=2.0, total_rounds=10, min_contributors=4, clip_norm=2.0
    )
    assert acc.noise_std == pytest.approx(acc.noise_multiplier * 2.0)
    assert acc.noise_std_share == pytest.approx(acc.noise_std / 2.0)
    rng = np.random.default_rng(0)
    summed = sum(rng.normal(0, acc.noise_std_share, 100_000) for _ in range(4))
    assert summed.std() == pytest.approx(acc.noise_std, rel=0.02)
    colluding = CentralDPAccountant.from_target(
        target_epsilon=2.0, total_rounds=10, min_contributors=4, clip_norm=2.0, colluders=1
    )
    assert 3 * colluding.noise_std_share**2 == pytest.approx(acc.noise_std**2)
    assert acc.train_config() == {
        "dp-mode": "central",
        "dp-clip-norm": 2.0,
        "dp-noise-std": acc.noise_std_share,
    }


def test_min_contributors_follows_the_threat_model():
    assert min_contributors(5, secagg_threshold=3) == 3
    assert min_contributors(5) == 5
    assert min_contributors(5, protect_from_server=True) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_epsilon": 1e-7},
        {"target_epsilon": 1.0, "colluders": 3},
        {"target_epsilon": 1.0, "clip_norm": 0.0},
    ],
)
def test_bad_central_plans_are_config_errors(kwargs):
    with pytest.raises(PrivacyConfigError):
        CentralDPAccountant.from_target(total_rounds=10, min_contributors=3, **kwargs)
