"""A bank's own floors: what a coordinator (or a malicious bank) cannot lower.

Each test plays the coordinator against the real bank code: the secure-aggregation mods of
``strategies.secagg`` (InProcessGrid) or the bank's real ClientApp (``fl_credit``). Every
attack recovered a bank's exact input, framed an honest bank or halted the run before the
bank-side floors (see the commit messages); the tests assert that it is refused now.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from strategies.secagg import SecureAggregator, install_secagg, secagg_mod
from strategies.secagg.floors import Floors
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities

N = 5
IDENTITIES, CONSORTIUM = simulated_identities(N)
PROVIDER = partition_identities(IDENTITIES, CONSORTIUM)


def _stats(pid: int) -> np.ndarray:
    return np.array([100.0 + pid, 7.0 * pid * pid, 3.5 + pid])


def make_app(floors: Floors | None = None) -> ClientApp:
    app = ClientApp(mods=[secagg_mod])
    install_secagg(app, PROVIDER, floors=None if floors is None else (lambda _: floors))

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        return Message(RecordDict({"arrays": ArrayRecord({"v": Array(_stats(pid))})}), reply_to=msg)

    return app


def _epoch_of_colluders(floors: Floors | None):
    """The coordinator keys an epoch of {victim, colluder, colluder} and sums over it."""
    grid = InProcessGrid(make_app(floors), N)
    victim, colluders = 0, (1, 2)
    nodes = [grid.node_ids[p] for p in (victim, *colluders)]
    agg = SecureAggregator(consortium=CONSORTIUM)
    query = RecordDict({"config": ConfigRecord({})})
    result = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=nodes)
    if result.records is None:
        return None, result
    total = result.records["arrays"]["v"].numpy()
    return total - sum(_stats(p) for p in colluders), result


def test_epoch_of_a_victim_and_two_colluders_is_refused() -> None:
    """Two colluding banks of five: an epoch of the victim and them gives its input exactly
    (it did before the floors); a bank whose floors say ``colluders=2`` refuses to key an
    epoch of fewer than ``c + 2`` banks."""
    recovered, _ = _epoch_of_colluders(None)
    np.testing.assert_allclose(recovered, _stats(0), atol=1e-3)  # today's default (c = 0)
    recovered, result = _epoch_of_colluders(Floors(colluders=2))
    assert recovered is None
    assert "key setup" in result.report.reason


def test_smarter_coordinator_cannot_meet_the_floor_with_colluders_only() -> None:
    """Next moves: raise the threshold to meet the floor but keep the 3-bank sum (refused:
    fewer participants than the floor); add one honest bank to meet the size floor (the
    sum minus the colluders is then the victim's plus an honest bank's, not the victim's)."""
    floors = Floors(colluders=2)
    grid = InProcessGrid(make_app(floors), N)
    agg = SecureAggregator(threshold=4, consortium=CONSORTIUM)
    query = RecordDict({"config": ConfigRecord({})})
    three = [grid.node_ids[p] for p in (0, 1, 2)]
    result = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=three)
    assert result.records is None
    four = [grid.node_ids[p] for p in (0, 1, 2, 3)]
    result = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=four)
    assert result.records is not None
    left = result.records["arrays"]["v"].numpy() - _stats(1) - _stats(2)
    np.testing.assert_allclose(left, _stats(0) + _stats(3), atol=1e-3)
    assert np.min(np.abs(left - _stats(0))) > 1.0


def test_threshold_below_the_colluder_bound_is_refused_at_key_setup() -> None:
    """n = 5, c = 1: at t = 3 split views recover a bank's input
    (``test_server_with_one_colluding_bank_needs_t_above_half_of_n_plus_one``); banks whose
    floors declare one colluder refuse t = 3 and accept t = 4 (the coordinator may raise)."""
    grid = InProcessGrid(make_app(Floors(colluders=1)), N)
    query = RecordDict({"config": ConfigRecord({})})
    low = SecureAggregator(threshold=3, consortium=CONSORTIUM)
    result = low.secure_sum(grid, query, "query.stats", value_range=1e3)
    assert result.records is None and "key setup" in result.report.reason
    high = SecureAggregator(threshold=4, consortium=CONSORTIUM)
    result = high.secure_sum(grid, query, "query.stats", value_range=1e3)
    assert result.records is not None
    impossible = SecureAggregator(threshold=6, consortium=CONSORTIUM)  # t > n
    assert impossible.secure_sum(grid, query, "query.stats", value_range=1e3).records is None


