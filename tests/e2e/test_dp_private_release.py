"""A DP run's folder: the private release holds only DP or public values.

The adversary gets the released folders of two ``dp=opacus`` runs whose data differ by one
training borrower (the first row of ``bank_0``), and reads every file of the private
release: ``metrics.json``, ``scores.csv``, ``report.md``. Three attacks that recovered the
borrower (or an exact model of the pooled rows) from the whole folder:

- differencing the summed feature histograms gives the borrower's bin of every numeric feature;
- differencing the banks' row and default counts gives its bank and label;
- the scikit-learn reference scores in ``scores.csv`` give back its exact (non-DP) coefficients.

The counterfactuals still exist, in ``not_private/`` (the positive control: the attacks
work there).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fl_credit.config.schema import DPConfig, EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.data.prepare import prepare
from fl_credit.run.experiment import run_experiment
from fl_credit.run.private_release import (
    NOT_PRIVATE,
    is_private_run,
    split_metrics,
    write_release,
)

pytestmark = pytest.mark.filterwarnings("ignore")

DP = ExperimentConfig(
    train=TrainConfig(rounds=1, optimizer="sgd"),
    engine=EngineConfig(backend="inprocess"),
    # the same noise in both runs: they differ by the borrower alone, so the checks below
    # are deterministic (with fresh secret noise a count of the released model over the
    # test rows, e.g. how often a reason code comes first, moved by one in some runs)
    dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp", reproducible_noise=True),
    bootstrap=20,
)


def without_first_borrower(prepared):
    """The same data without the first training row of bank_0 (its bank info recounted)."""
    bank = prepared.banks["bank_0"]
    smaller = dataclasses.replace(bank, x_train=bank.x_train[1:], y_train=bank.y_train[1:])
    info = dict(prepared.bank_info["bank_0"])
    info.update(rows=len(smaller.y_train), defaults=int(smaller.y_train.sum()))
    return dataclasses.replace(
        prepared,
        banks={**prepared.banks, "bank_0": smaller},
        bank_info={**prepared.bank_info, "bank_0": info},
    )


@pytest.fixture(scope="module")
def folders(embedded, tmp_path_factory):
    with_target = prepare(DP, embedded)
    without = without_first_borrower(with_target)
    out = []
    for name, prepared in (("with", with_target), ("without", without)):
        run_dir = tmp_path_factory.mktemp(name)
        write_release(run_dir, run_experiment(DP, prepared), prepared, overrides=[])
        out.append(run_dir)
    return out[0], out[1], with_target


def histogram_attack(a: Path, b: Path) -> dict[str, int]:
    """Per numeric feature, the one bin whose summed count differs by exactly one."""

    def histograms(folder):
        metrics = json.loads((folder / "metrics.json").read_text())
        return (metrics.get("credit") or {}).get("feature_histograms") or {}

    ha, hb = histograms(a), histograms(b)
    found = {}
    for name in set(ha) & set(hb):
        diff = np.asarray(ha[name]["counts"], float) - np.asarray(hb[name]["counts"], float)
        if np.count_nonzero(diff) == 1 and np.isclose(np.abs(diff).sum(), 1.0):
            found[name] = int(np.flatnonzero(diff)[0])
    return found


def count_attack(a: Path, b: Path) -> list[str]:
    """Paths of numbers in metrics.json that differ by exactly one between the two runs."""

    def leaves(tree, prefix=""):
        if isinstance(tree, dict):
            for key, value in tree.items():
                yield from leaves(value, f"{prefix}{key}.")
        elif isinstance(tree, int | float) and not isinstance(tree, bool):
            yield prefix.rstrip("."), float(tree)

    la = dict(leaves(json.loads((a / "metrics.json").read_text())))
    lb = dict(leaves(json.loads((b / "metrics.json").read_text())))
    skip = ("timing", "history")
    return sorted(
        k for k in set(la) & set(lb) if not k.startswith(skip) and abs(la[k] - lb[k]) == 1.0
    )


def exact_model_columns(folder: Path) -> list[str]:
    """Score columns other than the federated model's (exact counterfactual models)."""
    frame = pd.read_csv(folder / "scores.csv")
    return [c for c in frame.columns if c not in ("default", "federated")]


def test_histogram_differencing_finds_nothing_in_the_private_release(folders):
    a, b, _ = folders
    assert histogram_attack(a / NOT_PRIVATE, b / NOT_PRIVATE)  # positive control
    assert histogram_attack(a, b) == {}


def test_no_count_in_the_private_release_moves_by_the_borrower(folders):
    a, b, _ = folders
    assert any(
        k.startswith("banks.bank_0.rows") for k in count_attack(a / NOT_PRIVATE, b / NOT_PRIVATE)
    )
    assert count_attack(a, b) == []


def test_private_scores_hold_only_the_federated_model(folders):
    a, _, _ = folders
    assert "reference" in exact_model_columns(a / NOT_PRIVATE)
    assert exact_model_columns(a) == []


def test_private_metrics_and_report_name_no_counterfactual(folders):
    a, _, _ = folders
    metrics = json.loads((a / "metrics.json").read_text())
    for key in ("centralized", "reference", "local", "banks", "privacy_local"):
        assert key not in metrics
    assert "psi" not in metrics["credit"] and "feature_histograms" not in metrics["credit"]
    assert metrics["not_private"]["folder"] == NOT_PRIVATE
    report = (a / "report.md").read_text()
    assert "Pooled" not in report and "sklearn" not in report.lower()
    readme = (a / NOT_PRIVATE / "README.md").read_text()
    assert "must not leave the consortium" in readme


def test_a_run_without_dp_is_not_split():
    metrics = {"config": {"dp": "off"}, "reference": {}, "credit": {"psi": {}}}
    assert not is_private_run(metrics)
    release, left = split_metrics({**metrics, "config": {"dp": "central"}})
    assert "reference" not in release and "psi" not in release["credit"]
    assert left["reference"] == {} and left["credit"] == {"psi": {}}
    assert release["not_private"]["holds"] == ["reference", "credit.psi"]
