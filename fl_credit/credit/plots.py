"""Figures of one run's models on the test set: ROC, KS, calibration, gains, score
distribution by class, and PSI per bank.

Each function takes labels and scores (as in ``scores.csv``) or a ``metrics.json`` section and
returns a matplotlib Figure; :mod:`fl_credit.run.report` writes them next to ``report.md``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

from fl_credit.credit.metrics import gains_table
from fl_credit.credit.plotting import model_style, single_axes
from fl_credit.credit.psi import PSI_SHIFT, PSI_STABLE

LABELS = {
    "federated": "federated",
    "centralized": "centralized (pooled)",
    "reference": "reference LR (pooled)",
}
BANK_COLOURS = ("C2", "C3", "C4", "C5", "C6", "C8", "C9")
CALIBRATION_MODELS = ("federated", "centralized", "reference")


def model_label(name: str) -> str:
    """Legend text of a ``scores.csv`` column (``local.bank_0`` -> ``bank_0 alone``)."""
    if name.startswith("lr."):  # model=gbm runs: the logistic rows beside the trees
        return "LR " + name.removeprefix("lr.")
    return LABELS.get(name, name.removeprefix("local.") + " alone")


def line_style(name: str, index: int) -> dict:
    """Colour, marker and layer of a model's line; banks alone are thin and dashed."""
    if name in LABELS:
        return model_style(name)
    colour = BANK_COLOURS[index % len(BANK_COLOURS)]
    return {"color": colour, "linestyle": "--", "linewidth": 1.0, "zorder": 2}


def _ordered(scores: dict[str, np.ndarray]) -> list[str]:
    """Banks alone first and the federated model last, so it is drawn on top."""
    first = [n for n in scores if n not in LABELS]
    return first + [n for n in ("reference", "centralized", "federated") if n in scores]


