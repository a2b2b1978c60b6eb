"""Record-level DP for trees (``model=gbm`` under ``dp=opacus``): what one borrower changes.

Each tree level is one Gaussian release of the summed level vector
(:func:`fl_credit.boosting.histogram.level_vector`), with every bank adding its noise share
under secure aggregation (:mod:`fl_credit.bank.privacy`). The releases take the place of
DP-SGD's steps in the bank's privacy plan: a step at sample rate 1 per level, so the same
accountant composes them with the statistics and validation releases
(:meth:`fl_credit.protocol.settings.BankSettings.dp_settings`).

Sensitivity of one level, for add/remove-one-borrower adjacency. A borrower's row weight is
``w = s`` for a default (``s`` the class weight) and 1 for a repaid loan; the log-loss
gradient ``g = w (p - y)`` has ``|g| <= w`` and the Hessian ``h = w p (1 - p)`` lies in
``[0, w / 4]`` for every log-odds the coordinator's trees may give, so no clipping is needed.
The nodes asked in one level are distinct open leaves of the tree being grown, hence
disjoint: a training borrower lies in at most one of them and, in it, in exactly one bin per
feature, where it adds ``(g, h, 1)``. Over the ``d`` features sent (all of them, or the
``model.colsample`` the tree may split on; the others are zeros) its L2 contribution is at
most ``sqrt(d (S^2 + S^2 / 16 + 1))`` with ``S = max(s, 1)``. Validation rows add nothing:
under DP the loss terms are zeros (no early stopping; every tree is kept), so a level's
sensitivity is that of its training rows.

What DP replaces. A bank's exact floor on small nodes (:mod:`fl_credit.boosting.bank`)
decides from its own rows whether to send a node: one borrower can flip that decision and
move a whole node's sums, which no finite sensitivity covers. Under DP the bank sends every
asked node and the noise is what bounds a small node; the coordinator enforces
``min_child_weight`` on the noised Hessian and counts. A bank drops its floor only under its
own DP floor (:func:`dp_tree_refusal`).
"""

from __future__ import annotations

import math


def planned_levels(trees: int, depth: int) -> int:
    """Level releases of a DP run: at most ``depth`` per tree (no loss-only exchange)."""
    return int(trees) * int(depth)


def level_sensitivity(features: int, class_weight: float) -> float:
    """L2 sensitivity of one level vector to one borrower (module docstring).

    Parameters
    ----------
    features : int
        Features sent (each holds one bin per row).
    class_weight : float
        Row weight of a default (1 for repaid loans).

    Returns
    -------
    float
        ``sqrt(d (S^2 + S^2/16 + 1))`` with ``S = max(class_weight, 1)``.
    """
    s = max(float(class_weight), 1.0)
    return math.sqrt(int(features) * (s * s + (s / 4.0) ** 2 + 1.0))


def dp_tree_refusal(bank_max_epsilon: float) -> str | None:
    """Why a bank refuses a tree level under DP, or None.

    ``bank_max_epsilon`` is the bank's own DP floor (the largest epsilon it allows, as set
    by its floors mod; 0 when it requires no DP or sets no bound). Under DP the bank drops
    its exact floor on small nodes, so it does so only when its own floor bounds the noise:
    otherwise a coordinator could ask for DP at a vanishing noise and read a one-borrower
    node without the floor.
    """
    if not bank_max_epsilon > 0:
        return (
            "boosting query refused: a tree level under DP needs this bank's own DP floor "
            "(dp-required=opacus and dp-max-epsilon in its node config)"
        )
    return None
