"""Privacy attacks on their own: update inversion algebra, property inference, membership
inference with a positive control (and DP defeating it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fl_credit.config.schema import DPConfig, ExperimentConfig
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.model.training import log_loss
from fl_credit.protocol.settings import BankSettings
from fl_credit.threats.audit.ground_truth import RunData
from fl_credit.threats.audit.inversion import (
    class_means,
    data_gradient,
    invert_one_record,
    moments_of,
)
from fl_credit.threats.audit.membership import attack_metrics, label_logit, lira_scores, tpr_at_fpr
from fl_credit.threats.audit.properties import rate_from_zero_model_loss
from fl_credit.threats.audit.replay import Weights, local_update
from fl_credit.threats.audit.shadows import positive_control

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = BankSettings(lr=0.5, l2=0.01)


@pytest.fixture(scope="module")
def prepared(embedded):
    return prepare(ExperimentConfig(), embedded)


@pytest.fixture(scope="module")
def bank(prepared):
    return prepared.banks["bank_0"]


@pytest.fixture(scope="module")
def scaler(bank):
    return pooled_standardizer(bank.x_train)


@pytest.mark.parametrize("start_seed", [None, 3])
def test_one_record_update_gives_the_row_exactly(bank, scaler, start_seed):
    """x = grad_w / grad_b, from the weights a one-record bank replies with (its own code),
    at the zero model and at an arbitrary one."""
    d = bank.x_train.shape[1]
    if start_seed is None:
        start = Weights.zeros(d)
    else:
        rng = np.random.default_rng(start_seed)
        start = Weights(rng.normal(0, 0.3, d).astype(np.float32), 0.2)
    for i in (0, 7, 100):
        x, y = bank.x_train[i : i + 1], bank.y_train[i : i + 1]
        new = local_update(start, scaler.transform(x), y, 18.0, SETTINGS, 1)
        gradient = data_gradient(start, new, 1.0, SETTINGS.lr, SETTINGS.l2)
        row = scaler.mean + scaler.std * invert_one_record(gradient)
        np.testing.assert_allclose(row, x[0], rtol=1e-4, atol=1e-3 * scaler.std.max())


def test_round_one_update_and_moments_give_class_means_and_a_lone_default(bank, scaler):
    repaid = np.flatnonzero(bank.y_train == 0)[:300]
    lone = np.flatnonzero(bank.y_train == 1)[0]
    rows = np.r_[repaid, lone]
    x, y = bank.x_train[rows], bank.y_train[rows]
    pos_weight = 12.5
    new = local_update(Weights.zeros(x.shape[1]), scaler.transform(x), y, pos_weight, SETTINGS, 1)
    gradient = data_gradient(Weights.zeros(x.shape[1]), new, len(y), SETTINGS.lr, SETTINGS.l2)
    defaults, m0, m1 = class_means(gradient, moments_of(x, y), scaler, pos_weight)
    assert defaults == pytest.approx(1.0, abs=1e-3)
    tol = 1e-3 * scaler.std
    assert np.all(np.abs(m1 - x[-1]) <= tol)  # the lone default's row
    assert np.all(np.abs(m0 - x[:-1].mean(axis=0)) <= tol)


def test_default_rate_from_the_loss_at_the_zero_model(bank, scaler):
    from fl_credit.model.logistic import new_model

    x, y = scaler.transform(bank.x_train), bank.y_train
    for pos_weight in (1.5, 18.0):
        loss = log_loss(new_model(x.shape[1], 0), x, y, pos_weight)
        assert rate_from_zero_model_loss(loss, pos_weight) == pytest.approx(y.mean(), abs=1e-5)
    assert math.isnan(rate_from_zero_model_loss(math.log(2), 1.0))


def test_lira_separates_in_from_out_and_not_identical_distributions():
    rng = np.random.default_rng(0)
    shadows, rows = 16, 2000
    inside = rng.random((shadows, rows)) < 0.5
    shift = rng.uniform(0.5, 2.0, rows)  # each row's own IN effect
    base = rng.normal(0, 3, rows)  # each row's own difficulty
    phi = base + inside * shift + rng.normal(0, 0.3, (shadows, rows))
    member = rng.random(rows) < 0.5
    target = base + member * shift + rng.normal(0, 0.3, rows)
    strong = attack_metrics(lira_scores(target, phi, inside), member)
    assert strong["auc"] > 0.9 and strong["tpr_at_0.01_fpr"] > 0.3
    null = attack_metrics(
        lira_scores(base + rng.normal(0, 0.3, rows), phi * 0 + base, inside), member
    )
    assert abs(null["auc"] - 0.5) < 0.05


def test_tpr_at_fpr_counts_zero_false_positives():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    member = np.array([True, True, False, True, False])
    assert tpr_at_fpr(scores, member, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(scores, member, 0.5) == pytest.approx(1.0)
    assert np.all(label_logit(np.array([2.0, 2.0]), np.array([1, 0])) == [2.0, -2.0])


def _run_data(prepared) -> RunData:
    return RunData(
        ExperimentConfig(),
        prepared.banks,
        prepared.feature_names,
        prepared.x_test,
        prepared.y_test,
        "test",
    )


def test_membership_positive_control_succeeds(prepared):
    """A small unregularised federation on the real rows: LiRA must find its members."""
    result = positive_control(_run_data(prepared), rows=30, models=9, seed=0)
    lira = result["lira_online"]
    assert lira["auc"] > 0.62, result
    # 1% of the members would be flagged by chance at 1% FPR; the attack finds more.
    assert lira["tpr_at_0.01_fpr"] > 0.02, result


@pytest.mark.slow  # 11-22 s on the shared 2-core machine (9 DP-SGD federations)
def test_membership_attack_fails_on_the_control_trained_with_dp(prepared):
    dp = DPConfig(mode="opacus", epsilon=4.0, accountant="rdp")
    result = positive_control(_run_data(prepared), rows=30, models=9, seed=0, dp=dp)
    lira = result["lira_online"]
    assert lira["auc"] < 0.58, result
    # epsilon = 4 bounds TPR by e^4 * FPR + delta in theory; measured it stays near chance.
    assert lira["tpr_at_0.01_fpr"] < 0.05, result
