"""Sweep report: run-folder collection, seed summaries, Markdown, plots, CLI and Hydra callback."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from omegaconf import OmegaConf

from fl_credit.credit import plotting
from simulations.sweeps import report
from simulations.sweeps.callback import SweepReport
from simulations.sweeps.plots import choose_layout
from simulations.sweeps.report import write_report
from simulations.sweeps.runs import collect_runs
from simulations.sweeps.summary import epsilon_key, interval, override_keys, summarise
from simulations.sweeps.values import parse_override

ROOT = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHARES = (0.1, 0.5)
SEEDS = (0, 1, 2)


def _class_report(recall: float) -> dict[str, float]:
    return {"precision": 0.4, "recall": recall, "f1": 0.5}


def _model(auc: float, recall: float = 0.6) -> dict[str, Any]:
    """A metrics object as the runner writes it."""
    return {
        "auc": auc,
        "auc_ci": [auc - 0.02, auc + 0.02],
        "ks": auc - 0.4,
        "gini": 2 * auc - 1,
        "brier": 0.15,
        "log_loss": 0.45,
        "default": _class_report(recall - 0.1),
        "repaid": _class_report(0.9),
        "at_val_threshold": {
            "threshold": 0.3,
            "default": _class_report(recall),
            "repaid": _class_report(0.8),
        },
    }


def _metrics(share: float, seed: int, dp: str = "off", epsilon: float | None = None) -> dict:
    """metrics.json of a two-bank run where bank_0 holds ``share`` of the rows."""
    noise = 0.002 * seed
    small_rows, large_rows = int(1000 * share), int(1000 * (1 - share))
    metrics: dict[str, Any] = {
        "federated": _model(0.70 + noise),
        "centralized": _model(0.72 + noise),
        "reference": _model(0.71 + noise),
        "local": {"bank_0": _model(0.60 + share / 10 + noise), "bank_1": _model(0.68 + noise)},
        "banks": {
            "bank_0": {"rows": small_rows, "defaults": 100, "default_rate": 0.1, "val_rows": 50},
            "bank_1": {"rows": large_rows, "defaults": 80, "default_rate": 0.1, "val_rows": 60},
        },
        "config": {
            "dp": dp,
            "dp_epsilon": epsilon,
            "strategy": "fedavg",
            "partition": "two_banks",
            "num_banks": 2,
            "seed": seed,
        },
        "overrides": [f"seed={seed}"],
        "dropped_columns": {"member_id": "identifier"},
        "timing": {"wall_s": 3.0, "federation_s": 2.0, "engine_s": 1.0},
    }
    if dp != "off":
        # As the runs write them: the federated run's accounting reports ``epsilon_spent``
        # (every release composed), the bank-alone baselines' ``epsilon``.
        metrics["privacy"], metrics["privacy_local"] = (
            {
                bank: {
                    "target_epsilon": epsilon,
                    key: (epsilon or 1.0) * factor,
                    "delta": 1e-4,
                    "noise_multiplier": 1.1,
                    "sample_rate": 0.1,
                    "steps": 100,
                    "accountant": "prv",
                }
                for bank, factor in (("bank_0", 0.9), ("bank_1", 0.95))
            }
            for key in ("epsilon_spent", "epsilon")
        )
    return metrics


def make_run(
    sweep: Path,
    job: int,
    overrides: list[str],
    status: str = "ok",
    metrics: dict | None = None,
    error: str | None = None,
) -> Path:
    """One fabricated job folder following the run-folder contract."""
    run = sweep / str(job)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    state = {
        "status": status,
        "error": error,
        "wall_time_s": 10.0 + job,
        "engine_time_s": 2.0,
        "overrides": overrides,
    }
    (run / "status.json").write_text(json.dumps(state))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture
def share_sweep(tmp_path: Path) -> Path:
    """2 shares x 3 seeds; the (0.5, seed 2) run failed."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    job = 0
    for share in SHARES:
        for seed in SEEDS:
            overrides = ["partition=two_banks", f"partition.share={share}", f"seed={seed}"]
            if (share, seed) == (0.5, 2):
                make_run(sweep, job, overrides, "failed", error="ConfigError: boom\nsecond line")
            else:
                make_run(sweep, job, overrides, metrics=_metrics(share, seed))
            job += 1
    return sweep


