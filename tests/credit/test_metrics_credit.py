"""Credit metrics on small arrays: KS with ties, gains and lift, PSI, odds ratios, reason codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression

from fl_credit.credit.metrics import evaluate_scores, gains_table, ks_statistic
from fl_credit.credit.odds_ratios import odds_ratios
from fl_credit.credit.psi import (
    coarse_psi,
    coarsen,
    feature_counts,
    feature_edges,
    merge,
    psi,
    shares,
    split_counts,
    stability,
)
from fl_credit.credit.reason_codes import contributions, reason_frequency, top_reasons


def test_ks_of_constant_scores_is_zero():
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0])
    assert ks_statistic(y, np.full(8, 0.3)) == 0.0
    assert evaluate_scores(y, np.full(8, 0.3), resamples=0)["ks"] == 0.0


def test_ks_does_not_split_ties():
    # A default listed first inside the tie at 0.5: the old cumulative-sum KS stepped into the
    # tie and reported 2/3; a cut-off cannot separate tied rows, so the true value is 1/3.
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert ks_statistic(y, p) == pytest.approx(expected, abs=1e-12)
    assert ks_statistic(y, p) == pytest.approx(1 / 3)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.integers(1, 6))
def test_ks_equals_scipy_two_sample_with_heavy_ties(seed, levels):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.3).astype(int)
    y[:2] = [0, 1]
    p = np.round(rng.random(300) * 0.5 + 0.4 * y, 1) if levels > 1 else np.full(300, 0.2)
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert ks_statistic(y, p) == pytest.approx(expected, abs=1e-12)


def gains_by_sorting(y: np.ndarray, p: np.ndarray, depth: float) -> float:
    """Share of defaults in the top ``depth`` of rows, tied rows counted pro rata."""
    frame = pd.DataFrame({"p": p, "y": y}).groupby("p")["y"].agg(["sum", "count"])
    frame = frame.sort_index(ascending=False)
    taken, caught, want = 0.0, 0.0, depth * len(y)
    for defaults, rows in zip(frame["sum"], frame["count"], strict=True):
        share = min(rows, max(want - taken, 0.0)) / rows
        caught += share * defaults
        taken += share * rows
    return caught / y.sum()


def test_gains_with_ties_match_a_sorting_computation():
    rng = np.random.default_rng(3)
    y = (rng.random(997) < 0.2).astype(int)
    p = np.round(rng.random(997) * 0.6 + 0.3 * y, 2)
    table = gains_table(y, p)
    for depth, gain in zip(table["depth"], table["cumulative_gains"], strict=True):
        assert gain == pytest.approx(gains_by_sorting(y, p, depth), abs=1e-12)
    assert table["cumulative_gains"][-1] == pytest.approx(1.0)
    assert np.sum(table["lift"]) / 10 == pytest.approx(1.0)
    assert np.mean(table["default_rate"]) == pytest.approx(y.mean())


def test_gains_of_constant_and_perfect_scores():
    y = np.array([1] * 10 + [0] * 90)
    flat = gains_table(y, np.full(100, 0.5))
    np.testing.assert_allclose(flat["cumulative_lift"], 1.0)
    perfect = gains_table(y, y * 0.8 + 0.1)
    assert perfect["cumulative_gains"][0] == pytest.approx(1.0)
    assert perfect["lift"][0] == pytest.approx(10.0) and perfect["lift"][1] == 0.0


def test_psi_is_symmetric_kl_on_smoothed_shares():
    e, a = np.array([50.0, 30, 20, 0]), np.array([40.0, 30, 25, 5])
    es, as_ = shares(e), shares(a)
    assert psi(e, a) == pytest.approx(np.sum(rel_entr(as_, es) + rel_entr(es, as_)), abs=1e-12)
    assert psi(e, e * 3) == pytest.approx(0.0, abs=1e-12)
    assert psi(e, a) == pytest.approx(psi(a, e))
    assert stability(0.05) == "stable" and stability(0.3) == "major shift"
    with pytest.raises(ValueError):
        psi(e, a[:3])


def test_coarsen_makes_bins_of_equal_reference_mass():
    fine = np.ones(200)
    groups = coarsen(fine, 10)
    np.testing.assert_array_equal(merge(fine, groups), np.full(10, 20.0))
    spiky = np.r_[np.zeros(50), 500.0, np.ones(149)]
    coarse = merge(spiky, coarsen(spiky, 10))
    assert len(coarse) < 10 and coarse[0] == 500.0  # one fine bin is never split
    assert (coarse > 0).all()
    assert coarsen(np.zeros(5), 3).tolist() == [0] * 5
    assert coarsen(np.r_[0.0, 0.0, 5.0, 0.0, 5.0], 2).tolist() == [0, 0, 0, 1, 1]


def test_feature_counts_sum_over_banks_to_the_pooled_counts():
    rng = np.random.default_rng(0)
    banks = [rng.normal(5, 2, (n, 2)) for n in (30, 70, 100)]
    banks = [np.c_[b, (rng.random(len(b)) < 0.3)] for b in banks]
    pooled = np.vstack(banks)
    edges = [
        feature_edges(pooled[:, j].mean(), pooled[:, j].std(), binary=j == 2) for j in range(3)
    ]
    summed = np.sum([feature_counts(b, edges) for b in banks], axis=0)
    np.testing.assert_array_equal(summed, feature_counts(pooled, edges))
    parts = split_counts(summed, edges)
    assert [p.sum() for p in parts] == [200.0] * 3 and len(parts[2]) == 2
    value, _ = coarse_psi(parts[0], split_counts(feature_counts(banks[0], edges), edges)[0], 10)
    assert 0.0 <= value < 0.5


def test_odds_ratios_match_a_fit_on_the_original_scale():
    rng = np.random.default_rng(1)
    x = np.c_[rng.normal(50, 10, 4000), rng.normal(0.2, 0.05, 4000), rng.random(4000) < 0.4]
    logit = -1 + 0.05 * (x[:, 0] - 50) + 8 * (x[:, 1] - 0.2) + 0.7 * x[:, 2]
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(int)
    mean, std = x.mean(axis=0), x.std(axis=0)
    on_z = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit((x - mean) / std, y)
    on_x = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(x, y)
    names = ["age", "dti", "owner=yes"]
    out = odds_ratios(on_z.coef_[0], mean, std, float(on_z.intercept_[0]), names)
    coef = np.array([row["coef"] for row in out["features"]])
    np.testing.assert_allclose(coef, on_x.coef_[0], rtol=1e-3)
    assert out["intercept"] == pytest.approx(on_x.intercept_[0], rel=1e-3)
    assert out["features"][2]["odds_ratio"] == pytest.approx(np.exp(on_x.coef_[0][2]), rel=1e-3)
    assert out["features"][0]["odds_ratio_per_sd"] == pytest.approx(np.exp(on_z.coef_[0][0]))


def test_reason_codes_decompose_the_logit_and_group_one_hots():
    names = ["income", "dti", "purpose=car", "purpose=debt"]
    weights = np.array([-1.0, 0.8, -0.2, 0.6])
    mean, std = np.array([50.0, 0.2, 0.5, 0.5]), np.array([10.0, 0.1, 0.5, 0.5])
    x = np.array([[30.0, 0.4, 0.0, 1.0], [60.0, 0.1, 1.0, 0.0], [50.0, 0.2, 0.5, 0.5]])
    contrib, variables = contributions(x, weights, mean, std, names)
    assert variables == ["income", "dti", "purpose"]
    logit = ((x - mean) / std) @ weights
    np.testing.assert_allclose(contrib.sum(axis=1), logit - 0.0)
    np.testing.assert_allclose(contrib[0], [2.0, 1.6, 0.2 + 0.6])
    reasons = top_reasons(contrib, variables, 2)
    assert [name for name, _ in reasons[0]] == ["income", "dti"]
    assert reasons[1] == []  # every characteristic lowers this borrower's risk
    assert reasons[2] == []  # the reference borrower has no reasons
    assert reason_frequency(reasons) == {"income": 1}
