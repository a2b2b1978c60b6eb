"""SecAggFedAvg and secure_sum end to end on an in-process Grid (no Ray).

``InProcessGrid`` serializes every message and restores every node's Context from bytes
for each message, as the Deployment Engine does, so these runs also show that the mod
keeps all its state in ``context.state``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.serverapp.strategy import FedAvg

from strategies.secagg import (
    SecAggFedAvg,
    dropout_mod,
    install_secagg,
    plain_sum,
    quantization_error_bound,
    secagg_mod,
)
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities
from strategies.secagg.records import MASKED_ARRAY, MASKED_KEY, SECAGG_KEY

N_BANKS = 5
SHAPES = {"w": (4, 3), "b": (3,)}
BITS = 16


def _weight(pid: int) -> int:
    return 10 * (pid + 1)


# Bank k is "bank_k", registered with weight _weight(k) (its example count).
IDENTITIES, CONSORTIUM = simulated_identities(
    N_BANKS, weights={f"bank_{p}": _weight(p) for p in range(N_BANKS)}
)
PROVIDER = partition_identities(IDENTITIES, CONSORTIUM)


def _delta(pid: int, rnd: int, name: str) -> np.ndarray:
    rng = np.random.default_rng(1000 * pid + 10 * rnd + len(name))
    out = rng.normal(scale=0.2, size=SHAPES[name])
    if pid == 0 and rnd == 1 and name == "w":
        out.flat[:3] = [5.0, -7.0, 3.0]  # beyond the clipping range
    return out


def toy_app(mods: list[Mod], size: int | None = None) -> ClientApp:
    """Toy bank: 'training' adds a deterministic per-bank, per-round delta."""
    app = ClientApp(mods=mods)
    install_secagg(app, PROVIDER)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        new = {}
        for name, arr in msg.content["arrays"].items():
            if size is None:
                new[name] = Array(arr.numpy() + _delta(pid, rnd, name))
            else:
                rng = np.random.default_rng(pid)
                new[name] = Array(arr.numpy() + rng.normal(scale=0.3, size=size))
        metrics = MetricRecord({"num-examples": _weight(pid), "loss": pid + rnd / 10})
        return Message(RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        metrics = MetricRecord({"num-examples": _weight(pid), "acc": 0.5 + 0.1 * pid})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        sums = np.arange(4, dtype=float) * (pid + 1) + 1000.0 * (pid == 2)
        return Message(
            RecordDict(
                {
                    "feat": ArrayRecord({"sum": Array(sums)}),
                    "count": MetricRecord({"n": _weight(pid)}),
                }
            ),
            reply_to=msg,
        )

    return app


def corrupt_mod(pid: int, rnd: int) -> Mod:
    """A bank that truncates its masked vector in one round (sits outside secagg_mod)."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        cfg = msg.content.config_records.get("config") if msg.has_content() else None
        hit = cfg is not None and cfg.get("server-round") == rnd
        if hit and int(context.node_config["partition-id"]) == pid and reply.has_content():
            if MASKED_KEY in reply.content.array_records:
                y = reply.content[MASKED_KEY][MASKED_ARRAY].numpy()
                reply.content[MASKED_KEY] = ArrayRecord({MASKED_ARRAY: Array(y[:-2])})
        return reply

    return _mod


def initial_arrays() -> ArrayRecord:
    return ArrayRecord({k: Array(np.zeros(s)) for k, s in SHAPES.items()})


def strategy(**kwargs: object) -> SecAggFedAvg:
    options: dict = {
        "threshold": 3,
        "clipping_range": 1.0,
        "quantization_bits": BITS,
        "min_available_nodes": N_BANKS,
        "min_train_nodes": N_BANKS,
        "min_evaluate_nodes": N_BANKS,
        "consortium": CONSORTIUM,
    }
    return SecAggFedAvg(**{**options, **kwargs})


def expected_global(rounds: list[list[int]]) -> dict[str, np.ndarray]:
    """FedAvg of the clipped toy updates, given the surviving partitions of each round."""
    glob = {k: np.zeros(s) for k, s in SHAPES.items()}
    for rnd, pids in enumerate(rounds, start=1):
        if not pids:
            continue
        total = sum(_weight(p) for p in pids)
        for k in glob:
            glob[k] = (
                glob[k] + sum(_weight(p) * np.clip(_delta(p, rnd, k), -1, 1) for p in pids) / total
            )
    return glob