@pytest.fixture
def dp_sweep(tmp_path: Path) -> Path:
    """dp=off,opacus x ++dp.epsilon=1,4 x 2 seeds; bank_0 alone could not train in one run."""
    sweep = tmp_path / "dp_sweep"
    sweep.mkdir()
    job = 0
    for dp in ("off", "opacus"):
        for epsilon in (1, 4):
            for seed in (0, 1):
                metrics = _metrics(0.25, seed, dp, float(epsilon) if dp != "off" else None)
                if dp == "opacus":
                    metrics["federated"]["auc"] -= 0.1 / epsilon
                if (dp, epsilon, seed) == ("opacus", 1, 1):
                    metrics["local"]["bank_0"] = None
                overrides = [f"dp={dp}", f"++dp.epsilon={epsilon}", f"seed={seed}"]
                make_run(sweep, job, overrides, metrics=metrics)
                job += 1
    return sweep


def _png_ok(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


def test_parse_override_types_and_prefixes() -> None:
    assert parse_override("partition.share=0.1") == ("partition.share", 0.1)
    assert parse_override("seed=2") == ("seed", 2)
    assert parse_override("++dp.epsilon=1e-1") == ("dp.epsilon", 0.1)
    assert parse_override("dp=off") == ("dp", "off")
    assert parse_override("data.path='a b.csv'") == ("data.path", "a b.csv")
    assert parse_override("~faults") == ("faults", None)


def test_collect_runs_columns_and_rows(share_sweep: Path) -> None:
    df = collect_runs(share_sweep)
    assert len(df) == 6
    assert list(df.columns[:9]) == [
        "job",
        "run_dir",
        "partition",
        "partition.share",
        "seed",
        "status",
        "error",
        "wall_time_s",
        "engine_time_s",
    ]
    assert df.attrs["override_keys"] == ["partition", "partition.share", "seed"]
    assert list(df["job"]) == list(range(6))
    for column in (
        "federated.auc",
        "federated.auc_ci_lo",
        "federated.ks",
        "federated.default.recall",
        "federated.at_val_threshold.default.recall",
        "centralized.auc",
        "reference.auc",
        "local.bank_0.auc",
        "local.smallest.auc",
        "local.largest.auc",
        "local.mean.auc",
        "local.best.auc",
        "banks.bank_0.rows",
        "banks.bank_1.default_rate",
        "config.dp",
        "timing.engine_s",
    ):
        assert column in df.columns, column
    failed = df[df["status"] == "failed"].iloc[0]
    assert failed["error"] == "ConfigError: boom second line"
    assert math.isnan(failed["federated.auc"])
    first = df.iloc[0]
    assert first["local.smallest.name"] == "bank_0" and first["local.largest.name"] == "bank_1"
    assert first["local.best.name"] == "bank_1"
    assert first["local.mean.auc"] == pytest.approx((0.61 + 0.68) / 2)


def test_summarise_means_and_intervals(share_sweep: Path) -> None:
    df = collect_runs(share_sweep)
    summary = summarise(df)
    assert list(summary["partition.share"]) == [0.1, 0.5]
    assert list(summary["n_ok"]) == [3, 2] and list(summary["n_failed"]) == [0, 1]
    assert summary.loc[0, "federated.auc.mean"] == pytest.approx(0.702)
    assert summary.loc[1, "federated.auc.mean"] == pytest.approx(0.701)
    assert summary.loc[1, "federated.auc.n"] == 2
    for column in ("federated.auc", "local.smallest.auc", "centralized.ks"):
        low, mean, high = (summary[f"{column}.{part}"] for part in ("lo", "mean", "hi"))
        three = summary[f"{column}.n"] >= 3  # fewer runs: no interval
        assert (low <= mean)[three].all() and (mean <= high)[three].all()
        assert (low < high)[three].all() and low[~three].isna().all()


def test_interval_is_student_t() -> None:
    mean, low, high, n = interval([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3)
    assert high - mean == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert low == pytest.approx(2 * mean - high)
    single = interval([0.5, float("nan")])
    assert single[0] == 0.5 and math.isnan(single[1]) and single[3] == 1
    assert interval([])[3] == 0


def test_interval_of_values_all_at_a_bound_holds_the_mean() -> None:
    """A dp_on_off sweep of trees whose recall was 0 for every seed: the logit interval sat
    just inside the bound, above the mean, and the plot refused negative error bars."""
    for value in (0.0, 1.0):
        mean, low, high, _ = interval([value] * 3, bounds=(0.0, 1.0))
        assert low <= mean <= high


def test_write_report_outputs(share_sweep: Path) -> None:
    written = write_report(share_sweep)
    names = [path.name for path in written]
    assert names[:2] == ["summary.csv", "summary.md"]
    assert set(names[2:]) == {"plot_auc.png", "plot_ks.png", "plot_default_recall.png"}
    for name in names[2:]:
        assert _png_ok(share_sweep / name), name
    csv = pd.read_csv(share_sweep / "summary.csv")
    assert len(csv) == 6 and set(csv["status"]) == {"ok", "failed"}
    assert override_keys(csv) == ["partition", "partition.share", "seed"]
    markdown = (share_sweep / "summary.md").read_text()
    assert "## AUC" in markdown and "Failed and skipped runs" in markdown
    assert "0.702 [" in markdown and "ConfigError: boom second line" in markdown
    assert "Student-t" in markdown
    assert not list(share_sweep.glob("*.tmp")) and not list(share_sweep.glob(".*.tmp"))


def test_dp_sweep_privacy_plot_and_table(dp_sweep: Path) -> None:
    df = collect_runs(dp_sweep)
    assert epsilon_key(df) == "dp.epsilon"
    layout = choose_layout(df)
    assert (layout.x, layout.style, layout.log_x) == ("dp.epsilon", "dp", True)
    assert df["privacy.epsilon_max"].max() == pytest.approx(3.8)
    assert df["privacy_local.epsilon_max"].max() == pytest.approx(3.8)
    metric_columns = list(df.columns[df.columns.get_loc("engine_time_s") + 1 :])
    heads = [column.split(".")[0] for column in metric_columns]
    order = ["federated", "centralized", "reference", "local", "banks", "privacy"]
    assert [head for head in dict.fromkeys(heads) if head in order] == order
    assert heads.index("config") < heads.index("timing")
    written = {path.name for path in write_report(dp_sweep)}
    assert "plot_privacy_utility.png" in written
    assert _png_ok(dp_sweep / "plot_privacy_utility.png")
    markdown = (dp_sweep / "summary.md").read_text()
    assert "## DP on / off" in markdown
    table = markdown.split("## DP on / off")[1].split("\n\n")[1].splitlines()
    assert table[2].split("|")[1].strip() == "off"
    assert "(n = 1, no interval)" in markdown  # bank_0 alone missing in one opacus run


def test_stale_privacy_plot_removed(share_sweep: Path) -> None:
    (share_sweep / "plot_privacy_utility.png").write_bytes(PNG_MAGIC)
    write_report(share_sweep)
    assert not (share_sweep / "plot_privacy_utility.png").exists()


def test_single_run_and_nothing_varies(tmp_path: Path) -> None:
    single = tmp_path / "single"
    make_run(single, 0, ["partition=two_banks"], metrics=_metrics(0.2, 0))
    written = write_report(single)
    assert len(written) == 5 and all(path.exists() for path in written)
    assert "Swept: nothing" in (single / "summary.md").read_text()

    flat = tmp_path / "flat"
    for job in range(3):
        make_run(flat, job, [f"seed={job}"], metrics=_metrics(0.2, job))
    write_report(flat)
    assert _png_ok(flat / "plot_auc.png")
    assert len(pd.read_csv(flat / "summary.csv")) == 3


def test_single_run_folder_itself(tmp_path: Path) -> None:
    run = make_run(tmp_path, 0, ["seed=3"], metrics=_metrics(0.3, 3))
    df = collect_runs(run)
    assert list(df["run_dir"]) == ["."] and df.loc[0, "seed"] == 3


def test_all_failed_and_missing_metrics(tmp_path: Path) -> None:
    sweep = tmp_path / "bad"
    make_run(sweep, 0, ["seed=0"], "failed", error="DataError: no file")
    make_run(sweep, 1, ["seed=1"], "ok")  # ok but no metrics.json
    make_run(sweep, 2, ["seed=2"], "skipped", error="share not applicable")
    (sweep / "3" / ".hydra").mkdir(parents=True)
    (sweep / "3" / ".hydra" / "overrides.yaml").write_text("- seed=3\n")
    written = write_report(sweep)
    assert [path.name for path in written] == ["summary.csv", "summary.md"]
    df = collect_runs(sweep)
    assert list(df["status"]) == ["failed", "failed", "skipped", "missing"]
    assert "metrics.json is missing" in df.loc[1, "error"]
    counts = summarise(df).iloc[0]
    assert (counts["n_ok"], counts["n_failed"], counts["n_skipped"]) == (0, 3, 1)
    assert "No run succeeded" in (sweep / "summary.md").read_text()


def test_cli(share_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(share_sweep)]) == 0
    assert capsys.readouterr().out.startswith("# Sweep summary")
    assert report.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "file").write_text("x")
    assert report.main([str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2  # a folder without run folders


def test_cli_subprocess_bad_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulations.sweeps.report", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_atomic_write_leaves_no_temp_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def explode(handle: Any) -> None:
        handle.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        plotting.atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]


def test_callback_writes_report(share_sweep: Path) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(share_sweep)}}})
    SweepReport().on_multirun_end(config, config_name="config")
    assert (share_sweep / "summary.csv").is_file()


