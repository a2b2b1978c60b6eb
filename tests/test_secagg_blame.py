"""Blame with evidence: a malicious bank cannot get an honest one excluded.

The malicious bank is a ClientApp mod outside ``secagg_mod`` (it may answer anything); the
coordinator is the unmodified aggregator. Before the fix an accusation was text: with 3
banks one refusal naming an honest bank had it blamed and excluded for the rest of the run.
"""

from __future__ import annotations

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

from strategies.secagg import SecAggFedAvg, SecureAggregator, install_secagg, pairkeys, secagg_mod
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities
from strategies.secagg.pairkeys import pair_secret
from strategies.secagg.records import SECAGG_KEY, STATE_KEY, load_state


def make_app(mods: list[Mod], provider) -> ClientApp:
    app = ClientApp(mods=mods)
    install_secagg(app, provider)

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        values = np.array([10.0 + pid, 2.0 * pid])
        return Message(RecordDict({"arrays": ArrayRecord({"v": Array(values)})}), reply_to=msg)

    return app


def false_accuser(liar: int, victim: int, evidence: str, nodes: dict[int, int]) -> Mod:
    """Bank ``liar`` refuses every masked request, naming bank ``victim``'s dealing and
    attaching ``evidence``: nothing, a random key, or its genuine key for the pair."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        pid = int(context.node_config["partition-id"])
        if pid != liar or msg.metadata.message_type != "query.stats":
            return call_next(msg, context)
        node = nodes[victim]
        proof = ""
        if evidence == "random":
            proof = " evidence " + bytes(range(32)).hex()
        elif evidence == "genuine":
            state = dict(context.state.config_records[STATE_KEY])
            proof = " evidence " + pair_secret(state, node).hex()
        reason = f"dealing of node {node} does not authenticate [accuse {node}{proof}]"
        return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=msg)

    return _mod


def run(num_banks: int, evidence: str = "", queries: int = 1):
    """``queries`` secure sums; bank 0 falsely accuses bank 1 in each."""
    identities, consortium = simulated_identities(num_banks)
    nodes: dict[int, int] = {}
    mods = [false_accuser(0, 1, evidence, nodes), secagg_mod]
    grid = InProcessGrid(make_app(mods, partition_identities(identities, consortium)), num_banks)
    nodes.update({p: n for n, p in grid.partition.items()})
    agg = SecureAggregator(consortium=consortium)
    query = RecordDict({"config": ConfigRecord({})})
    results = [agg.secure_sum(grid, query, "query.stats", value_range=1e3) for _ in range(queries)]
    return agg, grid, results


def test_an_accusation_without_evidence_frames_no_one() -> None:
    """3 banks: before, the honest bank_1 was blamed and excluded for the rest of the run
    on bank_0's word alone."""
    agg, grid, _ = run(3)
    assert grid.node_ids[1] not in agg.blamed, agg.blamed


def test_forged_evidence_is_ignored() -> None:
    """Smarter: attach a key that is not the accuser's advertised key for the pair."""
    agg, grid, _ = run(3, "random")
    assert not agg.blamed


def test_a_false_accuser_with_genuine_evidence_is_blamed_and_the_run_goes_on() -> None:
    """Smarter still: reveal the real pair key. The victim's dealing then opens and checks,
    so the accuser is blamed; with 4 banks the next sum goes on with the other 3."""
    agg, grid, results = run(4, "genuine", queries=2)
    assert set(agg.blamed) == {grid.node_ids[0]}
    assert "falsely accused bank_1" in agg.blamed[grid.node_ids[0]]
    assert results[1].records is not None
    assert grid.node_ids[0] not in results[1].report.participants


# --- liveness: a dealer whose shares fail after the unmask -----------------------------------

DIM = 4
FIVE_IDS, FIVE = simulated_identities(5, {f"bank_{p}": 10.0 * (p + 1) for p in range(5)})


def _update(pid: int, model: np.ndarray) -> np.ndarray:
    target = np.random.default_rng(pid).normal(scale=0.1, size=model.shape)
    return -0.5 * (model - target)


def training_app(mods: list[Mod]) -> ClientApp:
    app = ClientApp(mods=mods)
    install_secagg(app, partition_identities(FIVE_IDS, FIVE))

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        w = msg.content["arrays"]["w"].numpy()
        rec = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(w + _update(pid, w))}),
                "metrics": MetricRecord({"num-examples": 10.0 * (pid + 1)}),
            }
        )
        return Message(rec, reply_to=msg)

    return app