@pytest.fixture
def flwr_log() -> Iterator[list[str]]:
    lines: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = _Handler()
    logger = logging.getLogger("flwr")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_secure_rounds_match_plain_fedavg(flwr_log: list[str]) -> None:
    rounds = 4
    plain_grid = InProcessGrid(toy_app([]), N_BANKS)
    plain = FedAvg(
        min_available_nodes=N_BANKS, min_train_nodes=N_BANKS, min_evaluate_nodes=N_BANKS
    ).start(plain_grid, initial_arrays(), num_rounds=rounds)

    grid = InProcessGrid(toy_app([secagg_mod]), N_BANKS)
    strat = strategy(clipping_range=100.0)  # no clipping: compare with unclipped FedAvg
    secure = strat.start(grid, initial_arrays(), num_rounds=rounds)

    total_w = sum(_weight(p) for p in range(N_BANKS))
    bound = quantization_error_bound(N_BANKS, BITS, total_w)
    for name in SHAPES:
        err = np.abs(secure.arrays[name].numpy() - plain.arrays[name].numpy())
        assert np.max(err) <= rounds * bound  # errors of the rounds add up
    for rnd in range(1, rounds + 1):
        got, want = secure.train_metrics_clientapp[rnd], plain.train_metrics_clientapp[rnd]
        assert abs(got["loss"] - want["loss"]) <= bound
        assert got["secagg-survivors"] == N_BANKS and got["secagg-dropped"] == 0
        ev_got, ev_want = (
            secure.evaluate_metrics_clientapp[rnd],
            plain.evaluate_metrics_clientapp[rnd],
        )
        assert abs(ev_got["acc"] - ev_want["acc"]) <= bound
    # One key setup for the whole run; afterwards 2 exchanges per secure aggregation.
    assert [r.exchanges for r in strat.reports] == [4] + [2] * (2 * rounds - 1)
    assert sum("key epoch" in line for line in flwr_log) == 1


@pytest.mark.parametrize(
    ("dropped", "survive"),
    [({1}, True), ({1, 3}, True), ({0, 1, 3}, False)],
    ids=["one-drops", "two-drop", "three-drop"],
)
def test_dropouts_after_key_exchange(dropped: set[int], survive: bool, flwr_log: list[str]) -> None:
    grid = InProcessGrid(toy_app([dropout_mod(dropped, from_round=2), secagg_mod]), N_BANKS)
    strat = strategy(secure_evaluate=False)
    result = strat.start(grid, initial_arrays(), num_rounds=3)

    live = [p for p in range(N_BANKS) if p not in dropped]
    if survive:
        # Round 2 uses the keys sent in round 1 (no new setup); round 3 re-keys without
        # the dropped banks, which fail their setup.
        want = expected_global([list(range(N_BANKS)), live, live])
        assert strat.reports[1].dropped == sorted(grid.node_ids[p] for p in dropped)
        assert strat.reports[1].exchanges == 2
    else:
        want = expected_global([list(range(N_BANKS)), [], []])
        skipped = [line for line in flwr_log if "SKIPPED" in line]
        assert len(skipped) == 2  # round 2 (2 survivors) and round 3 (key setup)
        assert "only 2 of 5 banks survived" in skipped[0] and "threshold 3" in skipped[0]
        assert "global model unchanged" in skipped[0]
    bound = 3 * quantization_error_bound(N_BANKS, BITS, 3 * _weight(0))
    for name in SHAPES:
        assert np.max(np.abs(result.arrays[name].numpy() - want[name])) <= bound


def test_clipping_counted_and_malformed_vector_rejected() -> None:
    mods = [corrupt_mod(pid=4, rnd=2), secagg_mod]
    grid = InProcessGrid(toy_app(mods), N_BANKS)
    strat = strategy(secure_evaluate=False)
    result = strat.start(grid, initial_arrays(), num_rounds=2)

    assert result.train_metrics_clientapp[1]["secagg-clipped"] == 3
    assert strat.reports[0].clipped == 3
    bad = grid.node_ids[4]
    assert strat.reports[1].dropped == [bad]
    assert "shape" in strat.reports[1].rejected[bad]
    want = expected_global([list(range(5)), [0, 1, 2, 3]])
    bound = 2 * quantization_error_bound(N_BANKS, BITS, 100)
    for name in SHAPES:
        assert np.max(np.abs(result.arrays[name].numpy() - want[name])) <= bound


