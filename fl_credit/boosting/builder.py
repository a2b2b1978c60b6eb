"""Level-wise histogram boosting over any source of summed histograms.

The same code grows the federated trees (the source is a secure sum over banks,
:mod:`fl_credit.boosting.federated`) and the pooled reference (the source sums the pooled
rows, :mod:`fl_credit.boosting.pooled`): given equal sums, the trees are equal.

Per tree: one exchange per level of splits. The first exchange of a tree asks for the root's
histogram and, in the same vector, the validation loss of the trees finished so far (early
stopping); each later one asks for the histograms of the nodes opened by the level before.
Nodes at the maximal depth, and nodes without a split of positive gain, become leaves with
the weight of their sums. One last loss-only exchange scores the final ensemble.

Early stopping: the ensemble kept is the one with the lowest validation loss; training stops
once ``patience`` trees in a row have not lowered it by more than a relative ``min_delta``
(``patience=0``: never stops early). Under DP the validation loss is not released: every
tree is grown and kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fl_credit.boosting.binning import Layout
from fl_credit.boosting.histogram import split_level
from fl_credit.boosting.splits import TreeParams, best_split, tree_features, weight
from fl_credit.boosting.tree import Tree, TreeEnsemble

Source = Callable[[TreeEnsemble, Tree, list[int]], np.ndarray]
"""``source(finished_trees, partial_tree, nodes)``: the summed level vector."""
OPEN = (-np.inf, np.inf)


@dataclass
class BoostResult:
    """The kept ensemble and how training went."""

    ensemble: TreeEnsemble
    val_losses: list[float] = field(default_factory=list)
    """Validation loss (weighted mean) after 0, 1, 2, ... trees."""
    best_trees: int = 0
    trees_grown: int = 0
    exchanges: int = 0
    tree_seconds: list[float] = field(default_factory=list)
    stopped_early: bool = False
    withheld_nodes: int = 0
    """Nodes made leaves because a bank withheld its sums (its own floor)."""


def grow_tree(
    source: Source,
    finished: TreeEnsemble,
    root_hist: np.ndarray,
    layout: Layout,
    params: TreeParams,
    noised: bool = False,
) -> tuple[Tree, int, int]:
    """One tree from the root histogram; returns it, the exchanges it took after the root and
    how many nodes were withheld.

    A node whose histogram holds fewer rows than its parent's split gave it was withheld by
    a bank (:mod:`fl_credit.boosting.bank`): it becomes a leaf (its weight is from the
    parent's complete sums) rather than being split on part of its rows. With ``noised``
    sums (DP) no bank withholds a node, and a node's totals are taken from its own histogram
    (:func:`node_totals`)."""
    lam, lr = params.reg_lambda, params.learning_rate
    features = tree_features(params, len(finished.trees), len(layout.edges))
    tree = Tree()
    seg = node_totals(root_hist, layout, noised, features)
    totals = {0: (float(seg[0]), float(seg[1]), float(seg[2]))}
    bounds = {0: OPEN}
    tree.add_node(lr * float(weight(seg[0], seg[1], lam, OPEN)), seg[1], seg[2])
    open_nodes, hist, exchanges, withheld = [0], root_hist[None], 0, 0
    for depth in range(params.depth):
        opened = []
        for k, node in enumerate(open_nodes):
            own = node_totals(hist[k], layout, noised, features)
            if noised:
                totals[node] = (float(own[0]), float(own[1]), float(own[2]))
            elif abs(own[2] - totals[node][2]) > 0.5:
                withheld += 1
                continue
            split = best_split(hist[k], totals[node], bounds[node], layout, params, features)
            if split is None:
                continue
            tree.split(node, split.feature, split.bin, layout.threshold(split.feature, split.bin))
            for child, (g, h, c), b in (
                (tree.left[node], split.left, split.left_bounds),
                (tree.right[node], split.right, split.right_bounds),
            ):
                tree.add_node(lr * float(weight(g, h, lam, b)), h, c)
                totals[child], bounds[child] = (g, h, c), b
                opened.append(child)
        if not opened or depth + 1 >= params.depth:
            break
        hist, _ = split_level(source(finished, tree, opened), len(opened), layout)
        open_nodes, exchanges = opened, exchanges + 1
    return tree, exchanges, withheld


def node_totals(
    hist: np.ndarray, layout: Layout, noised: bool, features: np.ndarray | None = None
) -> np.ndarray:
    """A node's ``(G, H, rows)`` from its ``(total bins, 3)`` histogram: every feature's bins
    sum to them (only the tree's ``features`` are sent when it samples them). Exact sums: the
    first feature's. Noised sums: the mean over the features, whose noise is independent, so
    its variance is divided by the number of features."""
    per_feature = np.add.reduceat(hist, layout.offsets[:-1], axis=0)
    if features is not None:
        per_feature = per_feature[features]
    return per_feature.mean(axis=0) if noised else per_feature[0]


def boost(
    source: Source,
    layout: Layout,
    params: TreeParams,
    *,
    base: float,
    trees: int,
    patience: int,
    min_delta: float,
    after_tree: Callable[[int, TreeEnsemble], None] | None = None,
    noised: bool = False,
) -> BoostResult:
    """Boost up to ``trees`` trees from log-odds ``base`` (see the module docstring).

    ``after_tree(count, ensemble)`` is called after each tree (history, test metrics);
    ``noised``: the source's sums carry DP noise (:func:`grow_tree`) and hold no validation
    loss (it is not released under DP): every tree is grown and kept, no loss-only exchange.
    """
    ensemble = TreeEnsemble(base)
    result = BoostResult(ensemble)
    best_loss = np.inf
    for t in range(trees if noised else trees + 1):
        started = time.perf_counter()
        nodes = [0] if t < trees else []
        vector = source(ensemble, _root(), nodes)
        result.exchanges += 1
        hist, loss = split_level(vector, len(nodes), layout)
        val_loss = np.nan if noised else float(loss[0] / max(loss[1], 1e-300))
        result.val_losses.append(val_loss)
        if noised:
            pass
        elif val_loss < best_loss - min_delta * abs(best_loss) or t == 0:
            best_loss, result.best_trees = val_loss, t
        elif patience and t - result.best_trees >= patience:
            result.stopped_early = True
            break
        if t == trees:
            break
        tree, exchanges, withheld = grow_tree(source, ensemble, hist[0], layout, params, noised)
        result.exchanges += exchanges
        result.withheld_nodes += withheld
        ensemble = TreeEnsemble(base, [*ensemble.trees, tree])
        result.trees_grown += 1
        result.tree_seconds.append(time.perf_counter() - started)
        if after_tree is not None:
            after_tree(len(ensemble.trees), ensemble)
    if noised:
        result.best_trees = result.trees_grown
    result.ensemble = TreeEnsemble(base, ensemble.trees[: result.best_trees])
    return result


def _root() -> Tree:
    tree = Tree()
    tree.add_node(0.0, 0.0, 0.0)
    return tree
