"""Federated standardisation equals pooled; metrics agree with independent computations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from fl_credit.credit.metrics import auc_interval, evaluate_scores, ks_statistic
from fl_credit.credit.thresholds import bin_thresholds, score_histograms, threshold_from_histograms
from fl_credit.data.scaling import (
    centered_squares,
    first_moments,
    mean_from_sums,
    pooled_standardizer,
    standardizer_from_sums,
)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(2, 60), min_size=1, max_size=5), seed=st.integers(0, 10_000))
def test_sums_over_banks_give_the_pooled_standardizer(sizes, seed):
    rng = np.random.default_rng(seed)
    banks = [rng.normal(rng.normal(0, 50), rng.uniform(0.1, 1e4), (n, 4)) for n in sizes]
    count, mean = mean_from_sums(np.sum([first_moments(b) for b in banks], axis=0))
    squares = np.sum([centered_squares(b, mean) for b in banks], axis=0)
    federated = standardizer_from_sums(count, mean, squares)
    pooled = pooled_standardizer(np.vstack(banks))
    np.testing.assert_allclose(federated.mean, np.vstack(banks).mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(federated.std, pooled.std, rtol=1e-9)


def scores(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 2)))


def test_ks_matches_scipy():
    y, p = scores()
    assert abs(ks_statistic(y, p) - ks_2samp(p[y == 1], p[y == 0]).statistic) < 1e-12


def test_bootstrap_interval_brackets_the_auc():
    y, p = scores()
    lo, hi = auc_interval(y, p, 400, seed=1)
    auc = roc_auc_score(y, p)
    assert lo < auc < hi
    assert 0.01 < hi - lo < 0.15


def test_threshold_from_histograms_maximises_youden():
    y, p = scores()
    t = threshold_from_histograms(score_histograms(y, p, 200))
    grid = bin_thresholds(200)  # the cut-offs the logit-scale bins allow
    j = [
        ((p >= g) & (y == 1)).sum() / y.sum() - ((p >= g) & (y == 0)).sum() / (1 - y).sum()
        for g in grid
    ]
    assert abs(t - grid[int(np.argmax(j))]) < 1e-9


def test_evaluate_scores_reports_both_classes():
    y, p = scores()
    m = evaluate_scores(y, p, val_threshold=0.2, resamples=20)
    for name in ("auc", "auc_ci", "ks", "gini", "brier", "log_loss", "default", "repaid"):
        assert name in m
    assert m["at_val_threshold"]["threshold"] == 0.2
    pred = p >= 0.5
    assert abs(m["default"]["recall"] - pred[y == 1].mean()) < 1e-12
    assert abs(m["repaid"]["recall"] - (~pred[y == 0]).mean()) < 1e-12
