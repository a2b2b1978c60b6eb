"""Reason codes: which characteristics push one borrower's score towards default.

For a logistic model the log-odds of default is a sum of one term per feature, so each
borrower's score decomposes exactly into contributions relative to a reference borrower::

    logit(x) - logit(reference) = sum_j w_j * (x_j - reference_j) / std_j

The reference is the federation's mean borrower (the standardiser's mean, known to the server
without any row). A positive contribution raises the predicted default risk. One-hot columns
of the same characteristic (``purpose=car``, ``purpose=wedding``, ...) are summed into one
contribution of that characteristic, which is what an adverse-action notice names.
"""

from __future__ import annotations

import numpy as np


def variable_of(feature: str) -> str:
    """The characteristic an encoded feature belongs to (``purpose`` for ``purpose=car``)."""
    return feature.split("=", 1)[0]


def contributions(
    x: np.ndarray,
    weights: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    names: list[str],
) -> tuple[np.ndarray, list[str]]:
    """Per-borrower log-odds contributions of each characteristic, relative to the mean.

    Parameters
    ----------
    x : numpy.ndarray
        Unscaled rows, shape ``(n, d)``, in model feature order.
    weights : numpy.ndarray
        Weights on standardised features, shape ``(d,)``.
    mean, std : numpy.ndarray
        The standardiser (the mean is the reference borrower).
    names : list of str
        Encoded feature names in model order.

    Returns
    -------
    tuple of (numpy.ndarray, list of str)
        Contributions, shape ``(n, k)`` with one column per characteristic, and the
        characteristics' names (in order of first appearance). Each row sums to
        ``logit(x) - logit(mean)``.
    """
    per_feature = (np.asarray(x, dtype=np.float64) - mean) / std * np.ravel(weights)
    variables = list(dict.fromkeys(variable_of(name) for name in names))
    index = np.array([variables.index(variable_of(name)) for name in names])
    grouped = np.zeros((per_feature.shape[0], len(variables)))
    np.add.at(grouped.T, index, per_feature.T)
    return grouped, variables


def top_reasons(contrib: np.ndarray, variables: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` characteristics raising each borrower's risk most (positive contributions only).

    Ties are broken by the characteristic's position (stable sort), so the result is
    deterministic.
    """
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    out = []
    for row, idx in zip(contrib, order, strict=True):
        out.append([(variables[j], float(row[j])) for j in idx if row[j] > 0])
    return out


def reason_frequency(reasons: list[list[tuple[str, float]]]) -> dict[str, int]:
    """How often each characteristic is the first reason, most frequent first."""
    counts: dict[str, int] = {}
    for row in reasons:
        if row:
            counts[row[0][0]] = counts.get(row[0][0], 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
