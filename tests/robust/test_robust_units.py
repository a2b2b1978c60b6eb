"""Defences piece by piece, on a toy federation in one process (real mods, real secagg)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedMedian, FedTrimmedAvg, Krum, MultiKrum

from strategies.attacks import build_attack_mod
from strategies.robust import (
    FastBulyan,
    GroupedSecAgg,
    NormBoundFedAvg,
    build_robust_strategy,
    clip_to_norm,
    membership_rank,
    solve_bank_totals,
    split_groups,
)
from strategies.secagg import install_secagg, secagg_mod
from strategies.secagg.floors import Floors
from strategies.secagg.inprocess import InProcessGrid, partition_identities, simulated_identities
from strategies.secagg.records import SECAGG_KEY

COMMON = dict(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1, min_available_nodes=1)
DIM = 5


def weight(pid: int) -> int:
    return 10 * (pid + 1)


def delta(pid: int, rnd: int) -> np.ndarray:
    """Honest banks' updates: close to (1, ..., 1) / 10, bank-specific noise."""
    return 0.1 + np.random.default_rng(100 * pid + rnd).normal(scale=0.01, size=DIM)


# Bank k is "bank_k", registered with its example count as public weight.
IDENTITIES, CONSORTIUM = simulated_identities(9, weights={f"bank_{p}": weight(p) for p in range(9)})
PROVIDER = partition_identities(IDENTITIES, CONSORTIUM)


def toy_app(mods: list, regrouping: bool = True) -> ClientApp:
    """Banks that consent to grouped aggregation (their own floor) unless told otherwise."""
    app = ClientApp(mods=mods)
    install_secagg(app, PROVIDER, floors=lambda _context: Floors(regrouping=regrouping))

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        w = msg.content["arrays"]["w"].numpy()
        arrays = ArrayRecord({"w": Array(w + delta(pid, rnd))})
        metrics = MetricRecord({"num-examples": weight(pid), "loss": float(pid)})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @app.query("stats")
    def stats(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        values = ArrayRecord({"values": Array(np.array([1.0, float(pid)]))})
        content = RecordDict({"arrays": values, "metrics": MetricRecord({"num-examples": 1.0})})
        return Message(content, reply_to=msg)

    return app


def one_round(strategy, grid: InProcessGrid, rnd: int = 1) -> np.ndarray:
    """Global update of one round from zero weights."""
    arrays = ArrayRecord({"w": Array(np.zeros(DIM))})
    messages = list(strategy.configure_train(rnd, arrays, ConfigRecord({}), grid))
    new, _ = strategy.aggregate_train(rnd, grid.send_and_receive(messages))
    return new["w"].numpy()


def sign_flipper(num_banks: int, factor: float = 50.0) -> list:
    return [build_attack_mod("sign_flip", [0], factor=factor, num_banks=num_banks)]


# -- plaintext robust rules ------------------------------------------------------------


def test_flower_strategies_are_wired_with_their_parameters():
    assert type(build_robust_strategy("fedmedian", num_banks=5, **COMMON)) is FedMedian
    trimmed = build_robust_strategy("trimmed_mean", num_banks=5, beta=0.3, **COMMON)
    assert isinstance(trimmed, FedTrimmedAvg) and trimmed.beta == 0.3
    krum = build_robust_strategy("krum", num_banks=5, num_malicious=2, **COMMON)
    assert type(krum) is Krum and krum.num_malicious_nodes == 2
    multi = build_robust_strategy("multikrum", num_banks=10, num_malicious=2, **COMMON)
    assert type(multi) is MultiKrum and multi.num_nodes_to_select == 8
    assert isinstance(build_robust_strategy("bulyan", num_banks=7, **COMMON), FastBulyan)
    with pytest.raises(ValueError, match=r"bulyan with num_malicious=2 needs at least 11 banks"):
        build_robust_strategy("bulyan", num_banks=10, num_malicious=2, **COMMON)
    with pytest.raises(ValueError, match="krum with num_malicious=3 needs at least 6 banks"):
        build_robust_strategy("krum", num_banks=5, num_malicious=3, **COMMON)


@pytest.mark.parametrize("name", ["fedmedian", "trimmed_mean", "krum", "multikrum", "bulyan"])
def test_robust_rules_keep_a_sign_flipper_out(name):
    grid = InProcessGrid(toy_app(sign_flipper(7)), 7)
    update = one_round(build_robust_strategy(name, num_banks=7, **COMMON), grid)
    assert np.all(np.abs(update - 0.1) < 0.05)
    fedavg = one_round(
        build_robust_strategy("norm_bound", num_banks=7, max_norm=1e9, **COMMON), grid
    )
    assert np.all(fedavg < 0)  # the same attack through plain averaging


def test_bulyan_reads_replies_without_collecting_garbage(monkeypatch):
    import gc

    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or 0)
    grid = InProcessGrid(toy_app([]), 7)
    one_round(build_robust_strategy("bulyan", num_banks=7, **COMMON), grid)
    assert calls == []


