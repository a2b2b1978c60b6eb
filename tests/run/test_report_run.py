"""One short real run (in-process engine): its credit files, every metric recomputed from
``scores.csv`` with scikit-learn / scipy, the per-run report, and the scorecard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import rel_entr
from scipy.stats import ks_2samp
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from fl_credit.config.compose import compose_config
from fl_credit.credit.psi import shares
from fl_credit.credit.scores_file import read_scores
from fl_credit.run.report import FIGURES, PSI_FIGURE
from fl_credit.run.report import main as report_main
from tests.credit.test_metrics_credit import gains_by_sorting

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-6
BOOTSTRAP = 60


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from fl_credit.run.simulate import run_in_folder

    overrides = ["engine.backend=inprocess", "train.rounds=3", f"metrics.bootstrap={BOOTSTRAP}"]
    folder = tmp_path_factory.mktemp("run")
    run_in_folder(compose_config(overrides), folder, overrides)
    return folder


@pytest.fixture(scope="module")
def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def models(metrics: dict) -> dict[str, dict]:
    out = {name: metrics[name] for name in ("federated", "centralized", "reference")}
    out.update({f"local.{bank}": m for bank, m in metrics["local"].items() if m})
    return out


def bootstrap_interval(y: np.ndarray, p: np.ndarray, resamples: int, seed: int) -> list[float]:
    """The documented procedure: stratified resamples drawn in the same order, AUC by sklearn."""
    rng = np.random.default_rng(seed)
    pos, neg = p[y == 1], p[y == 0]
    pos_idx = rng.integers(0, len(pos), (resamples, len(pos)))
    neg_idx = rng.integers(0, len(neg), (resamples, len(neg)))
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    aucs = [
        roc_auc_score(labels, np.r_[pos[i], neg[j]]) for i, j in zip(pos_idx, neg_idx, strict=True)
    ]
    return [float(np.quantile(aucs, 0.025)), float(np.quantile(aucs, 0.975))]


def class_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, (p >= threshold).astype(int), labels=[1, 0], zero_division=0
    )
    return {
        name: {"precision": prec[i], "recall": rec[i], "f1": f1[i]}
        for i, name in enumerate(("default", "repaid"))
    }


def close(a, b) -> bool:
    return abs(float(a) - float(b)) <= TOL


def test_run_folder_has_every_credit_file(run_dir: Path) -> None:
    for name in ("scores.csv", "reason_codes.csv", "schema.json", "report.md", *FIGURES):
        assert (run_dir / name).is_file(), name
    assert (run_dir / PSI_FIGURE).is_file()
    for name in (*FIGURES, PSI_FIGURE):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (run_dir / "report.md").read_text()
    for heading in ("Models on the test set", "Lift and gains", "Stability (PSI)", "Odds ratios"):
        assert f"## {heading}" in report
    for name in (*FIGURES, PSI_FIGURE):
        assert f"]({name})" in report


def test_every_metric_recomputes_from_scores_csv(run_dir: Path, metrics: dict) -> None:
    y, scores = read_scores(run_dir / "scores.csv")
    assert set(scores) == set(models(metrics))
    seed = metrics["config"]["seed"]
    checked = 0
    for name, m in models(metrics).items():
        p = scores[name]
        auc = roc_auc_score(y, p)
        assert close(m["auc"], auc), name
        assert close(m["gini"], 2 * auc - 1)
        assert close(m["ks"], ks_2samp(p[y == 1], p[y == 0]).statistic), name
        assert close(m["brier"], brier_score_loss(y, p))
        assert close(m["log_loss"], log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))
        lo, hi = bootstrap_interval(y, p, BOOTSTRAP, seed)
        assert close(m["auc_ci"][0], lo) and close(m["auc_ci"][1], hi), name
        threshold = m["at_val_threshold"]["threshold"]
        for key, expected in (
            ("", class_metrics(y, p, 0.5)),
            ("at", class_metrics(y, p, threshold)),
        ):
            got = m["at_val_threshold"] if key else m
            for cls in ("default", "repaid"):
                for stat in ("precision", "recall", "f1"):
                    assert close(got[cls][stat], expected[cls][stat]), (name, cls, stat)
                    checked += 1
        gains = m["gains"]
        for depth, gain, lift in zip(
            gains["depth"], gains["cumulative_gains"], gains["cumulative_lift"], strict=True
        ):
            expected = gains_by_sorting(y, p, depth)
            assert close(gain, expected) and close(lift, expected / depth), (name, depth)
        assert close(np.mean(gains["default_rate"]), y.mean())
    assert checked == 12 * len(models(metrics))


def test_psi_and_odds_ratios_recompute(run_dir: Path, metrics: dict) -> None:
    psi = metrics["credit"]["psi"]["score"]
    e, a = shares(psi["validation_counts"]), shares(psi["test_counts"])
    assert close(psi["validation_vs_test"], np.sum(rel_entr(a, e) + rel_entr(e, a)))
    state = torch.load(run_dir / "model.pt")
    w = state["linear.weight"].numpy().ravel().astype(float)
    std = state["scaler_std"].numpy()
    names = json.loads((run_dir / "schema.json").read_text())["numeric"]
    rows = metrics["credit"]["odds_ratios"]["features"]
    for j, name in enumerate(names):
        assert rows[j]["feature"] == name
        assert np.isclose(rows[j]["odds_ratio"], np.exp(w[j] / std[j]), rtol=1e-6)
    assert set(psi["banks"]) == set(metrics["banks"])


def test_run_report_cli(run_dir: Path, tmp_path: Path, capsys) -> None:
    (run_dir / "report.md").unlink()
    assert report_main([str(run_dir)]) == 0
    assert (run_dir / "report.md").is_file()
    assert report_main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err


def test_scorecard_of_the_run(run_dir: Path, metrics: dict, capsys) -> None:
    from fl_credit.credit.scorecard import main as scorecard_main

    args = [str(run_dir), "--pdo", "20", "--base-score", "600", "--base-odds", "50"]
    assert scorecard_main(args) == 0
    text = capsys.readouterr().out
    assert "quantiles of summed histograms" in text and "Base points" in text
    import pandas as pd

    card = pd.read_csv(run_dir / "scorecard.csv")
    schema = json.loads((run_dir / "schema.json").read_text())
    assert set(card["characteristic"]) == {*schema["numeric"], *schema["categories"]}
    assert set(metrics["credit"]["feature_histograms"]) == set(schema["numeric"])
