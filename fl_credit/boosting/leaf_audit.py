"""The privacy audit's leaf-size check of a ``model=gbm`` run.

A leaf's value is a Newton step over the rows that reach it: a leaf over a handful of rows
says much about those borrowers' labels, to the coordinator (who picks the leaf values from
the summed sums) and to anyone holding the released trees. The check counts, with the
banks' own rows as ground truth, how many rows of the federation and of each bank reach
every leaf of the released ensemble (``model.json``), and flags leaves with fewer rows than
a floor, overall or for a bank that has rows there. It also compares each leaf's released
row count (``count`` in ``model.json``) with the true one: equal without DP; under DP the
gap is the noise on the released counts, which is what hides a small leaf's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fl_credit.boosting.tree import leaf_of_rows, load_json
from fl_credit.data.bank_file import BankData

FLOOR = 10


def leaf_sizes(model_path: Path, banks: dict[str, BankData], floor: int = FLOOR) -> dict:
    """Rows per leaf of every tree, overall and per bank, and the leaves below ``floor``.

    Returns
    -------
    dict
        ``leaves`` (count), ``smallest_leaf_rows``, ``smallest_bank_share`` (fewest rows
        one bank holds in a leaf where it holds any), ``small_leaves`` (leaves with fewer than
        ``floor`` rows overall) and ``small_bank_shares`` (leaf-bank pairs with 1 to
        ``floor - 1`` rows of that bank), ``largest_count_gap`` (largest difference between
        a leaf's released and true row counts) and the floor.
    """
    ensemble = load_json(model_path)
    total_leaves, smallest, smallest_share = 0, np.inf, np.inf
    small_leaves, small_shares, gap = 0, 0, 0.0
    for tree in ensemble.trees:
        counts = {
            name: np.bincount(leaf_of_rows(tree, bank.x_train), minlength=len(tree.value))
            for name, bank in banks.items()
        }
        for leaf in tree.leaves():
            total_leaves += 1
            per_bank = np.array([c[leaf] for c in counts.values()])
            rows = int(per_bank.sum())
            smallest = min(smallest, rows)
            gap = max(gap, abs(float(tree.count[leaf]) - rows))
            small_leaves += int(rows < floor)
            held = per_bank[per_bank > 0]
            if len(held):
                smallest_share = min(smallest_share, int(held.min()))
                small_shares += int(np.sum(held < floor))
    return {
        "floor": floor,
        "leaves": total_leaves,
        "smallest_leaf_rows": None if smallest == np.inf else int(smallest),
        "smallest_bank_share": None if smallest_share == np.inf else int(smallest_share),
        "small_leaves": small_leaves,
        "small_bank_shares": small_shares,
        "largest_count_gap": gap,
    }


def to_markdown(check: dict) -> list[str]:
    """The check as a few markdown lines."""
    return [
        "## Leaf sizes (model=gbm)",
        "",
        f"{check['leaves']} leaves; the smallest holds {check['smallest_leaf_rows']} training "
        f"rows; the fewest rows one bank holds in a leaf where it holds any: "
        f"{check['smallest_bank_share']}. Below {check['floor']} rows: {check['small_leaves']} "
        f"leaves overall, {check['small_bank_shares']} leaf-bank pairs. Largest gap between "
        f"a leaf's released and true row count: {check.get('largest_count_gap', 0.0):.1f} "
        "(0 without DP; under DP the noise on the released counts).",
        "",
    ]
