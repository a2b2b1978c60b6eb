"""Averaging a sweep over seeds: groups, Student-t intervals, and the DP setting of runs.

Intervals are two-sided 95% Student-t intervals over the seeds of a group:
``mean ± t(0.975, n - 1) · sd / sqrt(n)`` with the sample standard deviation (``ddof=1``).
A metric with a bounded range (AUC, KS, recall: :func:`fl_credit.credit.plotting.metric_range`) gets
the interval on the logit scale of its range, mapped back, so both ends stay inside the range.
A group with fewer than three successful runs has a mean but no interval: with two, the
t-interval is the mean ± 12.7 half-differences, wider than any metric's range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fl_credit.credit.plotting import metric_range
from simulations.sweeps.values import (
    DP_OFF,
    OK,
    REFUSED,
    SEED_KEY,
    SKIPPED,
    is_number,
    norm,
    value_sort_key,
)

CONFIDENCE = 0.95
MIN_INTERVAL_RUNS = 3
"""Fewest runs for an interval."""
EDGE = 1e-3
"""Values at a bounded range's ends are moved this share of the range inside it (logit)."""
NO_NOISE_SUFFIX = " without noise (not private)"
"""Appended to the DP mode of runs that clip and sample like DP-SGD but add no noise."""
RECALL = "at_val_threshold.default.recall"
MAIN_METRICS = ("auc", "ks", "brier", RECALL)
SUMMARY_MODELS = (
    "federated",
    "centralized",
    "reference",
    "local.smallest",
    "local.largest",
    "local.mean",
    "local.best",
)
DEFAULT_SUMMARY_METRICS = (
    *(f"{model}.{metric}" for model in SUMMARY_MODELS for metric in MAIN_METRICS),
    "privacy.epsilon_max",
    "privacy_local.epsilon_max",
    "wall_time_s",
    "engine_time_s",
)

MODEL_LABELS = {
    "federated": "federated",
    "centralized": "centralized (pooled)",
    "reference": "reference LR (pooled)",
    "local.smallest": "bank alone (smallest)",
    "local.largest": "bank alone (largest)",
    "local.mean": "banks alone (mean)",
    "local.best": "best bank alone",
}

# --------------------------------------------------------------------------- grouping


def override_keys(df: pd.DataFrame) -> list[str]:
    """Override columns of a :func:`collect_runs` frame (also after a CSV round trip)."""
    keys = df.attrs.get("override_keys")
    if keys is not None:
        return [key for key in keys if key in df.columns]
    columns = list(df.columns)
    if "run_dir" in columns and "status" in columns:
        return columns[columns.index("run_dir") + 1 : columns.index("status")]
    return []


def varying_keys(df: pd.DataFrame, exclude: Sequence[str] = (SEED_KEY,)) -> list[str]:
    """Override keys that take more than one value (unset counts as a value)."""
    varying = []
    for key in override_keys(df):
        if key not in exclude and len({norm(value) for value in df[key]}) > 1:
            varying.append(key)
    return varying


def match_rows(df: pd.DataFrame, keys: Sequence[str], values: Sequence[Any]) -> pd.Series:
    """Rows whose ``keys`` equal ``values`` (None matches unset)."""
    mask = pd.Series(True, index=df.index)
    for key, value in zip(keys, values, strict=True):
        mask &= df[key].isna() if value is None else df[key].map(norm).eq(value)
    return mask


def groups(df: pd.DataFrame, by: Sequence[str]) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    """Groups of ``df`` by ``by``, ordered numerically/alphabetically; unset values kept."""
    if df.empty:
        return
    if not by:
        yield (), df
        return
    combos = {tuple(norm(value) for value in row) for row in df[list(by)].itertuples(index=False)}
    for combo in sorted(combos, key=lambda c: tuple(value_sort_key(value) for value in c)):
        yield combo, df[match_rows(df, by, combo)]


