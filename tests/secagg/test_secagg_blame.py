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
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

from strategies.secagg import SecureAggregator, install_secagg, secagg_mod
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities
from strategies.secagg.pairkeys import pair_secret
from strategies.secagg.records import STATE_KEY


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
