"""Attacks through Flower (InProcessGrid, real mods): differencing, poisoning,
stalling banks, and the threshold floor.

Malicious banks are ClientApp mods: placed *outside* ``secagg_mod`` a mod sees (and may
rewrite) the masked reply, i.e. it can add any ring value to its input; placed inside, it
changes the plaintext the bank claims. The server is the unmodified aggregator unless a
test drives it by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod

from strategies.secagg import (
    SecAggFedAvg,
    SecureAggregator,
    dropout_mod,
    install_secagg,
    pairkeys,
    secagg_mod,
)
from strategies.secagg.blame import failure_proof
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities
from strategies.secagg.records import MASKED_ARRAY, MASKED_KEY, SECAGG_KEY, load_state
from strategies.secagg.vector import Bounds

N = 5
BITS = 16
CLIP = 1.0
DIM = 4
WEIGHTS = {f"bank_{p}": 10.0 * (p + 1) for p in range(N)}
IDENTITIES, CONSORTIUM = simulated_identities(N, WEIGHTS)
PROVIDER = partition_identities(IDENTITIES, CONSORTIUM)


def _update(pid: int, model: np.ndarray) -> np.ndarray:
    """A deterministic 'training step': a gradient step of a per-bank quadratic loss."""
    target = np.random.default_rng(pid).normal(scale=0.1, size=model.shape)
    return -0.5 * (model - target)


def _stats(pid: int) -> np.ndarray:
    return np.array([100.0 + pid, 7.0 * pid * pid, 3.5 + pid])  # "row count, sums"


def make_app(mods: list[Mod], allow_secret: bool = False) -> ClientApp:
    app = ClientApp(mods=mods)
    install_secagg(app, PROVIDER, allow_secret_weights=allow_secret)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        w = msg.content["arrays"]["w"].numpy()
        rec = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(w + _update(pid, w))}),
                "metrics": MetricRecord({"num-examples": WEIGHTS[f"bank_{pid}"]}),
            }
        )
        return Message(rec, reply_to=msg)

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        return Message(RecordDict({"arrays": ArrayRecord({"v": Array(_stats(pid))})}), reply_to=msg)

    return app


def _round(msg: Message) -> int:
    cfg = msg.content.config_records.get("config") if msg.has_content() else None
    return int(cfg.get("server-round", 0)) if cfg is not None else 0


def ring_mod(pid: int, coordinate: int, amount: int, rounds: set[int] | None = None) -> Mod:
    """Bank ``pid`` adds ``amount`` (a ring value) to one coordinate of its masked reply."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        hit = rounds is None or _round(msg) in rounds
        if int(context.node_config["partition-id"]) == pid and hit and reply.has_content():
            if MASKED_KEY in reply.content.array_records:
                y = reply.content[MASKED_KEY][MASKED_ARRAY].numpy().copy()
                y[coordinate] = (int(y[coordinate]) + amount) % 2**64
                reply.content[MASKED_KEY] = ArrayRecord({MASKED_ARRAY: Array(y)})
        return reply

    return _mod


