"""Partition schemes: disjoint, complete, seeded, and shaped as configured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fl_credit.config.errors import DataError
from fl_credit.config.schema import PartitionConfig
from fl_credit.data.partition import bank_shares, split_banks


def labels(n: int = 4000, rate: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(np.int8)


def assert_partition(splits, n):
    rows = np.concatenate([s.rows for s in splits])
    assert len(rows) == n
    assert len(np.unique(rows)) == n


@pytest.mark.parametrize(
    "cfg",
    [
        PartitionConfig(scheme="shares", shares=(0.25, 0.25, 0.5)),
        PartitionConfig(scheme="two_banks", share=0.1),
        PartitionConfig(scheme="power", banks=6, skew=1.5),
        PartitionConfig(scheme="dirichlet", banks=4, alpha=0.5),
    ],
)
def test_every_row_goes_to_exactly_one_bank(cfg):
    y = labels()
    splits = split_banks(cfg, y, None, seed=3)
    assert_partition(splits, len(y))
    again = split_banks(cfg, y, None, seed=3)
    assert all(np.array_equal(a.rows, b.rows) for a, b in zip(splits, again, strict=True))


def test_size_schemes_follow_their_shares():
    y = labels(10_000)
    splits = split_banks(PartitionConfig(scheme="shares", shares=(0.25, 0.25, 0.5)), y, None, 0)
    assert [len(s.rows) for s in splits] == [2500, 2500, 5000]
    assert bank_shares(PartitionConfig(scheme="two_banks", share=0.2)) == [0.2, 0.8]
    power = bank_shares(PartitionConfig(scheme="power", banks=3, skew=0.0))
    assert np.allclose(power, 1 / 3)
    skewed = bank_shares(PartitionConfig(scheme="power", banks=3, skew=1.0))
    assert np.allclose(skewed, np.array([1, 1 / 2, 1 / 3]) / (11 / 6))


def test_dirichlet_alpha_controls_label_skew():
    y = labels(20_000, rate=0.2)

    def spread(alpha):
        cfg = PartitionConfig(scheme="dirichlet", banks=5, alpha=alpha)
        rates = [y[s.rows].mean() for s in split_banks(cfg, y, None, seed=1)]
        return np.std(rates)

    assert spread(0.3) > 3 * spread(100.0)


def test_region_scheme_uses_census_regions():
    y = labels(400, rate=0.3)
    states = pd.Series(np.random.default_rng(0).choice(["CA", "NY", "TX", "IL"], 400))
    splits = split_banks(PartitionConfig(scheme="region"), y, states, seed=0)
    assert sorted(s.label for s in splits) == ["midwest", "northeast", "south", "west"]
    assert_partition(splits, 400)
    with pytest.raises(DataError, match="state column"):
        split_banks(PartitionConfig(scheme="region"), y, None, seed=0)


def test_bank_without_defaults_is_refused():
    y = np.zeros(1000, dtype=np.int8)
    y[:5] = 1
    with pytest.raises(DataError, match="defaults"):
        split_banks(PartitionConfig(scheme="two_banks", share=0.01), y, None, seed=0)


def test_bank_with_no_rows_is_refused():
    y = labels(50, rate=0.5)
    with pytest.raises(DataError, match="no rows"):
        split_banks(PartitionConfig(scheme="shares", shares=(0.001, 0.999)), y, None, seed=0)
