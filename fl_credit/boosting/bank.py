"""A bank's answer to ``query.gbm``, with the checks it makes on its own.

The bank recomputes everything from its own rows and what it can verify:

- the grid must be the agreed one of the standardiser the bank holds
  (:func:`fl_credit.woe.check_agreed_grid`): a coordinator free to place edges could cut a
  bin around one known borrower;
- the tree it is asked about may be at most as deep as the bank's own limit
  (``gbm-max-depth`` in the bank's node config, default :data:`MAX_DEPTH`), and the nodes
  asked must be open nodes of that tree;
- a floor on what a node reveals (``gbm-min-child-hessian`` in the bank's node config,
  default :data:`MIN_CHILD_HESSIAN`): the bank sends zeros for a node, instead of its sums,
  when its own rows in that node, or in the node's sibling, weigh more than nothing but less
  than the floor in Hessian. Without the sibling rule, the parent's sums minus one child's
  would give the other child's. The floor is the bank's own setting, never a value from the
  message. An honest run whose nodes all clear the floor at every bank is unchanged (and
  equals the pooled trees); a node withheld by a bank only loses that bank's rows.
"""

from __future__ import annotations

import numpy as np
from flwr.app import RecordDict

from fl_credit.bank_settings import BankSettings
from fl_credit.boosting.binning import Layout
from fl_credit.boosting.histogram import level_vector, node_hessians, party_rows
from fl_credit.boosting.tree import Tree, TreeEnsemble
from fl_credit.data.bank_file import BankData
from fl_credit.data.scaling import Standardizer
from fl_credit.errors import DataError
from fl_credit.woe import check_agreed_grid, grid_from_lists

MAX_DEPTH = 6
MIN_CHILD_HESSIAN = 1.0
FINISHED = "gbm-finished"
NODES = "gbm-nodes"


def bank_limits(node_config) -> tuple[int, float]:
    """The bank's own depth limit and Hessian floor (node config, else the defaults)."""
    depth = int(node_config.get("gbm-max-depth", MAX_DEPTH))
    floor = float(node_config.get("gbm-min-child-hessian", MIN_CHILD_HESSIAN))
    return depth, floor


def checked_request(
    content: RecordDict, scaler: Standardizer, names: list[str], max_depth: int
) -> tuple[Layout, TreeEnsemble, Tree, list[int]]:
    """The grid, finished trees, tree being grown and nodes asked, once checked.

    Raises
    ------
    DataError
        When the grid is not the agreed one, the tree is deeper than the bank allows, or a
        node asked is not an open node of the tree.
    """
    config = content["config"]
    try:
        edges = grid_from_lists(config)
        check_agreed_grid(edges, scaler.mean, scaler.std, names)
        ensemble = TreeEnsemble.from_arrays(content["arrays"])
        finished = int(config[FINISHED])
        nodes = [int(n) for n in config[NODES]]
    except (KeyError, ValueError) as err:
        raise DataError(f"boosting query refused: {err}") from None
    layout = Layout(tuple(edges))
    if finished != len(ensemble.trees) - 1:
        raise DataError("boosting query refused: no tree being grown")
    partial = ensemble.trees[-1]
    for tree in ensemble.trees:
        check_tree(tree, layout, max_depth)
    if len(set(nodes)) != len(nodes) or any(
        not 0 <= n < len(partial.value) or partial.feature[n] >= 0 for n in nodes
    ):
        raise DataError("boosting query refused: a node asked is not an open node of the tree")
    return layout, TreeEnsemble(ensemble.base, ensemble.trees[:-1]), partial, nodes


def check_tree(tree: Tree, layout: Layout, max_depth: int) -> None:
    """Refuse a tree deeper than ``max_depth`` or splitting outside the grid."""
    size = len(tree.value)
    for node, feature in enumerate(tree.feature):
        if feature < 0:
            continue
        bad_split = not (
            feature < len(layout.edges) and 0 <= tree.bin[node] < layout.bins_of(feature)
        )
        bad_child = not (node < tree.left[node] < size and node < tree.right[node] < size)
        if bad_split or bad_child:
            raise DataError("boosting query refused: a split is not on the agreed grid")
    if tree.depth() > max_depth:
        raise DataError(f"boosting query refused: a tree deeper than this bank's {max_depth}")


def kept_nodes(own: np.ndarray, partial: Tree, nodes: list[int], floor: float) -> np.ndarray:
    """Per asked node: False when it or its sibling holds a non-zero own Hessian below
    ``floor`` (module docstring)."""
    sibling = {}
    for lo, hi in zip(partial.left, partial.right, strict=True):
        if lo >= 0:
            sibling[lo], sibling[hi] = hi, lo

    def small(node: int) -> bool:
        return 0.0 < own[node] < floor

    return np.array([not small(n) and not (n in sibling and small(sibling[n])) for n in nodes])


def level_reply(
    content: RecordDict,
    bank: BankData,
    scaler: Standardizer,
    pos_weight: float,
    settings: BankSettings,
    node_config,
) -> np.ndarray:
    """This bank's summable vector for one ``query.gbm`` (module docstring)."""
    if settings.dp_mode != "off":
        raise DataError(f"model=gbm has no dp={settings.dp_mode} release; use dp=off")
    max_depth, floor = bank_limits(node_config)
    names = list(bank.feature_names)
    layout, finished, partial, nodes = checked_request(content, scaler, names, max_depth)
    weighted = pos_weight if settings.imbalance == "class_weight" else 1.0
    rows = party_rows(bank.x_train, bank.y_train, bank.x_val, bank.y_val, layout, weighted)
    keep = kept_nodes(node_hessians(rows, finished, partial), partial, nodes, floor)
    return level_vector(rows, finished, partial, nodes, layout, keep)
