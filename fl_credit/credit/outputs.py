"""The credit outputs of a run's federated model: odds ratios, stability (PSI), reason codes.

:func:`federated_credit_outputs` is what ``metrics.json`` gets under ``credit``. It needs the
final weights and standardiser (the server has both) plus bin counts of scores and features.

Where the counts come from: every count here is produced by the bank-side functions of
:mod:`fl_credit.credit.psi` (:func:`~fl_credit.credit.psi.count_bins`,
:func:`~fl_credit.credit.psi.feature_counts`)
on one party's rows, on grids the server fixes without rows (equal score bins, feature bins
from the federation's mean and standard deviation). In this simulation the harness calls them
on each simulated bank's rows directly (:func:`bank_counts`): it holds every bank's rows anyway
to train the "bank alone" baselines. The federation's counts are sums over banks, which the
deployed federation computes through secure aggregation; each bank's PSI against the
federation is a function of the bank's own counts and that broadcast sum, so a bank can compute
it locally and reveal only the PSI. ``metrics.json`` states this under ``psi.source``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord

from fl_credit.credit.odds_ratios import odds_ratios
from fl_credit.credit.psi import (
    SMOOTHING,
    coarse_psi,
    count_bins,
    feature_counts,
    feature_edges,
    merge,
    score_edges,
    split_counts,
)
from fl_credit.credit.reason_codes import contributions, reason_frequency, top_reasons
from fl_credit.credit.woe import WoeFeatures
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer
from fl_credit.model.logistic import model_from_arrays, predict_proba

PSI_BINS = 10
SCORE_GRID = 200
REASONS = 3
PSI_SOURCE = (
    "simulation: bank-side bin counts computed by the harness on each bank's rows; "
    "federation = sum over banks"
)


@dataclass(frozen=True)
class Counts:
    """Score counts (on the score grid) and feature counts (concatenated) of one population."""

    scores: np.ndarray
    features: np.ndarray


def total(parts: list[Counts]) -> Counts:
    """Sum of several parties' counts (what a secure sum over banks returns)."""
    return Counts(
        np.sum([c.scores for c in parts], axis=0), np.sum([c.features for c in parts], axis=0)
    )


def model_parts(arrays: ArrayRecord) -> tuple[np.ndarray, float]:
    """Weights (on standardised features) and intercept of the logistic model."""
    state = arrays.to_torch_state_dict()
    return state["linear.weight"].numpy().ravel().astype(np.float64), float(state["linear.bias"])


def grids(names: list[str], scaler: Standardizer) -> list[np.ndarray]:
    """Each feature's agreed grid; ``column=value`` (one-hot) features are binary. Under
    ``features=woe`` the grid of the raw features, from the federation's standardiser."""
    if isinstance(scaler, WoeFeatures):
        scaler = scaler.standardizer
    return [
        feature_edges(float(m), float(s), "=" in name)
        for name, m, s in zip(names, scaler.mean, scaler.std, strict=True)
    ]


def bank_counts(x: np.ndarray, scores: np.ndarray, edges: list[np.ndarray]) -> Counts:
    """What one party counts on its own rows (the bank-side computation)."""
    return Counts(count_bins(scores, score_edges(SCORE_GRID)), feature_counts(x, edges))


