"""Shared fixtures: the embedded data loaded once, and small fast experiment configs."""

from __future__ import annotations

import dataclasses

import hypothesis
import pytest

from fl_credit.config.schema import EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.data.embedded import load_embedded

# No per-example deadline: on a loaded machine hypothesis's default 200 ms fails correct code.
hypothesis.settings.register_profile("fl_credit", deadline=None)
hypothesis.settings.load_profile("fl_credit")


@pytest.fixture(scope="session")
def embedded():
    """The real embedded Lending Club loans."""
    return load_embedded()


@pytest.fixture
def fast_cfg() -> ExperimentConfig:
    """Three banks 25/25/50, few rounds, in-process engine, small bootstrap."""
    return ExperimentConfig(
        train=TrainConfig(rounds=3),
        engine=EngineConfig(backend="inprocess"),
        bootstrap=50,
    )


def with_(cfg: ExperimentConfig, **sections) -> ExperimentConfig:
    """Copy of ``cfg`` with whole sections or top-level fields replaced."""
    return dataclasses.replace(cfg, **sections)


def bank_zero_app(cfg: ExperimentConfig, data, tmp_path, monkeypatch):
    """Bank 0's ClientApp and context after the federation's standardiser (the pooled one):
    ``(prepared, scaler, settings, context, app)``."""
    import numpy as np
    from flwr.app import ArrayRecord, Context, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from fl_credit.bank import client_app
    from fl_credit.data.prepare import prepare, write_bank_files
    from fl_credit.data.scaling import pooled_standardizer
    from fl_credit.protocol.settings import BankSettings
    from fl_credit.run.baselines import pooled

    for key in ("_run_id", "_node_id", "_task_id"):  # what a running SuperNode sets
        if getattr(TaskIdentity, key) is None:
            monkeypatch.setattr(TaskIdentity, key, 1)
    prepared = prepare(cfg, data)
    write_bank_files(prepared, tmp_path, suffix=".npz")
    scaler = pooled_standardizer(pooled(list(prepared.banks.values())).x_train)
    context = Context(
        run_id=1, node_id=5, node_config={"partition-id": 0}, state=RecordDict(), run_config={}
    )
    context.state[client_app.SCALER_STATE] = ArrayRecord(
        [scaler.mean, scaler.std, np.array([18.0])]
    )
    settings = BankSettings.from_experiment(cfg, bank_dir=str(tmp_path))
    from fl_credit.bank.floors import BankFloors
    from strategies.secagg.floors import Floors

    plain = BankFloors(secagg=Floors(secure_aggregation=False))  # the bank's own checks alone
    return prepared, scaler, settings, context, client_app.make_client_app(floors=plain)
