"""Sweep plots: each model's metric against the swept value, and privacy against utility."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from fl_credit.credit.plotting import (
    COINCIDE_NOTE,
    clip_interval,
    metric_range,
    model_style,
    new_figure,
)
from simulations.sweeps.summary import (
    MIN_INTERVAL_RUNS,
    MODEL_LABELS,
    RECALL,
    dp_on,
    dp_setting,
    epsilon_key,
    groups,
    interval,
    is_dp_key,
    is_numeric,
    no_noise,
    varying_keys,
)
from simulations.sweeps.values import DP_OFF, OK, SEED_KEY, fmt_value, norm, value_sort_key

# Model prefixes of the lines on the model-comparison plots, drawn in this order (styles from
# fl_credit.credit.plotting.MODEL_STYLES, shared with the per-run report).
PLOT_MODELS = ("federated", "centralized", "reference", "local.smallest", "local.largest")
# (metric key, axis label, file name) of the model-comparison plots.
PLOT_METRICS = (
    ("auc", "AUC", "plot_auc.png"),
    ("ks", "KS", "plot_ks.png"),
    (RECALL, "default recall (validation threshold)", "plot_default_recall.png"),
)
PRIVACY_PLOT = "plot_privacy_utility.png"
REPORT_PLOTS = (*(name for _, _, name in PLOT_METRICS), PRIVACY_PLOT)
LINESTYLES = ("-", "--", ":", "-.")

# --------------------------------------------------------------------------- plot layout


@dataclass(frozen=True)
class PlotLayout:
    """How the swept overrides map onto a figure.

    Attributes
    ----------
    x : str or None
        Override on the x axis; None when nothing varies.
    style : str or None
        Override drawn as line style (the DP setting), if it varies.
    facets : tuple of str
        Overrides with one panel per combination of their values.
    log_x : bool
        Whether the x axis is logarithmic.
    """

    x: str | None
    style: str | None
    facets: tuple[str, ...]
    log_x: bool


def wants_log(df: pd.DataFrame, key: str | None) -> bool:
    """Log x for epsilon, or for positive values spanning a factor of 50 or more."""
    if key is None or not is_numeric(df[key]):
        return False
    values = df[key].dropna().astype(float)
    if (values <= 0).any():
        return False
    return "epsilon" in key or values.max() / values.min() >= 50


def _pick_x(df: pd.DataFrame, keys: list[str]) -> str | None:
    """The numeric key with most distinct values; else the categorical one with most."""
    if not keys:
        return None
    distinct = {key: len({norm(value) for value in df[key]}) for key in keys}
    numeric = [key for key in keys if is_numeric(df[key])]
    pool = numeric or keys
    return max(pool, key=lambda key: (distinct[key], -keys.index(key)))


def choose_layout(df: pd.DataFrame, exclude: Sequence[str] = (SEED_KEY,)) -> PlotLayout:
    """Lay out the varying overrides: x axis, DP line style, and panels for the rest.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`.
    exclude : sequence of str
        Keys never laid out (averaged over instead).

    Returns
    -------
    PlotLayout
        ``x``: the numeric varying override with most distinct values (a categorical one if none
        is numeric). ``style``: the ``dp`` override when it varies. ``facets``: every other
        varying override, one panel per combination.
    """
    varying = varying_keys(df, exclude)
    style = next((key for key in varying if key == "dp" or key.startswith("dp.mode")), None)
    rest = [key for key in varying if key != style]
    if not rest and style is not None:
        rest, style = [style], None
    x = _pick_x(df, rest)
    facets = tuple(key for key in rest if key != x)
    return PlotLayout(x=x, style=style, facets=facets, log_x=wants_log(df, x))


# --------------------------------------------------------------------------- plotting


@dataclass(frozen=True)
class _Axis:
    """Positions of x values: the values themselves when numeric, else category indices."""

    key: str | None
    categories: tuple[Any, ...]
    numeric: bool
    log: bool = False

    @classmethod
    def of(cls, df: pd.DataFrame, key: str | None, log: bool = False) -> _Axis:
        """The x axis of ``key`` over the rows of ``df`` (a single category when None)."""
        if key is None:
            return cls(None, ("all runs",), False)
        values = {norm(value) for value in df[key]}
        numeric = is_numeric(df[key])
        if numeric:
            # One value (besides unset): a category, so lines dodge by a share of the panel,
            # not of no span; unset stays one of the categories then.
            numeric = len(values - {None}) > 1
            values = values - {None} if numeric else values
        return cls(key, tuple(sorted(values, key=value_sort_key)), numeric, log and numeric)

    def position(self, value: Any) -> float | None:
        """Plot position of an x value (None: cannot be placed on a numeric axis)."""
        if self.numeric:
            return None if value is None else float(value)
        return float(self.categories.index(value if self.key else "all runs"))

    def dodge(self, xs: np.ndarray, fraction: float) -> np.ndarray:
        """Shift positions sideways by ``fraction`` of the axis span, so error bars separate."""
        if not self.numeric:
            return xs + fraction * len(self.categories)
        values = np.array(self.categories, dtype=float)
        if self.log:
            span = math.log(values.max() / values.min()) or 1.0
            return xs * math.exp(fraction * span)
        return xs + fraction * ((values.max() - values.min()) or 1.0)


def _panels(df: pd.DataFrame, facets: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """One (title, rows) pair per combination of the facet overrides."""
    panels = []
    for values, rows in groups(df, facets):
        title = ", ".join(
            f"{key}={fmt_value(value)}" for key, value in zip(facets, values, strict=True)
        )
        panels.append((title, rows))
    return panels or [("", df)]


def _slot_offset(slot: int, slots: int) -> float:
    """Sideways offset (fraction of the axis span) of line ``slot`` out of ``slots``."""
    step = min(0.012, 0.12 / max(slots, 1))
    return (slot - (slots - 1) / 2) * step


def _draw_line(
    ax: Axes, rows: pd.DataFrame, column: str, axis: _Axis, offset: float, **style: Any
) -> list[int]:
    """Mean ± interval of ``column`` at each x value.

    The interval respects the metric's range (:func:`fl_credit.credit.plotting.metric_range`, see
    :func:`simulations.sweeps.summary.interval`); a point from fewer than three runs has none.
    Returns the number of runs behind each point
    drawn (empty when there is nothing to draw).
    """
    if column not in rows.columns:
        return []
    points = []
    for values, group in groups(rows, [axis.key] if axis.key else []):
        x = axis.position(values[0] if values else None)
        mean, low, high, n = interval(group[column], bounds=metric_range(column))
        if x is not None and n:
            points.append((x, mean, low, high, n))
    if not points:
        return []
    xs, means, lows, highs, ns = (np.array(part, dtype=float) for part in zip(*points, strict=True))
    lows, highs = clip_interval(lows, highs, metric_range(column))
    errors = np.vstack([np.nan_to_num(means - lows), np.nan_to_num(highs - means)])
    xs = axis.dodge(xs, offset)
    ax.errorbar(xs, means, yerr=errors, capsize=3, linewidth=1.4, **style)
    return [int(n) for n in ns]


def _bank_label(rows: pd.DataFrame, prefix: str, column: str) -> str:
    """Legend text of a bank-alone line, naming the bank when it is the same in every run."""
    label = MODEL_LABELS[prefix]
    name_column = f"{prefix}.name"
    if name_column not in rows.columns or column not in rows.columns:
        return label
    names = rows.loc[rows[column].notna(), name_column].dropna().unique()
    return f"{label[:-1]}: {names[0]})" if len(names) == 1 else label


def _style_groups(rows: pd.DataFrame, key: str | None) -> list[tuple[str, str, pd.DataFrame]]:
    """(legend suffix, line style, rows) per value of the style override."""
    if key is None:
        return [("", "-", rows)]
    return [
        (f" [{key}={fmt_value(values[0])}]", LINESTYLES[i % len(LINESTYLES)], group)
        for i, (values, group) in enumerate(groups(rows, [key]))
    ]


def _decorate(ax: Axes, axis: _Axis, log_x: bool, title: str, ylabel: str) -> None:
    """Axis labels, ticks and grid of one panel (a log axis is ticked at the swept values)."""
    if not axis.numeric:
        ax.set_xticks(range(len(axis.categories)), [fmt_value(v) for v in axis.categories])
        ax.set_xlim(-0.5, len(axis.categories) - 0.5)
    elif log_x:
        ax.set_xscale("log")
        ax.set_xticks([float(v) for v in axis.categories], [fmt_value(v) for v in axis.categories])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(axis.key or "")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)


def interval_note(counts: Sequence[int]) -> str:
    """What the error bars are, given the number of runs behind each point drawn.

    Fewer than three seeds give no interval, and the note says so instead of naming one.
    """
    if not counts:
        return "no successful runs"
    if max(counts) < MIN_INTERVAL_RUNS:
        return f"n={max(counts)} seed(s) per point: means only, no interval"
    text = "mean and 95% t-interval over seeds\n(on the logit scale of the metric's range"
    text += "; points with n<3 have none)" if min(counts) < MIN_INTERVAL_RUNS else ")"
    return text


def _title(fig: Figure, axes: Sequence[Axes], text: str, counts: Sequence[int]) -> None:
    """Figure title; above the only panel when there is one, so it clears the legend."""
    text += "\n" + interval_note(counts)
    if len(axes) == 1 and not axes[0].get_title():
        axes[0].set_title(text, fontsize="medium")
    else:
        fig.suptitle(text, fontsize="medium")


def _figure_legend(fig: Figure, axes: Sequence[Axes], note: str = "") -> None:
    """One legend for all panels, outside on the right, without duplicate labels; ``note``
    is the legend's title."""
    entries: dict[str, Any] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    if entries:
        legend = fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside right upper",
            fontsize="small",
            title=note or None,
            title_fontsize="x-small",
        )
        legend.set_alignment("left")


def _fixed_dp_note(df: pd.DataFrame, layout: PlotLayout) -> str:
    """Title suffix naming the DP mode when every run used the same one."""
    if layout.style is not None or layout.x in ("dp", "dp.mode"):
        return ""
    modes = dp_setting(df).unique()
    return f", DP: {modes[0]}" if len(modes) == 1 and str(modes[0]).lower() not in DP_OFF else ""


def model_figure(df: pd.DataFrame, metric: str, ylabel: str) -> Figure:
    """Federated vs centralized vs each bank alone, against the swept value.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`; only runs with status ok are drawn.
    metric : str
        Metric key inside a model object, e.g. ``auc`` or ``at_val_threshold.default.recall``.
    ylabel : str
        Axis label of the metric.

    Returns
    -------
    matplotlib.figure.Figure
        Error bars are 95% t-intervals over seeds clipped to the metric's range, none for a
        single seed; see :func:`choose_layout` for the axes. The federated model is drawn
        last, as hollow circles, so it stays visible where it equals the pooled model.
    """
    ok = df[df["status"] == OK]
    layout = choose_layout(df)
    axis = _Axis.of(ok, layout.x, layout.log_x)
    panels = _panels(ok, layout.facets)
    fig, axes = new_figure(len(panels))
    counts: list[int] = []
    for ax, (title, rows) in zip(axes, panels, strict=True):
        styles = _style_groups(rows, layout.style)
        slots = len(styles) * len(PLOT_MODELS)
        for i, (suffix, linestyle, group) in enumerate(styles):
            for j, prefix in enumerate(PLOT_MODELS):
                column = f"{prefix}.{metric}"
                label = _bank_label(group, prefix, column) + suffix
                offset = _slot_offset(i * len(PLOT_MODELS) + j, slots)
                counts += _draw_line(
                    ax, group, column, axis, offset,
                    linestyle=linestyle, label=label, **model_style(prefix),
                )  # fmt: skip
        _decorate(ax, axis, layout.log_x, title, ylabel)
    _figure_legend(fig, axes, COINCIDE_NOTE)
    subject = f" vs {layout.x}" if layout.x else ""
    note = _fixed_dp_note(ok, layout)
    _title(fig, axes, f"{ylabel}{subject}{note}", counts)
    return fig


BASELINES = (
    ("federated, no DP (ε = inf)", "C0", ":", "no non-DP runs in this sweep"),
    ("federated, DP-SGD without noise (ε = inf)", "C1", "-.", ""),
)
"""Label, colour, line style and note when absent of the privacy plot's reference lines."""


