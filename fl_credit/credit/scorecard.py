"""Turn a run's federated logistic model into a points scorecard.

Usage::

    python -m fl_credit.scorecard RUN_DIR --pdo 20 --base-score 600 --base-odds 50

Scaling (points to double the odds): odds are good:bad, ``factor = pdo / ln 2`` and
``offset = base_score - factor * ln(base_odds)``, so a borrower's score is
``offset + factor * ln(odds_good) = offset - factor * logit(PD)``: ``base_score`` points at
odds ``base_odds``:1, and every ``pdo`` points more double the odds of repaying.

The model's log-odds are a sum over features, ``logit = b + sum_j beta_j * (x_j - mean_j)``
with ``beta_j = w_j / std_j`` on the original scale, so the score splits exactly into base
points (the federation's mean borrower: ``offset - factor * b``) plus one number of points
per characteristic, relative to that mean borrower:

- numeric characteristic: ``-factor * beta_j * (x - mean_j)``, linear in ``x``. The card lists
  ``--bins`` ranges. The server holds no rows, so the ranges come from sums: at quantiles of
  the federation's summed histogram of the feature on the agreed grid (``metrics.json``
  ``credit.feature_histograms``; fine bins are never split), or, without one, at normal
  quantiles ``mean + z * std`` from the standardiser. A range's points are those at its mean
  value; ``points_per_unit`` gives the exact points of any value. A count (a column the data
  dictionary lists as whole numbers) is cut on whole numbers: the cut between fine bins is
  rounded up, which splits whole numbers the same way, and ranges left with no whole number
  are dropped.
- categorical characteristic (one-hot columns ``col=cat``): one attribute per category,
  ``-factor * (beta_cat - sum_k beta_k * mean_k)``, plus ``(other)`` for a category outside
  the vocabulary (all columns 0).

WoE card (a run with ``features=woe``; ``model.pt`` holds the WoE table): the model is
linear in each feature's WoE, ``logit = a + sum_j beta_j * woe_j`` with ``beta_j = w_j / std_j``
and ``a = b - sum_j beta_j * mean_j`` (the WoE features' moments), so every coarse bin of a
characteristic scores ``-factor * beta_j * woe`` points and the base points are
``offset - factor * a``: a borrower's score is base points plus one bin's points per
characteristic, exactly. A categorical characteristic's attribute (category ``c``) adds the
points of its column ``col=c`` at 1 and of the other columns at 0.

Calibration: with ``imbalance=class_weight`` the model's intercept is inflated by the log of
the class weight; ``--prior-correction auto`` (default) subtracts ``ln(w)`` so that the odds
are real good:bad odds. ``w`` is read from ``model.pt`` (key ``prior_correction``, the log
weight, when the run saved one) or else from the run's summed bank counts in
``metrics.json`` (``(rows - defaults) / defaults``, the federation's own weight).

A numeric characteristic whose coefficient goes against the usual direction of risk
(:mod:`fl_credit.credit.risk_direction`: more delinquencies scoring more points) is listed
as counter-intuitive on the card and in ``scorecard.json``.

Base borrower: the standardiser's means, with each characteristic's one-hot means projected
onto the simplex of category shares (under ``dp=opacus`` the standardiser centres every
one-hot column at 0.5, a borrower in half of every category; the projection gives equal
shares, and leaves real shares unchanged). ``--calibrate auto`` (default) shifts a DP run's
intercept so that the base borrower's PD is the federation's default rate saved in
``model.pt`` (summed counts, noised under DP): DP-SGD leaves the intercept biased, and
without the shift "600 points = 50:1 odds" would not hold. The card warns when the base
borrower's PD lies outside the PDs the model gave the test borrowers (``scores.csv``).

Writes ``scorecard.csv``, ``scorecard.md`` and ``scorecard.json`` into the run folder
(``--out`` to change) and prints the Markdown. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from fl_credit.config.errors import FlCreditError
from fl_credit.credit.psi import coarsen
from fl_credit.credit.risk_direction import expected_direction
from fl_credit.credit.woe import WoeFeatures, features_from_lists
from fl_credit.data.schema import FeatureSchema

MODEL = "model.pt"
SCHEMA = "schema.json"
OTHER = "(other)"


@dataclass(frozen=True)
class Scaling:
    """Points-to-double-odds scaling: ``score = offset + factor * ln(good:bad odds)``."""

    pdo: float
    base_score: float
    base_odds: float

    @property
    def factor(self) -> float:
        """Points per unit of log-odds: ``pdo / ln 2``."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """``base_score - factor * ln(base_odds)``."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def score(self, logit_default: np.ndarray | float) -> np.ndarray | float:
        """Score of a borrower with the given log-odds of default."""
        return self.offset - self.factor * logit_default


