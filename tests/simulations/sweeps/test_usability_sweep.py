"""Sweeps as users meet them: intervals inside a metric's range, the sweep's real wall time,
skipped and refused points counted, Ctrl-C as one line, no half-written point."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fl_credit.run import files as run_files
from simulations.sweeps.report import write_report
from simulations.sweeps.summary import interval
from tests.run.test_usability_resume import finished_folder, resolved
from tests.simulations.sweeps.test_report import _metrics, make_run

ROOT = Path(__file__).resolve().parents[3]


def test_a_bounded_metric_gets_an_interval_inside_its_range() -> None:
    mean, low, high, n = interval([0.55, 0.95, 0.99], bounds=(0.0, 1.0))
    assert n == 3 and 0.0 < low < mean < high < 1.0
    mean, low, high, n = interval([0.0, 0.4, 0.9], bounds=(0.0, 1.0))
    assert 0.0 <= low < high <= 1.0


def test_two_seeds_give_no_interval() -> None:
    mean, low, high, n = interval([0.60, 0.90])
    assert n == 2 and mean == pytest.approx(0.75)
    assert math.isnan(low) and math.isnan(high)


def two_seed_sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep"
    for job, (seed, auc) in enumerate([(0, 0.6), (1, 0.9)]):
        metrics = _metrics(0.5, seed)
        metrics["federated"]["auc"] = auc
        make_run(sweep, job, ["partition=two_banks", f"seed={seed}"], metrics=metrics)
    return sweep


def test_the_summary_says_n_2_no_interval(tmp_path: Path) -> None:
    sweep = two_seed_sweep(tmp_path)
    write_report(sweep)
    text = (sweep / "summary.md").read_text()
    assert "n = 2, no interval" in text
    assert "1.1" not in text.split("## ")[2]  # no upper end above an AUC of 1


def test_the_total_wall_time_is_the_span_of_the_sweep(tmp_path: Path) -> None:
    """Two points run side by side, 100 s each: the sweep took 100 s, not 200 s."""
    sweep = two_seed_sweep(tmp_path)
    for job in (0, 1):
        status = json.loads((sweep / str(job) / "status.json").read_text())
        status.update(wall_time_s=100.0, started_at=1000.0 + job, finished_at=1100.0 + job)
        (sweep / str(job) / "status.json").write_text(json.dumps(status))
    write_report(sweep)
    text = (sweep / "summary.md").read_text()
    assert "wall time 101.0 s" in text and "200" not in text.split("\n\n")[1]


def test_skipped_and_refused_points_are_counted(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for job in range(4):
        make_run(sweep, job, [f"seed={job}"], metrics=_metrics(0.5, job))
    run_files.record_call(sweep / "0", "skipped")
    run_files.record_call(sweep / "1", "skipped")
    run_files.record_call(sweep / "2", "refused", "holds another configuration's results")
    run_files.record_call(sweep / "3", "ran")
    write_report(sweep)
    head = (sweep / "summary.md").read_text().split("\n\n")[1]
    assert "2 skipped" in head and "1 refused" in head, head


def simulate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fl_credit.simulate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_simulate_command_records_skips_and_refusals(tmp_path: Path) -> None:
    folder = finished_folder(tmp_path / "run", resolved("seed=1"))
    result = simulate("seed=1", f"hydra.run.dir={folder}")
    assert result.returncode == 0, result.stderr
    assert run_files.read_call(folder)["action"] == "skipped"
    result = simulate("seed=2", f"hydra.run.dir={folder}")
    assert result.returncode == 2
    call = run_files.read_call(folder)
    assert call["action"] == "refused" and "seed 1 -> 2" in call["reason"]


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch, capsys) -> None:
    from fl_credit.run import simulate as entry

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "main", interrupted)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "")  # cli() sets it for the process
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as stop:
        entry.cli(["seed=1"])
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]


def test_an_interrupt_while_writing_leaves_no_half_written_point(tmp_path, monkeypatch) -> None:
    """Stop the run while its report is written: no metrics.json or model.pt without a status."""
    from types import SimpleNamespace

    import fl_credit.coordinator.summary
    import fl_credit.data.prepare
    import fl_credit.run.experiment
    import fl_credit.run.outputs
    from fl_credit.run.simulate import run_in_folder

    outcome = SimpleNamespace(
        history=[{"round": 1, "auc": 0.7}],
        federation=SimpleNamespace(failure=None),
        metrics={"federated": {"auc": 0.7}, "timing": {"engine_start_stop_s": 1.0}},
    )

    def report(run_dir, outcome, prepared):
        (Path(run_dir) / "scores.csv").write_text("default,federated\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(fl_credit.data.prepare, "prepare", lambda cfg: None)
    monkeypatch.setattr(fl_credit.run.experiment, "run_experiment", lambda *a: outcome)
    save = lambda p, f: Path(p).write_text("m")  # noqa: E731
    monkeypatch.setattr(fl_credit.coordinator.summary, "save_model", save)
    monkeypatch.setattr(fl_credit.run.outputs, "write_run_outputs", report)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_in_folder(resolved("seed=1"), run, ["seed=1"])
    left = sorted(p.name for p in run.iterdir())
    assert left == [run_files.RESOLVED_CONFIG], left
    monkeypatch.setattr(fl_credit.run.outputs, "write_run_outputs", lambda *a: [])
    run_in_folder(resolved("seed=1"), run, ["seed=1"])
    names = {p.name for p in run.iterdir()}
    assert {"metrics.json", "model.pt", "history.csv", "status.json"} <= names
    assert not any(name.startswith(".") and name != ".hydra" for name in names), names


def test_a_sweep_rerun_with_a_setting_dropped_still_gets_its_summary(tmp_path: Path) -> None:
    """Points 0-1 ran with ``train.rounds=3``, a rerun without it added points 2-3."""
    sweep = tmp_path / "sweep"
    for job in range(4):
        overrides = [f"seed={job}", *(["train.rounds=3"] if job < 2 else [])]
        make_run(sweep, job, overrides, metrics=_metrics(0.5, job))
    written = {path.name for path in write_report(sweep)}
    assert {"summary.md", "plot_auc.png"} <= written


def test_an_interrupted_command_does_not_wait_for_its_worker_threads(tmp_path: Path) -> None:
    """The in-process engine's bank threads run on after Ctrl-C: exit 130 must not join them."""
    script = (
        "import threading\n"
        "from fl_credit.runtime.fast_exit import without_teardown\n"
        "threading.Thread(target=threading.Event().wait).start()  # never ends\n"
        "with without_teardown():\n"
        "    raise SystemExit(130)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, check=False
    )
    assert result.returncode == 130