def interval(
    values: Any,
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> tuple[float, float, float, int]:
    """Mean and Student-t confidence interval of the non-missing values.

    Parameters
    ----------
    values : array-like
        One value per seed; NaN and non-numbers are ignored.
    confidence : float
        Two-sided coverage of the interval.
    bounds : tuple of float
        The values the metric can take; when both are finite the interval is computed on the
        logit of the position in the range and mapped back (it stays inside the range).

    Returns
    -------
    tuple of (float, float, float, int)
        ``(mean, lo, hi, n)``; unbounded: ``mean ± t((1 + confidence) / 2, n - 1) · sd /
        sqrt(n)``. ``lo`` and ``hi`` are NaN when n < ``MIN_INTERVAL_RUNS``, everything is
        NaN when n = 0.
    """
    data = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").dropna()
    array = data.to_numpy(dtype=float)
    n = len(array)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(array.mean())
    if n < MIN_INTERVAL_RUNS:
        return mean, math.nan, math.nan, n
    low, high = bounds
    bounded = math.isfinite(low) and math.isfinite(high)
    if bounded:
        unit = np.clip((array - low) / (high - low), EDGE, 1.0 - EDGE)
        array = np.log(unit / (1.0 - unit))
    centre = float(array.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(array.std(ddof=1)) / math.sqrt(n)
    ends = np.array([centre - half, centre + half])
    if bounded:
        ends = low + (high - low) / (1.0 + np.exp(-ends))
    # Values all at a bound (every seed's recall 0) sit EDGE inside it on the logit scale:
    # the interval must still hold the mean.
    return mean, min(float(ends[0]), mean), max(float(ends[1]), mean), n


def status_counts(status: pd.Series, last_call: pd.Series | None = None) -> dict[str, int]:
    """Runs, ok, failed (anything but ok and skipped), and of the last call's points the
    skipped (already finished with the same configuration: their results count as ok) and
    the refused (another configuration's results in the folder)."""
    calls = pd.Series(dtype=object) if last_call is None else last_call
    n_ok, n_skipped = int((status == OK).sum()), int((status == SKIPPED).sum())
    return {
        "n_runs": len(status),
        "n_ok": n_ok,
        "n_failed": len(status) - n_ok - n_skipped,
        "n_skipped": n_skipped + int((calls == SKIPPED).sum()),
        "n_refused": int((calls == REFUSED).sum()),
    }


def summarise(
    df: pd.DataFrame,
    by: list[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Average the runs of a sweep over seeds.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`collect_runs`.
    by : list of str, optional
        Grouping columns; default: every override key except ``seed``.
    metrics : sequence of str, optional
        Columns to average; default: AUC, KS, Brier and default recall at the validation
        threshold of every model, the largest epsilon spent, and the run times. Columns absent
        from ``df`` are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` values, ``n_runs``, ``n_ok``, ``n_failed`` (failed or
        missing status), ``n_skipped``, then ``<metric>.mean``, ``<metric>.lo``,
        ``<metric>.hi`` (two-sided 95% Student-t interval over the successful runs, see
        :func:`interval`) and ``<metric>.n`` (runs with a value).
    """
    by = [key for key in override_keys(df) if key != SEED_KEY] if by is None else list(by)
    unknown = [key for key in by if key not in df.columns]
    if unknown:
        raise KeyError(f"cannot group by missing columns: {', '.join(unknown)}")
    chosen = DEFAULT_SUMMARY_METRICS if metrics is None else metrics
    present = [column for column in chosen if column in df.columns]
    stat_columns = [f"{column}.{part}" for column in present for part in ("mean", "lo", "hi", "n")]
    rows = []
    for values, group in groups(df, by):
        row: dict[str, Any] = dict(zip(by, values, strict=True))
        row.update(status_counts(group["status"], group.get("last_call")))
        ok = group[group["status"] == OK]
        for column in present:
            mean, low, high, n = interval(ok[column], bounds=metric_range(column))
            row.update({f"{column}.mean": mean, f"{column}.lo": low, f"{column}.hi": high})
            row[f"{column}.n"] = n
        rows.append(row)
    columns = [*by, "n_runs", "n_ok", "n_failed", "n_skipped", "n_refused", *stat_columns]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- DP


def dp_setting(df: pd.DataFrame) -> pd.Series:
    """DP mode of each run: ``config.dp`` when known, else the ``dp`` override, else ``off``."""
    labels = pd.Series("off", index=df.index, dtype=object)
    if "privacy.epsilon_max" in df.columns:
        labels[df["privacy.epsilon_max"].notna()] = "dp"
    for column in ("dp.mode", "dp", "config.dp.mode", "config.dp"):
        if column in df.columns:
            present = df[column].notna()
            labels[present] = df.loc[present, column].astype(str)
    noiseless = no_noise(df) & ~labels.str.lower().isin(DP_OFF)
    labels[noiseless] = labels[noiseless] + NO_NOISE_SUFFIX
    return labels


def no_noise(df: pd.DataFrame) -> pd.Series:
    """True for DP-SGD runs without noise (``dp.epsilon=no_noise``: ``config.private`` false)."""
    if "config.private" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["config.private"].map(lambda value: str(value).lower() == "false")


def dp_on(df: pd.DataFrame) -> pd.Series:
    """True for runs trained with differential privacy."""
    return ~dp_setting(df).str.lower().isin(DP_OFF)


def is_numeric(series: pd.Series) -> bool:
    """True when every set value is a number (and at least one is set)."""
    values = series.dropna()
    return len(values) > 0 and all(is_number(value) for value in values)


def is_dp_key(key: str) -> bool:
    """An override that sets the DP mode or budget (``dp``, ``dp.mode``, ``dp.epsilon``)."""
    return key in ("dp", "dp.mode") or (key.startswith("dp") and "epsilon" in key)


def epsilon_key(df: pd.DataFrame) -> str | None:
    """The swept epsilon column (``dp.epsilon``-like override first, then ``config.dp_epsilon``).

    Swept means: DP runs hold numbers in it, and over all runs it takes more than one value,
    where a non-DP run's ``inf`` or unset counts as a value. So one finite budget against
    ``inf`` (no DP) is a sweep, as are several finite budgets.
    """
    on = dp_on(df)
    candidates = [key for key in override_keys(df) if is_dp_key(key)]
    for key in [*candidates, "config.dp_epsilon"]:
        if (
            key in df.columns
            and is_numeric(df.loc[on, key])
            and df[key].map(norm).nunique(dropna=False) > 1
        ):
            return key
    return None