def roc_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curve of every model, AUC in the legend."""
    fig, ax = single_axes()
    for i, name in enumerate(_ordered(scores)):
        fpr, tpr, _ = roc_curve(y, scores[name])
        style = {k: v for k, v in line_style(name, i).items() if k in ("color", "zorder")}
        style["linewidth"] = 2.0 if name == "federated" else 1.0
        style["linestyle"] = "-" if name in LABELS else "--"
        if name == "centralized":  # dashed on top of the federated curve it often equals
            style.update(linestyle=(0, (4, 3)), linewidth=1.3, zorder=5)
        auc = roc_auc_score(y, scores[name])
        ax.plot(fpr, tpr, label=f"{model_label(name)} (AUC {auc:.3f})", **style)
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":", label="random")
    ax.set(xlabel="false positive rate (repaid flagged)", ylabel="true positive rate (defaults)")
    ax.set_title("ROC curve on the test set", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig


def score_axis_top(p: np.ndarray, threshold: float | None = None) -> float:
    """Right end of a score axis: just past the highest score (and the threshold), at most 1.

    PDs of a rare-default portfolio stay far below 1; an axis to 1 would leave most of the
    chart empty.
    """
    top = max(float(np.max(p)) if len(p) else 1.0, threshold or 0.0)
    return float(min(1.0, top * 1.05 + 1e-3))


def ks_figure(y: np.ndarray, p: np.ndarray, name: str = "federated") -> Figure:
    """Cumulative score distributions of defaults and repaid loans, the KS gap marked."""
    fpr, tpr, thresholds = roc_curve(y, p)
    gap = tpr - fpr
    best = int(np.argmax(gap))
    cut = float(min(thresholds[best], 1.0))
    fig, ax = single_axes()
    top = score_axis_top(p, cut)
    grid = np.linspace(0.0, top, 401)
    for label, rows, colour in (("defaults", p[y == 1], "C3"), ("repaid", p[y == 0], "C0")):
        share_below = np.searchsorted(np.sort(rows), grid, side="left") / max(len(rows), 1)
        ax.plot(grid, share_below, color=colour, label=f"{label}: share scored below")
    low = 1.0 - tpr[best]
    ax.vlines(cut, low, 1.0 - fpr[best], color="k", linewidth=2, label=f"KS = {gap[best]:.3f}")
    ax.set(xlabel=f"{model_label(name)} score (PD)", ylabel="cumulative share of loans")
    ax.set_xlim(0.0, top)
    ax.set_title(f"KS curve: {model_label(name)} model", fontsize="medium")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig


def calibration_figure(y: np.ndarray, scores: dict[str, np.ndarray], bins: int = 10) -> Figure:
    """Reliability plot: observed default rate against mean score in score-quantile bins."""
    fig, ax = single_axes()
    top = 0.0
    for name in [n for n in _ordered(scores) if n in CALIBRATION_MODELS]:
        observed, predicted = calibration_curve(y, scores[name], n_bins=bins, strategy="quantile")
        top = max(top, float(np.max(predicted)), float(np.max(observed)))
        ax.plot(predicted, observed, label=model_label(name), linewidth=1.4, **model_style(name))
    top = min(1.0, top * 1.05 + 0.01)
    ax.plot([0, top], [0, top], color="0.6", linewidth=0.8, linestyle=":", label="perfect")
    ax.set(xlabel="mean predicted PD in bin", ylabel="observed default rate in bin")
    ax.set_title(f"Calibration (reliability, {bins} quantile bins of score)", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(True, alpha=0.3)
    return fig


def gains_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Cumulative gains by decile of every model, with the random and perfect lines."""
    fig, ax = single_axes()
    for i, name in enumerate(_ordered(scores)):
        table = gains_table(y, scores[name])
        depth = np.r_[0.0, table["depth"]]
        gains = np.r_[0.0, table["cumulative_gains"]]
        ax.plot(depth, gains, label=model_label(name), **line_style(name, i))
    base = float(np.mean(y))
    ax.plot([0, base, 1], [0, 1, 1], color="0.4", linewidth=0.8, linestyle="-.", label="perfect")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":", label="random")
    ax.set(xlabel="share of borrowers flagged (highest scores first)", ylabel="share of defaults")
    ax.set_title("Cumulative gains by decile", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig


def score_distribution_figure(
    y: np.ndarray, p: np.ndarray, threshold: float | None, name: str = "federated"
) -> Figure:
    """Score histograms of defaults and repaid loans (densities), the threshold marked."""
    fig, ax = single_axes()
    top = score_axis_top(p, threshold)
    edges = np.linspace(0.0, top, 41)
    ax.hist(p[y == 0], bins=edges, density=True, alpha=0.55, color="C0", label="repaid")
    ax.hist(p[y == 1], bins=edges, density=True, alpha=0.55, color="C3", label="defaults")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel=f"{model_label(name)} score (PD)", ylabel="density")
    ax.set_xlim(0.0, top)
    ax.set_title("Score distribution by class (test set)", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def psi_figure(psi: dict, top: int = 12) -> Figure:
    """Score PSI per bank (and validation vs test) as bars; feature PSI per bank as a heat map
    of the ``top`` features with the largest PSI anywhere."""
    score = psi["score"]
    names = [*score["banks"], "validation vs test"]
    values = [*score["banks"].values(), score["validation_vs_test"]]
    features = psi["features"]["banks"]
    fig = Figure(figsize=(11.0, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    bars, heat = fig.subplots(1, 2, width_ratios=[1, 1.2])
    colours = ["C0"] * len(score["banks"]) + ["C7"]
    bars.bar(range(len(values)), values, color=colours)
    bars.set_xticks(range(len(values)), names, rotation=30, ha="right")
    for level, text in ((PSI_STABLE, "0.1 moderate"), (PSI_SHIFT, "0.25 major")):
        bars.axhline(level, color="0.4", linestyle=":", linewidth=0.9)
        bars.text(len(values) - 0.5, level, text, ha="right", va="bottom", fontsize=7)
    bars.set_ylim(0, max(0.3, max(values) * 1.15))
    bars.set_ylabel("PSI of the federated model's scores")
    bars.set_title("Score stability: each bank vs the federation", fontsize="medium")
    banks = list(features)
    rows = list(next(iter(features.values())))
    worst = sorted(rows, key=lambda f: -max(features[b][f] for b in banks))[:top]
    grid = np.array([[features[b][f] for b in banks] for f in worst])
    image = heat.imshow(grid, aspect="auto", cmap="Reds", vmin=0.0, vmax=max(PSI_SHIFT, grid.max()))
    for (row, col), value in np.ndenumerate(grid):
        heat.text(col, row, f"{value:.3f}", ha="center", va="center", fontsize=6)
    heat.set_xticks(range(len(banks)), banks, rotation=30, ha="right")
    heat.set_yticks(range(len(worst)), worst, fontsize=7)
    heat.tick_params(axis="y", labelleft=True)
    heat.set_title(f"Feature PSI vs the federation (top {len(worst)})", fontsize="medium")
    fig.colorbar(image, ax=heat, shrink=0.8, label="PSI")
    return fig
