"""Reason codes of a tree ensemble: per-tree path contributions, and the credit outputs.

Along a row's path through one tree, every split moves the node value (learning rate times
the node's weight) from the parent's to the child's; that step is credited to the split's
feature (Saabas). Summed over trees, a row's log-odds is exactly

    margin(x) = base + sum of the root values + sum over features of their contributions,

so the contributions say which characteristics move this borrower's score away from the
ensemble's root (the federation's average). One-hot columns of one characteristic are summed
into that characteristic, as for the logistic model (:mod:`fl_credit.credit.reason_codes`).
"""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord

from fl_credit.boosting.tree import TreeEnsemble
from fl_credit.credit.reason_codes import reason_frequency, top_reasons, variable_of
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer

REASONS = 3


def path_contributions(ensemble: TreeEnsemble, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-row, per-feature contributions ``(n, features)`` and the rows' common offset
    (base plus root values); each row sums with the offset to its log-odds."""
    x = np.asarray(x, dtype=np.float64)
    contrib = np.zeros(x.shape)
    offset = ensemble.base
    rows = np.arange(len(x))
    for tree in ensemble.trees:
        value = np.asarray(tree.value)
        offset += value[0]
        node = np.zeros(len(x), dtype=np.int64)
        for _ in range(tree.depth()):
            feature = np.asarray(tree.feature)[node]
            inner = feature >= 0
            if not inner.any():
                break
            f = feature[inner]
            threshold = np.asarray(tree.threshold)[node[inner]]
            left = x[rows[inner], f] < threshold
            child = np.where(
                left, np.asarray(tree.left)[node[inner]], np.asarray(tree.right)[node[inner]]
            )
            np.add.at(contrib, (rows[inner], f), value[child] - value[node[inner]])
            node[inner] = child
    return contrib, float(offset)


def grouped(contrib: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Contributions summed per characteristic (one-hot columns together)."""
    variables = list(dict.fromkeys(variable_of(name) for name in names))
    index = np.array([variables.index(variable_of(name)) for name in names])
    out = np.zeros((contrib.shape[0], len(variables)))
    np.add.at(out.T, index, contrib.T)
    return out, variables


def reason_codes(
    x: np.ndarray, ensemble: TreeEnsemble, names: list[str], k: int = REASONS
) -> list[list[tuple[str, float]]]:
    """Top-``k`` characteristics raising each row's risk (positive contributions only)."""
    contrib, _ = path_contributions(ensemble, x)
    per_variable, variables = grouped(contrib, names)
    return top_reasons(per_variable, variables, k)


def gbm_credit_outputs(
    prepared: Prepared, arrays: ArrayRecord, scaler: Standardizer, threshold: float
) -> dict:
    """``metrics.json``'s ``credit`` for a tree ensemble: PSI, feature histograms and the
    reason-code summary (odds ratios are a logistic model's and are left out)."""
    from fl_credit.credit.outputs import stability_report

    ensemble = TreeEnsemble.from_arrays(arrays)
    names = prepared.feature_names
    scores = ensemble.predict_proba(prepared.x_test)
    flagged = prepared.x_test[scores >= threshold]
    stability = stability_report(prepared, arrays, scaler)
    return {
        "feature_histograms": stability.pop("feature_histograms"),
        "psi": stability,
        "reason_codes": {
            "reference": "per-tree path contributions (Saabas) from each tree's root value",
            "k": REASONS,
            "flagged_rows": int(len(flagged)),
            "first_reason_flagged": reason_frequency(reason_codes(flagged, ensemble, names)),
        },
    }
