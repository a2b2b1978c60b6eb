"""Paired intervals and Holm's correction for the threat matrix's claims."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fl_credit.threats.matrix_stats import PairedSeed, auc, holm, paired_drop, seed_mean


def test_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_holm_matches_its_definition():
    adjusted = holm([0.01, 0.04, 0.03, 0.5])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.5])


def seeds_with(effect: float, count: int, rng) -> list[PairedSeed]:
    out = []
    for _ in range(count):
        y = (rng.random(1500) < 0.1).astype(int)
        clean = y * 1.0 + rng.standard_normal(1500)
        attacked = clean + effect * rng.standard_normal(1500)
        out.append(PairedSeed(y, clean, attacked))
    return out


def test_three_seeds_cannot_back_a_claim_that_ten_seeds_can():
    # The committed matrix made claims from three seeds and a t-interval; the README dropped
    # the intervals. A paired interval says when a claim is supported.
    rng = np.random.default_rng(1)
    none = paired_drop(seeds_with(0.0, 10, rng), resamples=200)
    assert none.mean == pytest.approx(0.0) and none.upper < 0.01  # "holds within 0.01"
    harmful = paired_drop(seeds_with(1.5, 10, rng), resamples=200)
    assert harmful.lower > 0.05 and harmful.p_below(0.0) < 0.01
    spread = seed_mean([0.31, -0.5, 1.2], resamples=500)
    assert spread.low < 0 < spread.high  # three noisy seeds: no claim either way


def test_the_bootstrap_auc_of_a_draw_equals_the_rank_auc_of_the_drawn_rows():
    import numpy as np

    from fl_credit.threats.matrix_stats import _DrawnAuc, auc

    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.1).astype(int)
    scores = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    drawn = _DrawnAuc(scores, pos, neg)
    for _ in range(20):
        p, n = rng.choice(pos, len(pos)), rng.choice(neg, len(neg))
        rows = np.concatenate([p, n])
        assert abs(drawn(p, n) - auc(y[rows], scores[rows])) < 1e-12


def test_a_clear_effect_survives_holm_over_a_full_matrix_of_claims():
    # Before: the p-value was the share of bootstrap replicates past the bound, never below
    # 1 / (resamples + 1); Holm over the ~150 claims of a 10-seed matrix multiplies that floor
    # by 150, so with 2,000 draws no claim could be supported (smallest adjusted p 0.075).
    rng = np.random.default_rng(2)
    harmful = paired_drop(seeds_with(1.5, 10, rng), resamples=2000)
    adjusted = holm([harmful.p_below(0.0)] + [0.5] * 149)
    assert adjusted[0] < 0.05, adjusted[0]
    unclear = seed_mean([0.31, -0.5, 1.2], resamples=2000)
    assert unclear.p_below(0.0) > 0.05 and unclear.p_above(0.0) > 0.05
