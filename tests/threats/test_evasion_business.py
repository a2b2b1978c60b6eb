"""Evasion at a stated business approval rate, with no silent lever, and coupled utilisation."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.threats.evasion import (
    Lever,
    LinearScore,
    approval_cutoff,
    cheapest_flip,
    coupled_utilisation,
    flip_report,
)

NAMES = ["income", "revol_util", "all_util", "inquiries"]


def test_the_cut_off_approves_the_stated_share_not_the_ks_point():
    # Before: the cut-off was the validation KS point only (27% rejected on the loans).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 4))
    score = LinearScore(np.array([-1.0, 0.5, 0.5, 0.2]), 0.0, threshold=0.5)
    cutoff = approval_cutoff(score, x, 0.8)
    assert np.mean(score.logits(x) < cutoff) == pytest.approx(0.8, abs=0.002)
    flips = cheapest_flip(
        score, x, NAMES, np.ones(4), (Lever("income", +1, max_rise=0.5),), cutoff=cutoff
    )
    assert len(flips.rows) == pytest.approx(200, abs=2)


def test_a_lever_the_data_lacks_is_reported_not_skipped():
    score = LinearScore(np.array([-0.02, 0.05, 0.05, 0.3]), 0.0, 0.5)
    x = np.array([[100.0, 80.0, 60.0, 2.0]])
    flips = cheapest_flip(score, x, NAMES, np.ones(4), (Lever("income", +1), Lever("dti", -1)))
    assert flips.missing == ("dti",)
    assert flip_report(flips, np.array([1]))["levers_missing"] == ["dti"]


def test_paying_down_revolving_debt_lowers_overall_utilisation_too():
    # Before: revol_util and all_util moved independently (a borrower could cut one alone).
    x = np.array([[0.0, 80.0, 60.0, 0.0]] * 50 + [[0.0, 20.0, 30.0, 0.0]] * 50)
    lever = coupled_utilisation(x, NAMES)
    assert lever.feature == "revol_util" and lever.coupled[0][0] == "all_util"
    ratio = lever.coupled[0][1]
    assert ratio == pytest.approx(0.5)
    score = LinearScore(np.array([0.0, 0.0, 0.1, 0.0]), -3.0, 0.5)  # only all_util counts
    flips = cheapest_flip(score, x[:1], NAMES, np.ones(4), (lever,), margin=0.0)
    # logit 3.0 needs all_util down by 30: revolving down by 60, cost 60 (one action).
    assert flips.change[0, 0] == pytest.approx(-60.0)
    assert flips.cost[0] == pytest.approx(60.0)
