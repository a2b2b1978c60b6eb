"""One party's share of a tree level: gradient and Hessian sums per node, feature and bin.

The objective is the class-weighted binary log loss on the log-odds ``m``: a row with label
``y`` and weight ``s`` (the federation's class weight for defaults, 1 for repaid loans) has
gradient ``g = s (sigmoid(m) - y)`` and Hessian ``h = s sigmoid(m) (1 - sigmoid(m))``.

For the nodes asked for, in order, the vector holds for every feature's bins on the agreed
grid the triple ``(sum g, sum h, rows)``, then two numbers for early stopping: the weighted
log loss summed over the party's validation rows under the finished trees, and their summed
weight. Every entry is a plain sum over rows, so the federation's vector is the sum of the
banks' vectors (through secure aggregation) and equals the pooled one. The pooled reference
(:mod:`fl_credit.boosting.pooled`) calls the same function on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.boosting.binning import Layout
from fl_credit.boosting.tree import Tree, TreeEnsemble, leaf_of_binned, sigmoid

STATS = 3  # sum g, sum h, rows
LOSS_TERMS = 2


@dataclass(frozen=True)
class PartyRows:
    """One party's rows as bin indices on the agreed grid, labels and row weights."""

    bins: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    val_bins: np.ndarray
    val_y: np.ndarray
    val_weight: np.ndarray


def row_weights(y: np.ndarray, pos_weight: float) -> np.ndarray:
    """``pos_weight`` for defaults, 1 for repaid loans."""
    return np.where(np.asarray(y) == 1, float(pos_weight), 1.0)


def party_rows(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    layout: Layout,
    pos_weight: float,
) -> PartyRows:
    """Bin a party's training and validation rows and weigh them."""
    return PartyRows(
        bins=layout.bin_index(x),
        y=np.asarray(y, dtype=np.float64),
        weight=row_weights(y, pos_weight),
        val_bins=layout.bin_index(x_val),
        val_y=np.asarray(y_val, dtype=np.float64),
        val_weight=row_weights(y_val, pos_weight),
    )


def gradients(margin: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted log-loss gradient and Hessian at log-odds ``margin``."""
    p = sigmoid(margin)
    return weight * (p - y), weight * p * (1.0 - p)


def weighted_log_loss(margin: np.ndarray, y: np.ndarray, weight: np.ndarray) -> float:
    """Sum of ``weight * log loss`` (computed from the log-odds, no clipping needed)."""
    loss = np.logaddexp(0.0, margin) - y * margin
    return float(np.sum(weight * loss))


def node_histogram(
    bins: np.ndarray, g: np.ndarray, h: np.ndarray, in_node: np.ndarray, layout: Layout
) -> np.ndarray:
    """``(total bins, 3)``: sums of g, h and rows per feature and bin over the rows in a node."""
    flat = (bins[in_node] + layout.offsets[:-1]).ravel()
    d = bins.shape[1]
    out = np.zeros((layout.total, STATS))
    out[:, 0] = np.bincount(flat, np.repeat(g[in_node], d), minlength=layout.total)
    out[:, 1] = np.bincount(flat, np.repeat(h[in_node], d), minlength=layout.total)
    out[:, 2] = np.bincount(flat, minlength=layout.total)
    return out


def level_vector(
    rows: PartyRows,
    ensemble: TreeEnsemble,
    partial: Tree,
    nodes: list[int],
    layout: Layout,
    keep: np.ndarray | None = None,
    with_loss: bool = True,
    features: list[int] | None = None,
) -> np.ndarray:
    """This party's vector for one level (see the module docstring).

    ``keep``: per asked node, False to send zeros for it (a bank's own floor on what a node
    reveals, :mod:`fl_credit.boosting.bank`); all True when omitted. ``with_loss``: False
    sends zeros for the two loss terms (under DP, :mod:`fl_credit.boosting.privacy`).
    ``features``: only these features' bins are filled, the others are zeros (a tree that
    samples features); all when None.
    """
    margin = ensemble.margin_binned(rows.bins)
    g, h = gradients(margin, rows.y, rows.weight)
    node_of_row = leaf_of_binned(partial, rows.bins) if nodes else np.zeros(0, dtype=int)
    unused = np.zeros(layout.total, dtype=bool)
    if features is not None:
        unused[:] = True
        for j in features:
            unused[layout.offsets[j] : layout.offsets[j + 1]] = False
    parts = []
    for k, node in enumerate(nodes):
        if keep is not None and not keep[k]:
            parts.append(np.zeros((layout.total, STATS)))
        else:
            hist = node_histogram(rows.bins, g, h, node_of_row == node, layout)
            hist[unused] = 0.0
            parts.append(hist)
    loss = [0.0, 0.0]
    if with_loss:
        val_margin = ensemble.margin_binned(rows.val_bins)
        loss = [weighted_log_loss(val_margin, rows.val_y, rows.val_weight), rows.val_weight.sum()]
    return np.concatenate([np.concatenate(parts).ravel() if parts else np.zeros(0), loss])


def node_weights(rows: PartyRows, ensemble: TreeEnsemble, partial: Tree) -> np.ndarray:
    """This party's summed Hessian and row count in every node of the partial tree (leaves
    and inner nodes), shape ``(nodes, 2)``."""
    margin = ensemble.margin_binned(rows.bins)
    _, h = gradients(margin, rows.y, rows.weight)
    node_of_row = leaf_of_binned(partial, rows.bins)
    size = len(partial.value)
    own = np.stack(
        [np.bincount(node_of_row, h, minlength=size), np.bincount(node_of_row, minlength=size)],
        axis=1,
    ).astype(np.float64)
    for node in range(size - 1, -1, -1):  # inner nodes: the sum of their children
        if partial.left[node] >= 0:
            own[node] = own[partial.left[node]] + own[partial.right[node]]
    return own


def split_level(vector: np.ndarray, count: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Undo :func:`level_vector`: ``(count, total bins, 3)`` histograms and the 2 loss terms."""
    vector = np.asarray(vector, dtype=np.float64)
    hist = vector[: count * layout.total * STATS].reshape(count, layout.total, STATS)
    return hist, vector[count * layout.total * STATS :]
