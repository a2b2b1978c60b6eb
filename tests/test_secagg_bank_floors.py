"""A bank's own floors: what a coordinator (or a malicious bank) cannot lower.

Each test plays the coordinator against the real bank code: the secure-aggregation mods of
``strategies.secagg`` (InProcessGrid) or the bank's real ClientApp (``fl_credit``). Every
attack recovered a bank's exact input, framed an honest bank or halted the run before the
bank-side floors (see the commit messages); the tests assert that it is refused now.
"""

from __future__ import annotations

import numpy as np
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