def field_mod(pid: int, key: str, change: Callable, rounds: set[int] | None = None) -> Mod:
    """Bank ``pid`` rewrites a field of its secagg reply record."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        hit = rounds is None or _round(msg) in rounds
        if int(context.node_config["partition-id"]) == pid and hit and reply.has_content():
            rec = reply.content.config_records.get(SECAGG_KEY)
            if rec is not None and key in rec:
                rec[key] = change(rec[key])
        return reply

    return _mod


def strategy(**kwargs: object) -> SecAggFedAvg:
    options: dict = dict(
        threshold=3,
        clipping_range=CLIP,
        quantization_bits=BITS,
        min_available_nodes=N,
        min_train_nodes=N,
        fraction_evaluate=0.0,
        consortium=CONSORTIUM,
    )
    return SecAggFedAvg(**{**options, **kwargs})


def run(mods: list[Mod], rounds: int = 1, allow_secret: bool = False, **kwargs: object):
    grid = InProcessGrid(make_app(mods, allow_secret), N)
    strat = strategy(**kwargs)
    result = strat.start(grid, ArrayRecord({"w": Array(np.zeros(DIM))}), num_rounds=rounds)
    model = result.arrays["w"].numpy() if result.arrays else np.zeros(DIM)
    return strat, grid, model


def honest_average(model: np.ndarray, pids: list[int]) -> np.ndarray:
    total = sum(WEIGHTS[f"bank_{p}"] for p in pids)
    return sum(WEIGHTS[f"bank_{p}"] * np.clip(_update(p, model), -CLIP, CLIP) for p in pids) / total


@pytest.fixture
def flwr_log() -> Iterator[list[str]]:
    lines: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = _Handler()
    logging.getLogger("flwr").addHandler(handler)
    yield lines
    logging.getLogger("flwr").removeHandler(handler)


# --- 4. differencing ------------------------------------------------------------------------


def test_two_statistics_sums_differing_by_one_bank_are_refused() -> None:
    """Moments-like sums over all banks, then all but one, give that bank's
    statistics by subtraction (they did before the hardening)."""
    grid = InProcessGrid(make_app([secagg_mod]), N)
    agg = SecureAggregator(threshold=3, consortium=CONSORTIUM)
    nodes = grid.get_node_ids()
    query = RecordDict({"config": ConfigRecord({})})
    full = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=nodes)
    assert full.records is not None  # the first (pinned) sum is fine
    np.testing.assert_allclose(
        full.records["arrays"]["v"].numpy(), sum(_stats(p) for p in range(N)), atol=1e-3
    )
    again = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=nodes)
    assert again.records is not None  # the same set again: no difference to exploit
    rest = agg.secure_sum(grid, query, "query.stats", value_range=1e3, node_ids=nodes[:4])
    assert rest.records is None
    assert all("pinned" in r for r in rest.report.rejected.values())


def test_training_twice_at_the_same_model_with_other_banks_is_refused() -> None:
    """Exact replay of a training round without one bank (the lead's train rule)."""
    grid = InProcessGrid(make_app([secagg_mod]), N)
    agg = SecureAggregator(threshold=3, consortium=CONSORTIUM)
    nodes = grid.get_node_ids()
    model = np.full(DIM, 0.3)
    first, _ = train_once(agg, grid, nodes, model)
    assert first is not None
    again, report = train_once(agg, grid, nodes[1:], model)
    assert again is None
    assert all("already revealed" in r for r in report.rejected.values())


def train_once(agg: SecureAggregator, grid: InProcessGrid, nodes: list[int], model: np.ndarray):
    """One training instance at ``model``, the server driving the aggregator by hand."""
    bounds = Bounds(value_range=CLIP, metric_range=1e3, max_weight=2**20, bits=BITS)
    pending = agg.begin(grid, nodes, "train", bounds, label="replay")
    content = RecordDict(
        {"arrays": ArrayRecord({"w": Array(model)}), "config": ConfigRecord({"server-round": 1})}
    )
    replies = grid.send_and_receive(pending.messages(content, "train"))
    decoded, report = agg.complete(grid, pending, replies)
    return (None if decoded is None else decoded.arrays[("arrays", "w")]), report


def test_near_identical_model_replay_is_bounded_only_by_dp() -> None:
    """Smarter: train at ``w`` with all banks, then at ``w + 1e-9`` without the victim.

    The rule refuses only an exact replay; the difference of the two weighted sums gives
    the victim's update up to the change of its neighbours' updates. Measured here on a
    smooth (quadratic) training step: the recovered update matches to ~1e-5 relative, i.e.
    the quantization error. Only DP noise on the updates bounds this (documented).
    """
    grid = InProcessGrid(make_app([secagg_mod]), N)
    agg = SecureAggregator(threshold=3, consortium=CONSORTIUM)
    nodes = grid.get_node_ids()
    victim = 2
    model = np.full(DIM, 0.3)
    w_all = sum(WEIGHTS.values())
    w_rest = w_all - WEIGHTS[f"bank_{victim}"]
    avg_all, _ = train_once(agg, grid, nodes, model)
    others = [n for n in nodes if grid.partition[n] != victim]
    avg_rest, report = train_once(agg, grid, others, model + 1e-9)
    assert avg_all is not None and avg_rest is not None, report.reason
    recovered = (avg_all * w_all - avg_rest * w_rest) / WEIGHTS[f"bank_{victim}"]
    truth = _update(victim, model)
    rel = np.max(np.abs(recovered - truth)) / np.max(np.abs(truth))
    print(f"near-identical replay: victim's update recovered to {rel:.2e} relative")
    assert rel < 1e-3


# --- 6. poisoning ------------------------------------------------------------------------------


def test_raw_ring_value_is_rejected(flwr_log: list[str]) -> None:
    """A raw ring value of 2^62 moved the weights by ~4.7e11 before."""
    strat, _, model = run([ring_mod(0, 0, 2**62), secagg_mod])
    assert not strat.reports[0].ok and "sanity check failed" in strat.reports[0].reason
    np.testing.assert_array_equal(model, np.zeros(DIM))  # model unchanged
    assert sum("sanity check failed" in line for line in flwr_log) == 1


@pytest.mark.parametrize(
    ("slot", "amount", "reason"),
    [
        (-3, -5000 * 2**BITS, "total weight"),  # [..., weight, clipped count, tag]
        (-3, 2**20 * 2**BITS, "total weight"),
        (-2, -1000 * 2**BITS, "clipped-value count"),
    ],  # fmt: skip
    ids=["negative-weight", "huge-weight", "clipped-minus-1000"],
)
def test_forged_weight_or_clip_count_is_rejected(slot: int, amount: int, reason: str) -> None:
    strat, _, model = run([ring_mod(0, slot, amount), secagg_mod])
    assert not strat.reports[0].ok and reason in strat.reports[0].reason
    np.testing.assert_array_equal(model, np.zeros(DIM))


def claim_weight(pid: int, weight: float) -> Mod:
    """Bank ``pid`` claims ``weight`` examples (inside secagg_mod: its plaintext claim)."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        if int(context.node_config["partition-id"]) == pid and reply.has_content():
            if "metrics" in reply.content.metric_records:
                reply.content["metrics"]["num-examples"] = weight
        return reply

    return _mod


def test_claimed_weight_is_ignored_under_public_weights() -> None:
    """A claimed weight of 2^20 took 98.6% of the average before."""
    strat, _, model = run([secagg_mod, claim_weight(0, 2**20)])
    assert strat.reports[0].ok and strat.reports[0].total_weight == sum(WEIGHTS.values())
    np.testing.assert_allclose(model, honest_average(np.zeros(DIM), list(range(N))), atol=1e-4)


def test_secret_weights_need_the_banks_consent_and_keep_their_risk() -> None:
    """``weights="secret"`` is refused by banks that did not allow it; where allowed, a
    bank can still claim up to max_weight (the documented risk)."""
    strat, _, _ = run([secagg_mod], weights="secret")
    assert not strat.reports[0].ok
    assert all("not allowed" in r for r in strat.reports[0].rejected.values())
    strat, _, _ = run([secagg_mod, claim_weight(0, 2**20)], allow_secret=True, weights="secret")
    share = 2**20 / strat.reports[0].total_weight
    assert strat.reports[0].ok and share > 0.99


def test_remaining_poisoning_bound() -> None:
    """What one malicious bank can still do, measured.

    - honest encoding, lying within the clip: its update is +C everywhere; the average
      moves by its public weight share s times (C - its honest update): at most 2 C s.
    - raw ring values: it may add anything that keeps the decoded average inside the
      clipping box; not knowing the others' sum, pushing coordinate 0 by 0.9 C (the honest
      updates here are ~0.05) passes the check whatever its weight share.
    """
    liar = 0
    share = WEIGHTS[f"bank_{liar}"] / sum(WEIGHTS.values())
    honest = honest_average(np.zeros(DIM), list(range(N)))

    def lie(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        if int(context.node_config["partition-id"]) == liar and "arrays" in reply.content:
            w = msg.content["arrays"]["w"].numpy()
            reply.content["arrays"] = ArrayRecord({"w": Array(w + CLIP)})
        return reply

    strat, _, model = run([secagg_mod, lie])
    shift = np.max(np.abs(model - honest))
    expected = share * np.max(CLIP - _update(liar, np.zeros(DIM)))
    assert strat.reports[0].ok and shift == pytest.approx(expected, rel=1e-3)
    assert shift <= 2 * CLIP * share

    total_weight = sum(WEIGHTS.values())
    push = int(0.9 * CLIP * total_weight * 2**BITS)
    strat, _, model = run([ring_mod(liar, 0, push), secagg_mod])
    assert strat.reports[0].ok  # inside the box: accepted
    assert model[0] - honest[0] == pytest.approx(0.9 * CLIP, abs=1e-4)
    print(
        f"poisoning bound: weight share {share:.3f}; honest-encoding liar moved the average "
        f"by {shift:.4f} (<= 2Cs = {2 * CLIP * share:.4f}); raw ring values by "
        f"{model[0] - honest[0]:.4f} (box: up to 2C = {2 * CLIP})"
    )


# --- 7. one bank stalls everything -------------------------------------------------------------


def _garble(cts: list[bytes]) -> list[bytes]:
    return [os.urandom(len(c)) if c else c for c in cts]


def test_bad_dealing_is_blamed_and_excluded(flwr_log: list[str]) -> None:
    """Garbage shares in its dealing: the peers refuse the next request before
    training, naming it; it is excluded and the next round re-keys without it."""
    cheat = 2
    strat, grid, _ = run([field_mod(cheat, "cts", _garble, rounds={2}), secagg_mod], rounds=4)
    oks = [r.ok for r in strat.reports]
    assert oks == [True, True, False, True]
    node = grid.node_ids[cheat]
    assert node in strat.reports[2].blamed
    assert node not in strat.reports[3].participants
    assert any(f"bank_{cheat} (node {node}) blamed" in line for line in flwr_log)
    assert strat.aggregator.bank_names[node] == f"bank_{cheat}"


def test_low_order_next_key_is_blamed_without_losing_the_round() -> None:
    cheat = 2
    zero = field_mod(cheat, "mask-pk", lambda _: bytes(32), rounds={2})
    strat, grid, _ = run([zero, secagg_mod], rounds=3)
    assert [r.ok for r in strat.reports] == [True, True, True]
    node = grid.node_ids[cheat]
    assert node in strat.reports[1].blamed and node in strat.reports[1].dropped
    assert node not in strat.reports[2].participants


def lying_unmask(pid: int) -> Mod:
    """Bank ``pid`` reveals wrong shares at the unmask."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        lying = int(context.node_config["partition-id"]) == pid
        if lying and msg.metadata.message_type == "query.secagg_unmask" and reply.has_content():
            rec = reply.content[SECAGG_KEY]
            rec["b-shares"] = [s[:16] + (7).to_bytes(66, "big") for s in rec["b-shares"]]
        return reply

    return _mod


