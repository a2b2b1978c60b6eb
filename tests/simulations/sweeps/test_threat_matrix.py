"""The threat-matrix command end to end, on a cut-down grid (the committed matrix is the full
one, ``docs/results/threat_matrix/``)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


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


def _fake_run(folder: Path, y, scores, approved, rows=(90, 90), seed=0) -> str:
    import json

    import numpy as np

    folder.mkdir(parents=True)
    with open(folder / "scores.csv", "w") as fh:
        fh.write("default,federated\n")
        fh.writelines(f"{int(a)},{b}\n" for a, b in zip(y, scores, strict=True))
    block = {
        "success": 0.0,
        "approved_triggered": approved,
        "test_defaults": int(np.sum(y)),
        "approval_rate": float(np.mean(scores < 0.5)),
        "triggered_approval_rate": 0.0,
    }
    metrics = {
        "banks": {f"bank_{i}": {"rows": r, "val_rows": 10} for i, r in enumerate(rows)},
        "attack": {"backdoor": block},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return str(folder)


def test_paired_cells_give_intervals_worst_bank_and_holm_claims(tmp_path):
    # The committed matrix reported seed means with t-intervals over 3 seeds and no paired
    # comparison, worst bank, sound backdoor count or corrected claims (this failed before:
    # no such table).
    import numpy as np
    import pandas as pd

    from fl_credit.threats.matrix_cells import paired_cells

    rng = np.random.default_rng(0)
    runs = []
    for seed in range(4):
        y = (rng.random(400) < 0.2).astype(int)
        clean = 0.5 * y + 0.3 * rng.random(400)
        harmed = clean + 0.6 * rng.random(400)
        defaults = int(y.sum())
        for attack, scores, approved in [
            ("none", clean, [0, 1]),
            ("model_replacement", harmed, [0, 1, 2, 3]),
            ("backdoor", clean, list(range(defaults))),
        ]:
            run_dir = _fake_run(tmp_path / f"{attack}{seed}", y, scores, approved)
            runs.append(("s", "d", attack, seed, "ok", run_dir))
    frame = pd.DataFrame(
        runs, columns=["threat_split", "defence", "attack", "seed", "status", "run_dir"]
    )
    cells = paired_cells(frame, resamples=200).set_index("attack")
    harm, same = cells.loc["model_replacement"], cells.loc["backdoor"]
    assert harm["paired_seeds"] == 4 and harm["drop_low"] > 0 and harm["claim"] == "harms"
    assert harm["supported"] and harm["worst_bank_drop"] >= harm["drop_mean"] - 0.05
    assert same["drop_mean"] == 0 and same["claim"] == "holds within 0.02" and same["supported"]
    # Backdoor success counts only defaults the clean run rejects: all of them here.
    assert same["backdoor_mean"] == 1.0
    assert same["backdoor_claim"] == "succeeds" and same["backdoor_supported"]
    assert harm["backdoor_claim"] == "kept below 0.05" and harm["p_backdoor_holm"] >= 0
    assert harm["backdoor_mean"] == pytest.approx(
        np.mean([2 / (d - 2) for d in [int(s) for s in _defaults(frame)]])
    )


def _defaults(frame):
    import json

    for run_dir in frame[frame["attack"] == "none"]["run_dir"]:
        yield json.loads((Path(run_dir) / "metrics.json").read_text())["attack"]["backdoor"][
            "test_defaults"
        ]


def test_clean_costs_pair_each_defence_with_fedavg_and_share_holms_correction(tmp_path):
    # The report had no clean cost per defence (docs quoted hand-made differences) and its
    # Holm correction covered only the attacked cells (this failed before: no clean_costs).
    import numpy as np
    import pandas as pd

    from fl_credit.threats.matrix_cells import clean_costs, holm_jointly, paired_cells
    from fl_credit.threats.matrix_stats import holm

    rng = np.random.default_rng(1)
    runs = []
    for seed in range(5):
        y = (rng.random(400) < 0.2).astype(int)
        good = 0.5 * y + 0.3 * rng.random(400)
        worse = good + 0.6 * rng.random(400)
        for defence, attack, scores in [
            ("fedavg", "none", good),
            ("fedavg", "ipm", worse),
            ("same", "none", good),
            ("costly", "none", worse),
        ]:
            run_dir = _fake_run(tmp_path / f"{defence}{attack}{seed}", y, scores, [0])
            runs.append(("s", defence, attack, seed, "ok", run_dir))
    frame = pd.DataFrame(
        runs, columns=["threat_split", "defence", "attack", "seed", "status", "run_dir"]
    )
    costs = clean_costs(frame, resamples=200).set_index("defence")
    assert np.isnan(costs.loc["fedavg", "cost_mean"]) and costs.loc["fedavg", "claim"] == ""
    assert costs.loc["same", "cost_mean"] == 0 and costs.loc["same", "claim"] == "costs within 0.02"
    assert costs.loc["costly", "cost_low"] > 0 and costs.loc["costly", "claim"] == "costs"
    assert costs.loc["same", "paired_seeds"] == 5 and np.isnan(costs.loc["same", "evasion_mean"])
    paired = paired_cells(frame, resamples=200)
    joint_paired, joint_costs = holm_jointly(paired, costs.reset_index())
    raw = np.concatenate([paired["p_claim"], costs["p_claim"]])
    finite = raw[np.isfinite(raw)]
    expected = holm(finite)
    got = np.concatenate([joint_paired["p_holm"], joint_costs["p_holm"]])
    assert np.allclose(got[np.isfinite(got)], expected)
    assert joint_costs.set_index("defence").loc["costly", "supported"]
    assert joint_paired["worst_bank_low"].notna().all()
