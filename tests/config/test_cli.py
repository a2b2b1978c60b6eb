"""The command line: bad input gives one clear line and exit code 2; sweeps record failures;
a rerun into a folder holding another configuration's results is refused, never mislabelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def simulate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH: this checkout's code, not whichever copy is pip-installed (cwd is elsewhere).
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
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


def three_classes(n: int) -> list[str]:
    return (["default", "repaid", "late", "repaid", "repaid"] * n)[:n]


def semicolon_csv(path: Path) -> Path:
    frame = pd.read_csv(credit_csv(path))
    frame.to_csv(path, sep=";", index=False)
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
        (
            lambda d: [
                "data=csv",
                f"data.path={credit_csv(d / 'f.csv', status=three_classes(400))}",
                "data.target=status",
                "data.positive=default",
            ],
            "3 classes (",
        ),
        (
            lambda d: [
                "data=csv",
                f"data.path={semicolon_csv(d / 'g.csv')}",
                "data.target=status",
                "data.positive=default",
            ],
            "data.sep=';'",
        ),
        (
            lambda d: ["data=csv", f"data.path={credit_csv(d / 'h.csv')}"],
            "data.positive, data.target",
        ),
        (lambda d: ["train.lr=abc"], "train.lr must be a number, got 'abc'"),
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
    assert "already finished with this configuration, skipping" in again.stdout + again.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train.round=5"], "did you mean train.rounds?"),
        (["partitions=shares"], "did you mean partition=shares?"),
        (["strategy=secure"], "did you mean strategy=secagg?"),
        (["dp.epsilon=-1"], "use dp=opacus"),
        (["train.rounds=[1"], "cannot parse"),
    ],
)
def test_hydra_errors_are_one_line_with_a_suggestion(tmp_path, args, needle):
    result = simulate(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, needle)
    assert not (tmp_path / "run").exists()  # refused before any run started


def test_unwritable_run_folder_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = simulate("train.rounds=1", f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "hydra.run.dir")


def test_multirun_records_config_errors_per_point(tmp_path):
    sweep = tmp_path / "sweep"
    result = simulate("-m", "train.lr=abc,-1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = [json.loads((sweep / n / "status.json").read_text())["error"] for n in ("0", "1")]
    assert errors == [
        "train.lr must be a number, got 'abc'",
        "train.lr must be positive, got -1",
    ]
    assert pd.read_csv(sweep / "summary.csv")["status"].tolist() == ["failed", "failed"]


FAST = ("strategy=fedavg", "train.rounds=2", "engine.backend=inprocess", "metrics.bootstrap=20")


def _snapshot(folder: Path) -> dict[str, bytes]:
    names = ("status.json", "metrics.json", "config_resolved.yaml", ".hydra/overrides.yaml")
    return {name: (folder / name).read_bytes() for name in names}


def test_sweep_rerun_with_other_values_is_refused_not_mislabelled(tmp_path):
    """The issue's two-step rerun: 0.1,0.5 then 0.2,0.3 into the same folder."""
    sweep = tmp_path / "sweep"
    common = ("-m", "partition=two_banks", *FAST, f"hydra.sweep.dir={sweep}")
    first = simulate(*common, "partition.share=0.1,0.5", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {n: _snapshot(sweep / n) for n in ("0", "1")}

    second = simulate(*common, "partition.share=0.2,0.3", cwd=tmp_path)
    assert second.returncode == 2, second.stderr[-3000:]
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "partition.share 0.1 -> 0.2" in errors[0] and "hydra.sweep.dir" in errors[0]
    assert "partition.share 0.5 -> 0.3" in errors[1]
    for n in ("0", "1"):  # results, their config and Hydra's record of them all untouched
        assert _snapshot(sweep / n) == before[n]

    summary = pd.read_csv(sweep / "summary.csv")
    assert sorted(summary["partition.share"]) == [0.1, 0.5]
    for _, row in summary.iterrows():  # each label matches the data under it
        banks = json.loads((sweep / str(row["run_dir"]) / "metrics.json").read_text())["banks"]
        share = banks["bank_0"]["rows"] / sum(bank["rows"] for bank in banks.values())
        assert share == pytest.approx(row["partition.share"], abs=0.01)
    assert "| 0.2 |" not in (sweep / "summary.md").read_text()


def test_single_run_into_an_old_folder_with_another_config_is_refused(tmp_path):
    run = tmp_path / "run"
    args = ("train.rounds=1", "strategy=fedavg", "engine.backend=inprocess", "metrics.bootstrap=20")
    first = simulate(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(run)
    assert json.loads(before["status.json"])["config_hash"]

    changed = simulate(*args, "train.rounds=2", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_one_line_error(changed, "train.rounds 1 -> 2")
    assert "hydra.run.dir" in changed.stderr
    assert _snapshot(run) == before

    # Same experiment, other engine: the results stand (engine settings are not hashed).
    same = simulate(*args, "engine.backend=ray", f"hydra.run.dir={run}", cwd=tmp_path)
    assert same.returncode == 0, same.stderr[-3000:]
    assert "already finished with this configuration" in same.stdout + same.stderr
    assert json.loads((run / "status.json").read_bytes()) == json.loads(before["status.json"])
