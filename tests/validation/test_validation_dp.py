"""Under ``dp=opacus`` the validation counts are a planned release: noised with their own
budget share, composed into every bank's epsilon, and the report shows every statistic with
its noise and says which verdicts the noise decides."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fl_credit.config.schema import DPConfig, TrainConfig
from fl_credit.data.prepare import prepare
from fl_credit.protocol.settings import BankSettings
from fl_credit.run.experiment import run_experiment
from fl_credit.validation.analysis import layout_of
from fl_credit.validation.grade_counts import sensitivity
from fl_credit.validation.query import COUNTS_FILE
from fl_credit.validation.report import write_validation_report
from tests.validation.conftest import base_config

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def dp_run(embedded):
    cfg = base_config(
        train=TrainConfig(rounds=2), dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp")
    )
    prepared = prepare(cfg, embedded)
    return cfg, prepared, run_experiment(cfg, prepared)


def test_the_counts_are_a_planned_release_composed_into_epsilon(dp_run) -> None:
    cfg, _, outcome = dp_run
    for bank in outcome.metrics["privacy"].values():
        done = {r["name"]: r["done"] for r in bank["releases"]}
        assert done["grades"] == 1
        assert bank["epsilon_spent"] <= cfg.dp.epsilon + 1e-9
    stored = outcome.federation.validation
    layout, _, _ = layout_of(stored)
    assert stored["pd_scale"] == 1.0 and not stored["second_model"]
    assert stored["sensitivity"] == pytest.approx(sensitivity(layout))
    multiplier = BankSettings.from_experiment(cfg).dp_settings().budget().noise_multiplier("grades")
    contributors = 2  # the secure-aggregation threshold of 3 banks
    expected = multiplier * stored["sensitivity"] * np.sqrt(3 / contributors)
    assert stored["noise_std"] == pytest.approx(expected)


def test_the_counts_carry_noise(dp_run) -> None:
    _, prepared, outcome = dp_run
    stored = outcome.federation.validation
    total_test_rows = sum(len(b.y_test) for b in prepared.banks.values())
    layout, _, _ = layout_of(stored)
    g = layout.grades
    start = layout.split_size  # the test split's "all" population
    noisy_total = float(np.sum(stored["vector"][start : start + g]))
    assert noisy_total != total_test_rows
    assert abs(noisy_total - total_test_rows) < 10 * stored["noise_std"] * np.sqrt(g)


def test_the_report_shows_noise_and_uninformative_tests(dp_run, tmp_path) -> None:
    _, _, outcome = dp_run
    (tmp_path / COUNTS_FILE).write_text(json.dumps(outcome.federation.validation))
    write_validation_report(tmp_path)
    text = (tmp_path / "validation.md").read_text()
    assert " ± " in text
    assert "Verdicts the noise decides (uninformative tests):" in text
    assert "No migration matrix: under DP" in text
    payload = json.loads((tmp_path / "validation.json").read_text())
    flips = payload["noise"]["flips"]
    assert flips and all(0.0 <= v <= 1.0 for v in flips.values())
    uninformative = [k for k, v in flips.items() if v >= 0.2]
    for key in uninformative:
        if key.startswith("grades/"):
            grade = int(key.split("/")[1]) + 1
            assert f"Jeffreys, grade G{grade}" in text


def test_a_bigger_budget_share_means_less_noise(dp_run) -> None:
    cfg, _, outcome = dp_run
    budget = dict(cfg.dp.budget)
    budget["grades"] = 0.2
    richer = dataclasses.replace(cfg, dp=dataclasses.replace(cfg.dp, budget=tuple(budget.items())))
    small = BankSettings.from_experiment(cfg).dp_settings().budget().noise_multiplier("grades")
    large = BankSettings.from_experiment(richer).dp_settings().budget().noise_multiplier("grades")
    assert large < small
