"""``summary.md`` of a sweep: run counts, per-group tables of every model, DP on / off."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from simulations.sweeps.plots import choose_layout
from simulations.sweeps.summary import (
    MODEL_LABELS,
    RECALL,
    SUMMARY_MODELS,
    dp_on,
    dp_setting,
    epsilon_key,
    groups,
    interval,
    is_dp_key,
    no_noise,
    override_keys,
    status_counts,
    summarise,
    varying_keys,
)
from simulations.sweeps.values import (
    DP_OFF,
    OK,
    SEED_KEY,
    fmt_value,
    is_missing,
    natural_key,
    norm,
    value_sort_key,
)

# --------------------------------------------------------------------------- Markdown


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows), ""]


def fmt_number(value: float, digits: int = 3) -> str:
    """Fixed-point text, or an en dash for NaN."""
    return "–" if is_missing(value) else f"{float(value):.{digits}f}"


def _fmt_stats(stats_: tuple[float, float, float, int], n_ok: int, digits: int = 3) -> str:
    """``mean [lo, hi]`` from :func:`interval`; notes n when it differs from ``n_ok``."""
    mean, low, high, n = stats_
    if not n:
        return "–"
    text = fmt_number(mean, digits)
    if is_missing(low) or is_missing(high):
        return text + f" (n = {int(n)}, no interval)"
    text += f" [{fmt_number(low, digits)}, {fmt_number(high, digits)}]"
    return text + (f" (n={n})" if n != n_ok else "")


def _fmt_interval(row: pd.Series, column: str, digits: int = 3) -> str:
    """``mean [lo, hi]`` of one metric in a :func:`summarise` row."""
    parts = (row[f"{column}.{part}"] for part in ("mean", "lo", "hi", "n"))
    return _fmt_stats(tuple(parts), row["n_ok"], digits)


def _models_with_data(df: pd.DataFrame, metric: str) -> list[str]:
    """Model prefixes that have at least one value of ``metric``."""
    return [
        prefix
        for prefix in SUMMARY_MODELS
        if f"{prefix}.{metric}" in df.columns and df[f"{prefix}.{metric}"].notna().any()
    ]


def _metric_section(df: pd.DataFrame, by: list[str], metric: str, title: str) -> list[str]:
    """One Markdown table: a row per group, a column per model."""
    models = _models_with_data(df, metric)
    if not models:
        return []
    summary = summarise(df, by=by, metrics=[f"{prefix}.{metric}" for prefix in models])
    header = [*by, *(MODEL_LABELS[prefix] for prefix in models)]
    rows = [
        [*(fmt_value(row[key]) for key in by)]
        + [_fmt_interval(row, f"{prefix}.{metric}") for prefix in models]
        for _, row in summary.iterrows()
    ]
    return [f"## {title}", "", *md_table(header, rows)]


def _names(rows: pd.DataFrame, role: str) -> str:
    """Bank(s) in a role and their mean training rows, e.g. ``bank_0 (1,234 rows)``."""
    name_column, rows_column = f"local.{role}.name", f"local.{role}.rows"
    if name_column not in rows.columns:
        return "–"
    names = sorted({str(name) for name in rows[name_column].dropna()}, key=natural_key)
    if not names:
        return "–"
    mean_rows, _, _, n = interval(rows[rows_column] if rows_column in rows.columns else [])
    return "/".join(names) + (f" ({mean_rows:,.0f} rows)" if n else "")


def _runs_section(df: pd.DataFrame, by: list[str]) -> list[str]:
    """Counts, bank sizes, run times and epsilon spent per group."""
    with_privacy = "privacy.epsilon_max" in df.columns and df["privacy.epsilon_max"].notna().any()
    header = [*by, "ok", "failed", "skipped", "smallest bank", "largest bank", "wall s", "engine s"]
    header += ["ε spent (max over banks)"] if with_privacy else []
    rows = []
    for values, group in groups(df, by):
        counts = status_counts(group["status"], group.get("last_call"))
        ok = group[group["status"] == OK]
        row = [*(fmt_value(value) for value in values)]
        row += [str(counts[key]) for key in ("n_ok", "n_failed", "n_skipped")]
        row += [_names(ok, "smallest"), _names(ok, "largest")]
        row += [fmt_number(interval(ok[c])[0], 1) for c in ("wall_time_s", "engine_time_s")]
        if with_privacy:
            row.append(_fmt_stats(interval(ok["privacy.epsilon_max"]), len(ok), digits=2))
        rows.append(row)
    return ["## Runs", "", *md_table(header, rows)]


def _dp_section(df: pd.DataFrame, eps_key: str) -> list[str]:
    """DP on/off table: non-DP runs first, then each DP mode and epsilon budget."""
    work = df.copy()
    work["DP"] = dp_setting(work)
    on = dp_on(work)
    work["target ε"] = work[eps_key].where(on)
    work.loc[no_noise(work), "target ε"] = math.inf
    facets = [key for key in varying_keys(df) if key != eps_key and not is_dp_key(key)]
    columns = [
        "privacy.epsilon_max",
        "federated.auc",
        "local.smallest.auc",
        "local.largest.auc",
        "federated.ks",
        f"federated.{RECALL}",
    ]
    summary = summarise(work, by=[*facets, "DP", "target ε"], metrics=columns)
    summary["_on"] = ~summary["DP"].str.lower().isin(DP_OFF)
    summary["_facet"] = summary.groupby(facets, sort=False, dropna=False).ngroup() if facets else 0
    summary = summary.sort_values(["_facet", "_on"], kind="stable")
    labels = ["ε spent", "federated AUC", "smallest bank alone AUC", "largest bank alone AUC"]
    labels += ["federated KS", "federated default recall"]
    header = [*facets, "DP", "target ε", "ok", "failed", *labels]
    rows = []
    for _, row in summary.iterrows():
        cells = [fmt_value(row[key]) for key in facets]
        cells += [str(row["DP"]), fmt_value(row["target ε"]) if row["_on"] else "–"]
        cells += [str(row["n_ok"]), str(row["n_failed"])]
        cells += [_fmt_interval(row, column, 2 if "epsilon" in column else 3) for column in columns]
        rows.append(cells)
    return ["## DP on / off", "", *md_table(header, rows)]


def _problem_section(df: pd.DataFrame) -> list[str]:
    """Every run that is not ok, with its overrides and one-line error."""
    bad = df[df["status"] != OK]
    if bad.empty:
        return []
    keys = override_keys(df)
    rows = []
    for _, run in bad.iterrows():
        overrides = " ".join(f"{k}={fmt_value(run[k])}" for k in keys if not is_missing(run[k]))
        error = run["error"] if isinstance(run["error"], str) else ""
        rows.append([str(run["job"]), str(run["status"]), overrides, error])
    table = md_table(["job", "status", "overrides", "error"], rows)
    return ["## Failed and skipped runs", "", *table]


def sweep_wall_time(df: pd.DataFrame) -> tuple[float, str]:
    """The sweep's wall time and how it was measured.

    From the first start to the last finish of the points that ran in the last call (points
    run in parallel overlap); the sum of the points' times for folders without timestamps.
    """
    ran = df[df["last_call"].isin([None, "ran"])] if "last_call" in df.columns else df
    if {"started_at", "finished_at"} <= set(df.columns):
        started, finished = ran["started_at"].dropna(), ran["finished_at"].dropna()
        if len(started) and len(finished):
            return float(finished.max() - started.min()), "from the first start to the last finish"
    return float(np.nansum(df["wall_time_s"])), "sum over points"


def _counts_line(df: pd.DataFrame) -> str:
    """Runs by outcome, skipped and refused points of the last call, and the wall time."""
    counts = status_counts(df["status"], df.get("last_call"))
    reused = f" ({counts['n_skipped']} skipped: finished earlier with the same configuration)"
    refused = (
        f", {counts['n_refused']} refused (the folder holds another configuration's results, "
        "reported here; see the error lines of the last call)"
    )
    seconds, how = sweep_wall_time(df)
    return (
        f"{counts['n_runs']} runs: {counts['n_ok']} ok"
        + (reused if counts["n_skipped"] else ", 0 skipped")
        + f", {counts['n_failed']} failed"
        + (refused if counts["n_refused"] else ", 0 refused")
        + f". Sweep wall time {seconds:.1f} s ({how}; engine start/stop "
        f"{np.nansum(df['engine_time_s']):.1f} s summed over points)."
    )


def _header_lines(df: pd.DataFrame, root: Path) -> list[str]:
    """Title, run counts, swept and fixed overrides, seeds and the interval method."""
    lines = [f"# Sweep summary: {root.resolve().name}", "", _counts_line(df)]
    varying = varying_keys(df)
    fixed = [key for key in override_keys(df) if key not in varying and key != SEED_KEY]
    layout = choose_layout(df)
    lines.append("")
    lines.append(
        f"- Swept: {', '.join(f'`{k}`' for k in varying) or 'nothing'}"
        + (f" (plots: x = `{layout.x}`)" if layout.x else "")
    )
    if fixed:
        lines.append("- Fixed: " + ", ".join(f"`{k}={fmt_value(df[k].iloc[0])}`" for k in fixed))
    if SEED_KEY in df.columns:
        seeds = sorted({norm(v) for v in df[SEED_KEY]} - {None}, key=value_sort_key)
        lines.append(f"- Seeds: {', '.join(fmt_value(s) for s in seeds)}")
    lines.append(
        "- Cells: mean [lo, hi] over seeds, 95% Student-t interval "
        "(mean ± t(0.975, n−1)·sd/√n; for AUC, KS, recall and other metrics in [0, 1] on the "
        "logit scale, so it stays in range); no interval under 3 runs; n is shown when it "
        "differs from the ok runs."
    )
    return [*lines, ""]


def render_markdown(df: pd.DataFrame, root: Path, plots: Sequence[str] = ()) -> str:
    """The text of ``summary.md``.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`.
    root : pathlib.Path
        The sweep folder (for the title).
    plots : sequence of str
        File names of the plots written next to ``summary.md``.

    Returns
    -------
    str
        Header, per-group tables (runs; AUC; KS; default recall at the validation threshold;
        DP on/off when epsilon is swept), failed runs and plot links.
    """
    if df.empty:
        return f"# Sweep summary: {root.resolve().name}\n\nNo run folders found.\n"
    lines = _header_lines(df, root)
    by = varying_keys(df)
    if (df["status"] == OK).any():
        lines += _runs_section(df, by)
        lines += _metric_section(df, by, "auc", "AUC")
        lines += _metric_section(df, by, "ks", "KS")
        lines += _metric_section(df, by, RECALL, "Default recall at the validation threshold")
        eps_key = epsilon_key(df)
        lines += _dp_section(df, eps_key) if eps_key else []
    else:
        lines += ["No run succeeded: no metric tables or plots.", ""]
    lines += _problem_section(df)
    if plots:
        lines += ["## Plots", "", *(f"![{name}]({name})" for name in plots), ""]
    return "\n".join(lines)
