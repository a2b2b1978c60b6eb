"""WoE binning from summed per-bank counts: sums equal pooling, WoE/IV by hand, monotonic
bins with a minimum share, DP-noised counts, and a model on WoE features."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fl_credit.credit.psi import feature_edges
from fl_credit.credit.woe import WoeTable, bank_counts, fit_binning, woe_bins, woe_iv


def loans(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Income (lower = riskier, step-shaped), an irrelevant feature and a one-hot flag."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.5, n)
    noise = rng.normal(0, 1, n)
    renter = (rng.random(n) < 0.4).astype(float)
    logit = -2.2 + 1.5 * (income < 40_000) + 0.8 * (income < 25_000) + 0.7 * renter
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.c_[income, noise, renter], y


NAMES = ["income", "noise", "home=rent"]


def grids(x: np.ndarray) -> list[np.ndarray]:
    return [feature_edges(x[:, j].mean(), x[:, j].std(), "=" in NAMES[j]) for j in range(3)]


def test_woe_and_iv_by_hand() -> None:
    woe, iv = woe_iv(np.array([10.0, 30.0]), np.array([90.0, 70.0]), smoothing=0.0)
    assert woe[0] == pytest.approx(np.log((90 / 160) / (10 / 40)))
    assert woe[1] < 0  # the bin with more defaults has negative WoE
    assert iv == pytest.approx(np.sum((np.array([90, 70]) / 160 - np.array([10, 30]) / 40) * woe))
    woe, _ = woe_iv(np.array([0.0, 5.0]), np.array([7.0, 0.0]))
    assert np.isfinite(woe).all()


def test_summed_bank_counts_give_the_pooled_table() -> None:
    x, y = loans(6000, 0)
    edges = grids(x)
    banks = [(x[:1000], y[:1000]), (x[1000:2500], y[1000:2500]), (x[2500:], y[2500:])]
    summed = np.sum([bank_counts(bx, by, edges) for bx, by in banks], axis=0)
    np.testing.assert_array_equal(summed, bank_counts(x, y, edges))
    table = WoeTable.from_summed(summed, edges, NAMES)
    ivs = table.information_values()
    assert list(ivs)[0] == "income" and ivs["noise"] < 0.05 < ivs["income"]
    assert len(table.binnings[2].woe) == 2  # one-hot keeps its two bins


def test_bins_are_monotonic_and_large_enough() -> None:
    x, y = loans(8000, 1)
    edges = grids(x)[0]
    events = np.histogram(x[y == 1, 0], edges)[0].astype(float)
    non_events = np.histogram(x[y == 0, 0], edges)[0].astype(float)
    groups = woe_bins(events, non_events, max_bins=6, min_share=0.05)
    binning = fit_binning(events, non_events, edges)
    steps = np.diff(binning.woe)
    assert (steps >= 0).all() or (steps <= 0).all()
    totals = np.bincount(groups, weights=events + non_events)
    assert (totals / totals.sum() >= 0.05).all() and 2 <= len(totals) <= 6
    assert binning.woe[0] < binning.woe[-1]  # low incomes are the riskier bins


def test_dp_noise_on_counts_keeps_woe_finite_and_close() -> None:
    x, y = loans(8000, 2)
    edges = grids(x)
    exact = bank_counts(x, y, edges)
    noised = exact + np.random.default_rng(0).normal(0, 3.0, exact.shape)
    assert (noised < 0).any()
    clean = WoeTable.from_summed(exact, edges, NAMES).information_values()
    noisy = WoeTable.from_summed(noised, edges, NAMES).information_values()
    assert all(np.isfinite(v) for v in noisy.values())
    assert noisy["income"] == pytest.approx(clean["income"], rel=0.2)


def test_logistic_model_on_woe_features() -> None:
    x, y = loans(8000, 3)
    test_x, test_y = loans(4000, 4)
    edges = grids(x)
    table = WoeTable.from_summed(bank_counts(x, y, edges), edges, NAMES)
    woe_model = LogisticRegression().fit(table.transform(x), y)
    raw_model = LogisticRegression(max_iter=1000).fit((x - x.mean(0)) / x.std(0), y)
    woe_auc = roc_auc_score(test_y, woe_model.predict_proba(table.transform(test_x))[:, 1])
    raw = (test_x - x.mean(0)) / x.std(0)
    raw_auc = roc_auc_score(test_y, raw_model.predict_proba(raw)[:, 1])
    assert woe_auc > raw_auc  # the bins capture the step that a linear term in income misses
    assert woe_model.coef_[0][0] < 0  # higher WoE (safer bin) lowers the PD
