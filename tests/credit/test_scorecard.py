"""Scorecard: points-to-double-odds scaling, exact decomposition of the score, ranges from
summed histograms, and one-line errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fl_credit.credit.scorecard import (
    OTHER,
    FederatedModel,
    Scaling,
    build_scorecard,
    histogram_bins,
    main,
)
from fl_credit.data.schema import FeatureSchema

ROOT = Path(__file__).resolve().parents[2]


def test_scaling_follows_points_to_double_odds() -> None:
    scaling = Scaling(pdo=20, base_score=600, base_odds=50)
    assert scaling.factor == pytest.approx(20 / math.log(2))
    assert scaling.score(-math.log(50)) == pytest.approx(600)  # good:bad 50:1
    assert scaling.score(-math.log(100)) == pytest.approx(620)  # odds doubled: +pdo


def small_model() -> tuple[FederatedModel, FeatureSchema]:
    schema = FeatureSchema(numeric=("income", "dti"), categories={"purpose": ("car", "debt")})
    model = FederatedModel(
        weights=np.array([-0.8, 0.5, -0.2, 0.4]),
        bias=-1.5,
        mean=np.array([50_000.0, 0.25, 0.3, 0.7]),
        std=np.array([20_000.0, 0.1, 0.46, 0.46]),
        threshold=0.2,
    )
    return model, schema


def test_points_add_up_to_the_model_score() -> None:
    model, schema = small_model()
    scaling = Scaling(20, 600, 50)
    table, summary = build_scorecard(model, schema, scaling, bins=4, correction=0.7)
    assert len(table) == 4 + 4 + 3  # 4 ranges x 2 numeric, 2 categories + (other)
    income = table[table.characteristic == "income"].iloc[1]
    dti = table[table.characteristic == "dti"].iloc[3]
    purpose = table[(table.characteristic == "purpose") & (table.attribute == "debt")].iloc[0]
    x = np.array([income.representative, dti.representative, 0.0, 1.0])
    logit = model.bias + np.sum(model.weights * (x - model.mean) / model.std) - 0.7
    total = summary["base_points"] + income.points + dti.points + purpose.points
    assert total == pytest.approx(scaling.score(logit), abs=1e-9)
    other = table[table.attribute == OTHER].iloc[0]
    x_other = np.array([model.mean[0], model.mean[1], 0.0, 0.0])
    logit_other = model.bias + np.sum(model.weights * (x_other - model.mean) / model.std) - 0.7
    assert summary["base_points"] + other.points == pytest.approx(scaling.score(logit_other))
    cut = scaling.score(math.log(0.2 / 0.8) - 0.7)
    assert summary["cutoff_score"] == pytest.approx(cut)
    assert (np.diff(table[table.characteristic == "income"].points) > 0).all()  # w < 0


def test_ranges_at_quantiles_of_a_summed_histogram() -> None:
    inner = np.linspace(-3, 3, 13)
    edges, reps = histogram_bins(inner, np.ones(14), 7)
    assert len(edges) == 8 and edges[0] == -np.inf and edges[-1] == np.inf
    assert np.all(np.diff(reps) > 0)
    spike = np.r_[np.zeros(6), 1000.0, np.zeros(7)]  # every row in one fine bin
    edges, reps = histogram_bins(inner, spike, 5)
    assert len(reps) == 1 and reps[0] == pytest.approx(-0.25)


def test_bad_input_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no model.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--pdo", "0"])
    assert exit_info.value.code == 2
    result = subprocess.run(
        [sys.executable, "-m", "fl_credit.scorecard", str(tmp_path), "--base-odds", "abc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_correction_already_in_model_pt_is_not_applied_twice_and_says_so(tmp_path) -> None:
    """Runs save the prior-corrected intercept (``prior_correction`` 0, the applied one as
    ``intercept_correction``): the card subtracts nothing more and names what was applied."""
    import dataclasses

    from fl_credit.credit.scorecard import class_weight_correction

    model = dataclasses.replace(small_model()[0], prior_correction=0.0, applied_correction=2.8932)
    correction, source = class_weight_correction(tmp_path, model)
    assert correction == 0.0
    assert source == "2.8932 already subtracted in model.pt"
