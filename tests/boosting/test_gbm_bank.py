"""What a coordinator can make a bank reveal through ``query.gbm``, and the bank's own checks.

The attack: a coordinator grows a tree of its own making whose node holds one known borrower
(a bin on the agreed grid with a single row of the bank), and reads the borrower's label off
the node's gradient sum (``g = w (0.5 - y)`` at log-odds 0). With the bank's floor off the
attack succeeds; with the floor on the bank sends zeros for that node and its sibling.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, RecordDict

from fl_credit.boosting.bank import FINISHED, NODES, level_reply
from fl_credit.boosting.binning import Layout, agreed_layout
from fl_credit.boosting.histogram import split_level
from fl_credit.boosting.tree import Tree, TreeEnsemble
from fl_credit.config.errors import DataError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.woe import grid_to_lists
from fl_credit.data.prepare import prepare
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.model.imbalance import positive_weight
from fl_credit.protocol.settings import BankSettings

NO_FLOOR = {"gbm-min-child-hessian": 0.0, "gbm-min-child-rows": 0}


@pytest.fixture(scope="module")
def bank():
    prepared = prepare(ExperimentConfig())
    data = prepared.banks["bank_0"]
    scaler = pooled_standardizer(data.x_train)  # the standardiser this bank holds
    return data, scaler, agreed_layout(scaler, prepared.bounds, 50)


def request(layout: Layout, trees: list[Tree], nodes: list[int]) -> RecordDict:
    config = ConfigRecord(
        {**BankSettings().to_config(), **grid_to_lists(list(layout.edges))}
        | {FINISHED: len(trees) - 1, NODES: nodes}
    )
    return RecordDict({"config": config, "arrays": TreeEnsemble(0.0, trees).to_arrays()})


def isolating_tree(data, layout: Layout) -> tuple[Tree, int, int]:
    """A depth-2 tree whose node 3 holds exactly one of the bank's rows (a single-row bin)."""
    bins = layout.bin_index(data.x_train)
    for j in range(bins.shape[1]):
        values, counts = np.unique(bins[:, j], return_counts=True)
        for b, c in zip(values, counts, strict=True):
            if c == 1 and b > 0:
                tree = Tree()
                tree.add_node(0, 0, 0)
                tree.split(0, j, int(b), layout.threshold(j, int(b)))  # left: bins <= b
                tree.add_node(0, 0, 0)
                tree.add_node(0, 0, 0)
                tree.split(1, j, int(b) - 1, layout.threshold(j, int(b) - 1))
                tree.add_node(0, 0, 0)  # node 3: bins <= b - 1
                tree.add_node(0, 0, 0)  # node 4: bin b alone, one row
                return tree, 4, int(np.flatnonzero(bins[:, j] == b)[0])
    raise AssertionError("no single-row bin")


def reply(data, scaler, content, node_config):
    pos_weight = positive_weight(data.y_train)
    return level_reply(content, data, scaler, pos_weight, BankSettings(), node_config)


def test_without_a_floor_a_one_row_node_gives_the_label_away(bank):
    data, scaler, layout = bank
    tree, node, row = isolating_tree(data, layout)
    vector = reply(data, scaler, request(layout, [tree], [node]), NO_FLOOR)
    hist, _ = split_level(vector, 1, layout)
    g, h, rows = hist[0][: layout.bins_of(0)].sum(axis=0)
    assert rows == 1
    assert (1 if g < 0 else 0) == data.y_train[row]  # the attack succeeds


def test_the_bank_floor_withholds_the_node_and_its_sibling(bank):
    data, scaler, layout = bank
    tree, node, _ = isolating_tree(data, layout)
    for asked in ([node], [3], [3, node]):
        vector = reply(data, scaler, request(layout, [tree], asked), {})  # the bank's defaults
        hist, loss = split_level(vector, len(asked), layout)
        assert not hist.any()  # nothing of either child leaves the bank
        assert loss[1] > 0  # the validation loss terms are still sent


def test_the_floor_comes_from_the_bank_not_the_message(bank):
    data, scaler, layout = bank
    tree, node, _ = isolating_tree(data, layout)
    content = request(layout, [tree], [node])
    content["config"]["gbm-min-child-rows"] = 0  # a coordinator's attempt to lower it
    content["config"]["gbm-min-child-hessian"] = 0.0
    hist, _ = split_level(reply(data, scaler, content, {}), 1, layout)
    assert not hist.any()


def test_a_grid_other_than_the_agreed_one_is_refused(bank):
    data, scaler, layout = bank
    edges = list(layout.edges)
    edges[0] = np.r_[-np.inf, np.sort(data.x_train[:3, 0]) + 1e-9, np.inf]  # edges at rows
    root = Tree()
    root.add_node(0, 0, 0)
    with pytest.raises(DataError, match="not the agreed one"):
        reply(data, scaler, request(Layout(tuple(edges)), [root], [0]), {})


def test_a_tree_deeper_than_the_bank_allows_is_refused(bank):
    data, scaler, layout = bank
    tree = Tree()
    tree.add_node(0, 0, 0)
    for node in range(3):  # a chain of three splits: depth 3
        tree.split(2 * node, 0, 10 + node, layout.threshold(0, 10 + node))
        tree.add_node(0, 0, 0)
        tree.add_node(0, 0, 0)
    with pytest.raises(DataError, match="deeper"):
        reply(data, scaler, request(layout, [tree], [6]), {"gbm-max-depth": 2})


def test_only_open_nodes_of_the_tree_may_be_asked(bank):
    data, scaler, layout = bank
    tree, _, _ = isolating_tree(data, layout)
    with pytest.raises(DataError, match="not an open node"):
        reply(data, scaler, request(layout, [tree], [1]), NO_FLOOR)  # an inner node