def signed_bad_seed(pid: int, server_round: int) -> Mod:
    """Bank ``pid`` commits to a seed its shares do not give, and signs that commitment."""

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, context)
        cfg = msg.content.config_records.get("config") if msg.has_content() else None
        hit = cfg is not None and int(cfg.get("server-round", 0)) == server_round
        if int(context.node_config["partition-id"]) != pid or not hit or reply.has_error():
            return reply
        rec = reply.content.config_records[SECAGG_KEY]
        state = load_state(context)
        rec["seed-commit"] = bytes(32)
        signed = pairkeys.dealing_digest(
            state["epoch"], state["key-seq"], state["node-id"], state["threshold"],
            state["members"], rec,
        )  # fmt: skip
        rec["dealing-sig"] = pairkeys.sign_dealing(state["c-sk"], signed)
        return reply

    return _mod


def run_training(mods: list[Mod], rounds: int):
    grid = InProcessGrid(training_app(mods), 5)
    strat = SecAggFedAvg(
        threshold=3,
        clipping_range=1.0,
        quantization_bits=16,
        min_available_nodes=5,
        min_train_nodes=5,
        fraction_evaluate=0.0,
        consortium=FIVE,
    )
    result = strat.start(grid, ArrayRecord({"w": Array(np.zeros(DIM))}), num_rounds=rounds)
    return strat, grid, result.arrays["w"].numpy()


def test_a_dealer_with_inconsistent_shares_cannot_halt_training() -> None:
    """Before: its signed-looking seed commitment failed only after the unmask, the model
    stayed unchanged and the honest banks refused it with the other four: rounds 3 onwards
    failed ("already revealed"), for good. Now the server shows the banks the dealer's
    signed dealing and t revealed shares; they accept the same model without it."""
    cheat = 2
    strat, grid, model = run_training([signed_bad_seed(cheat, 1), secagg_mod], rounds=3)
    node = grid.node_ids[cheat]
    assert [r.ok for r in strat.reports] == [True, False, True], strat.reports[2].reason
    assert node in strat.reports[1].blamed and node not in strat.reports[2].participants
    weights = {p: 10.0 * (p + 1) for p in range(5)}

    def average(w: np.ndarray, pids: list[int]) -> np.ndarray:
        total = sum(weights[p] for p in pids)
        return sum(weights[p] * np.clip(_update(p, w), -1, 1) for p in pids) / total

    after_one = average(np.zeros(DIM), list(range(5)))
    rest = [p for p in range(5) if p != cheat]
    np.testing.assert_allclose(model, after_one + average(after_one, rest), atol=1e-4)


def test_a_proof_against_an_honest_bank_does_not_excuse_it() -> None:
    """Smarter coordinator: train at w with all five, then at w without the victim, with a
    'proof' built from an instance where the victim's shares were consistent (or with
    garbage): the banks refuse, the victim's update stays hidden."""
    from strategies.secagg.blame import failure_proof
    from strategies.secagg.vector import Bounds

    grid = InProcessGrid(training_app([secagg_mod]), 5)
    agg = SecureAggregator(threshold=3, consortium=FIVE)
    nodes, victim = grid.get_node_ids(), grid.node_ids[2]
    bounds = Bounds(value_range=1.0, metric_range=1e3, max_weight=2**20, bits=16)
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.full(DIM, 0.3))}),
            "config": ConfigRecord({"server-round": 1}),
        }
    )
    pending = agg.begin(grid, nodes, "train", bounds, label="all")
    inst = pending.instance
    replies = grid.send_and_receive(pending.messages(content, "train"))
    captured: dict = {}
    exchange = agg._exchange

    def keep(grid_, nodes_, action, request, server_round):
        out = exchange(grid_, nodes_, action, request, server_round)
        captured.update(out[0])
        return out

    agg._exchange = keep
    decoded, _ = agg.complete(grid, pending, replies)
    assert decoded is not None
    honest_proof = failure_proof(inst, victim, captured)
    assert honest_proof is not None  # well-formed, signed, but the shares are consistent
    for proof in (honest_proof, "{not json"):
        agg.proofs = {victim: proof}
        pending = agg.begin(grid, [n for n in nodes if n != victim], "train", bounds, label="x")
        replies = grid.send_and_receive(pending.messages(content, "train"))
        again, report = agg.complete(grid, pending, replies)
        assert again is None
        assert all("already revealed" in r for r in report.rejected.values())
