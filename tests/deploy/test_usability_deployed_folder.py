"""Deployment as users meet it: the printed SuperNode command is the fast one, Flower does not
warn about an evaluation the run does, and a deployed run folder has what a simulated one has
(schema for the scorecard, report, plots when the coordinator holds test rows)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fl_credit.config.compose import compose_experiment
from fl_credit.coordinator.federation import FederationResult
from fl_credit.credit.scorecard import main as scorecard_main
from fl_credit.data.scaling import Standardizer
from fl_credit.data.schema import FeatureSchema
from fl_credit.deploy.export_banks import main as export_main
from fl_credit.model.logistic import new_model, to_arrays


def test_export_prints_the_fast_supernode_command(tmp_path: Path, capsys) -> None:
    argv = ["--out", str(tmp_path / "banks"), "partition=two_banks", "strategy=fedavg"]
    assert export_main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    banks = [line for line in lines if "--node-config" in line]
    assert len(banks) == 2
    assert all(line.startswith("python -m fl_credit.supernode ") for line in banks), banks
    assert not any(line.startswith("flower-supernode") for line in lines)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("strategy", ["fedavg", "fedprox", "krum"])
def test_no_warning_about_a_skipped_evaluation(strategy: str) -> None:
    from fl_credit.coordinator.strategy_factory import build_strategy

    cfg, _ = compose_experiment([f"strategy={strategy}", "train.optimizer=sgd"])
    collect = Collect()
    flower = logging.getLogger("flwr")
    flower.addHandler(collect)
    try:
        build_strategy(cfg, num_banks=5)
    finally:
        flower.removeHandler(collect)
    assert not [m for m in collect.messages if "evaluation will be skipped" in m]


SCHEMA = FeatureSchema(
    numeric=("income", "inq"), categories={"term": ("36", "60")}, integers=("inq",)
)


def federation(seed: int = 0) -> FederationResult:
    scaler = Standardizer(
        mean=np.array([60_000.0, 1.0, 0.7, 0.3]), std=np.array([20_000.0, 1.2, 0.46, 0.46])
    )
    return FederationResult(arrays=to_arrays(new_model(4, seed)), scaler=scaler, threshold=0.2)


def deployed_metrics(out: Path) -> None:
    metrics = {
        "federated": {"auc": 0.71, "ks": 0.3, "evaluation": "federated (banks' own test rows)"},
        "config": {"rounds": 2, "dp": "off", "engine": "deployment"},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics))


def test_a_deployed_folder_without_test_rows_has_a_report_and_a_scorecard(tmp_path: Path) -> None:
    from fl_credit.run.outputs import write_credit_files

    out = tmp_path / "server_run"
    deployed_metrics(out)
    written = write_credit_files(out, federation(), SCHEMA)
    assert FeatureSchema.from_json(out / "schema.json") == SCHEMA
    report = (out / "report.md").read_text()
    assert "0.71" in report and "test-path" in report
    assert {path.name for path in written} >= {"schema.json", "report.md"}
    torch = pytest.importorskip("torch")
    state = {k: v for k, v in federation().arrays.to_torch_state_dict().items()}
    state.update(
        scaler_mean=torch.tensor(federation().scaler.mean),
        scaler_std=torch.tensor(federation().scaler.std),
        threshold=torch.tensor(0.2),
    )
    torch.save(state, out / "model.pt")
    assert scorecard_main([str(out)]) == 0


def test_a_deployed_folder_with_coordinator_rows_gets_the_figures(tmp_path: Path) -> None:
    from fl_credit.run.outputs import write_credit_files

    out = tmp_path / "server_run"
    deployed_metrics(out)
    rng = np.random.default_rng(0)
    x = np.c_[
        rng.normal(60_000, 20_000, 300), rng.integers(0, 4, 300), np.eye(2)[rng.integers(0, 2, 300)]
    ]
    y = (rng.uniform(size=300) < 0.2).astype(int)
    fed = federation()
    written = {p.name for p in write_credit_files(out, fed, SCHEMA, x, y)}
    assert {"scores.csv", "reason_codes.csv", "ks.png", "roc.png", "report.md"} <= written