@dataclass(frozen=True)
class FederatedModel:
    """What the scorecard needs from ``model.pt``: weights on standardised features,
    intercept, standardiser and validation threshold."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    std: np.ndarray
    threshold: float
    prior_correction: float | None = None
    woe: WoeFeatures | None = None
    applied_correction: float = 0.0
    base_rate: float | None = None

    @classmethod
    def load(cls, path: Path) -> FederatedModel:
        """Read ``model.pt`` (weights only, no pickled code)."""
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        correction = state.get("prior_correction")
        return cls(
            weights=state["linear.weight"].numpy().ravel().astype(np.float64),
            bias=float(state["linear.bias"].reshape(-1)[0]),
            mean=state["scaler_mean"].numpy().astype(np.float64),
            std=state["scaler_std"].numpy().astype(np.float64),
            threshold=float(state["threshold"]),
            prior_correction=None if correction is None else float(correction),
            woe=features_from_lists(state) if "woe_inner_edges" in state else None,
            applied_correction=float(state.get("intercept_correction", 0.0)),
            base_rate=float(state["base_rate"]) if "base_rate" in state else None,
        )

    @property
    def beta(self) -> np.ndarray:
        """Coefficients on the original feature scale."""
        return self.weights / self.std


def representative_z(lo: float, hi: float) -> float:
    """Mean of a standard normal restricted to ``[lo, hi]`` (in standard deviations)."""
    mass = norm.cdf(hi) - norm.cdf(lo)
    return float((norm.pdf(lo) - norm.pdf(hi)) / mass)


def histogram_bins(
    inner_edges: Sequence[float], counts: Sequence[float], bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ranges at quantiles of a summed histogram, and each range's mean value.

    Parameters
    ----------
    inner_edges : sequence of float
        Inner edges of the agreed fine grid (the outer bins are open).
    counts : sequence of float
        The federation's counts per fine bin (a sum over banks).
    bins : int
        Wanted ranges; fine bins are never split, so a feature with few values gets fewer.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        Range edges (``-inf`` first, ``inf`` last) and each range's count-weighted mean of the
        fine bins' midpoints (an open outer bin's midpoint is half a grid step past its edge).
    """
    inner = np.asarray(inner_edges, dtype=np.float64)
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    step = float(np.median(np.diff(inner))) if len(inner) > 1 else 1.0
    mids = np.r_[inner[0] - step / 2, (inner[:-1] + inner[1:]) / 2, inner[-1] + step / 2]
    groups = coarsen(counts, bins)
    full = np.r_[-np.inf, inner, np.inf]
    cuts = np.flatnonzero(np.diff(groups)) + 1
    edges = np.r_[-np.inf, full[cuts], np.inf]
    reps = []
    for g in range(groups.max() + 1):
        member = groups == g
        weight = counts[member] if counts[member].sum() > 0 else np.ones(member.sum())
        reps.append(float(np.average(mids[member], weights=weight)))
    return edges, np.asarray(reps)


