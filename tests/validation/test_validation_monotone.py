"""Monotone ordinal effects: the projection, the constrained Newton step, the federated
model against the pooled reference under the same constraint, and the report's flags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import LinearConstraint, minimize

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import TrainConfig
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.model.logistic import theta_from_arrays
from fl_credit.model.training import fit_newton, newton_terms
from fl_credit.run.baselines import pooled
from fl_credit.run.experiment import run_experiment
from fl_credit.validation.monotone import increments, parse_specs, project, violations
from tests.validation.conftest import base_config

pytestmark = pytest.mark.filterwarnings("ignore")
SPECS = (
    "sub_grade",
    "-emp_length:emp_lt_1,emp_1,emp_2,emp_3,emp_4,emp_5,emp_6,emp_7,emp_8,emp_9,emp_ge_10",
)


def test_projection_is_the_nearest_monotone_point() -> None:
    rng = np.random.default_rng(0)
    names = [f"g=L{k}" for k in range(6)] + ["other"]
    chains = parse_specs(["g"], names)
    std = rng.uniform(0.2, 2.0, 7)
    w = rng.normal(size=7)
    got = project(w, chains, std)
    # the same projection as a quadratic programme over w
    a = np.zeros((5, 7))
    for k in range(5):
        a[k, k], a[k, k + 1] = -1 / std[k], 1 / std[k + 1]
    qp = minimize(
        lambda v: 0.5 * np.sum((v - w) ** 2),
        w,
        jac=lambda v: v - w,
        constraints=[LinearConstraint(a, 0, np.inf)],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    np.testing.assert_allclose(got, qp.x, atol=1e-6)
    assert not violations(got, chains, std, names)
    assert got[6] == w[6]


def test_specs_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="no one-hot characteristic 'grade'"):
        parse_specs(["grade"], ["sub_grade=A1", "sub_grade=A2"])
    with pytest.raises(ConfigError, match="no level"):
        parse_specs(["sub_grade:A1,Z9"], ["sub_grade=A1", "sub_grade=A2"])


def test_constrained_newton_reaches_the_constrained_optimum(embedded) -> None:
    cfg = base_config()
    prepared = prepare(cfg, embedded)
    rows = pooled(list(prepared.banks.values()))
    scaler = pooled_standardizer(rows.x_train)
    x, y = scaler.transform(rows.x_train), rows.y_train
    pos_weight = (len(y) - y.sum()) / y.sum()
    chains = parse_specs(SPECS, prepared.feature_names)
    t, bounded = increments(chains, scaler.std, x.shape[1] + 1)
    model, _, converged = fit_newton(
        x,
        y,
        pos_weight=pos_weight,
        l2=0.01,
        tol=1e-8,
        max_iterations=60,
        constraints=(t, bounded),
    )
    assert converged
    theta = theta_from_arrays(_arrays(model))
    assert not violations(theta[:-1], chains, scaler.std, prepared.feature_names)

    n = len(y)

    def objective(v):
        g, _, loss = newton_terms(x, y, pos_weight, v)
        w = v[:-1]
        return loss / n + 0.005 * w @ w, g / n + np.r_[0.01 * w, 0.0]

    # KKT in the increments: gradient in u is 0 on free coordinates, >= 0 on bounded ones
    # (and 0 where the bound is not active).
    grad_u = t.T @ objective(theta)[1]
    u = np.linalg.solve(t, theta)
    assert np.max(np.abs(grad_u[~bounded])) < 1e-7
    assert np.all(grad_u[bounded] > -1e-7)
    inactive = bounded & (u > 1e-6)
    assert np.max(np.abs(grad_u[inactive]), initial=0.0) < 1e-7
    unconstrained, _, _ = fit_newton(
        x, y, pos_weight=pos_weight, l2=0.01, tol=1e-8, max_iterations=60
    )
    free = theta_from_arrays(_arrays(unconstrained))
    assert violations(free[:-1], chains, scaler.std, prepared.feature_names)
    assert objective(free)[0] < objective(theta)[0]  # the constraint costs some fit


def _arrays(model):
    from fl_credit.model.logistic import to_arrays

    return to_arrays(model)


@pytest.fixture(scope="module")
def monotone_run(embedded):
    cfg = base_config(train=TrainConfig(rounds=15, monotone=SPECS))
    prepared = prepare(cfg, embedded)
    return cfg, prepared, run_experiment(cfg, prepared)


def test_federated_newton_equals_the_pooled_reference_under_the_constraint(monotone_run) -> None:
    cfg, prepared, outcome = monotone_run
    chains = parse_specs(SPECS, prepared.feature_names)
    fed = outcome.federation
    theta = theta_from_arrays(fed.arrays)
    assert not violations(theta[:-1], chains, fed.scaler.std, prepared.feature_names)
    np.testing.assert_allclose(
        outcome.scores["federated"], outcome.scores["centralized"], atol=1e-6
    )


def test_sgd_rounds_are_projected(embedded) -> None:
    cfg = base_config(train=TrainConfig(rounds=3, optimizer="sgd", monotone=SPECS))
    cfg = dataclasses.replace(cfg, validation=dataclasses.replace(cfg.validation, enabled=False))
    prepared = prepare(cfg, embedded)
    outcome = run_experiment(cfg, prepared)
    chains = parse_specs(SPECS, prepared.feature_names)
    theta = theta_from_arrays(outcome.federation.arrays)
    assert not violations(theta[:-1], chains, outcome.federation.scaler.std, prepared.feature_names)
    assert np.abs(theta[:-1]).max() > 0  # it trained


def test_the_report_flags_violations_of_an_unconstrained_model(embedded_run, tmp_path) -> None:
    import json
    import shutil

    from fl_credit.coordinator.summary import save_model
    from fl_credit.validation.query import COUNTS_FILE
    from fl_credit.validation.report import write_validation_report

    save_model(tmp_path / "model.pt", embedded_run.outcome.federation)
    (tmp_path / COUNTS_FILE).write_text(json.dumps(embedded_run.stored))
    write_validation_report(tmp_path)
    text = (tmp_path / "validation.md").read_text()
    assert "## Monotone effects" in text
    assert "violation(s)" in text and "sub_grade=" in text
    shutil.rmtree(tmp_path)