# --- the bank's real ClientApp (fl_credit) -----------------------------------------------


@pytest.fixture
def running_node(monkeypatch):
    """What a running SuperNode sets before its ClientApp builds a reply."""
    from flwr.supercore.task_identity import TaskIdentity

    for key in ("_run_id", "_node_id", "_task_id"):
        if getattr(TaskIdentity, key) is None:
            monkeypatch.setattr(TaskIdentity, key, 1)


def _bank(cfg, embedded, tmp_path):
    from fl_credit.data.prepare import prepare, write_bank_files
    from fl_credit.protocol.settings import BankSettings

    prepared = prepare(cfg, embedded)
    write_bank_files(prepared, tmp_path, suffix=".npz")
    settings = BankSettings.from_experiment(cfg, bank_dir=str(tmp_path))
    context = Context(
        run_id=1, node_id=5, node_config={"partition-id": 0}, state=RecordDict(), run_config={}
    )
    return prepared, settings, context


def _ask(app, context, config: dict, message_type: str = "query.moments") -> Message:
    message = Message(
        RecordDict({"config": ConfigRecord(config)}), dst_node_id=5, message_type=message_type
    )
    message.metadata.__dict__["_message_id"] = "m"
    return app(message, context)


def _values(reply: Message) -> np.ndarray:
    return next(iter(reply.content["arrays"].values())).numpy()


def _cfg(**dp):
    from fl_credit.config.schema import DPConfig, EngineConfig, ExperimentConfig, TrainConfig

    base = ExperimentConfig(
        train=TrainConfig(rounds=2, optimizer="sgd"), engine=EngineConfig(backend="inprocess")
    )
    if not dp:
        return base
    return dataclasses.replace(base, dp=DPConfig(**dp))


def test_plaintext_request_is_refused_by_a_deployed_bank(embedded, tmp_path, running_node) -> None:
    """Downgrade: a request without the secure-aggregation record got a plaintext reply,
    the bank's exact default count, row count and feature sums (before the floors). A bank
    with no floor in its node config now requires secure aggregation."""
    from fl_credit.bank.client_app import make_client_app

    _, settings, context = _bank(_cfg(), embedded, tmp_path)
    app = make_client_app()
    reply = _ask(app, context, {**settings.to_config(), "pass": 1})
    assert reply.has_error(), f"plaintext reply: {_values(reply)[:3]}"
    assert "without secure aggregation" in reply.error.reason
    # Smarter: a secure-aggregation record that is not a mask request is no cover either.
    fake = Message(
        RecordDict(
            {
                "config": ConfigRecord({**settings.to_config(), "pass": 1}),
                "secagg": ConfigRecord({"phase": "unmask"}),
            }
        ),
        dst_node_id=5,
        message_type="query.moments",
    )
    fake.metadata.__dict__["_message_id"] = "m"
    assert "without secure aggregation" in app(fake, context).error.reason
    # Data-free requests are still answered in the clear (the standardiser hand-over).
    hand_over = _ask(app, context, {"scaler-mean": [0.0], "scaler-std": [1.0], "pos-weight": 1.0},
                     "query.standardizer")  # fmt: skip
    assert not hand_over.has_error()