def test_callback_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        missing = {"hydra": {"sweep": {"dir": str(tmp_path / "gone")}}}
        SweepReport().on_multirun_end(OmegaConf.create(missing))
        SweepReport().on_multirun_end(OmegaConf.create({}))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("\n" not in r.getMessage() for r in warnings)


TASK = """
import json
import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    out = HydraConfig.get().runtime.output_dir
    overrides = list(HydraConfig.get().overrides.task)
    auc = 0.6 + 0.1 * cfg.share + 0.01 * cfg.seed
    model = {"auc": auc, "auc_ci": [auc - 0.01, auc + 0.01], "ks": auc - 0.3}
    metrics = {"federated": model, "centralized": model, "local": {}, "banks": {}}
    status = {"status": "ok", "error": None, "wall_time_s": 0.1, "engine_time_s": 0.0,
              "overrides": overrides}
    with open(f"{out}/metrics.json", "w") as fh:
        json.dump(metrics, fh)
    with open(f"{out}/status.json", "w") as fh:
        json.dump(status, fh)


if __name__ == "__main__":
    main()
"""

CONFIG = """
share: 0.5
seed: 0
hydra:
  job:
    chdir: false
  sweep:
    dir: multirun/sweep
  callbacks:
    sweep_report:
      _target_: simulations.sweeps.callback.SweepReport
"""


def test_hydra_multirun_fires_callback(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(textwrap.dedent(TASK))
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    result = subprocess.run(
        [sys.executable, "task.py", "-m", "share=0.1,0.5", "seed=0,1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sweep = tmp_path / "multirun" / "sweep"
    csv = pd.read_csv(sweep / "summary.csv")
    assert len(csv) == 4 and set(csv["status"]) == {"ok"}
    assert sorted(csv["share"]) == [0.1, 0.1, 0.5, 0.5]
    assert _png_ok(sweep / "plot_auc.png")
    assert "sweep report" in result.stdout + result.stderr
