"""The positive-controls command refuses bad input in one line, before any run."""

from __future__ import annotations

import pytest

from simulations.studies.threat_controls import main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--attacks", "fang_trim,nope"], "unknown attack 'nope'"),
        (["--attacks", "ipm", "--seeds", "x-y"], "--seeds 'x-y'"),
        (["--attacks", "fang_trim:0"], "name:k with k >= 1"),
        (["--krum-selection", "--rounds", "0"], "rounds >= 1"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(argv, named, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0]


def test_from_runs_prints_each_attacks_drop_per_seed_and_the_seeds_reaching_the_control(
    tmp_path, capsys
):
    import pandas as pd

    from simulations.studies.threat_controls import main

    rows = [
        {"defence": d, "attack": a, "seed": s, "status": "ok", "auc_drop": drop}
        for d in ("fedavg", "krum")
        for a, drops in (("none", [0.0, 0.0]), ("ipm", [0.40, 0.30]), ("min_max", [0.06, 0.01]))
        for s, drop in enumerate(drops)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    assert main(["--from-runs", str(tmp_path / "runs.csv"), "--defence", "fedavg"]) == 0
    out = capsys.readouterr().out
    assert "| ipm | 0.400 | 0.300 | 0.300 | 0.350 | 2 of 2 |" in out
    assert "| min_max | 0.060 | 0.010 | 0.010 | 0.035 | 1 of 2 |" in out
    assert "none" not in out
    assert main(["--from-runs", str(tmp_path / "runs.csv"), "--defence", "flame"]) == 2


def test_a_failed_backdoor_run_leaves_the_matrix_report_standing():
    # Before: a failed model_replacement run (no backdoor block: test_defaults NaN) next to an
    # ok clean run stopped the whole report with "cannot convert float NaN to integer".
    import math

    import pandas as pd

    from simulations.sweeps.threat_matrix import with_clean

    runs = pd.DataFrame(
        [
            {
                "threat_split": "ten_equal",
                "defence": "secagg",
                "seed": 0,
                "attack": attack,
                "auc": auc,
                "backdoor_success": 0.0,
                "approved_triggered": approved,
                "test_defaults": defaults,
                "free_rider_gain": float("nan"),
            }
            for attack, auc, approved, defaults in (
                ("none", 0.75, (1, 2), 100),
                ("model_replacement", float("nan"), (), float("nan")),
                ("backdoor", 0.74, (1, 2, 3, 4), 100),
            )
        ]
    )
    out = with_clean(runs).set_index("attack")
    assert math.isnan(out.loc["model_replacement", "success"])
    assert out.loc["backdoor", "success"] == 2 / 98


def test_from_runs_of_a_file_that_is_no_matrix_is_one_line(tmp_path, capsys):
    # Before: a CSV without the matrix's columns ended in a KeyError traceback, exit 1.
    from simulations.studies.threat_controls import main

    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main(["--from-runs", str(tmp_path / "other.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: --from-runs {tmp_path / 'other.csv'}: not a threat-matrix runs.csv "
        "(missing columns: attack, auc_drop, defence, seed, status)"
    ]
