"""``model=gbm``, the coordinator's side: trees grown from securely summed histograms.

Run inside :func:`fl_credit.coordinator.federation.run_federation` once the standardiser is agreed:

1. the bins are the agreed grid of the federation's standardiser
   (:mod:`fl_credit.boosting.binning`), which every bank checks against its own copy;
2. per tree and level, ``query.gbm`` carries the finished trees, the tree being grown and the
   nodes to open; every bank replies with its gradient and Hessian sums per node, feature and
   bin (:mod:`fl_credit.boosting.histogram`), summed through the run's strategy (secure
   aggregation by default, so the coordinator sees the sum only);
3. the coordinator picks the splits and leaf values from the sums
   (:mod:`fl_credit.boosting.splits`); the next query hands the grown tree to the banks.

What the coordinator learns: the summed histograms of every node it opens, the validation
loss after every tree, and the trees themselves. Every bank enforces its own floor on what a
node reveals (:mod:`fl_credit.boosting.bank`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fl_credit.boosting.bank import FEATURES, FINISHED, NODES
from fl_credit.boosting.binning import Layout, agreed_layout
from fl_credit.boosting.builder import BoostResult, boost
from fl_credit.boosting.pooled import base_log_odds, tree_params
from fl_credit.boosting.splits import tree_features
from fl_credit.boosting.tree import Tree, TreeEnsemble
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum
from fl_credit.coordinator.rounds import RoundsResult
from fl_credit.coordinator.statistics import with_values
from fl_credit.credit.woe import grid_to_lists
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import Standardizer

log = logging.getLogger(__name__)

# Clip range of summed gradient / Hessian / row sums under secure aggregation: a node's sums
# are bounded by the class-weighted row count.
GBM_ENCODING = {"value_range": 1e7}


@dataclass
class FederatedBoosting:
    """The federated booster (prior correction not yet applied) and its bins."""

    result: BoostResult
    layout: Layout


def level_request(
    settings: ConfigRecord,
    layout: Layout,
    finished: TreeEnsemble,
    nodes: list[int],
    features: np.ndarray | None = None,
) -> ConfigRecord:
    """The ``query.gbm`` settings: the grid, how many trees are finished, the nodes asked and,
    when the tree samples features, the features it may split on."""
    values = {**grid_to_lists(list(layout.edges)), FINISHED: len(finished.trees), NODES: nodes}
    if features is not None:
        values[FEATURES] = [int(j) for j in features]
    return with_values(settings, values)


def federated_boosting(
    banks: BankSum,
    grid: Grid,
    nodes: list[int],
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    scaler: Standardizer,
    bounds: FeatureBounds | None,
    pos_weight: float,
    feature_names: list[str] | None,
    after_tree=None,
) -> FederatedBoosting:
    """Grow the run's trees over the banks connected to ``grid`` (module docstring)."""
    layout = agreed_layout(scaler, bounds, cfg.model.bins)
    names = feature_names or [f"x{j}" for j in range(len(layout.edges))]
    if feature_names is None and (cfg.model.increasing or cfg.model.decreasing):
        log.warning("no feature names known to the coordinator: monotone constraints unused")
    params = tree_params(cfg, names)

    def source(finished: TreeEnsemble, partial: Tree, asked: list[int]):
        content = TreeEnsemble(finished.base, [*finished.trees, partial]).to_arrays()
        features = tree_features(params, len(finished.trees), len(layout.edges))
        config = level_request(settings, layout, finished, asked, features)
        return banks.sum(grid, nodes, "gbm", config, arrays=content, **GBM_ENCODING)

    result = boost(
        source,
        layout,
        params,
        base=base_log_odds(cfg.imbalance.method, pos_weight),
        trees=cfg.model.trees,
        patience=cfg.model.patience,
        min_delta=cfg.model.min_delta,
        after_tree=after_tree,
        noised=cfg.dp.mode == "opacus",
    )
    result.ensemble.feature_names = list(names)
    log.info(
        "boosting: %d trees grown, %d kept (lowest federated validation loss %.5f), %d exchanges",
        result.trees_grown,
        result.best_trees,
        min(result.val_losses),
        result.exchanges,
    )
    return FederatedBoosting(result, layout)


def boosting_rounds(
    banks: BankSum,
    grid: Grid,
    nodes: list[int],
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    scaler: Standardizer,
    bounds: FeatureBounds | None,
    pos_weight: float,
    feature_names: list[str] | None,
    evaluate=None,
) -> tuple[RoundsResult, dict]:
    """:func:`federated_boosting` in the round bookkeeping of the logistic runs (one "round"
    per tree) and the summary that goes into ``metrics.json`` under ``boosting``.

    ``evaluate(trees, arrays)`` is called for the empty ensemble and after every tree.
    """
    started = time.perf_counter()
    if evaluate is not None:
        evaluate(0, TreeEnsemble(base_log_odds(cfg.imbalance.method, pos_weight)).to_arrays())

    def after_tree(count: int, ensemble: TreeEnsemble) -> None:
        if evaluate is not None:
            evaluate(count, ensemble.to_arrays())

    fed = federated_boosting(
        banks, grid, nodes, settings, cfg, scaler, bounds, pos_weight, feature_names, after_tree
    )
    result = fed.result
    rounds = RoundsResult(
        arrays=result.ensemble.to_arrays(),
        applied=list(range(1, result.trees_grown + 1)),
        converged_round=result.best_trees if result.stopped_early else None,
    )
    seconds = time.perf_counter() - started
    summary = {
        "noised": cfg.dp.mode == "opacus",
        "trees_grown": result.trees_grown,
        "trees_kept": result.best_trees,
        "stopped_early": result.stopped_early,
        "withheld_nodes": result.withheld_nodes,
        "val_losses": result.val_losses,
        "exchanges": result.exchanges,
        "exchanges_per_tree": result.exchanges / max(result.trees_grown, 1),
        "seconds": seconds,
        "seconds_per_tree": seconds / max(result.trees_grown, 1),
        "bins": fed.layout.total,
        "feature_names": list(result.ensemble.feature_names),
        "leaves": [leaf_summary(t) for t in result.ensemble.trees],
    }
    return rounds, summary


def leaf_summary(tree: Tree) -> dict:
    """Rows and Hessian of a tree's smallest leaf (for the privacy audit's leaf-size check)."""
    leaves = tree.leaves()
    smallest = min(leaves, key=lambda n: tree.count[n])
    return {
        "leaves": len(leaves),
        "min_rows": tree.count[smallest],
        "min_hessian": tree.hessian[smallest],
    }
