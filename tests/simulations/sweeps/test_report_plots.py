"""Sweep plots: n=1 labelling, clipped intervals, a visible federated line,
and a privacy-utility plot whenever epsilon is swept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from simulations.sweeps.plots import PRIVACY_PLOT, build_figures, model_figure
from simulations.sweeps.runs import collect_runs
from simulations.sweeps.summary import epsilon_key
from tests.simulations.sweeps.test_report import _metrics, make_run


def texts(fig: Figure) -> list[str]:
    """Every piece of text in a figure: titles, labels, legend entries and legend titles."""
    found = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return [t for t in found if t]


def error_bar_segments(fig: Figure) -> list[np.ndarray]:
    """Every error bar segment drawn in the panels (not the legend's sample bars)."""
    return [
        segment
        for ax in fig.axes
        for collection in ax.collections
        if isinstance(collection, LineCollection)
        for segment in collection.get_segments()
        if len(segment)
    ]


def share_sweep(root: Path, seeds: tuple[int, ...], auc_of=None) -> Path:
    job = 0
    for share in (0.1, 0.5):
        for seed in seeds:
            metrics = _metrics(share, seed)
            if auc_of is not None:
                metrics["federated"]["auc"] = auc_of(share, seed)
            make_run(root, job, [f"partition.share={share}", f"seed={seed}"], metrics=metrics)
            job += 1
    return root


def test_single_seed_says_n1_and_draws_no_interval(tmp_path: Path) -> None:
    df = collect_runs(share_sweep(tmp_path / "s", seeds=(0,)))
    fig = model_figure(df, "auc", "AUC")
    words = " ".join(texts(fig))
    assert "n=1" in words and "t-interval" not in words
    assert "(n=1.0)" not in words
    segments = error_bar_segments(fig)
    assert segments and all(np.ptp(segment[:, 1]) == 0.0 for segment in segments)


def test_intervals_stay_inside_the_metric_range(tmp_path: Path) -> None:
    # seeds far apart near the top: a plain t-interval reaches above 1.
    df = collect_runs(
        share_sweep(tmp_path / "s", (0, 1, 2), auc_of=lambda share, seed: 0.99 if seed else 0.80)
    )
    fig = model_figure(df, "auc", "AUC")
    tops = [float(np.max(segment[:, 1])) for segment in error_bar_segments(fig)]
    assert 0.99 < max(tops) < 1.0  # an interval, inside the range
    words = " ".join(texts(fig))
    assert "logit" in words and "(n=" not in words


def test_two_seeds_draw_no_interval(tmp_path: Path) -> None:
    df = collect_runs(
        share_sweep(tmp_path / "s", (0, 1), auc_of=lambda share, seed: 0.99 if seed else 0.80)
    )
    fig = model_figure(df, "auc", "AUC")
    segments = error_bar_segments(fig)
    assert segments and all(np.ptp(segment[:, 1]) == 0.0 for segment in segments)
    assert "no interval" in " ".join(texts(fig))


def test_federated_line_stays_visible_over_pooled(tmp_path: Path) -> None:
    df = collect_runs(share_sweep(tmp_path / "s", (0, 1)))
    fig = model_figure(df, "auc", "AUC")
    lines = {c.get_label(): c.lines[0] for ax in fig.axes for c in ax.containers}
    federated, pooled = lines["federated"], lines["centralized (pooled)"]
    assert federated.get_fillstyle() == "none"
    assert federated.get_markersize() > pooled.get_markersize()
    assert federated.get_zorder() > pooled.get_zorder()
    assert any("federated = pooled" in t for t in texts(fig))


def dp_runs(root: Path, epsilons: tuple[str, ...], seeds: tuple[int, ...] = (0, 1)) -> Path:
    job = 0
    for epsilon in epsilons:
        for seed in seeds:
            finite = epsilon != "inf"
            metrics = _metrics(
                0.25, seed, "opacus" if finite else "off", float(epsilon) if finite else None
            )
            make_run(root, job, [f"dp.epsilon={epsilon}", f"seed={seed}"], metrics=metrics)
            job += 1
    return root


def test_privacy_plot_for_one_finite_epsilon_against_inf(tmp_path: Path) -> None:
    df = collect_runs(dp_runs(tmp_path / "s", ("inf", "2")))
    assert epsilon_key(df) == "dp.epsilon"
    figures = build_figures(df)
    assert PRIVACY_PLOT in figures
    words = " ".join(texts(figures[PRIVACY_PLOT]))
    assert "no DP (ε = inf)" in words and "DP (opacus)" in words


def test_no_privacy_plot_without_an_epsilon_sweep(tmp_path: Path) -> None:
    df = collect_runs(dp_runs(tmp_path / "s", ("2",)))
    assert epsilon_key(df) is None
    assert PRIVACY_PLOT not in build_figures(df)


def test_dp_sgd_without_noise_is_a_labelled_reference_not_a_private_budget(tmp_path: Path) -> None:
    """``dp.epsilon=no_noise`` runs (DP-SGD, noise 0, ``config.private`` false) are drawn as
    their own reference line, not at an epsilon, and the DP table calls them not private."""
    from simulations.sweeps.markdown import render_markdown

    root = dp_runs(tmp_path / "s", ("inf", "2", "4"), seeds=(0, 1, 2))
    for seed in (0, 1, 2):
        metrics = _metrics(0.25, seed, "opacus", None)
        metrics["config"]["private"] = False
        for bank in metrics["privacy"].values():
            bank.update(epsilon_spent=None, target_epsilon=None, noise_multiplier=0.0)
        make_run(root, 9 + seed, ["dp.epsilon=no_noise", f"seed={seed}"], metrics=metrics)
    df = collect_runs(root)
    assert epsilon_key(df) == "config.dp_epsilon"
    words = " ".join(texts(build_figures(df)[PRIVACY_PLOT]))
    assert "DP-SGD without noise (ε = inf)" in words and "no DP (ε = inf)" in words
    table = render_markdown(df, root).split("## DP on / off")[1]
    row = next(line for line in table.splitlines() if "without noise" in line)
    assert row.startswith("| opacus without noise (not private) | inf | 3 | 0 |")