def test_lying_survivor_is_blamed_and_the_round_still_aggregates() -> None:
    liar = 1
    strat, grid, model = run([lying_unmask(liar), secagg_mod], rounds=2)
    assert [r.ok for r in strat.reports] == [True, True]
    node = grid.node_ids[liar]
    assert node in strat.reports[0].blamed
    assert node not in strat.reports[1].participants
    after_one = honest_average(np.zeros(DIM), list(range(N)))
    rest = [p for p in range(N) if p != liar]
    np.testing.assert_allclose(model, after_one + honest_average(after_one, rest), atol=1e-4)


def test_missigned_dealing_is_blamed_at_receipt_without_losing_a_round(
    flwr_log: list[str],
) -> None:
    """A seed commitment changed after signing fails the dealer's epoch signature: the
    server blames it on receipt, before anyone reveals, and the round goes on without it."""
    cheat = 2
    bad = field_mod(cheat, "seed-commit", lambda _: bytes(32), rounds={1})
    strat, grid, _ = run([bad, secagg_mod], rounds=3)
    node = grid.node_ids[cheat]
    assert [r.ok for r in strat.reports] == [True, True, True]
    assert node in strat.reports[0].blamed and "signed" in strat.reports[0].blamed[node]
    assert node not in strat.reports[1].participants


