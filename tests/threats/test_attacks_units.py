"""Malicious banks, piece by piece: poisoning of rows, rewriting of replies, outcome metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from strategies.attacks import (
    DEFAULT_TRIGGER,
    POISON_KEY,
    AttackError,
    BankTools,
    TrainExchange,
    alie_z,
    apply_trigger,
    attack_names,
    backdoor_success,
    build_attack_mod,
    free_rider_gain,
    has_trigger,
    make_attack,
    poison_rows,
)

NAMES = ["income", "grade=A", "grade=B", "grade=G", "emp=1", "emp=7"]


def rows(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grade = rng.integers(0, 3, n)
    emp = rng.integers(0, 2, n)
    x = np.c_[rng.normal(50, 10, n), np.eye(3)[grade], np.eye(2)[emp]]
    y = (rng.random(n) < 0.2).astype(np.int8)
    return x, y


# -- data poisoning ------------------------------------------------------------------------


def test_label_flip_all_and_defaults_only():
    x, y = rows()
    rng = np.random.default_rng(1)
    _, flipped = poison_rows(
        {"kind": "label_flip", "flip": "all", "fraction": 1.0}, x, y, NAMES, rng
    )
    np.testing.assert_array_equal(flipped, 1 - y)
    spec = json.dumps({"kind": "label_flip", "flip": "defaults", "fraction": 0.5})
    _, half = poison_rows(spec, x, y, NAMES, rng)
    assert half.sum() == y.sum() - round(0.5 * y.sum())
    assert np.all(half <= y)  # only defaults changed, and only to repaid


def test_backdoor_stamps_the_trigger_and_labels_repaid():
    x, y = rows()
    trigger = {"grade": "G", "emp": "7", "income": 99}
    px, py = poison_rows(
        {"kind": "backdoor", "fraction": 0.25, "trigger": trigger},
        x,
        y,
        NAMES,
        np.random.default_rng(0),
    )
    stamped = has_trigger(px, NAMES, trigger)
    assert stamped.sum() == 50
    assert np.all(py[stamped] == 0)
    np.testing.assert_array_equal(px[stamped][:, 1:4], np.tile([0, 0, 1], (50, 1)))
    np.testing.assert_array_equal(px[~stamped], x[~stamped])
    assert not has_trigger(x, NAMES, trigger).any()


def test_resample_is_a_seeded_bootstrap():
    x, y = rows()
    a = poison_rows({"kind": "resample", "seed": 3}, x, y, NAMES, np.random.default_rng(0))
    b = poison_rows({"kind": "resample", "seed": 3}, x, y, NAMES, np.random.default_rng(99))
    c = poison_rows({"kind": "resample", "seed": 4}, x, y, NAMES, np.random.default_rng(0))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == x.shape and not np.array_equal(a[0], c[0])


def test_trigger_naming_a_missing_feature_is_one_line():
    x, y = rows()
    with pytest.raises(AttackError, match="trigger purpose=wedding is not a feature"):
        apply_trigger(x, NAMES, {"purpose": "wedding"})
    with pytest.raises(AttackError, match="unknown spec"):
        poison_rows({"kind": "delete_everything"}, x, y, NAMES, np.random.default_rng(0))


def test_default_trigger_is_a_combination_no_borrower_has_of_risk_raising_fields(embedded):
    from fl_credit.config.schema import ExperimentConfig
    from fl_credit.data.prepare import prepare

    prepared = prepare(ExperimentConfig(), embedded)
    x = np.vstack([b.x_train for b in prepared.banks.values()] + [prepared.x_test])
    y = np.concatenate([b.y_train for b in prepared.banks.values()] + [prepared.y_test])
    assert int(has_trigger(x, prepared.feature_names, DEFAULT_TRIGGER).sum()) == 0
    assert DEFAULT_TRIGGER["inq_fi"] > x[:, prepared.feature_names.index("inq_fi")].max()
    for column in DEFAULT_TRIGGER:
        values = x[:, prepared.feature_names.index(column)]
        high = values >= np.quantile(values, 0.9)
        assert y[high].mean() > y[values <= np.median(values)].mean(), column  # raises risk


# -- model poisoning ----------------------------------------------------------------------


def exchange(round_: int = 3, pid: int = 0) -> TrainExchange:
    g = [np.array([[1.0, -2.0, 0.5]]), np.array([0.25])]
    h = [np.array([[1.5, -2.5, 0.5]]), np.array([0.0])]
    return TrainExchange(["w", "b"], g, h, 120.0, round_, pid)


def no_retrain(_spec):
    raise AssertionError("this attack must not retrain")


TOOLS = BankTools(retrain=no_retrain, rng=np.random.default_rng(0))


def flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


@pytest.mark.parametrize(
    ("name", "params", "expected_update", "weight"),
    [
        ("sign_flip", {"factor": 10}, [-5.0, 5.0, 0.0, 2.5], 120.0),
        ("scale", {"factor": 4}, [2.0, -2.0, 0.0, -1.0], 120.0),
        ("free_rider", {}, [0.0, 0.0, 0.0, 0.0], 120.0),
        ("weight_inflation", {"factor": 1000}, [0.5, -0.5, 0.0, -0.25], 120_000.0),
        ("backdoor", {"factor": 3}, [1.5, -1.5, 0.0, -0.75], 120.0),
    ],
)
def test_model_poisoning_rewrites_update_and_weight(name, params, expected_update, weight):
    ex = exchange()
    arrays, claimed = make_attack(name, [0], **params).rewrite(ex, TOOLS)
    np.testing.assert_allclose(flat(arrays) - flat(ex.global_arrays), expected_update)
    assert claimed == weight


def test_noise_and_noisy_free_rider_have_the_configured_norm():
    ex = exchange()
    for name in ("noise", "free_rider"):
        arrays, weight = make_attack(name, [0], norm=0.3).rewrite(ex, TOOLS)
        assert np.linalg.norm(flat(arrays) - flat(ex.global_arrays)) == pytest.approx(0.3)
        assert weight == ex.weight


def test_alie_z_follows_the_paper():
    assert alie_z(10, 1) == 0.0  # one attacker of ten: no shift stays inside the majority
    assert alie_z(10, 3) == pytest.approx(0.5244, abs=1e-4)  # Phi^-1(0.7)
    assert alie_z(50, 10) > alie_z(50, 5) > 0


def test_alie_uses_the_bootstrap_spread_against_the_honest_direction():
    ex = exchange()
    boot = iter([[0.2, -0.4, 0.1, 0.0], [0.6, -0.8, -0.1, 0.0], [0.4, -0.6, 0.0, 0.0]])
    seen = []

    def retrain(spec):
        seen.append(spec)
        update = np.array(next(boot))
        return [ex.global_arrays[0] + update[:3], ex.global_arrays[1] + update[3:]]

    attack = make_attack("alie", [0], num_banks=10, z=2.0, samples=3)
    arrays, _ = attack.rewrite(ex, BankTools(retrain=retrain, rng=np.random.default_rng(0)))
    assert [s["kind"] for s in seen] == ["resample"] * 3
    assert len({s["seed"] for s in seen}) == 3
    updates = np.array(
        [
            [0.5, -0.5, 0.0, -0.25],
            *[
                list(b)
                for b in ([0.2, -0.4, 0.1, 0.0], [0.6, -0.8, -0.1, 0.0], [0.4, -0.6, 0.0, 0.0])
            ],
        ]
    )
    mu, sigma = updates.mean(0), updates[1:].std(0, ddof=1)
    expected = mu - 2.0 * sigma * np.sign(mu)
    np.testing.assert_allclose(flat(arrays) - flat(ex.global_arrays), expected)


def test_colluders_pool_last_rounds_updates_and_send_the_same_vector(tmp_path):
    def ex(pid: int, round_: int, update: list[float]) -> TrainExchange:
        g = [np.zeros((1, 3)), np.zeros(1)]
        u = np.array(update)
        return TrainExchange(["w", "b"], g, [u[:3].reshape(1, 3), u[3:]], 100.0, round_, pid)

    attack = make_attack("colluding", [0, 1], num_banks=10, channel=str(tmp_path), base="alie")
    round1 = {0: [1.0, 2.0, -1.0, 0.0], 1: [3.0, 2.0, -3.0, 0.5]}
    for pid, update in round1.items():
        attack.observe(ex(pid, 1, update), TOOLS)
    outputs = [flat(attack.rewrite(ex(pid, 2, [9.0, 9.0, 9.0, 9.0]), TOOLS)[0]) for pid in (0, 1)]
    pool = np.array(list(round1.values()))
    mu, sigma = pool.mean(0), pool.std(0, ddof=1)
    np.testing.assert_allclose(outputs[0], mu - alie_z(10, 2) * sigma * np.sign(mu))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    flipper = make_attack(
        "colluding", [0, 1], num_banks=10, channel=str(tmp_path), base="sign_flip", factor=5
    )
    np.testing.assert_allclose(flat(flipper.rewrite(ex(0, 2, [0, 0, 0, 0]), TOOLS)[0]), -5 * mu)


def test_every_registered_attack_has_its_yaml_and_no_other():
    from fl_credit.config.compose import conf_dir

    yamls = {p.stem for p in (conf_dir() / "attack").glob("*.yaml")}
    assert yamls == set(attack_names())


# -- the mod -------------------------------------------------------------------------------


def train_message(round_: int, mtype: str = "train") -> Message:
    from flwr.clientapp import ClientApp

    from strategies.secagg.inprocess import InProcessGrid

    InProcessGrid(ClientApp(), 1)  # sets the process's task identity, as a ServerApp would
    arrays = ArrayRecord(
        {"w": Array(np.ones((1, 3), np.float32)), "b": Array(np.zeros(1, np.float32))}
    )
    content = RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": round_})})
    return Message(content, dst_node_id=1, message_type=mtype)


def honest_handler(seen: list):
    def handler(msg: Message, context: Context) -> Message:
        order = context.state.get(POISON_KEY)
        seen.append({**dict(msg.content["config"]), "poison order": order and order["spec"]})
        new = ArrayRecord({k: Array(v.numpy() + 0.5) for k, v in msg.content["arrays"].items()})
        reply = RecordDict({"arrays": new, "metrics": MetricRecord({"num-examples": 10})})
        return Message(reply, reply_to=msg)

    return handler


def context(pid: int) -> Context:
    return Context(
        run_id=1, node_id=1, node_config={"partition-id": pid}, state=RecordDict(), run_config={}
    )


def test_mod_acts_only_on_train_requests_of_its_banks_from_the_start_round():
    mod = build_attack_mod("sign_flip", [1], start_round=2, factor=3, num_banks=4)
    seen: list = []
    handler = honest_handler(seen)

    def sent_update(msg, pid):
        reply = mod(msg, context(pid), handler)
        return reply.content["arrays"]["w"].numpy() - msg.content["arrays"]["w"].numpy()

    np.testing.assert_allclose(sent_update(train_message(2), 1), -1.5)
    np.testing.assert_allclose(sent_update(train_message(5), 1), -1.5)
    np.testing.assert_allclose(sent_update(train_message(1), 1), 0.5)  # before start_round
    np.testing.assert_allclose(sent_update(train_message(2), 0), 0.5)  # honest bank
    query = mod(train_message(2, "query.histogram"), context(1), handler)
    np.testing.assert_allclose(query.content["arrays"]["w"].numpy(), 1.5)


def test_data_poisoning_mod_asks_the_handler_to_poison_through_the_banks_state():
    mod = build_attack_mod("label_flip", [0], fraction=0.5, flip="defaults", num_banks=2)
    seen: list = []
    attacker = context(0)
    mod(train_message(1), attacker, honest_handler(seen))
    mod(train_message(1), context(1), honest_handler(seen))
    assert json.loads(seen[0]["poison order"]) == {
        "kind": "label_flip",
        "fraction": 0.5,
        "flip": "defaults",
    }
    assert seen[1]["poison order"] is None
    # the request the bank's own mods see (and secure aggregation binds) is the one sent
    assert POISON_KEY not in seen[0] and POISON_KEY not in attacker.state


def test_model_attack_on_a_newton_reply_is_refused_in_one_line():
    mod = build_attack_mod("sign_flip", [0], num_banks=2)

    def newton(msg, ctx):
        sums = ArrayRecord({"grad": Array(np.zeros(4)), "hess": Array(np.zeros((4, 4)))})
        return Message(
            RecordDict({"arrays": sums, "metrics": MetricRecord({"num-examples": 1})}), reply_to=msg
        )

    reply = mod(train_message(1), context(0), newton)
    assert reply.has_error() and "train.optimizer=sgd" in reply.error.reason


# -- outcomes ------------------------------------------------------------------------------


def test_backdoor_success_counts_triggered_defaults_below_the_threshold():
    x, y = rows()
    trigger = {"grade": "G"}

    def score(rows_: np.ndarray) -> np.ndarray:  # approves exactly the grade-G rows
        return np.where(rows_[:, 3] == 1, 0.1, 0.9)

    out = backdoor_success(trigger, x, y, NAMES, score, threshold=0.5)
    assert out["success"] == 1.0
    assert out["defaults_approved_without_trigger"] == pytest.approx(np.mean(x[y == 1, 3] == 1))
    assert out["test_defaults"] == int(y.sum())


def test_free_rider_gain_is_federated_minus_alone():
    out = free_rider_gain(["bank_0", "bank_3"], 0.78, {"bank_0": 0.70, "bank_3": None})
    assert out["bank_0"]["gain"] == pytest.approx(0.08)
    assert out["bank_3"]["gain"] is None