def _dp_attack(floors, embedded, tmp_path, **asked):
    """The coordinator asks bank 0 for its DP statistics with ``asked`` in the settings and
    removes the noise it can regenerate from public values (seed, release, bank name).

    Returns the largest error of its estimate of the exact values (None if refused)."""
    from fl_credit.bank.client_app import make_client_app
    from fl_credit.bank.privacy import noise_rng
    from fl_credit.data.scaling import private_moments, private_moments_sensitivity
    from strategies.dp.noise import noise_std_share
    from strategies.dp.plan import plan_for_round, take_release

    cfg = _cfg(mode="opacus", epsilon=4.0, accountant="rdp")
    prepared, settings, context = _bank(cfg, embedded, tmp_path)
    config = {**settings.to_config(), "pass": "private", **prepared.bounds.to_lists(), **asked}
    reply = _ask(make_client_app(floors=floors), context, config)
    if reply.has_error():
        return None
    bank = prepared.banks["bank_0"]
    exact = private_moments(bank.x_train, bank.y_train, prepared.bounds)
    plan = RecordDict()
    plan_for_round(plan, settings.dp_settings(), len(bank.y_train))  # public settings
    sigma = take_release(plan, "statistics").noise_multiplier
    std = noise_std_share(
        noise_multiplier=sigma,
        sensitivity=private_moments_sensitivity(prepared.bounds),
        contributors=1,
    )
    seeded = dataclasses.replace(settings, dp_secret_noise=False)  # what the seed would give
    regenerated = noise_rng(seeded, "statistics", "bank_0").normal(0.0, std, exact.shape)
    return float(np.max(np.abs(_values(reply) - regenerated - exact)))


def _dp_floors(**kw):
    from fl_credit.bank.floors import BankFloors

    return BankFloors(secagg=Floors(secure_aggregation=False), dp_mode="opacus", **kw)


def test_seeded_dp_noise_is_not_removable(embedded, tmp_path, running_node) -> None:
    """The coordinator asked for seeded noise (``dp-secret-noise`` false) and removed it:
    error 2.8e-14 against noise of 146 before. A bank draws secret noise whenever DP is on,
    whatever the request says; seeded noise only on its own opt-in (studies)."""
    error = _dp_attack(_dp_floors(), embedded, tmp_path, **{"dp-secret-noise": False})
    assert error is not None and error > 1.0
    studied = _dp_attack(_dp_floors(reproducible_noise=True), embedded, tmp_path)
    assert studied is not None and studied < 1e-6  # the opt-in is not private (flagged)


def test_dp_switched_off_or_weakened_by_the_coordinator_is_refused(
    embedded, tmp_path, running_node
) -> None:
    """``dp-mode=off`` in the request gave the exact statistics before; so would an
    epsilon of 1000. Both are below a bank that requires DP at epsilon 4."""
    assert _dp_attack(_dp_floors(), embedded, tmp_path, **{"dp-mode": "off"}) is None
    weak = _dp_floors(dp_max_epsilon=4.0)
    assert _dp_attack(weak, embedded, tmp_path, **{"dp-epsilon": 1000.0}) is None
    assert _dp_attack(weak, embedded, tmp_path, **{"dp-epsilon": 2.0}) is not None  # raised


def test_protection_line_flags_reproducible_noise_and_floors_follow_the_config() -> None:
    """The simulated banks' floors come from the agreed configuration, not from messages;
    the ``protection:`` line says when the noise is seeded from public values."""
    from fl_credit.bank.floors import BankFloors, floors_from_node_config
    from fl_credit.coordinator.protection import describe

    studied = _cfg(mode="opacus", epsilon=4.0, colluders=1, reproducible_noise=True)
    assert "NOT PRIVATE" in describe(studied, 3, 3)
    assert "NOT PRIVATE" not in describe(_cfg(mode="opacus", epsilon=4.0), 3, 2)
    floors = BankFloors.from_experiment(studied, 3)
    assert floors.secagg == Floors(secure_aggregation=True, colluders=1, min_threshold=3)
    assert (floors.dp_mode, floors.dp_max_epsilon, floors.reproducible_noise) == (
        "opacus",
        4.0,
        True,
    )
    deployed = floors_from_node_config(
        {"secagg-colluders": 1, "dp-required": "central", "dp-reproducible-noise": "false"}
    )
    assert deployed.secagg.colluders == 1 and deployed.dp_mode == "central"
    assert not deployed.reproducible_noise and deployed.secagg.secure_aggregation