def stability_report(
    prepared: Prepared, arrays: ArrayRecord, scaler: Standardizer, bins: int = PSI_BINS
) -> dict:
    """PSI of the federated model's scores and of every feature.

    Each bank's training rows against the federation's (all banks' training rows), and the
    federation's validation rows against the test rows. Coarse bins are deciles of the
    reference (federation, or validation) on the fine grid. Also returns, under
    ``feature_histograms``, the federation's summed counts of each numeric feature on its
    fine grid (the scorecard places its ranges at their quantiles).
    """
    model = model_from_arrays(arrays)
    names = prepared.feature_names
    edges = grids(names, scaler)

    def counts(x: np.ndarray) -> Counts:
        return bank_counts(x, predict_proba(model, scaler.transform(x)), edges)

    banks = {name: counts(bank.x_train) for name, bank in prepared.banks.items()}
    federation = total(list(banks.values()))
    validation = total([counts(bank.x_val) for bank in prepared.banks.values()])
    test = counts(prepared.x_test)

    def features_psi(reference: Counts, actual: Counts) -> dict[str, float]:
        ref, act = split_counts(reference.features, edges), split_counts(actual.features, edges)
        return {name: coarse_psi(r, a, bins)[0] for name, r, a in zip(names, ref, act, strict=True)}

    val_test, groups = coarse_psi(validation.scores, test.scores, bins)
    return {
        "feature_histograms": {
            name: {"inner_edges": e[1:-1].tolist(), "counts": c.tolist()}
            for name, e, c in zip(
                names, edges, split_counts(federation.features, edges), strict=True
            )
            if "=" not in name
        },
        "source": PSI_SOURCE,
        "bins": bins,
        "smoothing": SMOOTHING,
        "score": {
            "banks": {
                n: coarse_psi(federation.scores, c.scores, bins)[0] for n, c in banks.items()
            },
            "validation_vs_test": val_test,
            "validation_counts": merge(validation.scores, groups).tolist(),
            "test_counts": merge(test.scores, groups).tolist(),
        },
        "features": {
            "banks": {n: features_psi(federation, c) for n, c in banks.items()},
            "validation_vs_test": features_psi(validation, test),
        },
    }


def reason_codes(
    x: np.ndarray, arrays: ArrayRecord, scaler: Standardizer, names: list[str], k: int = REASONS
) -> tuple[list[list[tuple[str, float]]], list[str]]:
    """Top-``k`` reasons towards default for each row of ``x`` (unscaled), and the
    characteristics' names."""
    weights, _ = model_parts(arrays)
    mean, std = scaler.mean, scaler.std
    if isinstance(scaler, WoeFeatures):  # inputs are standardised WoE: relative to their mean
        x = scaler.transform(x).astype(np.float64)
        mean, std = np.zeros(len(weights)), np.ones(len(weights))
    contrib, variables = contributions(x, weights, mean, std, names)
    return top_reasons(contrib, variables, k), variables


def federated_credit_outputs(
    prepared: Prepared, arrays: ArrayRecord, scaler: Standardizer, threshold: float
) -> dict:
    """Odds ratios, PSI and a reason-code summary of the federated model (``metrics.json``).

    Parameters
    ----------
    prepared : Prepared
        The run's data (banks' rows for the counts, test rows for the reason codes).
    arrays : flwr.app.ArrayRecord
        The final federated weights.
    scaler : Standardizer
        The federation's standardiser.
    threshold : float
        The validation threshold (rows scored at or above it are flagged).

    Returns
    -------
    dict
        ``odds_ratios`` (see :func:`fl_credit.credit.odds_ratios.odds_ratios`), ``psi`` (see
        :func:`stability_report`), ``feature_histograms`` (summed fine-grid counts of each
        numeric feature) and ``reason_codes``: the reference, ``k``, and how often
        each characteristic is the first reason among the flagged test rows.
    """
    weights, bias = model_parts(arrays)
    names = prepared.feature_names
    scores = predict_proba(model_from_arrays(arrays), scaler.transform(prepared.x_test))
    flagged = prepared.x_test[scores >= threshold]
    reasons, _ = reason_codes(flagged, arrays, scaler, names)
    stability = stability_report(prepared, arrays, scaler)
    woe = isinstance(scaler, WoeFeatures)
    extra = {"woe": woe_summary(scaler)} if woe else {}
    return {
        **extra,
        "odds_ratios": odds_ratios(weights, scaler.mean, scaler.std, bias, names),
        "feature_histograms": stability.pop("feature_histograms"),
        "psi": stability,
        "reason_codes": {
            "reference": "federation mean of the WoE features (WoE standardiser mean)"
            if woe
            else "federation mean (standardiser mean)",
            "k": REASONS,
            "flagged_rows": int(len(flagged)),
            "first_reason_flagged": reason_frequency(reasons),
        },
    }


def woe_summary(features: WoeFeatures) -> dict:
    """``credit.woe``: per feature its information value, bin edges and WoE (largest IV
    first), fitted by the server on the banks' summed per-bin counts."""
    return {
        "source": "server: summed (noised under dp=opacus) default / repaid counts per fine bin",
        "features": features.table.describe(),
    }
