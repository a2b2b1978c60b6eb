"""The command line: bad input gives one clear line and exit code 2; sweeps record failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def simulate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def credit_csv(path: Path, n: int = 400, **columns) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "debt_ratio": rng.uniform(0, 1, n),
            "purpose": rng.choice(["car", "home", "other"], n),
            "status": np.where(rng.random(n) < 0.2, "default", "paid"),
        }
    )
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(path, index=False)
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert needle in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (
            lambda d: [
                "data=csv",
                "data.path=/no/such/file.csv",
                "data.target=status",
                "data.positive=default",
            ],
            "not found",
        ),
        (
            lambda d: [
                "data=csv",
                f"data.path={credit_csv(d / 'a.csv')}",
                "data.target=nope",
                "data.positive=default",
            ],
            "nope",
        ),
        (
            lambda d: [
                "data=csv",
                f"data.path={credit_csv(d / 'b.csv')}",
                "data.target=status",
                "data.positive=bankrupt",
            ],
            "bankrupt",
        ),
        (
            lambda d: [
                "data=csv",
                f"data.path={credit_csv(d / 'c.csv', income=['52000'] * 399 + ['n/a-abc'])}",
                "data.target=status",
                "data.positive=default",
            ],
            "income",
        ),
        (
            lambda d: [
                "data=csv",
                f"data.path={credit_csv(d / 'e.csv', debt_ratio=[np.inf] + [0.1] * 399)}",
                "data.target=status",
                "data.positive=default",
            ],
            "debt_ratio",
        ),
        (lambda d: ["partition.shares=[0.5,0.6]"], "sum to 1"),
        (lambda d: ["partition.shares=[-0.5,1.5]"], "positive"),
        (
            lambda d: ["partition=two_banks", "strategy=fedavg", "partition.share=0.0005"],
            "bank_0",
        ),
        (lambda d: ["dp=opacus", "imbalance=smote"], "class_weight"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, make_args, needle):
    result = simulate(*make_args(tmp_path), f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, needle)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and needle in status["error"]


def test_multirun_records_a_failed_point_and_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    args = (
        "-m",
        "partition=two_banks",
        "strategy=fedavg",
        "partition.share=0.0005,0.5",
        "train.rounds=2",
        "engine.backend=inprocess",
        "metrics.bootstrap=20",
        f"hydra.sweep.dir={sweep}",
    )
    result = simulate(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = {json.loads((sweep / n / "status.json").read_text())["status"] for n in ("0", "1")}
    assert statuses == {"failed", "ok"}
    assert (sweep / "1" / "metrics.json").is_file()
    assert not list(sweep.rglob("*.tmp"))
    again = simulate(*args, cwd=tmp_path)
    assert "already finished, skipping" in again.stdout + again.stderr
