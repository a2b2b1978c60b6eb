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
  value; ``points_per_unit`` gives the exact points of any value.
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

Writes ``scorecard.csv`` and ``scorecard.md`` into the run folder (``--out`` to change) and
prints the Markdown. Bad input: one line on stderr, exit 2.
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


def numeric_rows(
    name: str,
    j: int,
    model: FederatedModel,
    scaling: Scaling,
    bins: int,
    histogram: dict | None = None,
) -> list[dict]:
    """Attributes (ranges) of one numeric characteristic; ranges at quantiles of the
    federation's summed ``histogram`` when given, else at normal quantiles."""
    m, s, beta = model.mean[j], model.std[j], model.beta[j]
    if histogram:
        edges, reps = histogram_bins(histogram["inner_edges"], histogram["counts"], bins)
    else:
        edges, reps = normal_bins(m, s, bins)
    return [
        {
            "characteristic": name,
            "attribute": _range_text(lo, hi),
            "lower": lo,
            "upper": hi,
            "representative": value,
            "points": -scaling.factor * beta * (value - m),
            "points_per_unit": -scaling.factor * beta,
        }
        for lo, hi, value in zip(edges[:-1], edges[1:], reps, strict=True)
    ]


def categorical_rows(
    column: str, cats: Sequence[str], index: dict[str, int], model: FederatedModel, scaling: Scaling
) -> list[dict]:
    """Attributes (categories) of one one-hot encoded characteristic."""
    cols = [index[f"{column}={cat}"] for cat in cats]
    centre = float(np.sum(model.beta[cols] * model.mean[cols]))
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


def _range_text(lo: float, hi: float) -> str:
    if np.isinf(lo) and np.isinf(hi):
        return "(all values)"
    if np.isinf(lo):
        return f"< {hi:.4g}"
    if np.isinf(hi):
        return f">= {lo:.4g}"
    return f"[{lo:.4g}, {hi:.4g})"


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
        ``offset``, ``base_points`` (the federation's mean borrower), ``correction`` and
        ``cutoff_score`` (the score at the validation threshold: lower scores are flagged).
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
            rows += numeric_rows(name, j, model, scaling, bins, (histograms or {}).get(name))
    for column, cats in schema.categories.items():
        if woe:
            rows += woe_categorical_rows(column, cats, index, model, scaling)
        else:
            rows += categorical_rows(column, cats, index, model, scaling)
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
        "base_points": float(scaling.score(model.bias - correction - woe_centre(model))),
        "woe": woe,
        "threshold": model.threshold,
        "cutoff_score": float(scaling.score(math.log(t / (1 - t)) - correction)),
    }
    return table, summary


def woe_centre(model: FederatedModel) -> float:
    """``sum_j beta_j * mean_j`` of a WoE model (0 otherwise): what moves from the features
    into the base points when every bin scores ``-factor * beta_j * woe``."""
    if model.woe is None:
        return 0.0
    return float(np.sum(model.beta * model.mean))


def class_weight_correction(run_dir: Path, model: FederatedModel) -> tuple[float, str]:
    """The prior correction ``ln(w)`` of a class-weighted run, and where it came from."""
    if model.prior_correction is not None:
        if model.prior_correction == 0.0 and model.applied_correction:
            # the run already subtracted ln(w) from the saved intercept: nothing left to do
            return 0.0, f"{model.applied_correction:.4f} already subtracted in model.pt"
        return model.prior_correction, "model.pt (prior_correction)"
    config = (
        (run_dir / "config_resolved.yaml").read_text()
        if (run_dir / "config_resolved.yaml").is_file()
        else ""
    )
    import yaml

    method = ((yaml.safe_load(config) or {}).get("imbalance") or {}).get("method")
    if method != "class_weight":
        return 0.0, f"none (imbalance={method or 'unknown'})"
    banks = json.loads((run_dir / "metrics.json").read_text()).get("banks") or {}
    rows = sum(float(b["rows"]) for b in banks.values())
    defaults = sum(float(b["defaults"]) for b in banks.values())
    if not rows or not defaults:
        return 0.0, "none (no bank counts in metrics.json)"
    weight = (rows - defaults) / defaults
    return math.log(weight), f"class weight {weight:.3f} from the banks' summed counts"


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
        f"- Base points (the federation's mean borrower): **{summary['base_points']:.0f}**",
        f"- Prior correction of the intercept: {summary['correction']:.4f} ({source})",
        f"- Cut-off at the validation threshold {summary['threshold']:.3f}: scores below "
        f"**{summary['cutoff_score']:.0f}** are flagged as likely defaults",
        "",
        "| characteristic | attribute | points | points per unit |",
        "|---|---|---:|---:|",
    ]
    for row in table.itertuples(index=False):
        per_unit = "" if np.isnan(row.points_per_unit) else f"{row.points_per_unit:.4g}"
        lines.append(
            f"| {row.characteristic} | {row.attribute} | {row.points_rounded} | {per_unit} |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--out", type=Path, default=None, help="folder for the files")
    args = parser.parse_args(argv)
    if args.pdo <= 0 or args.base_odds <= 0:
        parser.error("--pdo and --base-odds must be positive")
    if args.bins < 2:
        parser.error("--bins must be at least 2")
    return args


def run(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """Build and write the scorecard; returns the CSV path, the Markdown path and its text."""
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
    scaling = Scaling(args.pdo, args.base_score, args.base_odds)
    histograms = feature_histograms(run_dir)
    table, summary = build_scorecard(model, schema, scaling, args.bins, correction, histograms)
    summary["ranges"] = "quantiles of summed histograms" if histograms else "normal quantiles"
    if model.woe is not None:
        summary["ranges"] = "WoE bins fitted from summed counts"
    out = args.out or run_dir
    out.mkdir(parents=True, exist_ok=True)
    from fl_credit.credit.plotting import write_text

    csv_path = write_text(out / "scorecard.csv", table.to_csv(index=False, float_format="%.6g"))
    text = render_markdown(table, summary, source)
    md_path = write_text(out / "scorecard.md", text)
    write_text(out / "scorecard.json", json.dumps(summary, indent=2) + "\n")
    return csv_path, md_path, text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring."""
    args = parse_args(argv)
    try:
        csv_path, md_path, text = run(args)
    except (FlCreditError, OSError, KeyError, ValueError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(text)
    print(f"written: {csv_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