def test_clip_to_norm():
    clipped, norm = clip_to_norm([np.array([3.0, 0.0]), np.array([4.0])], 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate(clipped), [0.6, 0.0, 0.8])
    kept, _ = clip_to_norm([np.array([0.3])], 1.0)
    np.testing.assert_allclose(kept[0], [0.3])


def test_norm_bound_clips_each_update_to_the_round_median_norm():
    grid = InProcessGrid(toy_app(sign_flipper(5, factor=100.0)), 5)
    strategy = NormBoundFedAvg(max_norm=None, **COMMON)
    update = one_round(strategy, grid)
    honest = {pid: delta(pid, 1) for pid in range(1, 5)}
    bound = np.median(
        [np.linalg.norm(d) for d in honest.values()] + [100 * np.linalg.norm(delta(0, 1))]
    )
    attacker = -delta(0, 1) / np.linalg.norm(delta(0, 1)) * bound
    clipped = {p: d * min(1.0, bound / np.linalg.norm(d)) for p, d in honest.items()}
    expected = (weight(0) * attacker + sum(weight(p) * d for p, d in clipped.items())) / sum(
        weight(p) for p in range(5)
    )
    np.testing.assert_allclose(update, expected, rtol=1e-5)
    assert strategy.clipped[1] == 2  # the attacker and the honest bank above the median


# -- grouped secure aggregation --------------------------------------------------------


def test_split_groups_covers_every_bank_in_groups_of_at_least_group_size():
    nodes = [2**64 - 1 - k for k in range(10)]  # 64-bit unsigned node ids
    groups = split_groups(nodes, 3, np.random.default_rng(0))
    assert sorted(n for g in groups for n in g) == sorted(nodes)
    assert [len(g) for g in groups] == [4, 3, 3]
    assert groups == split_groups(list(reversed(nodes)), 3, np.random.default_rng(0))
    assert groups != split_groups(nodes, 3, np.random.default_rng(1))


def test_split_groups_by_bank_name_does_not_depend_on_node_ids():
    names = [f"bank_{k}" for k in range(9)]
    run_a = dict(zip([11, 5, 40, 7, 3, 99, 21, 8, 60], names, strict=True))
    run_b = dict(zip([2**63 + k for k in (4, 1, 8, 0, 3, 7, 2, 5, 6)], names, strict=True))

    def by_name(ids: dict) -> list:
        groups = split_groups(list(ids), 3, np.random.default_rng(5), ids)
        return [sorted(ids[n] for n in g) for g in groups]

    assert by_name(run_a) == by_name(run_b)


def test_changing_groups_reveal_every_banks_row_count():
    """The privacy cost of regrouping: the server solves for constant per-bank totals."""
    nodes = list(range(10))
    sizes = np.arange(10) * 37.0 + 100
    groupings, totals = [], []
    rng = np.random.default_rng(0)
    for _ in range(6):
        groups = split_groups(nodes, 3, rng)
        groupings.append(groups)
        totals.append([sizes[g].sum() for g in groups])
        recovered = solve_bank_totals(groupings, totals, nodes)
        if membership_rank(groupings, nodes) < 10:
            assert recovered is None
        else:
            np.testing.assert_allclose(recovered, sizes, rtol=1e-9)
    assert membership_rank(groupings, nodes) == 10


