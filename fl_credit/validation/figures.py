"""The validation report's figures: grade PDs against observed default rates, the migration
heat map, and group gaps."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fl_credit.credit.plotting import single_axes

LIGHT_COLOURS = {"green": "tab:green", "yellow": "gold", "red": "tab:red", "n/a": "grey"}


def grades_figure(grades: list[dict]) -> Figure:
    """Mean PD and observed default rate per grade, with the Jeffreys 95% intervals."""
    fig, ax = single_axes(6.4, 4.2)
    x = np.array([g["grade"] for g in grades])
    rate = np.array([g["default_rate"] for g in grades])
    low = np.array([g["jeffreys_low"] for g in grades])
    high = np.array([g["jeffreys_high"] for g in grades])
    ax.plot(x, [g["pd"] for g in grades], "k_", markersize=18, mew=2, label="mean PD of the grade")
    ax.errorbar(
        x,
        rate,
        yerr=[np.maximum(rate - low, 0), np.maximum(high - rate, 0)],
        fmt="none",
        ecolor="0.4",
        capsize=3,
        label="Jeffreys 95% interval",
    )
    ax.scatter(
        x,
        rate,
        c=[LIGHT_COLOURS[g["light"]] for g in grades],
        zorder=3,
        s=40,
        edgecolors="k",
        label="observed default rate (light)",
    )
    ax.set_yscale("log")
    ax.set_xticks(x, [f"G{g}" for g in x])
    ax.set_xlabel("grade (master scale)")
    ax.set_ylabel("default rate")
    ax.set_title("Grade PDs against observed default rates (test rows)")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def migration_figure(matrix: list[list[float]], other: str) -> Figure:
    """Heat map of row shares: federated grade (rows) against the other model's grade."""
    m = np.asarray(matrix, dtype=np.float64)
    shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1e-12)
    fig, ax = single_axes(5.6, 4.8)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(m):
        if count > 0:
            ax.text(
                j,
                i,
                f"{count:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    labels = [f"G{k + 1}" for k in range(len(m))]
    ax.set_xticks(range(len(m)), labels)
    ax.set_yticks(range(len(m)), labels)
    ax.set_xlabel(f"grade by {other}")
    ax.set_ylabel("grade by the federated model")
    ax.set_title("Migration (row shares; counts in cells)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def groups_figure(fairness: dict) -> Figure:
    """Adverse impact ratio and false positive rate gap of every group."""
    names, air, fpr = [], [], []
    for rates in fairness.values():
        for name, r in rates.items():
            names.append(name)
            air.append(r["adverse_impact_ratio"])
            fpr.append(r["fpr_gap"])
    fig = Figure(figsize=(9.0, 0.3 * len(names) + 1.5))
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    left.barh(y, air, color=["tab:red" if a < 0.8 else "tab:blue" for a in air])
    left.axvline(0.8, color="k", ls="--", lw=1)
    left.set_yticks(y, names, fontsize=7)
    left.set_xlabel("adverse impact ratio (approval rate / best group's)")
    right.barh(y, fpr, color=["tab:red" if f > 0 else "tab:green" for f in fpr])
    right.axvline(0.0, color="k", lw=1)
    right.set_xlabel("false positive rate gap (good borrowers declined, vs all)")
    left.invert_yaxis()
    fig.tight_layout()
    return fig
