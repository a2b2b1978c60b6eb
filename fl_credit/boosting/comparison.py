"""The models a ``model=gbm`` run is compared with, on the federation's bins.

- ``centralized``: this package's booster on the pooled rows (same bins, same settings): the
  federated trees must equal its trees;
- ``reference``: scikit-learn's ``HistGradientBoostingClassifier`` on the pooled rows, given
  the same bins and the number of trees the federated run kept;
- ``local``: each bank alone with the booster, its own class weight and early stopping;
- ``lr``: the logistic rows of an ``lr`` run on the same split (pooled Newton, which the
  federated Newton run equals, and scikit-learn's LogisticRegression).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fl_credit.boosting.binning import Layout, agreed_layout
from fl_credit.boosting.pooled import Fitted, fit_pooled, fit_sklearn
from fl_credit.boosting.tree import TreeEnsemble
from fl_credit.config.schema import ExperimentConfig
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer
from fl_credit.run import baselines

log = logging.getLogger(__name__)


@dataclass
class GbmBaselines:
    """Every comparison model's scores, and the pooled booster itself."""

    centralized: baselines.Scored
    reference: baselines.Scored
    local: dict[str, baselines.Scored | None]
    lr: dict[str, baselines.Scored]
    pooled: Fitted
    layout: Layout
    pooled_floors: Fitted
    """The pooled twin with every bank's floor applied (equals the federation exactly)."""
    with_floors: baselines.Scored


def scored(fitted: Fitted, x_val: np.ndarray, y_val: np.ndarray, x_test, cfg) -> baselines.Scored:
    """Test scores and validation threshold of a fitted booster."""
    val = fitted.ensemble.predict_proba(x_val)
    return baselines.Scored(
        test_scores=fitted.ensemble.predict_proba(x_test),
        threshold=baselines.validation_threshold(val, y_val, cfg.histogram_bins),
        rounds=len(fitted.ensemble.trees),
        converged=fitted.result.stopped_early,
    )


def gbm_baselines(
    prepared: Prepared, cfg: ExperimentConfig, scaler: Standardizer, kept_trees: int
) -> GbmBaselines:
    """Train every comparison model of a ``model=gbm`` run (module docstring)."""
    layout = agreed_layout(scaler, prepared.bounds, cfg.model.bins)
    names = list(prepared.feature_names)
    data = baselines.pooled(list(prepared.banks.values()))
    pooled = fit_pooled(data.x_train, data.y_train, data.x_val, data.y_val, layout, cfg, names)
    centralized = scored(pooled, data.x_val, data.y_val, prepared.x_test, cfg)
    floored = fit_pooled(
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        layout,
        cfg,
        names,
        banks=list(prepared.banks.values()),
    )
    predict = fit_sklearn(data.x_train, data.y_train, layout, cfg, names, kept_trees)
    reference = baselines.Scored(
        test_scores=predict(prepared.x_test),
        threshold=baselines.validation_threshold(
            predict(data.x_val), data.y_val, cfg.histogram_bins
        ),
        rounds=kept_trees,
        converged=None,
    )
    local: dict[str, baselines.Scored | None] = {}
    for name, bank in prepared.banks.items():
        if bank.y_train.sum() == 0 or bank.y_val.sum() == 0:
            log.warning("%s cannot train alone: no defaults", name)
            local[name] = None
            continue
        alone = fit_pooled(bank.x_train, bank.y_train, bank.x_val, bank.y_val, layout, cfg, names)
        local[name] = scored(alone, bank.x_val, bank.y_val, prepared.x_test, cfg)
    lr = {
        "pooled": baselines.centralized(prepared, cfg),
        "reference": baselines.reference(prepared, cfg),
    }
    with_floors = scored(floored, data.x_val, data.y_val, prepared.x_test, cfg)
    return GbmBaselines(centralized, reference, local, lr, pooled, layout, floored, with_floors)


def trees_difference(federated: TreeEnsemble, pooled: TreeEnsemble) -> dict:
    """How far the federated trees are from the pooled ones: whether every split (feature
    and bin) is the same, and the largest difference of a node value."""
    same = len(federated.trees) == len(pooled.trees)
    largest = 0.0
    for a, b in zip(federated.trees, pooled.trees, strict=False):
        if a.feature != b.feature or a.bin != b.bin or a.left != b.left:
            same = False
            continue
        largest = max(largest, float(np.max(np.abs(np.subtract(a.value, b.value)))))
    return {"splits_equal": same, "max_value_difference": largest if same else None}


def boosting_metrics(fed, gbm: GbmBaselines, score) -> dict:
    """What ``metrics.json`` adds for a ``model=gbm`` run: the boosting summary (with the
    comparison of the federated and pooled trees) and the LR rows, scored by ``score``."""
    federated = TreeEnsemble.from_arrays(fed.arrays)
    return {
        "boosting": fed.boosting,
        # counterfactuals (a DP run keeps them in not_private/): the pooled trees and LR rows
        "gbm_versus_pooled": {
            "pooled_trees_kept": len(gbm.pooled.ensemble.trees),
            "versus_pooled": trees_difference(federated, gbm.pooled.ensemble),
            "versus_pooled_with_floors": trees_difference(federated, gbm.pooled_floors.ensemble),
        },
        "gbm_pooled_with_floors": score(gbm.with_floors),
        "lr": {name: score(s) for name, s in gbm.lr.items()},
    }
