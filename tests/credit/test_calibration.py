"""Calibrated PDs: the prior correction, reliability bins and ECE, and the default run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fl_credit.config.schema import EngineConfig, ExperimentConfig
from fl_credit.credit.calibration import (
    calibration_scores,
    corrected,
    prior_correction,
    reliability_bins,
    reliability_edges,
    reliability_summary,
)
from fl_credit.model.imbalance import positive_weight
from fl_credit.model.logistic import model_from_arrays, predict_proba, to_arrays
from fl_credit.model.training import fit_newton

pytestmark = pytest.mark.filterwarnings("ignore")


def logistic_rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    z = x @ np.array([0.8, -0.5, 0.3]) - 3.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return x, y


def scores_of(model, x):
    return predict_proba(model, x)


def test_prior_correction_is_exact_for_the_intercept():
    """Without features the weighted optimum is logit(rate) + log(weight): corrected, the
    PD equals the default rate exactly; uncorrected it is 0.5 (the test's positive control)."""
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.06).astype(np.int64)
    x = np.zeros((len(y), 1))
    weight = positive_weight(y)
    model, _, converged = fit_newton(x, y, pos_weight=weight, l2=0.01, tol=1e-12, max_iterations=30)
    assert converged
    assert scores_of(model, x)[0] == pytest.approx(0.5, abs=1e-9)
    calibrated = model_from_arrays(
        corrected(to_arrays(model), prior_correction("class_weight", weight))
    )
    assert scores_of(calibrated, x)[0] == pytest.approx(y.mean(), abs=1e-9)


def test_prior_correction_recovers_the_unweighted_model():
    x, y = logistic_rows(200_000, seed=1)
    weight = positive_weight(y)
    weighted, _, _ = fit_newton(x, y, pos_weight=weight, l2=0.0, tol=1e-9, max_iterations=30)
    plain, _, _ = fit_newton(x, y, pos_weight=1.0, l2=0.0, tol=1e-9, max_iterations=30)
    fixed = model_from_arrays(corrected(to_arrays(weighted), prior_correction("smote", weight)))
    raw_pd, fixed_pd = scores_of(weighted, x), scores_of(fixed, x)
    assert raw_pd.mean() > 0.3  # inflated scores before the correction
    assert fixed_pd.mean() == pytest.approx(y.mean(), abs=0.005)
    b_fixed = float(fixed.linear.bias.detach())
    assert b_fixed == pytest.approx(float(plain.linear.bias.detach()), abs=0.05)
    assert b_fixed == pytest.approx(-3.0, abs=0.1)
    assert prior_correction("none", weight) == 0.0


def test_correction_keeps_the_dtype_and_changes_only_the_bias():
    model, _, _ = fit_newton(
        *logistic_rows(500, 2), pos_weight=1.0, l2=0.1, tol=1e-6, max_iterations=10
    )
    arrays = to_arrays(model)
    out = corrected(arrays, 2.0)
    for name in arrays:
        a, b = arrays[name].numpy(), out[name].numpy()
        assert a.dtype == b.dtype
        np.testing.assert_allclose(b, a - 2.0 if name == "linear.bias" else a)


def test_reliability_bins_sum_over_banks_and_give_the_ece():
    rng = np.random.default_rng(3)
    p = rng.beta(1, 12, 3000)
    y = (rng.random(3000) < p).astype(np.int64)
    parts = np.array_split(np.arange(3000), 3)
    summed = sum(reliability_bins(y[i], p[i], 15) for i in parts)
    np.testing.assert_allclose(summed, reliability_bins(y, p, 15))
    edges = reliability_edges(15)
    assert edges[0] == 0.0 and edges[-1] == 1.0 and np.all(np.diff(edges) > 0)
    # ECE by hand: per-bin |mean PD - default rate| weighted by the bin's share of rows.
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 14)
    by_hand = sum(
        (index == b).mean() * abs(p[index == b].mean() - y[index == b].mean())
        for b in range(15)
        if (index == b).any()
    )
    summary = reliability_summary(summed)
    assert summary["ece"] == pytest.approx(by_hand, abs=1e-12)
    assert summary["rows"] == 3000 and summary["defaults"] == y.sum()
    assert sum(b["rows"] for b in summary["bins"]) == 3000
    assert summary["ece"] < 0.03  # scores drawn as the true PDs are calibrated


def test_ece_of_a_constant_predictor_is_its_distance_to_the_base_rate():
    y = np.r_[np.ones(50), np.zeros(950)].astype(np.int64)
    figures = calibration_scores(y, np.full(1000, 0.2), 15)
    assert figures["ece"] == pytest.approx(0.15)
    assert figures["base_rate"] == pytest.approx(0.05)
    assert figures["brier_base_rate"] == pytest.approx(0.05 * 0.95)


@pytest.fixture(scope="module")
def default_run(embedded):
    """The default experiment (secure aggregation, class weights, auto = Newton), in-process."""
    from fl_credit.data.prepare import prepare
    from fl_credit.run.experiment import run_experiment

    cfg = ExperimentConfig(engine=EngineConfig(backend="inprocess"), bootstrap=50)
    return run_experiment(cfg, prepare(cfg, embedded))


def test_default_run_brier_is_at_or_below_the_base_rate_predictor(default_run):
    fed = default_run.metrics["federated"]
    assert fed["training"]["optimizer"] == "newton"
    assert fed["brier"] <= fed["brier_base_rate"]
    assert fed["mean_pd"] == pytest.approx(fed["base_rate"], abs=0.01)
    assert 0.0 < fed["at_val_threshold"]["threshold"] < 0.2  # a PD cut-off, not 0.5-ish
    assert fed["training"]["intercept_correction"] > 2.0


def test_default_run_reports_calibration_from_summed_validation_bins(default_run, embedded):
    from fl_credit.run.console import comparison_table

    metrics = default_run.metrics
    check = metrics["federated"]["calibration_validation"]
    val_rows = sum(info["val_rows"] for info in metrics["banks"].values())
    assert check["rows"] == pytest.approx(val_rows, abs=1e-6)
    assert 0.0 <= check["ece"] < 0.05
    for name in ("federated", "centralized", "reference"):
        assert {"ece", "mean_pd", "base_rate", "brier_base_rate"} <= set(metrics[name])
    table = comparison_table(metrics)
    for needle in ("mean PD", "ECE", "threshold", "base rate (test)"):
        assert needle in table


def test_saved_model_is_the_calibrated_one(default_run, tmp_path, embedded):
    from fl_credit.coordinator.summary import save_model
    from fl_credit.data.prepare import prepare
    from fl_credit.model.logistic import LogisticRegression

    fed = default_run.federation
    save_model(tmp_path / "model.pt", fed)
    state = torch.load(tmp_path / "model.pt")
    assert float(state["intercept_correction"]) == pytest.approx(fed.intercept_correction)
    model = LogisticRegression(state["linear.weight"].shape[1]).double()
    model.load_state_dict({k: state[k] for k in ("linear.weight", "linear.bias")})
    cfg = ExperimentConfig(engine=EngineConfig(backend="inprocess"))
    prepared = prepare(cfg, embedded)
    x = (prepared.x_test - state["scaler_mean"].numpy()) / state["scaler_std"].numpy()
    np.testing.assert_allclose(
        predict_proba(model, x).mean(), default_run.metrics["federated"]["mean_pd"], atol=1e-6
    )