def _baseline(ax: Axes, rows: pd.DataFrame, kind: int = 0) -> list[int]:
    """Federated AUC of reference runs (``kind`` 0: without DP; 1: DP-SGD without noise) as a
    horizontal line, its interval as a band (none under three seeds); returns the number of
    runs behind it."""
    label, color, linestyle, missing = BASELINES[kind]
    values = rows["federated.auc"] if "federated.auc" in rows.columns else []
    mean, low, high, n = interval(values, bounds=metric_range("auc"))
    if not n:
        if missing:
            ax.text(0.02, 0.02, missing, transform=ax.transAxes, fontsize=8)
        return []
    label += " (n=1)" if n == 1 else ""
    ax.axhline(mean, color=color, linestyle=linestyle, linewidth=1.4, label=label)
    if not math.isnan(low):
        ax.axhspan(*clip_interval(low, high, metric_range("auc")), color=color, alpha=0.12)
    return [n]


def privacy_figure(df: pd.DataFrame, eps_key: str) -> Figure:
    """Privacy-utility plot: AUC against the epsilon budget (log x).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`; only runs with status ok are drawn.
    eps_key : str
        Column holding each DP run's epsilon budget (see :func:`epsilon_key`).

    Returns
    -------
    matplotlib.figure.Figure
        Federated with DP and each bank alone (smallest, largest) with DP against epsilon; the
        mean federated AUC of the sweep's non-DP runs, and of its DP-SGD runs without noise,
        as horizontal lines. One panel per
        combination of the other varying overrides.
    """
    ok = df[df["status"] == OK].copy()
    ok["_dp"] = dp_setting(ok)
    noiseless = no_noise(ok) & dp_on(ok)
    on = dp_on(ok) & ~noiseless
    facets = [key for key in varying_keys(df) if key != eps_key and not is_dp_key(key)]
    axis = _Axis.of(ok[on], eps_key, wants_log(ok[on], eps_key))
    models = (PLOT_MODELS[0], *PLOT_MODELS[3:])
    panels = _panels(ok, facets)
    fig, axes = new_figure(len(panels))
    counts: list[int] = []
    for ax, (title, rows) in zip(axes, panels, strict=True):
        modes = list(groups(rows[on.loc[rows.index]], ["_dp"]))
        for i, ((mode,), group) in enumerate(modes):
            for j, prefix in enumerate(models):
                column = f"{prefix}.auc"
                label = f"{_bank_label(group, prefix, column)}, DP ({mode})"
                linestyle = "-" if prefix == "federated" else "--"
                offset = _slot_offset(i * len(models) + j, len(modes) * len(models))
                counts += _draw_line(
                    ax, group, column, axis, offset,
                    linestyle=linestyle, label=label, **model_style(prefix),
                )  # fmt: skip
        counts += _baseline(ax, rows[~dp_on(rows)])
        counts += _baseline(ax, rows[noiseless.loc[rows.index]], kind=1)
        _decorate(ax, axis, axis.log, title, "AUC")
    _figure_legend(fig, axes)
    _title(fig, axes, f"Privacy-utility: AUC vs {eps_key}", counts)
    return fig


def build_figures(df: pd.DataFrame) -> dict[str, Figure]:
    """All report figures by file name (none when no run succeeded).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``plot_auc.png``, ``plot_ks.png``, ``plot_default_recall.png`` and, whenever the sweep
        varies epsilon (even one finite value against ``inf``), ``plot_privacy_utility.png``.
    """
    if df.empty or not (df["status"] == OK).any():
        return {}
    figures = {name: model_figure(df, metric, label) for metric, label, name in PLOT_METRICS}
    eps_key = epsilon_key(df)
    if eps_key is not None:
        figures[PRIVACY_PLOT] = privacy_figure(df, eps_key)
    return figures
