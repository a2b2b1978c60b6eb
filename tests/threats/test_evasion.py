"""Adversarial borrowers: the cheapest flip of a rejected applicant."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import linprog

from fl_credit.threats.evasion import Lever, LinearScore, cheapest_flip, flip_report

pytestmark = pytest.mark.filterwarnings("ignore")

NAMES = ["income", "util", "grade_A", "inquiries"]
LEVERS = (
    Lever("income", +1, max_rise=0.5),
    Lever("util", -1),
    Lever("inquiries", -1, integer=True),
)


def toy_score(threshold: float = 0.5) -> LinearScore:
    # Higher income and lower utilisation/inquiries lower the logit; grade is immutable.
    return LinearScore(np.array([-0.02, 0.05, -1.0, 0.3]), 0.0, threshold)


def test_toy_model_closed_form_answer():
    score = toy_score()
    scale = np.array([10.0, 20.0, 0.5, 1.0])
    # logit = -0.02*100 + 0.05*80 - 0 + 0.3*0 = 2.0; cut-off logit(0.5) = 0.
    x = np.array([[100.0, 80.0, 0.0, 0.0]])
    flips = cheapest_flip(score, x, NAMES, scale, LEVERS, margin=0.0)
    # Logit drop per sd: income 0.02*10 = 0.2, util 0.05*20 = 1.0: util first, all of it
    # would give 4.0 >= 2.0 needed, so util moves 2.0 / 0.05 = 40 points, cost 40/20 = 2 sd.
    assert flips.rows.tolist() == [0]
    np.testing.assert_allclose(flips.change[0], [0.0, -40.0, 0.0])
    assert flips.cost[0] == pytest.approx(2.0)
    np.testing.assert_allclose(flips.efficiency, [0.2, 1.0, 0.3])  # per sd, allowed direction


def test_bounds_force_the_next_lever_and_integers_round_up():
    score = toy_score()
    scale = np.array([10.0, 20.0, 0.5, 1.0])
    # logit = -2 + 0.05*10 + 0.3*3 = -0.6 ... make it rejected with utilisation capped.
    x = np.array([[100.0, 10.0, 0.0, 10.0]])  # logit = -2 + 0.5 + 3 = 1.5
    flips = cheapest_flip(score, x, NAMES, scale, LEVERS, margin=0.0)
    # util (1.0/sd) gives at most 0.5 (down to 0), then inquiries (0.3/sd): 1.0 / 0.3 = 3.33
    # inquiries, rounded up to 4; income (0.2/sd) is not needed.
    np.testing.assert_allclose(flips.change[0], [0.0, -10.0, -4.0])
    assert flips.cost[0] == pytest.approx(10 / 20 + 4 / 1)
    assert score.logits(x + np.array([0, -10, 0, -4]))[0] < score.cutoff


def test_approved_rows_are_skipped_and_impossible_flips_cost_infinity():
    score = toy_score()
    scale = np.ones(4)
    x = np.array([[1000.0, 0.0, 0.0, 0.0], [10.0, 0.0, -50.0, 0.0], [10.0, 50.0, 0.0, 0.0]])
    flips = cheapest_flip(score, x, NAMES, scale, LEVERS)
    assert flips.rows.tolist() == [1, 2]
    assert math.isinf(flips.cost[0])  # grade cannot move; income +50% is not enough
    report = flip_report(flips, np.array([0, 1, 0]))
    assert report["rejected"] == 2 and report["flip_rate"]["unlimited"] == 0.5


def test_greedy_equals_the_linear_program():
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(6)]
    levers = tuple(Lever(f"f{i}", d, max_rise=0.7) for i, d in enumerate([1, -1, -1, 1, -1]))
    for _ in range(30):
        coef = rng.normal(0, 1, 6)
        score = LinearScore(coef, rng.normal(), 0.3)
        x = rng.uniform(0.5, 5, (1, 6))
        if score.logits(x)[0] < score.cutoff:
            continue
        scale = rng.uniform(0.5, 3, 6)
        flips = cheapest_flip(score, x, names, scale, levers, margin=0.0)
        # LP: minimise sum |d_j| / s_j with d_j = dir_j * t_j, 0 <= t_j <= room_j.
        dirs = np.array([lv.direction for lv in levers], dtype=float)
        room = np.where(dirs > 0, x[0, :5] * 0.7, x[0, :5])
        need = score.logits(x)[0] - score.cutoff
        lp = linprog(
            c=1 / scale[:5],
            A_ub=[coef[:5] * dirs],
            b_ub=[-need],
            bounds=list(zip(np.zeros(5), room, strict=True)),
        )
        if lp.status == 2:
            assert math.isinf(flips.cost[0])
        else:
            assert flips.cost[0] == pytest.approx(lp.fun, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dp", [False, True])
def test_bank_alone_models_are_the_runs_baselines(embedded, dp):
    from fl_credit.config.parsing import resolve_optimizer
    from fl_credit.config.schema import DPConfig, EngineConfig, ExperimentConfig, TrainConfig
    from fl_credit.data.prepare import prepare
    from fl_credit.run.baselines import train_alone
    from fl_credit.threats.evasion import bank_alone_score

    cfg = ExperimentConfig(train=TrainConfig(rounds=3), engine=EngineConfig(backend="inprocess"))
    if dp:
        cfg = replace(cfg, dp=DPConfig(mode="opacus", epsilon=8.0, accountant="rdp"))
    cfg = resolve_optimizer(cfg)  # as from_dict does for the run folder's configuration
    prepared = prepare(cfg, embedded)
    bank = prepared.banks["bank_1"]
    seed = cfg.seed + 2
    score, _ = bank_alone_score(bank, cfg, seed)
    baseline = train_alone(bank, prepared.x_test, cfg, seed)
    probabilities = 1 / (1 + np.exp(-score.logits(prepared.x_test)))
    np.testing.assert_allclose(probabilities, baseline.test_scores, atol=1e-5)
    assert score.threshold == pytest.approx(baseline.threshold)


def test_a_clipping_model_gets_no_move_past_its_public_range():
    # util is clipped to [0, 50]: a row at 80 is scored as 50 and can move down to 0 at most.
    low = np.array([0.0, 0.0, 0.0, 0.0])
    high = np.array([1e6, 50.0, 1.0, 20.0])
    score = LinearScore(np.array([-0.02, 0.05, -1.0, 0.3]), 0.0, 0.5, low, high)
    scale = np.array([10.0, 20.0, 0.5, 1.0])
    x = np.array([[100.0, 80.0, 0.0, 0.0]])  # seen as util 50: logit -2 + 2.5 = 0.5
    flips = cheapest_flip(score, x, NAMES, scale, LEVERS, margin=0.0)
    np.testing.assert_allclose(flips.change[0], [0.0, -10.0, 0.0])  # 50 -> 40, not 80 -> 70
    assert flips.cost[0] == pytest.approx(0.5)
    assert score.logits(np.array([[100.0, 40.0, 0.0, 0.0]]))[0] <= score.cutoff + 1e-9
