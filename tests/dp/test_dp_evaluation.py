"""DP federated evaluation: metrics with their noise, or a statement that noise swamps them.

The old release put 400 score bins per class and the Brier and log-loss sums into one vector
of L2 sensitivity 9.32 (dominated by the clipped log loss), so every count carried noise of
sd 9.32 x sigma and the reported AUC was about 0.5 whatever the model. The release is now
score histograms only (sensitivity 1) on a few bins over the model's own score span, the
loss sums are not released under DP, and each metric comes with the sd of its noise;
a metric whose expected error exceeds :data:`~fl_credit.credit.binned_metrics.MAX_DP_ERROR` is
withheld with the reason. The figures use a real model of the default split (scikit-learn on
the pooled training rows, standing in for the federated model) and the default plan's
evaluation noise at epsilon 4.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.binned_metrics import (
    DP_EVALUATION_BINS,
    MAX_DP_ERROR,
    dp_metrics_from_histograms,
    evaluation_sensitivity,
    evaluation_vector,
    metrics_from_vector,
)
from fl_credit.credit.thresholds import logit_histograms, model_logit_span
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer

SIGMA = 22.875  # evaluation release at epsilon 4, share 0.05 (default plan)
DRAWS = 20


@pytest.fixture(scope="module")
def scored(embedded):
    prepared = prepare(ExperimentConfig(), embedded)
    x = np.vstack([b.x_train for b in prepared.banks.values()])
    y = np.concatenate([b.y_train for b in prepared.banks.values()])
    scaler = pooled_standardizer(x)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    p = model.predict_proba(scaler.transform(prepared.x_test))[:, 1]
    span = model_logit_span(model.coef_.ravel(), float(model.intercept_[0]))
    return prepared.y_test, p, span


def test_old_release_reports_noise_without_warning(scored):
    """Positive control: the old vector, noised as released, misses the AUC by far."""
    y, p, _ = scored
    exact = roc_auc_score(y, p)
    vector = evaluation_vector(y, p, 400)
    rng = np.random.default_rng(0)
    sd = SIGMA * evaluation_sensitivity()
    aucs = [
        metrics_from_vector(vector + rng.normal(0, sd, vector.shape), 400)["auc"]
        for _ in range(DRAWS)
    ]
    assert abs(np.mean(aucs) - exact) > 0.1


def test_dp_evaluation_is_within_reach_or_says_why_not(scored):
    y, p, span = scored
    exact = roc_auc_score(y, p)
    hist = logit_histograms(y, p, DP_EVALUATION_BINS, span)
    rng = np.random.default_rng(0)
    results = [
        dp_metrics_from_histograms(hist + rng.normal(0, SIGMA, hist.shape), SIGMA, seed=k)
        for k in range(DRAWS)
    ]
    for result in results:
        assert result["auc_sd"] > 0 and len(result["auc_interval"]) == 2
        assert result["brier"] is None and result["log_loss"] is None  # not released
        assert "loss sums are not released" in result["note"]
    reported = [r["auc"] for r in results if r["auc"] is not None]
    if reported:
        assert abs(np.mean(reported) - exact) <= MAX_DP_ERROR
    withheld = [r for r in results if r["auc"] is None]
    for result in withheld:
        assert result["auc_sd"] > MAX_DP_ERROR
        assert "auc" in result["withheld"] and "expected error" in result["note"]


def test_dp_evaluation_reports_a_metric_when_the_noise_is_small(scored):
    """With little noise the same release reports the AUC, within the target."""
    y, p, _ = scored
    span = model_logit_span(np.ones(4), -3.0)
    hist = logit_histograms(y, p, DP_EVALUATION_BINS, span) * 50  # 50x the rows
    result = dp_metrics_from_histograms(hist + np.random.default_rng(0).normal(0, 5, hist.shape), 5)
    assert result["auc"] is not None and result["withheld"] == []
    lo, hi = result["auc_interval"]
    assert lo < result["auc"] < hi
