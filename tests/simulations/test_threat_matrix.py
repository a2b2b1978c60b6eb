"""The threat-matrix command end to end, on a cut-down grid (the committed matrix is the full
one, ``docs/results/threat_matrix/``)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_threat_matrix_command_writes_the_matrix(tmp_path):
    sweep = tmp_path / "matrix"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_credit.simulate",
            "-m",
            "+experiment=threat_matrix",
            "+threat_split=study",
            "+defence=fedavg,krum",
            "attack=none,sign_flip",
            "seed=0",
            "train.rounds=2",
            "metrics.bootstrap=20",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("summary.md", "summary.csv", "runs.csv", "heatmap_auc_drop.png"):
        assert (sweep / name).is_file(), name
    with open(sweep / "summary.csv") as fh:
        cells = {(r["defence"], r["attack"]): r for r in csv.DictReader(fh)}
    fedavg = cells[("fedavg", "sign_flip")]
    assert float(fedavg["auc_drop"]) > 0.05  # one sign-flipping bank of three breaks FedAvg
    assert cells[("krum", "none")]["ok"] == "0"  # Krum needs more banks: refused, recorded
    assert "krum" in cells[("krum", "none")]["error"].lower()
    text = (sweep / "summary.md").read_text()
    assert "refused" in text and "Privacy attacks per defence" in text
