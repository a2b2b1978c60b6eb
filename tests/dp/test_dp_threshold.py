"""The DP cut-off comes from a grid placed where the model's scores lie, with its noise shown.

A DP model's calibrated PDs sit in a narrow band (about 0.002-0.03 on the default data). The
old DP grid, 30 equal logit bins over the whole public range (-10, 5), offered only a few
cut-offs in that band (0.0110, 0.0180, 0.0474), so the noised KS cut-off often landed
above every score and flagged nobody. Now a first release (half the validation budget)
counts the scores in 15 bins over the public range, which locates their span, and the
per-class histograms use 20 bins over that span; and the run states
the cut-off's estimated validation recall with its noise, and says when it flags fewer than
:data:`~fl_credit.credit.thresholds.MIN_FLAGGED_SHARE` of the defaults.
"""

from __future__ import annotations

import numpy as np

from fl_credit.credit.thresholds import (
    LOGIT_RANGE,
    MIN_FLAGGED_SHARE,
    SPAN_BINS,
    bin_thresholds,
    dp_cutoff,
    logit_histograms,
    model_logit_span,
    score_counts,
    span_from_counts,
)

SIGMA = 22.875  # the validation release's noise multiplier at epsilon 4 (default plan)
BINS = 20


def dp_like_portfolio(seed: int = 0, rows: int = 6300):
    """Standardised rows and a model whose PDs sit around 0.002-0.03, like a DP run's."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 1.0, 20)
    weight *= 0.7 / np.linalg.norm(weight)
    bias = -4.6
    x = rng.normal(size=(rows, 20))
    p = 1.0 / (1.0 + np.exp(-(x @ weight + bias)))
    y = (rng.random(rows) < p * 6).astype(int)  # a base rate above the PDs, as in DP runs
    return weight, bias, y, p


def candidates_inside(cutoffs: np.ndarray, p: np.ndarray) -> int:
    low, high = np.quantile(p, [0.05, 0.95])
    return int(np.sum((cutoffs > low) & (cutoffs < high)))


def test_old_public_grid_offers_almost_no_cut_off_where_dp_scores_lie():
    """The positive control: the problem as it was."""
    _, _, _, p = dp_like_portfolio()
    assert candidates_inside(bin_thresholds(30), p) <= 5


def test_model_span_grid_offers_many_cut_offs_where_the_scores_are():
    weight, bias, _, p = dp_like_portfolio()
    span = model_logit_span(weight, bias)
    assert LOGIT_RANGE[0] <= span[0] < span[1] <= LOGIT_RANGE[1]
    assert candidates_inside(bin_thresholds(BINS, span), p) >= 10


def test_the_noised_span_release_locates_the_scores():
    """The first validation release (all scores, 15 bins over the public range, noise of
    the half budget) finds a span that holds the scores and gives the grid many cut-offs
    there, whatever the model's inputs look like."""
    _, _, _, p = dp_like_portfolio()
    rng = np.random.default_rng(2)
    for _ in range(20):
        counts = score_counts(p) + rng.normal(0.0, SIGMA * np.sqrt(2), SPAN_BINS)
        span = span_from_counts(counts, SIGMA * np.sqrt(2))
        logit = np.log(p / (1 - p))
        assert span[0] <= np.quantile(logit, 0.05) and np.quantile(logit, 0.95) <= span[1]
        assert candidates_inside(bin_thresholds(BINS, span), p) >= 10


def test_noised_cut_off_flags_a_stated_share_of_defaults_or_says_so():
    weight, bias, y, p = dp_like_portfolio()
    span = model_logit_span(weight, bias)
    exact = logit_histograms(y, p, BINS, span)
    rng = np.random.default_rng(1)
    recalls, flagged = [], []
    for _ in range(20):
        noisy = exact + rng.normal(0.0, SIGMA, exact.shape)
        report = dp_cutoff(noisy, span, count_sd=SIGMA)
        recalls.append(float(np.mean(p[y == 1] >= report["threshold"])))
        flagged.append(report["flags_too_few"])
        assert report["recall_sd"] > 0 and report["count_sd"] == SIGMA
        assert report["bins"] == BINS and report["span_logit"] == list(span)
        assert report["flags_too_few"] == (report["validation_recall"] < MIN_FLAGGED_SHARE)
    assert np.mean(recalls) >= 0.4  # the old grid gave 0.019 at epsilon 0.5, 0 at 1 and 2


def test_the_table_says_when_the_cut_off_flags_too_few():
    from fl_credit.run.console import threshold_note

    report = {
        "threshold": 0.0474,
        "validation_recall": 0.05,
        "recall_sd": 0.1,
        "count_sd": SIGMA,
        "bins": BINS,
        "span_logit": [-6.0, -2.0],
        "flags_too_few": True,
    }
    note = threshold_note({"threshold_validation": report})
    assert "fewer than" in note and f"{MIN_FLAGGED_SHARE:.0%}" in note
    assert "0.05 +- 0.10" in note
    assert threshold_note({}) == ""
