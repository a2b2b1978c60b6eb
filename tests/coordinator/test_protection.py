"""What protects a run: two-bank secure aggregation is refused, and a run whose model never
trained ends as failed instead of "ok"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict
from fl_credit.config.schema import ExperimentConfig, PartitionConfig, StrategyConfig
from fl_credit.coordinator.protection import check_bank_count, describe
from fl_credit.coordinator.rounds import RoundsResult, training_failure


def simulate(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def test_two_bank_secure_aggregation_is_refused_with_the_reason(tmp_path):
    result = simulate("partition=two_banks", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "at least 3 banks" in errors[0]
    assert "subtracting its own" in errors[0] and "strategy=fedavg" in errors[0]
    assert "Traceback" not in result.stderr


def test_bank_count_known_only_from_the_data_is_checked_too():
    cfg = ExperimentConfig(strategy=StrategyConfig(name="secagg"))
    with pytest.raises(ConfigError, match="at least 3 banks"):
        check_bank_count(cfg, 2)
    check_bank_count(cfg, 3)
    check_bank_count(ExperimentConfig(strategy=StrategyConfig(name="fedavg")), 2)


def test_plain_two_bank_runs_say_what_the_coordinator_sees():
    cfg = from_dict(
        {"partition": {"scheme": "two_banks", "share": 0.3}, "strategy": {"name": "fedavg"}}
    )
    line = describe(cfg, 2)
    assert "plain fedavg: the coordinator sees each bank's update" in line
    assert "no DP" in line
    three = describe(
        ExperimentConfig(partition=PartitionConfig(shares=(0.25, 0.25, 0.5))), 3, threshold=2
    )
    assert "sums of at least 3 of 3 banks" in three
    assert "cannot tolerate any bank dropping out" in three
    five = describe(ExperimentConfig(partition=PartitionConfig(scheme="power", banks=5)), 5, 3)
    assert "tolerates 2 bank(s) dropping out" in five


def test_failure_rule_counts_skipped_rounds():
    never = RoundsResult(arrays=None, applied=[], skipped=[1, 2, 3])
    assert "never trained" in training_failure(never, 0.5)
    mostly = RoundsResult(arrays=None, applied=[1], skipped=[2, 3])
    assert "2 of 3 rounds" in training_failure(mostly, 0.5)
    assert training_failure(mostly, 0.7) is None
    converged_early = RoundsResult(arrays=None, applied=[1, 2], skipped=[])
    assert training_failure(converged_early, 0.0) is None


def test_run_whose_every_round_was_skipped_fails_with_a_table_note(tmp_path):
    run_dir = tmp_path / "run"
    result = simulate(
        "partition=power",
        "partition.banks=5",
        "partition.skew=0",
        "strategy.threshold=3",
        "faults.drop_after_keys=[0,1,3]",
        "train.optimizer=sgd",
        "train.rounds=2",
        "engine.backend=inprocess",
        "metrics.bootstrap=20",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "never trained" in errors[0]
    assert "RUN FAILED" in result.stdout
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "never trained" in status["error"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["rounds"]["applied"] == 0 and metrics["rounds"]["skipped"] == [1, 2]


def test_threshold_rises_with_the_colluders_assumed():
    """With c banks colluding with the coordinator, a threshold at or below
    (n + c) / 2 lets it recover a bank's input (strategies/secagg tests show it at n=5, t=3,
    c=1); the planned threshold is raised above that, or the run refused."""
    from fl_credit.config.schema import DPConfig
    from fl_credit.coordinator.strategy_factory import secagg_threshold

    base = ExperimentConfig(partition=PartitionConfig(scheme="power", banks=5))
    assert secagg_threshold(base, 5) == 3
    one = ExperimentConfig(dp=DPConfig(colluders=1))
    assert secagg_threshold(one, 5) == 4
    with pytest.raises(ConfigError, match="colluders"):
        secagg_threshold(ExperimentConfig(dp=DPConfig(colluders=3)), 3)
