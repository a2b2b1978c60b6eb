"""Boosting on rows held in one place: the pooled reference, each bank alone, scikit-learn.

- :func:`fit_pooled`: this package's own algorithm (:func:`fl_credit.boosting.builder.boost`)
  with a source that sums the pooled rows directly. On the same bins and settings it must
  give the federated trees (splits and leaf values to 1e-9).
- :func:`fit_sklearn`: ``sklearn.ensemble.HistGradientBoostingClassifier`` on the same bins
  (it is given each row's bin indices, so its own binning keeps every bin), with the same
  depth, learning rate, L2, class weights (as sample weights), monotone constraints and the
  number of trees the federated run kept.
- each bank alone: :func:`fit_pooled` on one bank's rows, with its own class weight and
  early stopping on its own validation rows.

Every model gets the prior correction of its base log-odds, so all report calibrated PDs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fl_credit.boosting.binning import Layout
from fl_credit.boosting.builder import BoostResult, boost
from fl_credit.boosting.histogram import PartyRows, level_vector, node_weights, party_rows
from fl_credit.boosting.splits import TreeParams
from fl_credit.boosting.tree import Tree, TreeEnsemble
from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.calibration import prior_correction
from fl_credit.data.bank_file import BankData
from fl_credit.model.imbalance import positive_weight


def tree_params(cfg: ExperimentConfig, feature_names: list[str]) -> TreeParams:
    """The run's tree settings, with each feature's monotone direction from its name."""
    m = cfg.model
    monotone = tuple(
        1 if name in m.increasing else -1 if name in m.decreasing else 0 for name in feature_names
    )
    return TreeParams(
        depth=m.depth,
        learning_rate=m.learning_rate,
        reg_lambda=m.reg_lambda,
        gamma=m.gamma,
        min_child_weight=m.min_child_weight,
        monotone=monotone,
        colsample=m.colsample,
        seed=cfg.seed,
    )


def base_log_odds(method: str, pos_weight: float) -> float:
    """The starting log-odds: the weighted base rate, ``log(s D / (N - D))`` with
    ``pos_weight = (N - D) / D`` and ``s`` the class weight of a default (0 when the classes
    are weighted to balance)."""
    weighted = pos_weight if method == "class_weight" else 1.0
    return math.log(weighted) - math.log(pos_weight)


def row_source(rows: PartyRows, layout: Layout):
    """A histogram source over rows held in one place."""

    def source(ensemble: TreeEnsemble, partial: Tree, nodes: list[int]) -> np.ndarray:
        return level_vector(rows, ensemble, partial, nodes, layout)

    return source


def floored_source(parts: list[PartyRows], layout: Layout, floor: tuple[float, float]):
    """A histogram source over rows held in one place that knows which bank each row comes
    from and applies every bank's floor (:func:`fl_credit.boosting.bank.kept_nodes`): the
    pooled twin of a federation whose banks withhold nodes."""
    from fl_credit.boosting.bank import kept_nodes

    def source(ensemble: TreeEnsemble, partial: Tree, nodes: list[int]) -> np.ndarray:
        total = 0.0
        for rows in parts:
            keep = kept_nodes(node_weights(rows, ensemble, partial), partial, nodes, floor)
            total = total + level_vector(rows, ensemble, partial, nodes, layout, keep)
        return total

    return source


def boost_rows(
    rows: PartyRows,
    layout: Layout,
    params: TreeParams,
    cfg: ExperimentConfig,
    pos_weight: float,
    after_tree=None,
    source=None,
) -> BoostResult:
    """:func:`boost` over rows held in one place (or ``source``), with the run's settings."""
    return boost(
        source or row_source(rows, layout),
        layout,
        params,
        base=base_log_odds(cfg.imbalance.method, pos_weight),
        trees=cfg.model.trees,
        patience=cfg.model.patience,
        min_delta=cfg.model.min_delta,
        after_tree=after_tree,
    )


@dataclass(frozen=True)
class Fitted:
    """A trained booster with its prior correction applied, and how it trained."""

    ensemble: TreeEnsemble
    result: BoostResult
    pos_weight: float


def fit_pooled(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    layout: Layout,
    cfg: ExperimentConfig,
    feature_names: list[str],
    banks: list[BankData] | None = None,
) -> Fitted:
    """This package's booster on rows held in one place (pooled, or one bank alone).

    With ``banks`` (whose rows make up ``x``, ``y``), every bank's floor
    (``model.bank_min_hessian``, ``model.bank_min_rows``) is applied as the federation's banks
    apply it (:func:`floored_source`)."""
    pos_weight = positive_weight(y)
    weighted = pos_weight if cfg.imbalance.method == "class_weight" else 1.0
    rows = party_rows(x, y, x_val, y_val, layout, weighted)
    source = None
    if banks is not None:
        parts = [
            party_rows(b.x_train, b.y_train, b.x_val, b.y_val, layout, weighted) for b in banks
        ]
        floor = (cfg.model.bank_min_hessian, float(cfg.model.bank_min_rows))
        source = floored_source(parts, layout, floor)
    params = tree_params(cfg, feature_names)
    result = boost_rows(rows, layout, params, cfg, pos_weight, source=source)
    correction = prior_correction(cfg.imbalance.method, pos_weight, private=cfg.dp.mode != "off")
    ensemble = result.ensemble.corrected(correction)
    ensemble.feature_names = list(feature_names)
    return Fitted(ensemble, result, pos_weight)


def fit_sklearn(
    x: np.ndarray,
    y: np.ndarray,
    layout: Layout,
    cfg: ExperimentConfig,
    feature_names: list[str],
    trees: int,
):
    """scikit-learn's histogram boosting on the same bins; returns a PD function of
    unscaled rows (prior-corrected like the others)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    m = cfg.model
    params = tree_params(cfg, feature_names)
    pos_weight = positive_weight(y)
    weighted = pos_weight if cfg.imbalance.method == "class_weight" else 1.0
    model = HistGradientBoostingClassifier(
        learning_rate=m.learning_rate,
        max_iter=max(trees, 1),
        max_depth=m.depth + 1,  # scikit-learn counts the root as depth 1... of edges: depth+1
        max_leaf_nodes=None,
        min_samples_leaf=1,
        l2_regularization=m.reg_lambda,
        max_bins=255,
        monotonic_cst=list(params.monotone),
        early_stopping=False,
        random_state=cfg.seed,
    )
    model.fit(layout.bin_index(x), y, sample_weight=np.where(y == 1, weighted, 1.0))
    correction = prior_correction(cfg.imbalance.method, pos_weight, private=cfg.dp.mode != "off")

    def predict(rows: np.ndarray) -> np.ndarray:
        margin = model.decision_function(layout.bin_index(rows)) - correction
        return 1.0 / (1.0 + np.exp(-margin))

    return predict