def _central_chain(floors):
    """The bank's chain for a ``train`` request under ``dp=central``: its floors, the
    central-DP mod, and a stand-in training step (update 0.1 on one weight)."""
    from fl_credit.bank.floors import floors_mod, floors_provider
    from strategies.dp.central import central_dp_mod

    def train(msg: Message, context: Context) -> Message:
        w = msg.content["arrays"]["w"].numpy()
        step = np.array([[0.1, 0.0, 0.0, 0.0]])
        return Message(RecordDict({"arrays": ArrayRecord({"w": Array(w + step)})}), reply_to=msg)

    mod = floors_mod(floors_provider(floors))
    return lambda msg, context: mod(msg, context, lambda m, c: central_dp_mod(m, c, train))


def _central_request(cfg, std: float, clip: float) -> Message:
    from fl_credit.protocol.settings import BankSettings

    config = {
        **BankSettings.from_experiment(cfg).to_config(),
        "server-round": 1,
        "dp-noise-std": std,
        "dp-clip-norm": clip,
    }
    arrays = ArrayRecord({"w": Array(np.zeros((1, 4)))})
    msg = Message(
        RecordDict({"arrays": arrays, "config": ConfigRecord(config)}),
        dst_node_id=5,
        message_type="train",
    )
    msg.metadata.__dict__["_message_id"] = "m"
    return msg


def test_central_dp_noise_share_or_clip_below_the_floor_is_refused(running_node) -> None:
    """Smarter than switching DP off: keep ``dp-mode=central`` and the epsilon, but send a
    noise share of 0 (or a 100x clip norm). The bank's chain (floors, central-DP mod)
    returned the exact update (0.1) before; the floors now hold the noise share and the
    clip norm planned from the agreed configuration."""
    from fl_credit.bank.floors import BankFloors
    from fl_credit.coordinator.privacy_accounting import central_dp_accountant

    cfg = _cfg(mode="central", epsilon=4.0, clip_norm=1.0)
    planned = central_dp_accountant(cfg, 3, 2)
    floors = BankFloors.from_experiment(cfg, 2, num_banks=3)
    assert floors.dp_min_noise_std == pytest.approx(planned.noise_std_share)
    plain = dataclasses.replace(floors, secagg=Floors(secure_aggregation=False))
    bank = _central_chain(plain)

    def ask(std: float, clip: float = 1.0) -> Message:
        context = Context(run_id=1, node_id=5, node_config={}, state=RecordDict(), run_config={})
        return bank(_central_request(cfg, std, clip), context)

    assert not ask(planned.noise_std_share).has_error()  # the agreed request is answered
    for reply in (ask(0.0), ask(planned.noise_std_share, clip=100.0)):
        assert reply.has_error(), f"exact update: {reply.content['arrays']['w'].numpy()}"
        assert "below this bank's floor" in reply.error.reason


def test_zero_noise_request_is_refused_by_a_bank_that_requires_dp(
    embedded, tmp_path, running_node
) -> None:
    """``dp-epsilon=inf`` plans every release without noise (DP-SGD's clipping and sampling
    alone, for studies). A bank that requires DP but sets no epsilon bound of its own
    answered it with its exact statistics (noise 0.0) before; it must refuse, as a bank with
    a bound does. Only a bank whose own configuration says epsilon inf accepts it."""
    from fl_credit.bank.client_app import make_client_app
    from fl_credit.data.scaling import private_moments

    for floors in (_dp_floors(), _dp_floors(dp_max_epsilon=4.0)):
        prepared, settings, context = _bank(
            _cfg(mode="opacus", epsilon=4.0, accountant="rdp"), embedded, tmp_path
        )
        asked = {"pass": "private", **prepared.bounds.to_lists(), "dp-epsilon": math.inf}
        reply = _ask(make_client_app(floors=floors), context, {**settings.to_config(), **asked})
        bank = prepared.banks["bank_0"]
        exact = private_moments(bank.x_train, bank.y_train, prepared.bounds)
        assert reply.has_error(), (
            f"released with noise {np.max(np.abs(_values(reply) - exact)):.3g} (bound "
            f"{floors.dp_max_epsilon:g})"
        )
        assert "dp-epsilon inf" in reply.error.reason
    studied = _dp_floors(dp_max_epsilon=math.inf)
    assert studied.refusal(_central_request(_cfg(mode="opacus", epsilon=math.inf), 0, 0)) is None
