"""The threat matrix measures evasion per cell (attack and defence), not on single runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.simulations.sweeps.test_threat_matrix import _fake_run


def test_evasion_is_measured_per_attack_and_defence(tmp_path, monkeypatch):
    # Before: evasion was audited on one run at a time, never per cell of the matrix. Each
    # cell now reports the change in the share of rejected defaulters who can flip (attacked
    # run minus the clean run of the same defence and seed).
    import fl_credit.threats.matrix_cells as matrix_cells

    rng = np.random.default_rng(2)
    flip_share, runs = {}, []
    for defence, shift in (("fedavg", 0.2), ("krum", 0.05)):
        for seed in range(2):
            y = (rng.random(200) < 0.2).astype(int)
            scores = 0.5 * y + 0.3 * rng.random(200)
            for attack, share in (("none", 0.1), ("ipm", 0.1 + shift + 0.01 * seed)):
                run_dir = _fake_run(tmp_path / f"{defence}{attack}{seed}", y, scores, [0])
                flip_share[run_dir] = share
                runs.append(("s", defence, attack, seed, "ok", run_dir))
    monkeypatch.setattr(matrix_cells, "_evasion", flip_share.__getitem__)
    frame = pd.DataFrame(
        runs, columns=["threat_split", "defence", "attack", "seed", "status", "run_dir"]
    )
    cells = matrix_cells.paired_cells(frame, resamples=50).set_index("defence")
    assert cells.loc["fedavg", "evasion_change"] == pytest.approx(0.205)
    assert cells.loc["krum", "evasion_change"] == pytest.approx(0.055)
