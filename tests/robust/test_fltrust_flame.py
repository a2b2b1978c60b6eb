"""FLTrust and FLAME: each keeps honest updates and rejects a crafted outlier, on toy updates
and through a toy federation; both are registered plaintext defences the configuration
validates (end to end on the loans: tests/e2e/test_robust_field_e2e.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import (
    AttackConfig,
    DPConfig,
    ExperimentConfig,
    StrategyConfig,
    TrainConfig,
)
from fl_credit.config.validation import validate
from fl_credit.coordinator.defence_inputs import hdbscan_labels
from strategies.robust import build_robust_strategy
from strategies.robust.flame import Flame, cosine_distances, flame_admitted, flame_combine
from strategies.robust.fltrust import FLTrust, fltrust_combine, trust_scores
from strategies.robust.registry import defence_names, plaintext_defences
from strategies.secagg.inprocess import InProcessGrid
from tests.robust.test_robust_units import COMMON, DIM, one_round, sign_flipper, toy_app


def honest_and_outliers(rng, n=8, d=20):
    """``n`` honest updates around one direction, then a reversed one and a long one."""
    direction = np.linspace(0.5, 1.5, d)
    honest = direction + 0.2 * rng.standard_normal((n, d))
    return honest, direction, np.vstack([honest, -5 * direction, 40 * honest[0]])


def test_fltrust_gives_no_trust_against_the_root_and_no_weight_to_length():
    honest, direction, updates = honest_and_outliers(np.random.default_rng(0))
    root = direction + 0.2 * np.random.default_rng(1).standard_normal(direction.shape)
    scores = trust_scores(updates, root)
    assert scores[-2] == 0 and np.all(scores[: len(honest)] > 0.8)
    vector, _ = fltrust_combine(updates, root)
    assert np.linalg.norm(vector) <= np.linalg.norm(root) + 1e-9  # the long one is rescaled
    assert np.dot(vector, direction) / np.linalg.norm(vector) / np.linalg.norm(direction) > 0.95
    assert np.linalg.norm(updates.mean(axis=0)) > 2 * np.linalg.norm(root)  # FedAvg's fate


def test_flame_drops_the_reversed_update_clips_at_the_median_and_noises():
    rng = np.random.default_rng(2)
    honest, direction, updates = honest_and_outliers(rng)
    admitted = flame_admitted(updates, hdbscan_labels)
    assert len(admitted) >= len(updates) // 2 + 1 and len(honest) not in admitted  # the reversed
    median = np.median(np.linalg.norm(updates, axis=1))
    quiet, info = flame_combine(updates, hdbscan_labels, np.random.default_rng(0), 0.0)
    assert np.linalg.norm(quiet) <= median + 1e-9 and info["flame-clip"] == median
    noised, _ = flame_combine(updates, hdbscan_labels, np.random.default_rng(0), 0.1)
    assert 0.5 * 0.1 * median < np.std(noised - quiet) < 2 * 0.1 * median
    assert np.allclose(np.diag(cosine_distances(updates)), 0.0)


def test_flame_applies_no_update_when_every_update_is_an_outlier():
    def no_cluster(distances, min_cluster_size):
        return np.full(len(distances), -1)

    updates = np.random.default_rng(3).standard_normal((6, 4))
    vector, info = flame_combine(updates, no_cluster, np.random.default_rng(0), 0.0)
    assert info["flame-admitted"] == 0 and not vector.any()


def root_update(arrays: ArrayRecord, server_round: int) -> ArrayRecord:
    """The coordinator's honest step on its root set: +0.1 on every weight (the honest one)."""
    return ArrayRecord({"w": Array(arrays["w"].numpy() + 0.1)})


@pytest.mark.parametrize("name", ["fltrust", "flame"])
def test_fltrust_and_flame_keep_a_sign_flipper_out(name):
    grid = InProcessGrid(toy_app(sign_flipper(7)), 7)
    strategy = build_robust_strategy(name, num_banks=7, **COMMON)
    assert isinstance(strategy, FLTrust if name == "fltrust" else Flame)
    with pytest.raises(RuntimeError, match="root set|clusterer"):
        one_round(strategy, grid)
    if name == "fltrust":
        strategy.set_root_update(root_update)
    else:
        strategy.set_clusterer(hdbscan_labels)
    update = one_round(strategy, grid)
    assert update.shape == (DIM,) and np.all(np.abs(update - 0.1) < 0.02)
    fedavg = one_round(
        build_robust_strategy("norm_bound", num_banks=7, max_norm=1e9, **COMMON), grid
    )
    assert np.all(fedavg < 0)  # the same attack through plain averaging


def test_fltrust_and_flame_are_registered_plaintext_defences_the_configuration_checks():
    assert {"fltrust", "flame"} <= set(defence_names())
    assert {"fltrust", "flame"} <= set(plaintext_defences())  # no plain secure aggregation
    base = replace(ExperimentConfig(), train=TrainConfig(optimizer="sgd"))
    for name in ("fltrust", "flame"):
        cfg = replace(base, strategy=StrategyConfig(name=name))
        validate(cfg)
        with pytest.raises(ConfigError, match="plaintext"):
            validate(replace(cfg, strategy=StrategyConfig(name=name, threshold=2)))
    attacked = replace(base, attack=AttackConfig(name="backdoor", banks=(2,)))
    with pytest.raises(ConfigError, match="root_bank=-1 is also an attacker"):
        validate(replace(attacked, strategy=StrategyConfig(name="fltrust")))  # 3 banks: -1 = 2
    validate(replace(attacked, strategy=StrategyConfig(name="fltrust", root_bank=0)))
    with pytest.raises(ConfigError, match="root_rows must be at least 10"):
        validate(replace(base, strategy=StrategyConfig(name="fltrust", root_rows=5)))
    with pytest.raises(ConfigError, match="root_bank must name one of the 3 banks"):
        validate(replace(base, strategy=StrategyConfig(name="fltrust", root_bank=3)))


def test_fltrust_is_refused_under_dp_because_its_root_rows_reach_the_coordinator_raw():
    # Before: `strategy=fltrust dp=opacus dp.epsilon=4` ran and its protection line promised DP,
    # while the coordinator trained its root update on 100 raw rows of the root bank: the
    # released model depended on those borrowers without noise.
    base = replace(ExperimentConfig(), train=TrainConfig(optimizer="sgd"))
    private = replace(base, dp=DPConfig(mode="opacus", epsilon=4.0))
    with pytest.raises(ConfigError, match="strategy=fltrust cannot run with dp=opacus"):
        validate(replace(private, strategy=StrategyConfig(name="fltrust")))
    validate(replace(private, strategy=StrategyConfig(name="flame")))  # no raw rows: allowed