def normal_bins(mean: float, std: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranges at normal quantiles ``mean + z * std`` and the normal's mean in each range
    (when no summed histogram is available)."""
    z = np.r_[-np.inf, norm.ppf(np.arange(1, bins) / bins), np.inf]
    reps = [representative_z(lo, hi) for lo, hi in zip(z[:-1], z[1:], strict=True)]
    return mean + z * std, mean + np.asarray(reps) * std


def whole_number_bins(edges: np.ndarray, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranges of a count cut on whole numbers.

    A cut ``e`` splits whole numbers as ``x < ceil(e)`` does, so cuts are rounded up; a range
    left with no whole number (two cuts between the same neighbours) is dropped.

    Parameters
    ----------
    edges : numpy.ndarray
        Range edges, ``-inf`` first and ``inf`` last.
    reps : numpy.ndarray
        Each range's representative value.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        The whole-number edges and the representatives of the ranges kept.
    """
    snapped = np.where(np.isfinite(edges), np.ceil(edges), edges)
    keep = snapped[1:] > snapped[:-1]
    kept_edges = np.r_[snapped[:-1][keep], np.inf]
    return kept_edges, np.asarray(reps)[keep]


def numeric_rows(
    name: str,
    j: int,
    model: FederatedModel,
    scaling: Scaling,
    bins: int,
    histogram: dict | None = None,
    whole: bool = False,
) -> list[dict]:
    """Attributes (ranges) of one numeric characteristic; ranges at quantiles of the
    federation's summed ``histogram`` when given, else at normal quantiles; cut on whole
    numbers when ``whole``."""
    m, s, beta = model.mean[j], model.std[j], model.beta[j]
    if histogram:
        edges, reps = histogram_bins(histogram["inner_edges"], histogram["counts"], bins)
    else:
        edges, reps = normal_bins(m, s, bins)
    if whole:
        edges, reps = whole_number_bins(edges, reps)
    return [
        {
            "characteristic": name,
            "attribute": _range_text(lo, hi, whole),
            "lower": lo,
            "upper": hi,
            "representative": value,
            "points": -scaling.factor * beta * (value - m),
            "points_per_unit": -scaling.factor * beta,
        }
        for lo, hi, value in zip(edges[:-1], edges[1:], reps, strict=True)
    ]


def simplex_projection(values: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (non-negative, summing to 1).

    Parameters
    ----------
    values : numpy.ndarray
        One characteristic's one-hot column means.

    Returns
    -------
    numpy.ndarray
        The nearest category shares: unchanged when ``values`` already are shares.
    """
    ordered = np.sort(values)[::-1]
    cumulative = np.cumsum(ordered) - 1.0
    ranks = np.arange(1, len(values) + 1)
    last = np.flatnonzero(ordered - cumulative / ranks > 0)[-1]
    return np.maximum(values - cumulative[last] / (last + 1), 0.0)


def base_borrower(model: FederatedModel, schema: FeatureSchema) -> np.ndarray:
    """The card's base borrower: the standardiser's means, with each characteristic's
    one-hot means projected onto the simplex of category shares.

    Without DP the one-hot means are the federation's category shares and stay as they are;
    under DP the standardiser centres every one-hot column at 0.5 (a borrower in half of
    every category), which the projection turns into equal shares.
    """
    anchor = np.asarray(model.mean, dtype=np.float64).copy()
    index = {name: j for j, name in enumerate(schema.feature_names)}
    for column, cats in schema.categories.items():
        cols = [index[f"{column}={cat}"] for cat in cats]
        anchor[cols] = simplex_projection(anchor[cols])
    return anchor


def base_logit(model: FederatedModel, schema: FeatureSchema) -> float:
    """Log-odds of default of :func:`base_borrower` under the model (before corrections)."""
    if model.woe is not None:
        return model.bias - woe_centre(model)
    shift = base_borrower(model, schema) - model.mean
    return float(model.bias + np.sum(model.beta * shift))


def categorical_rows(
    column: str,
    cats: Sequence[str],
    index: dict[str, int],
    model: FederatedModel,
    scaling: Scaling,
    shares: np.ndarray | None = None,
) -> list[dict]:
    """Attributes (categories) of one one-hot encoded characteristic, relative to a
    borrower with the category ``shares`` (the column means when omitted)."""
    cols = [index[f"{column}={cat}"] for cat in cats]
    shares = model.mean[cols] if shares is None else shares
    centre = float(np.sum(model.beta[cols] * shares))
    rows = []
    for cat, j in [*zip(cats, cols, strict=True), (OTHER, None)]:
        beta = model.beta[j] if j is not None else 0.0
        rows.append(
            {
                "characteristic": column,
                "attribute": cat,
                "lower": np.nan,
                "upper": np.nan,
                "representative": np.nan,
                "points": -scaling.factor * (beta - centre),
                "points_per_unit": np.nan,
            }
        )
    return rows


def woe_numeric_rows(name: str, j: int, model: FederatedModel, scaling: Scaling) -> list[dict]:
    """One attribute per WoE bin of a numeric characteristic: ``-factor * beta_j * woe``."""
    binning = model.woe.table.binnings[j]
    edges = np.r_[-np.inf, binning.inner_edges, np.inf]
    return [
        {
            "characteristic": name,
            "attribute": _range_text(lo, hi),
            "lower": lo,
            "upper": hi,
            "representative": np.nan,
            "woe": float(woe),
            "points": -scaling.factor * model.beta[j] * float(woe),
            "points_per_unit": np.nan,
        }
        for lo, hi, woe in zip(edges[:-1], edges[1:], binning.woe, strict=True)
    ]


def woe_categorical_rows(
    column: str, cats: Sequence[str], index: dict[str, int], model: FederatedModel, scaling: Scaling
) -> list[dict]:
    """One attribute per category: its column's WoE at 1, the other columns' at 0."""
    cols = [index[f"{column}={cat}"] for cat in cats]
    at = {j: model.woe.table.binnings[j].transform(np.array([0.0, 1.0])) for j in cols}
    off = {j: model.beta[j] * at[j][0] for j in cols}
    rows = []
    for cat, chosen in [*zip(cats, cols, strict=True), (OTHER, None)]:
        logit = sum(model.beta[j] * at[j][1] if j == chosen else off[j] for j in cols)
        rows.append(
            {
                "characteristic": column,
                "attribute": cat,
                "lower": np.nan,
                "upper": np.nan,
                "representative": np.nan,
                "woe": float(at[chosen][1]) if chosen is not None else np.nan,
                "points": -scaling.factor * float(logit),
                "points_per_unit": np.nan,
            }
        )
    return rows


def _range_text(lo: float, hi: float, whole: bool = False) -> str:
    """A range ``[lo, hi)``; of whole numbers (``whole``) as ``"0"``, ``"1-2"``, ``"<= 4"``."""
    if np.isinf(lo) and np.isinf(hi):
        return "(all values)"
    top = f"<= {hi - 1:.0f}" if whole else f"< {hi:.4g}"
    if np.isinf(lo):
        return top
    if np.isinf(hi):
        return f">= {lo:.0f}" if whole else f">= {lo:.4g}"
    if not whole:
        return f"[{lo:.4g}, {hi:.4g})"
    return f"{lo:.0f}" if hi - lo == 1 else f"{lo:.0f}-{hi - 1:.0f}"


def counter_intuitive(model: FederatedModel, schema: FeatureSchema) -> list[dict]:
    """Numeric characteristics whose coefficient goes against the usual direction of risk.

    Parameters
    ----------
    model : FederatedModel
        The federated model (coefficients on the original scale).
    schema : FeatureSchema
        Feature dictionary in model order.

    Returns
    -------
    list of dict
        ``characteristic``, ``expected`` (``"more risk"`` or ``"less risk"`` with larger
        values) and ``coefficient`` (log-odds of default per unit) for each flagged one.
    """
    flagged = []
    for j, name in enumerate(schema.numeric):
        direction = expected_direction(name)
        if direction * model.beta[j] < 0:
            flagged.append(
                {
                    "characteristic": name,
                    "expected": "more risk" if direction > 0 else "less risk",
                    "coefficient": float(model.beta[j]),
                }
            )
    return flagged


def build_scorecard(
    model: FederatedModel,
    schema: FeatureSchema,
    scaling: Scaling,
    bins: int = 5,
    correction: float = 0.0,
    histograms: dict[str, dict] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Points per attribute, and the card's base points and cut-off.

    Parameters
    ----------
    model : FederatedModel
        The federated model.
    schema : FeatureSchema
        Feature dictionary (numeric columns, one-hot categories) in model order.
    scaling : Scaling
        Points-to-double-odds scaling.
    bins : int
        Ranges per numeric characteristic.
    correction : float
        Log-odds subtracted from the intercept (prior correction, ``ln`` of the class weight).
    histograms : dict, optional
        Feature name to ``{"inner_edges", "counts"}``: the federation's summed histogram on
        the agreed grid (``metrics.json`` ``credit.feature_histograms``).

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        One row per attribute (``characteristic``, ``attribute``, ``lower``, ``upper``,
        ``representative``, ``points``, ``points_per_unit``) and a summary with ``factor``,
        ``offset``, ``base_points`` (the federation's mean borrower), ``correction``,
        ``cutoff_score`` (the score at the validation threshold: lower scores are flagged)
        and ``counter_intuitive`` (see :func:`counter_intuitive`).
    """
    names = schema.feature_names
    if len(names) != len(model.weights):
        raise FlCreditError(
            f"schema.json has {len(names)} features but model.pt has {len(model.weights)}"
        )
    index = {name: j for j, name in enumerate(names)}
    rows = []
    woe = model.woe is not None
    for j, name in enumerate(schema.numeric):
        if woe:
            rows += woe_numeric_rows(name, j, model, scaling)
        else:
            histogram = (histograms or {}).get(name)
            whole = name in schema.integers
            rows += numeric_rows(name, j, model, scaling, bins, histogram, whole)
    anchor = base_borrower(model, schema)
    for column, cats in schema.categories.items():
        if woe:
            rows += woe_categorical_rows(column, cats, index, model, scaling)
        else:
            shares = anchor[[index[f"{column}={cat}"] for cat in cats]]
            rows += categorical_rows(column, cats, index, model, scaling, shares)
    table = pd.DataFrame(rows)
    table["points_rounded"] = table["points"].round().astype(int)
    t = min(max(model.threshold, 1e-9), 1 - 1e-9)
    summary = {
        "pdo": scaling.pdo,
        "base_score": scaling.base_score,
        "base_odds": scaling.base_odds,
        "factor": scaling.factor,
        "offset": scaling.offset,
        "correction": correction,
        "base_points": float(scaling.score(base_logit(model, schema) - correction)),
        "base_pd": float(1.0 / (1.0 + math.exp(correction - base_logit(model, schema)))),
        "woe": woe,
        "threshold": model.threshold,
        "cutoff_score": float(scaling.score(math.log(t / (1 - t)) - correction)),
        "counter_intuitive": counter_intuitive(model, schema),
    }
    return table, summary


def woe_centre(model: FederatedModel) -> float:
    """``sum_j beta_j * mean_j`` of a WoE model (0 otherwise): what moves from the features
    into the base points when every bin scores ``-factor * beta_j * woe``."""
    if model.woe is None:
        return 0.0
    return float(np.sum(model.beta * model.mean))


def run_config(run_dir: Path) -> dict:
    """The run's resolved configuration (empty when the folder has none)."""
    import yaml

    path = run_dir / "config_resolved.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def class_weight_correction(run_dir: Path, model: FederatedModel) -> tuple[float, str]:
    """The prior correction ``ln(w)`` of a class-weighted run, and where it came from."""
    if model.prior_correction is not None:
        if model.prior_correction == 0.0 and model.applied_correction:
            # the run already subtracted ln(w) from the saved intercept: nothing left to do
            return 0.0, f"{model.applied_correction:.4f} already subtracted in model.pt"
        return model.prior_correction, "model.pt (prior_correction)"
    method = (run_config(run_dir).get("imbalance") or {}).get("method")
    if method != "class_weight":
        return 0.0, f"none (imbalance={method or 'unknown'})"
    banks = json.loads((run_dir / "metrics.json").read_text()).get("banks") or {}
    rows = sum(float(b["rows"]) for b in banks.values())
    defaults = sum(float(b["defaults"]) for b in banks.values())
    if not rows or not defaults:
        return 0.0, "none (no bank counts in metrics.json)"
    weight = (rows - defaults) / defaults
    return math.log(weight), f"class weight {weight:.3f} from the banks' summed counts"


def base_rate_shift(
    run_dir: Path, model: FederatedModel, schema: FeatureSchema, correction: float, how: str
) -> tuple[float, str]:
    """Log-odds added to the intercept so that the base borrower's PD is the federation's
    default rate (``base_rate`` in ``model.pt``: summed counts, noised under DP).

    ``how`` is ``"auto"`` (calibrate DP runs only: DP-SGD leaves the intercept biased),
    ``"base-rate"`` (always) or ``"none"``. Returns the shift and a sentence saying what
    was done.
    """
    private = (run_config(run_dir).get("dp") or {}).get("mode", "off") != "off"
    if how == "none" or (how == "auto" and not private):
        return 0.0, "none"
    rate = model.base_rate
    if rate is None or not 0.0 < rate < 1.0:
        if how == "base-rate":
            raise FlCreditError(f"{run_dir / MODEL} holds no default rate to calibrate to")
        return 0.0, "none (model.pt holds no default rate)"
    shift = math.log(rate / (1.0 - rate)) - (base_logit(model, schema) - correction)
    noised = " (noised under DP)" if private else ""
    return shift, (
        f"intercept shifted by {shift:+.4f} so that the base borrower's PD is the "
        f"federation's default rate {rate:.4f}{noised}: the model's own base rate"
    )


def observed_pd_range(run_dir: Path) -> tuple[float, float] | None:
    """Smallest and largest PD the federated model gave the test borrowers (``scores.csv``)."""
    path = run_dir / "scores.csv"
    if not path.is_file():
        return None
    pds = pd.read_csv(path, usecols=lambda c: c == "federated").get("federated")
    return None if pds is None or pds.empty else (float(pds.min()), float(pds.max()))


def base_pd_warning(model_pd: float, observed: tuple[float, float] | None) -> list[str]:
    """A warning when the base borrower's PD lies outside the PDs the model gave."""
    if observed is None or observed[0] <= model_pd <= observed[1]:
        return []
    return [
        f"the base borrower's PD under the model, {model_pd:.4g}, is outside the PDs it gives "
        f"the test borrowers [{observed[0]:.4g}, {observed[1]:.4g}]: points are relative to "
        "a borrower unlike any observed"
    ]


def feature_histograms(run_dir: Path) -> dict[str, dict]:
    """The federation's summed feature histograms from ``metrics.json`` (empty if absent)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    return (json.loads(path.read_text()).get("credit") or {}).get("feature_histograms") or {}


def render_markdown(table: pd.DataFrame, summary: dict, source: str) -> str:
    """The scorecard as Markdown: scaling, base points, cut-off, one table per characteristic."""
    if summary.get("woe"):
        return render_woe_markdown(table, summary, source)
    lines = [
        "# Scorecard (federated model)",
        "",
        f"Scaling: {summary['base_score']:g} points at good:bad odds {summary['base_odds']:g}:1, "
        f"{summary['pdo']:g} points to double the odds (factor {summary['factor']:.4f}, offset "
        f"{summary['offset']:.4f}). Score = base points + the points of each characteristic.",
        "",
        f"Numeric ranges: {summary.get('ranges', 'normal quantiles')} (the server holds no rows);"
        " a range's points are those at its mean value, points per unit give any value's points.",
        "",
        f"- Base points (the base borrower: the federation's means, category shares on the "
        f"simplex; PD {summary['base_pd']:.4f}): **{summary['base_points']:.0f}**",
        f"- Prior correction of the intercept: {summary['correction']:.4f} ({source})",
        f"- Cut-off at the validation threshold {summary['threshold']:.3f}: scores below "
        f"**{summary['cutoff_score']:.0f}** are flagged as likely defaults",
        "",
        *check_lines(summary),
        "| characteristic | attribute | points | points per unit |",
        "|---|---|---:|---:|",
    ]
    for row in table.itertuples(index=False):
        per_unit = "" if np.isnan(row.points_per_unit) else f"{row.points_per_unit:.4g}"
        lines.append(
            f"| {row.characteristic} | {row.attribute} | {row.points_rounded} | {per_unit} |"
        )
    return "\n".join(lines) + "\n"


def check_lines(summary: dict) -> list[str]:
    """Markdown lines: the base-rate calibration, warnings and counter-intuitive signs."""
    lines = []
    if summary.get("calibration", "none") != "none":
        lines += [f"Calibration: {summary['calibration']}.", ""]
    lines += [f"**Warning:** {warning}." for warning in summary.get("warnings", [])]
    lines += [""] if summary.get("warnings") else []
    return lines + counter_intuitive_lines(summary)


def counter_intuitive_lines(summary: dict) -> list[str]:
    """Markdown bullet lines naming the characteristics whose sign goes against risk."""
    flagged = summary.get("counter_intuitive") or []
    if not flagged:
        return []
    lines = [
        "**Counter-intuitive signs: check these before use** (collinear features can "
        "share an effect; drop or constrain the characteristic if it is not real):"
    ]
    for item in flagged:
        side = "more" if item["expected"] == "more risk" else "fewer"
        lines.append(
            f"- {item['characteristic']}: larger values usually mean {item['expected']}, but "
            f"here they score {side} points (coefficient {item['coefficient']:+.4g} per unit)"
        )
    return [*lines, ""]


def render_woe_markdown(table: pd.DataFrame, summary: dict, source: str) -> str:
    """The WoE scorecard as Markdown: one row per bin (or category) with its WoE and points."""
    lines = [
        "# Scorecard (federated model on WoE features)",
        "",
        f"Scaling: {summary['base_score']:g} points at good:bad odds {summary['base_odds']:g}:1, "
        f"{summary['pdo']:g} points to double the odds (factor {summary['factor']:.4f}, offset "
        f"{summary['offset']:.4f}). Score = base points + the points of each characteristic's "
        "bin; a bin's points are -factor x coefficient x WoE.",
        "",
        "Bins and WoE: fitted by the server from the banks' summed default / repaid counts per "
        "fine bin (the server holds no rows).",
        "",
        f"- Base points (every WoE at 0): **{summary['base_points']:.0f}**",
        f"- Prior correction of the intercept: {summary['correction']:.4f} ({source})",
        f"- Cut-off at the validation threshold {summary['threshold']:.3f}: scores below "
        f"**{summary['cutoff_score']:.0f}** are flagged as likely defaults",
        "",
        *check_lines(summary),
        "| characteristic | attribute | WoE | points |",
        "|---|---|---:|---:|",
    ]
    for row in table.itertuples(index=False):
        woe = "" if np.isnan(row.woe) else f"{row.woe:.4f}"
        lines.append(f"| {row.characteristic} | {row.attribute} | {woe} | {row.points_rounded} |")
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m fl_credit.scorecard", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder (model.pt)")
    parser.add_argument("--pdo", type=float, default=20.0, help="points to double the odds")
    parser.add_argument("--base-score", type=float, default=600.0, help="score at base odds")
    parser.add_argument("--base-odds", type=float, default=50.0, help="good:bad odds at base")
    parser.add_argument("--bins", type=int, default=5, help="ranges per numeric feature")
    parser.add_argument("--prior-correction", choices=("auto", "none"), default="auto")
    parser.add_argument(
        "--calibrate",
        choices=("auto", "base-rate", "none"),
        default="auto",
        help="shift the base borrower's PD to the federation's default rate (auto: DP runs)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the files")
    args = parser.parse_args(argv)
    if args.pdo <= 0 or args.base_odds <= 0:
        parser.error("--pdo and --base-odds must be positive")
    if args.bins < 2:
        parser.error("--bins must be at least 2")
    return args


def run(args: argparse.Namespace) -> tuple[list[Path], str]:
    """Build and write the scorecard; returns the files written and the Markdown text."""
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise FlCreditError(f"run folder not found: {run_dir}")
    if not (run_dir / MODEL).is_file():
        raise FlCreditError(f"{run_dir} has no {MODEL} (not a finished run folder)")
    if not (run_dir / SCHEMA).is_file():
        raise FlCreditError(f"{run_dir} has no {SCHEMA} (the feature dictionary of the run)")
    model = FederatedModel.load(run_dir / MODEL)
    schema = FeatureSchema.from_json(run_dir / SCHEMA)
    correction, source = 0.0, "none (--prior-correction none)"
    if args.prior_correction == "auto":
        correction, source = class_weight_correction(run_dir, model)
    model_pd = 1.0 / (1.0 + math.exp(correction - base_logit(model, schema)))
    shift, calibration = base_rate_shift(run_dir, model, schema, correction, args.calibrate)
    scaling = Scaling(args.pdo, args.base_score, args.base_odds)
    histograms = feature_histograms(run_dir)
    table, summary = build_scorecard(
        model, schema, scaling, args.bins, correction - shift, histograms
    )
    summary.update(correction=correction, calibration=calibration, calibration_shift=shift)
    summary["warnings"] = base_pd_warning(model_pd, observed_pd_range(run_dir))
    summary["ranges"] = "quantiles of summed histograms" if histograms else "normal quantiles"
    if model.woe is not None:
        summary["ranges"] = "WoE bins fitted from summed counts"
    out = args.out or run_dir
    out.mkdir(parents=True, exist_ok=True)
    from fl_credit.credit.plotting import write_text

    csv_path = write_text(out / "scorecard.csv", table.to_csv(index=False, float_format="%.6g"))
    text = render_markdown(table, summary, source)
    md_path = write_text(out / "scorecard.md", text)
    json_path = write_text(out / "scorecard.json", json.dumps(summary, indent=2) + "\n")
    return [csv_path, md_path, json_path], text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring."""
    args = parse_args(argv)
    try:
        written, text = run(args)
    except (FlCreditError, OSError, KeyError, ValueError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(text)
    print("written: " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