def signed_bad_seed(pid: int, server_round: int) -> Mod:
    """Bank ``pid`` commits to a seed its shares do not give, and signs that commitment."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        hit = int(context.node_config["partition-id"]) == pid and _round(msg) == server_round
        if not hit or reply.has_error() or SECAGG_KEY not in reply.content.config_records:
            return reply
        rec = reply.content.config_records[SECAGG_KEY]
        st = load_state(context)
        rec["seed-commit"] = bytes(32)
        signed = pairkeys.dealing_digest(
            st["epoch"], st["key-seq"], st["node-id"], st["threshold"], st["members"], rec
        )
        rec["dealing-sig"] = pairkeys.sign_dealing(st["c-sk"], signed)
        return reply

    return _mod


def test_a_dealer_with_inconsistent_shares_cannot_halt_training() -> None:
    """Before: its seed commitment failed only after the unmask, the model stayed unchanged
    and the honest banks refused it with the other four for good ("already revealed").
    Now the server shows them the dealer's signed dealing and t revealed shares
    (:func:`strategies.secagg.blame.failure_proof`); they accept the same model without it."""
    cheat = 2
    strat, grid, model = run([signed_bad_seed(cheat, 1), secagg_mod], rounds=3)
    node = grid.node_ids[cheat]
    assert [r.ok for r in strat.reports] == [True, False, True], strat.reports[2].reason
    assert node in strat.reports[1].blamed and node not in strat.reports[2].participants
    after_one = honest_average(np.zeros(DIM), list(range(N)))
    rest = [p for p in range(N) if p != cheat]
    np.testing.assert_allclose(model, after_one + honest_average(after_one, rest), atol=1e-4)


def test_a_proof_against_an_honest_bank_does_not_excuse_it() -> None:
    """Smarter coordinator: train at w with all five, then at w without the victim, with a
    'proof' built from an instance where the victim's shares were consistent (or with
    garbage): the banks refuse, the victim's update stays hidden."""
    grid = InProcessGrid(make_app([secagg_mod]), N)
    agg = SecureAggregator(threshold=3, consortium=CONSORTIUM)
    nodes, victim = grid.get_node_ids(), grid.node_ids[2]
    unmasked: dict = {}
    opened: list = []
    exchange, begin = agg._exchange, agg.begin

    def keep(*args):  # the server keeps the unmask replies it gets
        out = exchange(*args)
        unmasked.update(out[0])
        return out

    agg._exchange = keep
    agg.begin = lambda *a, **k: opened.append(begin(*a, **k)) or opened[-1]
    model = np.full(DIM, 0.3)
    first, _ = train_once(agg, grid, nodes, model)
    assert first is not None
    proof = failure_proof(opened[0].instance, victim, unmasked)
    assert proof is not None  # well-formed and signed, but the shares are consistent
    for forged in (proof, "{not json"):
        agg.proofs = {victim: forged}
        again, report = train_once(agg, grid, [n for n in nodes if n != victim], model)
        assert again is None
        assert all("already revealed" in r for r in report.rejected.values())


# --- 9. threshold floor ------------------------------------------------------------------------


def test_min_threshold_skips_instead_of_rekeying_lower(flwr_log: list[str]) -> None:
    drop = dropout_mod({1, 3}, from_round=2)
    strat, _, _ = run([drop, secagg_mod], rounds=3, threshold=None, min_threshold=4)
    assert [r.ok for r in strat.reports] == [True, False, False]
    assert strat.aggregator.threshold_in_force is None  # no epoch below the floor
    assert "threshold 4" in strat.reports[2].reason
    # Without the floor the round after the dropouts re-keys at the majority of 3 banks.
    strat, _, _ = run([drop, secagg_mod], rounds=3, threshold=None)
    assert [r.ok for r in strat.reports] == [True, True, True]
    assert strat.aggregator.threshold_in_force == 2  # majority of 3 (and >= 3 survivors)
