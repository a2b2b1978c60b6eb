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


def test_budget_report_carries_an_rdp_cross_check_beside_prv():
    """metrics.json's per-bank report states the RDP bound of the same history next to PRV."""
    from strategies.dp.budget import plan_budget

    plan = plan_budget(
        epsilon=4.0,
        delta=1e-7,
        accountant="prv",
        fixed={"statistics": (0.1, 1), "validation": (0.05, 1)},
        training=(0.1, 200),
    )
    done = {"statistics": 1, "validation": 1, "training": 200}
    report = plan.report(done)
    assert report["epsilon_spent_rdp"] == pytest.approx(plan.epsilon_spent(done, "rdp"))
    assert report["epsilon_spent"] <= report["epsilon_spent_rdp"] <= 1.3 * report["epsilon_spent"]


def test_threat_model_states_the_noise_the_code_uses():
    """The sigmas docs/threat_model.md gives for the default plan (epsilon 4, delta 1e-7, PRV)
    are the planned ones, to the digits printed."""
    import dataclasses
    import re
    from pathlib import Path

    from fl_credit.config.parsing import resolve_optimizer
    from fl_credit.config.schema import DPConfig, ExperimentConfig
    from fl_credit.protocol.settings import BankSettings

    cfg = dataclasses.replace(ExperimentConfig(), dp=DPConfig(mode="opacus", epsilon=4.0))
    plan = BankSettings.from_experiment(resolve_optimizer(cfg)).dp_settings().budget()
    text = (Path(__file__).parents[2] / "docs" / "threat_model.md").read_text()
    for release in ("statistics", "validation"):
        stated = re.search(rf"{release} release \(sigma ([0-9.]+)", text)
        assert stated, f"the threat model states no sigma for the {release} release"
        digits = len(stated.group(1).split(".")[1])
        assert float(stated.group(1)) == round(plan.noise_multiplier(release), digits)


def test_a_very_large_epsilon_plans_with_rdp_instead_of_a_minutes_long_prv_search():
    """At epsilon 1000 the training noise is about 0.17, where PRV's privacy-loss domain
    explodes (the plan alone ran for more than 10 minutes); the plan switches to the valid
    RDP bound, says so in its accountant, and the banks' plans follow it."""
    from strategies.dp.budget import PRV_MIN_NOISE, plan_budget
    from strategies.dp.plan import DPSettings, plan_inputs

    plan = plan_budget(
        epsilon=1000.0,
        delta=1e-7,
        accountant="prv",
        fixed={"statistics": (0.1, 1), "validation": (0.05, 1)},
        training=(0.1, 200),
    )
    assert plan.accountant == "rdp"
    assert min(r.noise_multiplier for r in plan.releases) < PRV_MIN_NOISE
    assert plan.epsilon_spent() <= 1000.0
    settings = DPSettings(
        epsilon=1000.0, total_rounds=20, releases=(("statistics", 0.1, 1), ("validation", 0.05, 1))
    )
    assert plan_inputs(settings, 1000)["accountant"] == "rdp"
