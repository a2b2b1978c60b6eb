"""Resume keyed on the resolved configuration: which folders may be skipped, which refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fl_credit.config.compose import compose_config, resolve
from fl_credit.run import files as run_files


def resolved(*overrides: str) -> dict:
    return resolve(compose_config(list(overrides)))


def finished_folder(path: Path, raw: dict, *, with_hash: bool = True) -> Path:
    """A run folder as ``simulate`` leaves it after a successful run of ``raw``."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    run_files.write_atomic(path / run_files.RESOLVED_CONFIG, yaml.safe_dump(raw))
    run_files.write_json(path / run_files.METRICS, {"federated": {"auc": 0.7}})
    run_files.write_status(
        path,
        error=None,
        wall_seconds=1.0,
        overrides=["seed=1"],
        config_hash=run_files.config_hash(raw) if with_hash else None,
    )
    return path


def test_hash_ignores_engine_order_and_number_spelling():
    base = resolved("seed=1")
    assert run_files.config_hash(base) == run_files.config_hash(resolved("seed=1"))
    assert run_files.config_hash(base) == run_files.config_hash(
        resolved("seed=1", "engine.backend=inprocess", "engine.keep_warm=false")
    )
    assert run_files.config_hash(resolved("train.lr=1")) == run_files.config_hash(
        resolved("train.lr=1.0")
    )
    reordered = dict(reversed(list(base.items())))
    assert run_files.config_hash(reordered) == run_files.config_hash(base)


@pytest.mark.parametrize(
    "other",
    [("seed=2",), ("partition=two_banks", "partition.share=0.3"), ("metrics.bootstrap=10",)],
)
def test_hash_changes_with_what_the_run_computes(other):
    assert run_files.config_hash(resolved("seed=1")) != run_files.config_hash(resolved(*other))


def test_resume_check_skips_same_refuses_other_runs_unfinished(tmp_path):
    raw = resolved("seed=1")
    folder = finished_folder(tmp_path / "run", raw)
    assert run_files.resume_check(folder, raw).action == "skip"
    check = run_files.resume_check(folder, resolved("seed=2"))
    assert check.action == "refuse" and "seed 1 -> 2" in check.reason
    assert run_files.resume_check(folder, None).action == "refuse"
    assert run_files.resume_check(tmp_path / "empty", raw).action == "run"
    run_files.write_status(folder, error="boom", wall_seconds=1.0, overrides=[])
    assert run_files.resume_check(folder, resolved("seed=2")).action == "run"  # nothing to keep


def test_folders_from_before_the_hash_are_judged_by_their_resolved_config(tmp_path):
    raw = resolved("seed=1")
    folder = finished_folder(tmp_path / "old", raw, with_hash=False)
    assert json.loads((folder / run_files.STATUS).read_text())["config_hash"] is None
    assert run_files.resume_check(folder, raw).action == "skip"
    assert run_files.resume_check(folder, resolved("seed=3")).action == "refuse"


def test_hydra_files_are_put_back_after_hydra_rewrote_them(tmp_path):
    folder = finished_folder(tmp_path / "run", resolved("seed=1"))
    run_files.keep_hydra_files(folder)
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=2\n")  # what Hydra does
    run_files.restore_hydra_files(folder)
    assert (folder / ".hydra" / "overrides.yaml").read_text() == "- seed=1\n"


def test_without_a_kept_copy_overrides_come_back_from_status(tmp_path):
    folder = finished_folder(tmp_path / "run", resolved("seed=1"))
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=2\n")
    run_files.restore_hydra_files(folder)
    assert yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) == ["seed=1"]