def test_secure_sum_for_scaling_stats_matches_plain_sum() -> None:
    grid = InProcessGrid(toy_app([secagg_mod]), N_BANKS)
    strat = strategy()
    query = RecordDict({"config": ConfigRecord({"columns": "all"})})
    res = strat.secure_sum(grid, query, "query.stats", value_range=500.0, quantization_bits=12)
    ref = plain_sum(grid, query, "query.stats", value_range=500.0, quantization_bits=12)
    assert res.records is not None and ref.records is not None
    want = ref.records["feat"]["sum"].numpy()
    # Bank 2's values (1000 + 3k) are clipped to 500.
    want[:] = [sum(k * (p + 1) for p in range(N_BANKS) if p != 2) + 500.0 for k in range(4)]
    np.testing.assert_allclose(res.records["feat"]["sum"].numpy(), want, atol=1e-3)
    assert res.records["count"]["n"] == pytest.approx(ref.records["count"]["n"])
    assert res.report.clipped == 4
    # The training rounds reuse the epoch set up for the stats: no further key setup.
    strat.start(grid, initial_arrays(), num_rounds=1)
    assert [r.exchanges for r in strat.reports] == [4, 2, 2]


def test_server_receives_only_masked_data() -> None:
    size = 5000
    grid = InProcessGrid(toy_app([secagg_mod], size=size), N_BANKS)
    strat = strategy(clipping_range=2.0, secure_evaluate=True)
    arrays = ArrayRecord({"w": Array(np.zeros(size))})
    strat.start(grid, arrays, num_rounds=1)
    train_replies = [(n, r) for t, n, r in grid.log if t == "train"]
    assert len(train_replies) == N_BANKS
    # "view": the hash of the request the bank received, bound into its masks
    allowed = {
        "layout", "mask-pk", "cts", "key-commits", "b-commits", "seed-commit", "view", "dealing-sig"
    }
    for node, reply in train_replies:
        assert set(reply.content.keys()) == {SECAGG_KEY, MASKED_KEY}
        assert set(reply.content[SECAGG_KEY].keys()) == allowed
        y = reply.content[MASKED_KEY][MASKED_ARRAY].numpy()[:size].astype(float)
        update = np.random.default_rng(grid.partition[node]).normal(scale=0.3, size=size)
        assert abs(np.corrcoef(y, update)[0, 1]) < 0.1
    eval_replies = [r for t, _, r in grid.log if t == "evaluate"]
    assert all(set(r.content.keys()) == {SECAGG_KEY, MASKED_KEY} for r in eval_replies)


def test_overflowing_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="overflow"):
        SecAggFedAvg(clipping_range=1e4, max_weight=2**30, quantization_bits=24)


def _bare_message(content: RecordDict, message_type: str = "train") -> Message:
    InProcessGrid(toy_app([]), 1)  # sets the process's task identity, as a ServerApp would
    return Message(content, dst_node_id=7, message_type=message_type)


def test_mod_refuses_before_the_app_runs() -> None:
    called: list[int] = []

    def app_fn(msg: Message, context: Context) -> Message:
        called.append(1)
        return Message(RecordDict(), reply_to=msg)

    request = ConfigRecord({"phase": "mask", "epoch": "e", "seq": 1, "participants": [7]})
    context = Context(run_id=1, node_id=7, node_config={}, state=RecordDict(), run_config={})
    reply = secagg_mod(_bare_message(RecordDict({SECAGG_KEY: request})), context, app_fn)
    assert reply.has_error() and "no key epoch" in reply.error.reason
    assert not called
    plain = secagg_mod(_bare_message(RecordDict()), context, app_fn)  # not a secagg request
    assert not plain.has_error() and called == [1]


def test_dropout_mod_fails_only_after_key_setup() -> None:
    mod = dropout_mod({0}, from_round=2)

    def app_fn(msg: Message, context: Context) -> Message:
        return Message(RecordDict(), reply_to=msg)

    context = Context(
        run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={}
    )
    late = _bare_message(RecordDict({"config": ConfigRecord({"server-round": 3})}))
    assert not mod(late, context, app_fn).has_error()  # no keys yet: still answers
    context.state["secagg"] = ConfigRecord({"stage": "ready"})
    early = _bare_message(RecordDict({"config": ConfigRecord({"server-round": 1})}))
    assert not mod(early, context, app_fn).has_error()
    assert mod(late, context, app_fn).has_error()
