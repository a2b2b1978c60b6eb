"""Shared DP accounting: noise calibration, the independent RDP cross-check, default delta."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.dp.accounting import (
    accountant_epsilon,
    noise_multiplier_for,
    rdp_epsilon,
)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibrated_noise_spends_the_target_within_tolerance(accountant):
    sigma = noise_multiplier_for(
        target_epsilon=3.0, delta=1e-5, sample_rate=0.05, steps=400, accountant=accountant
    )
    spent = accountant_epsilon([(sigma, 0.05, 400)], 1e-5, accountant)
    assert 3.0 - 0.011 <= spent <= 3.0


def test_rdp_cross_check_equals_opacus_rdp_accountant():
    history = [(1.3, 0.02, 250)]
    assert rdp_epsilon(1.3, 0.02, 250, 1e-5) == pytest.approx(
        accountant_epsilon(history, 1e-5, "rdp"), rel=1e-12
    )


def test_prv_is_tighter_than_rdp_but_close():
    rdp = rdp_epsilon(1.0, 0.01, 1000, 1e-5)
    prv = accountant_epsilon([(1.0, 0.01, 1000)], 1e-5, "prv")
    assert 0.6 * rdp <= prv <= rdp


def test_empty_history_spends_nothing():
    assert accountant_epsilon([], 1e-5, "prv") == 0.0
    assert rdp_epsilon(1.0, 0.1, 0, 1e-5) == 0.0


@settings(max_examples=15, deadline=None)
@given(
    sigma=st.floats(min_value=0.5, max_value=20.0),
    rate=st.floats(min_value=1e-4, max_value=1.0),
    steps=st.integers(min_value=1, max_value=5_000),
)
def test_rdp_epsilon_grows_with_steps_and_shrinks_with_noise(sigma, rate, steps):
    base = rdp_epsilon(sigma, rate, steps, 1e-5)
    assert rdp_epsilon(sigma, rate, steps + 10, 1e-5) >= base
    assert rdp_epsilon(sigma * 1.5, rate, steps, 1e-5) <= base


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_small_budgets_plan_every_release(epsilon):
    """A 0.05 share of epsilon 2 is below what RDP orders up to 63 can certify at delta 1e-7
    (log(1e7) / 62 = 0.26): planning failed for epsilon <= 2 before the larger orders."""
    from strategies.dp.budget import plan_budget

    plan = plan_budget(
        epsilon=epsilon,
        delta=1e-7,
        accountant="rdp",
        fixed={"statistics": (0.1, 1), "validation": (0.05, 1)},
        training=(0.1, 200),
    )
    assert epsilon - 0.011 <= plan.epsilon_spent() <= epsilon
    assert plan.epsilon_alone("validation") <= 0.05 * epsilon + 0.011
