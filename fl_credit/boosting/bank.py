"""A bank's answer to ``query.gbm``, with the checks it makes on its own.

The bank recomputes everything from its own rows and what it can verify:

- the grid must be the agreed one of the standardiser the bank holds
  (:func:`fl_credit.credit.woe.check_agreed_grid`): a coordinator free to place edges could cut a
  bin around one known borrower;
- the tree it is asked about may be at most as deep as the bank's own limit
  (``gbm-max-depth`` in the bank's node config, default :data:`MAX_DEPTH`), and the nodes
  asked must be open nodes of that tree;
- a floor on what a node reveals (``gbm-min-child-rows`` and ``gbm-min-child-hessian`` in
  the bank's node config, defaults :data:`MIN_CHILD_ROWS` and :data:`MIN_CHILD_HESSIAN`):
  the bank sends zeros for a node, instead of its sums, when its own rows in that node, or
  in the node's sibling, are more than none but fewer than the row floor, or weigh less than
  the Hessian floor (a minimum child weight on the bank's own rows). Without the sibling
  rule, the parent's sums minus one child's would give the other child's. The floor is the
  bank's own setting, never a value from the message (in simulation: the banks' folder,
  :data:`LIMITS_FILE`). An honest run whose nodes all clear every bank's floor is unchanged
  (and equals the pooled trees); the coordinator sees that a node was withheld (its
  histogram holds fewer rows than its parent's split gave it) and makes it a leaf.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flwr.app import RecordDict

from fl_credit.bank.floors import OWN_MAX_EPSILON
from fl_credit.boosting.binning import Layout
from fl_credit.boosting.histogram import level_vector, node_weights, party_rows
from fl_credit.boosting.privacy import dp_tree_refusal
from fl_credit.boosting.tree import Tree, TreeEnsemble
from fl_credit.config.errors import DataError
from fl_credit.credit.woe import check_agreed_grid, grid_from_lists
from fl_credit.data.bank_file import BankData
from fl_credit.data.scaling import Standardizer
from fl_credit.protocol.settings import BankSettings

MAX_DEPTH = 6
MIN_CHILD_HESSIAN = 1.0
MIN_CHILD_ROWS = 10
FINISHED = "gbm-finished"
NODES = "gbm-nodes"
FEATURES = "gbm-features"


LIMITS_FILE = "bank_limits.json"
"""Simulation: the simulated banks' own limits, in their folder (like their data files)."""


def bank_limits(node_config, bank_dir: str = "") -> tuple[int, tuple[float, float]]:
    """The bank's own depth limit and its (Hessian, rows) floor: its node config
    (``gbm-max-depth``, ``gbm-min-child-hessian``, ``gbm-min-child-rows``), else, in
    simulation, :data:`LIMITS_FILE` in the banks' folder, else the defaults."""
    own = dict(node_config)
    path = Path(bank_dir) / LIMITS_FILE if bank_dir else None
    if path is not None and path.is_file():
        own = {**json.loads(path.read_text()), **own}
    depth = int(own.get("gbm-max-depth", MAX_DEPTH))
    hessian = float(own.get("gbm-min-child-hessian", MIN_CHILD_HESSIAN))
    rows = float(own.get("gbm-min-child-rows", MIN_CHILD_ROWS))
    return depth, (hessian, rows)


def write_limits(bank_dir: Path, min_hessian: float, min_rows: int) -> Path:
    """Simulation: write the simulated banks' own floors into their folder."""
    path = Path(bank_dir) / LIMITS_FILE
    limits = {"gbm-min-child-hessian": float(min_hessian), "gbm-min-child-rows": int(min_rows)}
    path.write_text(json.dumps(limits))
    return path


def requested_features(config, features: int) -> list[int]:
    """The features the tree being grown may split on (all when the request names none).

    Raises
    ------
    DataError
        When the list is empty, repeats a feature or names one the grid does not have.
    """
    if FEATURES not in config:
        return list(range(features))
    asked = [int(j) for j in config[FEATURES]]
    if not asked or len(set(asked)) != len(asked) or not all(0 <= j < features for j in asked):
        raise DataError("boosting query refused: the features asked are not features of the grid")
    return sorted(asked)


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


def kept_nodes(
    own: np.ndarray, partial: Tree, nodes: list[int], floor: tuple[float, float]
) -> np.ndarray:
    """Per asked node: False when it or its sibling holds some of the bank's rows but fewer
    than the row floor or less Hessian than the Hessian floor (module docstring); ``own`` is
    :func:`~fl_credit.boosting.histogram.node_weights`."""
    sibling = {}
    for lo, hi in zip(partial.left, partial.right, strict=True):
        if lo >= 0:
            sibling[lo], sibling[hi] = hi, lo

    def small(node: int) -> bool:
        hessian, rows = own[node]
        return rows > 0 and (rows < floor[1] or hessian < floor[0])

    kept = [not small(n) and not (n in sibling and small(sibling[n])) for n in nodes]
    return np.array(kept, dtype=bool)


def default_weight(settings: BankSettings, pos_weight: float) -> float:
    """Row weight of a default: the federation's class weight, or 1 without class weights."""
    return pos_weight if settings.imbalance == "class_weight" else 1.0


def level_reply(
    content: RecordDict,
    bank: BankData,
    scaler: Standardizer,
    pos_weight: float,
    settings: BankSettings,
    node_config,
) -> np.ndarray:
    """This bank's summable vector for one ``query.gbm`` (module docstring).

    Under ``dp=opacus`` every asked node is sent and the validation loss is not: the vector
    then has the bounded sensitivity of :mod:`fl_credit.boosting.privacy`, and the caller
    adds the bank's noise share.
    """
    if settings.dp_mode not in ("off", "opacus"):
        raise DataError(f"model=gbm has no dp={settings.dp_mode} release; use dp=opacus or off")
    max_depth, floor = bank_limits(node_config, settings.bank_dir)
    names = list(bank.feature_names)
    layout, finished, partial, nodes = checked_request(content, scaler, names, max_depth)
    features = requested_features(content["config"], len(layout.edges))
    weighted = default_weight(settings, pos_weight)
    rows = party_rows(bank.x_train, bank.y_train, bank.x_val, bank.y_val, layout, weighted)
    if settings.dp_mode == "opacus":
        refusal = dp_tree_refusal(float(content["config"].get(OWN_MAX_EPSILON, 0.0)))
        if refusal:
            raise DataError(refusal)
        return level_vector(
            rows, finished, partial, nodes, layout, with_loss=False, features=features
        )
    keep = kept_nodes(node_weights(rows, finished, partial), partial, nodes, floor)
    return level_vector(rows, finished, partial, nodes, layout, keep, features=features)
