"""A default run prints our progress lines and the table; Flower's chatter goes to a file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from fl_credit.runtime import run_log

ROOT = Path(__file__).resolve().parents[2]
FLOWER_CHATTER = (
    "Final results",
    "run_simulation",
    "fraction_evaluate",
    "FutureWarning",
    "Manually terminating",
    "[ROUND",
)


def simulate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONWARNINGS", None)  # warnings as a user sees them
    return subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def test_default_run_prints_under_60_lines_and_logs_flower_to_the_run_folder(tmp_path):
    """The default engine (Ray) and settings, with 3 rounds instead of 20 and a smaller
    bootstrap to save time; our log has one line per round, so a default run prints 17 more."""
    run, rounds = tmp_path / "run", 3
    result = simulate(
        f"train.rounds={rounds}", "metrics.bootstrap=50", f"hydra.run.dir={run}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (result.stdout + result.stderr).splitlines()
    round_lines = [line for line in lines if "test AUC" in line and "] - round " in line]
    assert len(round_lines) == rounds + 1  # round 0 is the initial model
    assert len(lines) + (20 - rounds) < 60, "\n".join(lines)
    text = "\n".join(lines)
    for chatter in FLOWER_CHATTER:
        assert chatter not in text
    assert "starting the ray engine with 3 banks" in text  # the slow start has its own line
    assert "federated " in text and f"run folder: {run}" in text
    flower_log = (run / run_log.FLOWER_LOG).read_text()
    for chatter in ("run_simulation",):
        assert chatter in flower_log


def test_verbose_brings_flower_output_back(tmp_path):
    fast = ("train.rounds=2", "strategy=fedavg", "engine.backend=inprocess", "metrics.bootstrap=20")
    loud = simulate("-v", *fast, f"hydra.run.dir={tmp_path / 'v'}", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "configure_train: Sampled 3 nodes" in loud.stdout + loud.stderr
    flower_log = (tmp_path / "v" / run_log.FLOWER_LOG).read_text()
    assert "configure_train: Sampled 3 nodes" in flower_log  # file as well


def test_hydra_verbose_also_counts_as_verbose(tmp_path):
    fast = ("train.rounds=1", "strategy=fedavg", "engine.backend=inprocess", "metrics.bootstrap=20")
    loud = simulate(*fast, "hydra.verbose=flwr", f"hydra.run.dir={tmp_path / 'v'}", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "configure_train: Sampled 3 nodes" in loud.stdout + loud.stderr


def test_quiet_block_restores_logging_and_sets_ray_args(tmp_path):
    from flwr.common.logger import console_handler

    flwr = logging.getLogger("flwr")
    assert run_log.ray_init_args() == {}
    with run_log.flower_to_file(tmp_path, verbose=False) as path:
        assert console_handler not in flwr.handlers
        assert run_log.ray_init_args() == {"log_to_driver": False, "logging_level": "ERROR"}
        flwr.info("to the file only")
    assert console_handler in flwr.handlers
    assert run_log.ray_init_args() == {}
    assert "to the file only" in path.read_text()
    with run_log.flower_to_file(tmp_path, verbose=True):
        assert console_handler in flwr.handlers and run_log.ray_init_args() == {}