def test_grouped_secagg_combines_masked_group_means_by_median():
    num = 9
    grid = InProcessGrid(toy_app([*sign_flipper(num), secagg_mod]), num)
    strategy = GroupedSecAgg(
        consortium=CONSORTIUM, group_size=3, robust="median", seed=3, clipping_range=10.0, **COMMON
    )
    update = one_round(strategy, grid)
    groups = strategy.groupings[0]
    pid = grid.partition
    means = []
    for group in groups:
        parts = {pid[n]: (-50.0 if pid[n] == 0 else 1.0) * delta(pid[n], 1) for n in group}
        means.append(sum(weight(p) * d for p, d in parts.items()) / sum(weight(p) for p in parts))
    np.testing.assert_allclose(update, np.median(means, axis=0), atol=1e-3)
    assert np.all(np.abs(update - 0.1) < 0.05)
    train = [reply for kind, _, reply in grid.log if kind == "train"]
    assert len(train) == num and all("arrays" not in r.content for r in train)
    assert all(SECAGG_KEY in r.content for r in train)
    assert strategy.group_weights[0] == pytest.approx(
        [sum(weight(pid[n]) for n in g) for g in groups]
    )


def test_grouped_secagg_sums_over_all_banks_after_regrouping():
    num = 9
    grid = InProcessGrid(toy_app([secagg_mod]), num)
    strategy = GroupedSecAgg(consortium=CONSORTIUM, group_size=3, seed=0, **COMMON)
    one_round(strategy, grid)
    config = RecordDict({"config": ConfigRecord({})})
    result = strategy.secure_sum(
        grid, config, "query.stats", value_range=100.0, node_ids=grid.get_node_ids(), min_nodes=num
    )
    assert result.records is not None
    np.testing.assert_allclose(
        result.records["arrays"]["values"].numpy(), [num, sum(range(num))], atol=1e-3
    )


def test_a_bank_that_did_not_consent_to_regrouping_refuses_a_sum_over_another_group():
    """Without the bank's own consent, its ledger holds: after a round in groups of three, a
    sum over all nine banks could be differenced with the group sums, and is refused."""
    num = 9
    grid = InProcessGrid(toy_app([secagg_mod], regrouping=False), num)
    strategy = GroupedSecAgg(consortium=CONSORTIUM, group_size=3, seed=0, **COMMON)
    one_round(strategy, grid)
    config = RecordDict({"config": ConfigRecord({})})
    result = strategy.secure_sum(
        grid, config, "query.stats", value_range=100.0, node_ids=grid.get_node_ids(), min_nodes=num
    )
    assert result.records is None


def test_grouped_secagg_metrics_report_groups_and_membership_rank():
    num = 9
    grid = InProcessGrid(toy_app([secagg_mod]), num)
    strategy = GroupedSecAgg(consortium=CONSORTIUM, group_size=3, seed=0, **COMMON)
    arrays = ArrayRecord({"w": Array(np.zeros(DIM))})
    ranks = []
    for rnd in (1, 2, 3):
        messages = list(strategy.configure_train(rnd, arrays, ConfigRecord({}), grid))
        arrays, metrics = strategy.aggregate_train(rnd, grid.send_and_receive(messages))
        assert metrics["grouped-groups"] == 3 and metrics["grouped-smallest-group"] == 3
        ranks.append(metrics["grouped-membership-rank"])
    assert ranks[0] == 3 and ranks == sorted(ranks) and ranks[-1] > 3


def test_a_registered_defence_is_validated_and_built_from_code_alone():
    from dataclasses import replace

    from flwr.serverapp.strategy import FedAvg

    from fl_credit.config.errors import ConfigError
    from fl_credit.config.schema import ExperimentConfig, StrategyConfig, TrainConfig
    from fl_credit.config.validation import validate
    from fl_credit.coordinator.strategy_factory import build_strategy
    from strategies.robust.registry import DEFENCES, register_defence, wrapped

    @register_defence("toy_mean")
    def toy_mean(settings, wrap=None, **common):
        return wrapped(FedAvg, wrap)(**common)

    try:
        cfg = replace(
            ExperimentConfig(),
            strategy=StrategyConfig(name="toy_mean"),
            train=TrainConfig(optimizer="sgd"),
        )
        validate(cfg)
        assert isinstance(build_strategy(cfg, num_banks=3), FedAvg)
        with pytest.raises(ConfigError, match="plaintext"):  # the registry's notion
            validate(replace(cfg, strategy=StrategyConfig(name="toy_mean", threshold=2)))
    finally:
        del DEFENCES["toy_mean"]
