"""Scorecard readability: counts cut on integers, counter-intuitive signs flagged, every
written file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fl_credit.credit.scorecard import (
    FederatedModel,
    Scaling,
    build_scorecard,
    main,
    render_markdown,
)
from fl_credit.data.frame import CreditData
from fl_credit.data.schema import FeatureSchema

COUNTS = FeatureSchema(
    numeric=("inq_last_6mths", "acc_now_delinq", "annual_inc"),
    categories={"term": ("36", "60")},
    integers=("inq_last_6mths", "acc_now_delinq"),
)


def count_model(delinq_weight: float = -0.3) -> FederatedModel:
    return FederatedModel(
        weights=np.array([0.4, delinq_weight, -0.5, -0.2, 0.2]),
        bias=-3.0,
        mean=np.array([0.6, 0.004, 70_000.0, 0.7, 0.3]),
        std=np.array([0.9, 0.07, 40_000.0, 0.46, 0.46]),
        threshold=0.1,
    )


def fine_histogram(mean: float, std: float, values: dict[int, float]) -> dict:
    """Counts of integer-valued rows on the agreed grid ``mean + z * std``."""
    inner = mean + np.linspace(-3.0, 3.0, 49) * std
    counts = np.zeros(len(inner) + 1)
    for value, n in values.items():
        counts[np.searchsorted(inner, value, side="right")] += n
    return {"inner_edges": inner.tolist(), "counts": counts.tolist()}


def test_count_characteristics_are_cut_on_whole_numbers() -> None:
    histograms = {"inq_last_6mths": fine_histogram(0.6, 0.9, {0: 500, 1: 250, 2: 120, 3: 60})}
    table, _ = build_scorecard(count_model(), COUNTS, Scaling(20, 600, 50), 5, 0.0, histograms)
    for name in ("inq_last_6mths", "acc_now_delinq"):
        rows = table[table.characteristic == name]
        cuts = np.r_[rows.lower.to_numpy()[1:], rows.upper.to_numpy()[:-1]]
        assert np.all(np.mod(cuts, 1.0) == 0.0), (name, cuts)
        assert np.all(rows.upper.to_numpy() > rows.lower.to_numpy())
        assert not any("." in text for text in rows.attribute), rows.attribute.tolist()
    inq = table[table.characteristic == "inq_last_6mths"].attribute.tolist()
    assert inq[0] == "<= 0" and inq[-1].startswith(">= "), inq
    income = table[table.characteristic == "annual_inc"]
    assert len(income) == 5  # a continuous feature keeps its quantile ranges


def test_the_schema_records_whole_number_columns() -> None:
    data = CreditData(
        features=pd.DataFrame({"n": [0.0, 1.0, 3.0, 0.0], "x": [0.5, 1.0, 2.0, 0.1]}),
        target=np.array([0, 1, 0, 1]),
        categorical=[],
    )
    assert FeatureSchema.from_data(data).integers == ("n",)


def test_schema_json_keeps_the_integer_columns(tmp_path: Path) -> None:
    COUNTS.to_json(tmp_path / "schema.json")
    assert FeatureSchema.from_json(tmp_path / "schema.json") == COUNTS


def test_a_sign_against_the_usual_risk_direction_is_flagged() -> None:
    scaling = Scaling(20, 600, 50)
    table, summary = build_scorecard(count_model(delinq_weight=-0.3), COUNTS, scaling)
    assert [f["characteristic"] for f in summary["counter_intuitive"]] == ["acc_now_delinq"]
    text = render_markdown(table, summary, "none")
    flagged = [line for line in text.splitlines() if "counter-intuitive" in line.lower()]
    assert flagged and any("acc_now_delinq" in line for line in text.splitlines()[:20])
    delinq = next(line for line in text.splitlines() if line.startswith("- acc_now_delinq"))
    assert "more risk" in delinq and "score more points" in delinq
    _, summary = build_scorecard(count_model(delinq_weight=0.3), COUNTS, scaling)
    assert summary["counter_intuitive"] == []


def write_run(folder: Path, model: FederatedModel, schema: FeatureSchema) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "linear.weight": torch.tensor(model.weights, dtype=torch.float32).reshape(1, -1),
        "linear.bias": torch.tensor([model.bias], dtype=torch.float32),
        "scaler_mean": torch.tensor(model.mean),
        "scaler_std": torch.tensor(model.std),
        "threshold": torch.tensor(model.threshold),
    }
    torch.save(state, folder / "model.pt")
    schema.to_json(folder / "schema.json")
    return folder


def test_the_written_line_names_every_file(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", count_model(), COUNTS)
    assert main([str(run)]) == 0
    written = [line for line in capsys.readouterr().out.splitlines() if line.startswith("written")]
    assert len(written) == 1
    for name in ("scorecard.csv", "scorecard.md", "scorecard.json"):
        assert name in written[0] and (run / name).is_file()


# --- a DP run's card: a base borrower that exists, odds that match the base rate -------------

GRADES = FeatureSchema(numeric=("int_rate",), categories={"sub_grade": ("A1", "B1", "C1", "D1")})


def dp_model(bias: float = -5.0, base_rate: float | None = 0.05) -> FederatedModel:
    """Under dp=opacus the standardiser centres every one-hot column at 0.5."""
    return FederatedModel(
        weights=np.array([0.3, -0.6, -0.2, 0.2, 0.6]),
        bias=bias,
        mean=np.array([12.0, 0.5, 0.5, 0.5, 0.5]),
        std=np.array([5.0, 0.5, 0.5, 0.5, 0.5]),
        threshold=0.01,
        base_rate=base_rate,
    )


def logit_of(model: FederatedModel, x: np.ndarray) -> float:
    return float(model.bias + np.sum(model.weights * (x - model.mean) / model.std))


def test_the_base_borrower_has_one_category_share_per_characteristic() -> None:
    scaling = Scaling(20, 600, 50)
    model = dp_model()
    table, summary = build_scorecard(model, GRADES, scaling)
    shares = np.array([12.0, 0.25, 0.25, 0.25, 0.25])  # 0.5 each projected onto the simplex
    assert summary["base_points"] == pytest.approx(scaling.score(logit_of(model, shares)))
    b1 = table[(table.characteristic == "sub_grade") & (table.attribute == "B1")].iloc[0]
    x = np.array([12.0, 0.0, 1.0, 0.0, 0.0])
    assert summary["base_points"] + b1.points == pytest.approx(scaling.score(logit_of(model, x)))


def test_simplex_projection_leaves_real_shares_alone() -> None:
    from fl_credit.credit.scorecard import simplex_projection

    np.testing.assert_allclose(simplex_projection(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(simplex_projection(np.full(4, 0.5)), np.full(4, 0.25))
    projected = simplex_projection(np.array([0.9, 0.6, -0.1]))
    assert projected.sum() == pytest.approx(1.0) and projected.min() >= 0.0


def dp_run(folder: Path, model: FederatedModel, pds: np.ndarray) -> Path:
    write_run(folder, model, GRADES)
    if model.base_rate is not None:
        state = torch.load(folder / "model.pt", weights_only=True)
        state["base_rate"] = torch.tensor(model.base_rate)
        torch.save(state, folder / "model.pt")
    config = "dp:\n  mode: opacus\nimbalance:\n  method: none\n"
    (folder / "config_resolved.yaml").write_text(config)
    pd.DataFrame({"default": np.zeros(len(pds), dtype=int), "federated": pds}).to_csv(
        folder / "scores.csv", index=False
    )
    return folder


def test_a_dp_card_is_calibrated_to_the_noised_base_rate(tmp_path: Path, capsys) -> None:
    import json

    run = dp_run(tmp_path / "run", dp_model(bias=-5.0), np.linspace(0.001, 0.03, 50))
    assert main([str(run)]) == 0
    text = capsys.readouterr().out
    summary = json.loads((run / "scorecard.json").read_text())
    assert summary["base_pd"] == pytest.approx(0.05)
    assert summary["base_points"] == pytest.approx(Scaling(20, 600, 50).score(np.log(0.05 / 0.95)))
    assert "0.05" in text and "base rate" in text


def test_a_base_borrower_outside_the_observed_pds_is_flagged(tmp_path: Path, capsys) -> None:
    run = dp_run(tmp_path / "run", dp_model(bias=0.0), np.linspace(0.001, 0.03, 50))
    assert main([str(run), "--calibrate", "none"]) == 0
    text = capsys.readouterr().out
    warned = [line for line in text.splitlines() if "outside" in line]
    assert warned and "0.001" in warned[0] and "0.03" in warned[0]
