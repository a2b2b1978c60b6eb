"""The migration matrix against each bank's own model equals the pooled crosstab of the two
models' grades, with each bank's own model refitted here from its rows."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.credit.calibration import prior_correction
from fl_credit.model.imbalance import balance
from fl_credit.model.logistic import predict_proba
from fl_credit.model.training import fit_newton
from fl_credit.validation.analysis import layout_of
from fl_credit.validation.migration import migration_summary

pytestmark = pytest.mark.filterwarnings("ignore")


def own_grades(run) -> tuple[np.ndarray, np.ndarray]:
    """Federated and own-model grades of the pooled test rows (banks in order)."""
    _, _, scale = layout_of(run.stored)
    fed = run.outcome.federation
    prepared_banks = run.outcome.metrics["banks"]
    assert prepared_banks
    banks = run.banks
    ys = np.concatenate([b.y_train for b in banks])
    pos_weight = (len(ys) - ys.sum()) / ys.sum()  # the federation's class weight
    ours, theirs = [], []
    for bank in banks:
        x, y, _ = balance(fed.scaler.transform(bank.x_train), bank.y_train, "class_weight")
        model, _, _ = fit_newton(
            x,
            y,
            pos_weight=pos_weight,
            l2=run.cfg.train.l2,
            tol=1e-6,
            max_iterations=50,
            total_rows=len(bank.y_train),
        )
        with_correction = model.linear.bias.data - prior_correction("class_weight", pos_weight)
        model.linear.bias.data = with_correction
        theirs.append(scale.grade(predict_proba(model, fed.scaler.transform(bank.x_test))))
        ours.append(scale.grade(predict_proba_fed(run, bank.x_test)))
    return np.concatenate(ours), np.concatenate(theirs)


def predict_proba_fed(run, x):
    from fl_credit.coordinator.federation import federated_test_scores

    return federated_test_scores(run.outcome.federation, x)


def test_migration_matrix_equals_the_pooled_crosstab(embedded_run) -> None:
    ours, theirs = own_grades(embedded_run)
    g = len(embedded_run.stored["scale_edges"]) + 1
    expected = np.zeros((g, g))
    np.add.at(expected, (ours, theirs), 1.0)
    got = np.asarray(embedded_run.results["migration"]["matrix"])
    np.testing.assert_array_equal(got, expected)
    summary = embedded_run.results["migration"]
    assert summary["same_grade"] == pytest.approx(np.mean(ours == theirs), abs=1e-12)
    assert summary["within_one"] == pytest.approx(np.mean(abs(ours - theirs) <= 1), abs=1e-12)


def test_migration_summary_of_a_known_matrix() -> None:
    m = np.array([[8.0, 2.0, 0.0], [1.0, 6.0, 1.0], [0.0, 0.0, 2.0]])
    s = migration_summary(m)
    assert s["same_grade"] == pytest.approx(16 / 20)
    assert s["within_one"] == pytest.approx(1.0)
    assert s["federated_worse"] == pytest.approx(1 / 20)
    assert s["federated_better"] == pytest.approx(3 / 20)
