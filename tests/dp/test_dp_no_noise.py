"""DP-SGD without noise (``dp.epsilon=no_noise``): clipping and sampling only, never private.

The DP on/off sweep separates what the switch to DP-SGD costs from what the noise costs. Its
no-noise point must plan noise multiplier exactly 0 for every release, account epsilon inf,
and never be reported or written as a private release.
"""

from __future__ import annotations

import math

import pytest

from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict
from fl_credit.coordinator.privacy_accounting import privacy_summary
from fl_credit.coordinator.protection import describe
from fl_credit.coordinator.summary import summary_config
from fl_credit.run.private_release import is_private_run
from strategies.dp.accounting import accountant_epsilon
from strategies.dp.plan import DPSettings, make_plan
from tests.config.test_config import raw


def no_noise_config(**dp):
    return from_dict(raw(dp={"mode": "opacus", "epsilon": "no_noise", **dp}))


def test_no_noise_is_dp_sgd_at_infinite_epsilon_and_not_private() -> None:
    cfg = no_noise_config()
    assert (cfg.dp.mode, cfg.dp.epsilon) == ("opacus", math.inf)
    assert cfg.dp.no_noise and not cfg.dp.private
    # epsilon=inf without DP-SGD stays what it was: no DP at all (Newton, the pooled optimum)
    off = from_dict(raw(dp={"mode": "opacus", "epsilon": math.inf}))
    assert off.dp.mode == "off" and not off.dp.private
    planned = from_dict(raw(dp={"mode": "opacus", "epsilon": 4.0}))
    assert planned.dp.private and not planned.dp.no_noise


def test_no_noise_needs_dp_sgd() -> None:
    with pytest.raises(ConfigError, match="dp.epsilon=no_noise.*needs dp=opacus"):
        from_dict(raw(dp={"mode": "central", "epsilon": "no_noise", "clip_norm": 1.0}))


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_every_release_plans_exactly_zero_noise_and_spends_infinite_epsilon(accountant) -> None:
    settings = DPSettings(
        epsilon=math.inf,
        accountant=accountant,
        total_rounds=20,
        releases=(("statistics", 0.1, 1), ("validation", 0.05, 2)),
    )
    plan, budget = make_plan(settings, n_rows=1576)
    assert plan.noise_multiplier == 0.0
    assert [r.noise_multiplier for r in budget.releases] == [0.0, 0.0, 0.0]
    assert plan.max_grad_norm == 1.0 and plan.sample_rate == 0.1  # clipping, sampling kept
    assert budget.epsilon_spent() == math.inf
    assert budget.report({"statistics": 1})["epsilon_spent"] == math.inf
    # one noiseless step among noisy ones is enough to lose every guarantee
    assert accountant_epsilon([(1.0, 0.1, 100), (0.0, 1.0, 1)], 1e-7, accountant) == math.inf


def test_a_no_noise_run_is_labelled_not_private_everywhere() -> None:
    cfg = no_noise_config()
    assert "NOT PRIVATE: DP-SGD without noise" in describe(cfg, 3, 2)
    summary = privacy_summary(cfg, {"bank_0": {"epsilon_spent": math.inf}})
    assert summary["level"] == "none" and summary["epsilon_per_bank"] == "inf"
    assert summary["released"].startswith("NOT PRIVATE")
    config = summary_config(cfg, 3)
    assert config["private"] is False
    # the folder is written whole, as without DP: no top-level "private release"
    assert not is_private_run({"config": config})
    assert is_private_run({"config": summary_config(no_noise_config(epsilon=4.0), 3)})
