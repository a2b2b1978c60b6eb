"""Summarise a Hydra multirun of fl-credit experiments: a table, a Markdown page and plots.

Every job folder of the sweep (``<sweep_dir>/<job_num>/``) holds ``.hydra/overrides.yaml``,
``status.json`` and, for successful runs, ``metrics.json``. :func:`collect_runs` turns them into
one row per job, :func:`summarise` averages over seeds, and :func:`write_report` writes
``summary.csv``, ``summary.md`` and the ``plot_*.png`` figures into the sweep folder.

Intervals are two-sided 95% Student-t intervals over the seeds of a group:
``mean ± t(0.975, n - 1) · sd / sqrt(n)`` with the sample standard deviation (``ddof=1``);
a group with a single successful run has a mean but no interval.

Usage::

    python -m simulations.report <multirun dir>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from scipy import stats

SEED_KEY = "seed"
OK, FAILED, SKIPPED, MISSING = "ok", "failed", "skipped", "missing"
CONFIDENCE = 0.95

LEAD_COLUMNS = ("job", "run_dir")
STATUS_COLUMNS = ("status", "error", "wall_time_s", "engine_time_s")
RESERVED_COLUMNS = frozenset(LEAD_COLUMNS + STATUS_COLUMNS)
SECTIONS = ("local", "banks", "privacy", "privacy_local", "config")
FIRST_MODELS = ("federated", "centralized", "reference")
LOCAL_ROLES = ("smallest", "largest", "mean", "best")
DP_OFF = frozenset({"off", "none", "false", "no", "0", ""})

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
# (model prefix, colour, marker) of the lines on the model-comparison plots.
PLOT_MODELS = (
    ("federated", "C0", "o"),
    ("centralized", "C1", "s"),
    ("reference", "C7", "x"),
    ("local.smallest", "C2", "v"),
    ("local.largest", "C3", "^"),
)
# (metric key, axis label, file name) of the model-comparison plots.
PLOT_METRICS = (
    ("auc", "AUC", "plot_auc.png"),
    ("ks", "KS", "plot_ks.png"),
    (RECALL, "default recall (validation threshold)", "plot_default_recall.png"),
)
PRIVACY_PLOT = "plot_privacy_utility.png"
REPORT_PLOTS = (*(name for _, _, name in PLOT_METRICS), PRIVACY_PLOT)
LINESTYLES = ("-", "--", ":", "-.")


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    """True for int and float values (numpy included), never for bools."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _is_missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (_is_number(value) and math.isnan(float(value)))


def _as_float(value: Any) -> float:
    """A float, or NaN when ``value`` is not a number."""
    return float(value) if _is_number(value) else math.nan


def _natural_key(text: str) -> list[tuple[int, Any]]:
    """Sort key that orders ``bank_2`` before ``bank_10``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def _value_sort_key(value: Any) -> tuple[int, float, str]:
    """Sort key for override values: numbers numerically, then strings, then unset."""
    if _is_missing(value):
        return (2, 0.0, "")
    if _is_number(value):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _norm(value: Any) -> Any:
    """NaN becomes None and numpy scalars become Python ones, so values can be set members."""
    if _is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _fmt_value(value: Any) -> str:
    """Compact text of an override value."""
    if _is_missing(value):
        return "(unset)"
    if _is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:g}"
    return str(value)


def _one_line(text: Any) -> str | None:
    """Collapse whitespace and newlines; None for empty text."""
    if text is None:
        return None
    line = " ".join(str(text).split())
    return line or None


def parse_override(text: str) -> tuple[str, Any]:
    """Split one Hydra override string into its key and value.

    Parameters
    ----------
    text : str
        An override as Hydra records it, e.g. ``partition.share=0.1`` or ``++dp.epsilon=2``.

    Returns
    -------
    tuple of (str, Any)
        The key without ``+``/``++``/``~`` prefixes, and the value: int or float when the text
        is a number, the unquoted string otherwise, None for a deletion (``~key``).
    """
    body = text.strip().lstrip("+~")
    key, sep, raw = body.partition("=")
    return key.strip(), _parse_value(raw) if sep else None


def _parse_value(raw: str) -> Any:
    """Numbers become int or float; everything else stays text (quotes removed)."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return text


# --------------------------------------------------------------------------- reading runs


def _read_json(path: Path) -> Any:
    """Parsed JSON content of ``path``."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _is_run_dir(path: Path) -> bool:
    """A job folder has ``status.json`` or Hydra's ``.hydra/overrides.yaml``."""
    return (path / "status.json").is_file() or (path / ".hydra" / "overrides.yaml").is_file()


def find_run_dirs(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """Job folders of a sweep, in job order.

    Parameters
    ----------
    sweep_dir : str or os.PathLike
        A multirun folder, or a single run folder (then it is its own only job).

    Returns
    -------
    list of pathlib.Path
        Sub-folders holding ``status.json`` or ``.hydra/overrides.yaml``, naturally sorted.
    """
    root = Path(sweep_dir)
    children = [path for path in root.iterdir() if path.is_dir() and _is_run_dir(path)]
    if not children and _is_run_dir(root):
        return [root]
    return sorted(children, key=lambda path: _natural_key(path.name))


def _read_status(run_dir: Path) -> dict[str, Any]:
    """``status.json``, or a stand-in describing why it cannot be used."""
    path = run_dir / "status.json"
    if not path.is_file():
        reason = "no status.json: the job was killed or is still running"
        return {"status": MISSING, "error": reason}
    try:
        raw = _read_json(path)
    except (OSError, ValueError) as exc:
        return {"status": FAILED, "error": f"unreadable status.json: {exc}"}
    if not isinstance(raw, dict):
        return {"status": FAILED, "error": "status.json is not a JSON object"}
    return raw


def _read_overrides(run_dir: Path, status: dict[str, Any]) -> list[str]:
    """The override strings of the run whose results the folder holds.

    ``status.json`` first: it is written with the results, while Hydra rewrites
    ``.hydra/overrides.yaml`` at every call into the folder, even one that is then refused.
    Hydra's file only for a job without a status (killed or still running).
    """
    overrides: Any = status.get("overrides")
    path = run_dir / ".hydra" / "overrides.yaml"
    if not isinstance(overrides, list) and path.is_file():
        with contextlib.suppress(OSError, yaml.YAMLError):
            overrides = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [str(item) for item in overrides] if isinstance(overrides, list) else []


def _read_metrics(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``metrics.json`` of a successful run, or None and the reason."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None, "status is ok but metrics.json is missing"
    try:
        raw = _read_json(path)
    except (OSError, ValueError) as exc:
        return None, f"status is ok but metrics.json is unreadable: {exc}"
    if not isinstance(raw, dict):
        return None, "status is ok but metrics.json is not a JSON object"
    return raw, None


def _override_columns(overrides: list[str]) -> dict[str, Any]:
    """One column per override key (keys that clash with fixed columns get ``override.``)."""
    columns: dict[str, Any] = {}
    for text in overrides:
        key, value = parse_override(text)
        if not key:
            continue
        columns[f"override.{key}" if key in RESERVED_COLUMNS else key] = value
    return columns


def _run_record(run_dir: Path, index: int, root: Path) -> tuple[dict[str, Any], list[str]]:
    """One row of :func:`collect_runs` and the override keys it holds."""
    status = _read_status(run_dir)
    overrides = _override_columns(_read_overrides(run_dir, status))
    record: dict[str, Any] = {
        "job": int(run_dir.name) if run_dir.name.isdigit() else index,
        "run_dir": run_dir.relative_to(root).as_posix(),
        **overrides,
        "status": str(status.get("status") or FAILED),
        "error": _one_line(status.get("error")),
        "wall_time_s": _as_float(status.get("wall_time_s")),
        "engine_time_s": _as_float(status.get("engine_time_s")),
    }
    if record["status"] == OK:
        metrics, problem = _read_metrics(run_dir)
        if metrics is None:
            record["status"], record["error"] = FAILED, problem
        else:
            record.update(metric_columns(metrics))
    return record, list(overrides)


# --------------------------------------------------------------------------- flattening


def _flatten(obj: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts to dotted keys; a ``*_ci`` pair becomes ``*_ci_lo`` and ``*_ci_hi``."""
    if isinstance(obj, dict):
        flat: dict[str, Any] = {}
        for key, value in obj.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if prefix.endswith("_ci") and (obj is None or isinstance(obj, list | tuple) and len(obj) == 2):
        low, high = (None, None) if obj is None else obj
        return {f"{prefix}_lo": low, f"{prefix}_hi": high}
    if isinstance(obj, list | tuple):
        return {prefix: json.dumps(obj)}
    return {prefix: obj}


def _bank_rows(banks: dict[str, Any]) -> dict[str, float]:
    """Training rows per bank (banks without a row count are left out)."""
    rows = {}
    for name, info in banks.items():
        if isinstance(info, dict) and _is_number(info.get("rows")):
            rows[str(name)] = float(info["rows"])
    return rows


def _role_columns(role: str, name: str | None, flat: dict[str, Any]) -> dict[str, Any]:
    """``local.<role>.name`` and that bank's metrics under ``local.<role>.``."""
    columns: dict[str, Any] = {f"local.{role}.name": name}
    columns.update({f"local.{role}.{key}": value for key, value in flat.items()})
    return columns


def _mean_metrics(trained: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per-metric mean over the banks that trained alone (numbers only)."""
    keys: list[str] = []
    for flat in trained.values():
        keys.extend(key for key in flat if key not in keys)
    means = {}
    for key in keys:
        values = [float(flat[key]) for flat in trained.values() if _is_number(flat.get(key))]
        if values:
            means[key] = float(np.mean(values))
    return means


def _local_columns(local: dict[str, Any], banks: dict[str, Any]) -> dict[str, Any]:
    """Per-bank local metrics plus the smallest, largest, mean and best bank alone."""
    trained = {str(name): _flatten(m, "") for name, m in local.items() if isinstance(m, dict)}
    rows = _bank_rows(banks)
    columns: dict[str, Any] = {"local.n_trained": len(trained)}
    by_size = sorted(rows, key=lambda name: (rows[name], _natural_key(name)))
    for role, name in (("smallest", 0), ("largest", -1)):
        bank = by_size[name] if by_size else None
        columns.update(_role_columns(role, bank, trained.get(bank, {}) if bank else {}))
        columns[f"local.{role}.rows"] = rows.get(bank, math.nan) if bank else math.nan
    columns.update({f"local.mean.{key}": value for key, value in _mean_metrics(trained).items()})
    ranked = [name for name in trained if _is_number(trained[name].get("auc"))]
    best = max(ranked, key=lambda name: float(trained[name]["auc"]), default=None)
    columns.update(_role_columns("best", best, trained.get(best, {}) if best else {}))
    for name in sorted(local, key=lambda bank: _natural_key(str(bank))):
        columns.update(_flatten(local[name], f"local.{name}"))
    return columns


def _privacy_columns(privacy: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Largest epsilon spent and target over banks, plus each bank's accounting."""
    per_bank = {str(name): info for name, info in privacy.items() if isinstance(info, dict)}
    if not per_bank:
        return {}

    def largest(key: str) -> float:
        values = [float(info[key]) for info in per_bank.values() if _is_number(info.get(key))]
        return max(values) if values else math.nan

    columns: dict[str, Any] = {
        f"{prefix}.epsilon_max": largest("epsilon"),
        f"{prefix}.target_epsilon": largest("target_epsilon"),
        f"{prefix}.delta_max": largest("delta"),
    }
    for name in sorted(per_bank, key=_natural_key):
        columns.update(_flatten(per_bank[name], f"{prefix}.{name}"))
    return columns


def _is_model(value: Any) -> bool:
    """A metrics object: a dict with an ``auc``."""
    return isinstance(value, dict) and "auc" in value


def metric_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """Flatten one ``metrics.json`` into report columns.

    Parameters
    ----------
    metrics : dict
        Parsed ``metrics.json`` of one run.

    Returns
    -------
    dict
        ``<model>.<metric>`` for every model object (``federated``, ``centralized``,
        ``reference`` and any other top-level dict with an ``auc``), ``local.*`` (per bank and
        the ``smallest``, ``largest``, ``mean`` and ``best`` bank alone), ``banks.*``,
        ``privacy.*`` and ``privacy_local.*`` (largest epsilon over banks, then per bank),
        ``config.*``, and any other top-level dict flattened under its own name (e.g.
        ``timing.*``). Top-level lists and scalars (e.g. ``overrides``) are left out.
    """

    def section(name: str) -> dict[str, Any]:
        value = metrics.get(name)
        return value if isinstance(value, dict) else {}

    columns: dict[str, Any] = {}
    for name, value in metrics.items():
        if _is_model(value):
            columns.update(_flatten(value, str(name)))
    columns.update(_local_columns(section("local"), section("banks")))
    columns.update(_flatten(section("banks"), "banks"))
    columns.update(_privacy_columns(section("privacy"), "privacy"))
    columns.update(_privacy_columns(section("privacy_local"), "privacy_local"))
    columns.update(_flatten(section("config"), "config"))
    for name, value in metrics.items():
        if name not in SECTIONS and isinstance(value, dict) and not _is_model(value):
            columns.update(_flatten(value, str(name)))
    return columns


def _column_rank(column: str, models: set[str]) -> tuple[Any, ...]:
    """Section order: models, local roles, each bank alone, banks, privacy, config, the rest."""
    head, _, rest = column.partition(".")
    second = rest.partition(".")[0]
    if head in FIRST_MODELS:
        return (FIRST_MODELS.index(head),)
    if head in models:
        return (3, head)
    if head == "local":
        if second in LOCAL_ROLES:
            return (4, LOCAL_ROLES.index(second))
        return (5, 0) if second == "n_trained" else (5, 1, _natural_key(second))
    if head == "banks":
        return (6, _natural_key(second))
    if head in ("privacy", "privacy_local"):
        bank = (1, _natural_key(second)) if "." in rest else (0,)
        return (7, head, *bank)
    return (8,) if head == "config" else (9, head)


def collect_runs(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per job folder of a sweep.

    Parameters
    ----------
    sweep_dir : str or os.PathLike
        Hydra's multirun folder (``hydra.sweep.dir``), or a single run folder.

    Returns
    -------
    pandas.DataFrame
        Columns, in order: ``job``, ``run_dir``, one column per override key (e.g.
        ``partition.share``, ``seed``), ``status``, ``error``, ``wall_time_s``,
        ``engine_time_s``, then the flattened metrics (see :func:`metric_columns`). Runs whose
        status is ok but whose ``metrics.json`` is missing are reported as failed. The override
        keys are also kept in ``df.attrs["override_keys"]``.

    Raises
    ------
    NotADirectoryError
        If ``sweep_dir`` is not a directory.
    """
    root = Path(sweep_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    records: list[dict[str, Any]] = []
    keys: list[str] = []
    for index, run_dir in enumerate(find_run_dirs(root)):
        record, run_keys = _run_record(run_dir, index, root)
        records.append(record)
        keys.extend(key for key in run_keys if key not in keys)
    fixed = set(LEAD_COLUMNS) | set(keys) | set(STATUS_COLUMNS)
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(column for column in record if column not in fixed))
    models = {col[: -len(".auc")] for col in seen if col.endswith(".auc") and col.count(".") == 1}
    metrics = sorted(seen, key=lambda column: _column_rank(column, models))
    frame = pd.DataFrame(records, columns=[*LEAD_COLUMNS, *keys, *STATUS_COLUMNS, *metrics])
    frame = frame.sort_values("job", kind="stable").reset_index(drop=True)
    frame.attrs["override_keys"] = keys
    return frame


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
        if key not in exclude and len({_norm(value) for value in df[key]}) > 1:
            varying.append(key)
    return varying


def _match(df: pd.DataFrame, keys: Sequence[str], values: Sequence[Any]) -> pd.Series:
    """Rows whose ``keys`` equal ``values`` (None matches unset)."""
    mask = pd.Series(True, index=df.index)
    for key, value in zip(keys, values, strict=True):
        mask &= df[key].isna() if value is None else df[key].map(_norm).eq(value)
    return mask


def _groups(df: pd.DataFrame, by: Sequence[str]) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    """Groups of ``df`` by ``by``, ordered numerically/alphabetically; unset values kept."""
    if df.empty:
        return
    if not by:
        yield (), df
        return
    combos = {tuple(_norm(value) for value in row) for row in df[list(by)].itertuples(index=False)}
    for combo in sorted(combos, key=lambda c: tuple(_value_sort_key(value) for value in c)):
        yield combo, df[_match(df, by, combo)]


def interval(values: Any, confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """Mean and Student-t confidence interval of the non-missing values.

    Parameters
    ----------
    values : array-like
        One value per seed; NaN and non-numbers are ignored.
    confidence : float
        Two-sided coverage of the interval.

    Returns
    -------
    tuple of (float, float, float, int)
        ``(mean, lo, hi, n)`` with ``mean ± t((1 + confidence) / 2, n - 1) · sd / sqrt(n)``;
        ``lo`` and ``hi`` are NaN when n < 2, everything is NaN when n = 0.
    """
    data = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").dropna()
    array = data.to_numpy(dtype=float)
    n = len(array)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(array.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(array.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def _status_counts(status: pd.Series) -> dict[str, int]:
    """Runs, ok, failed (anything but ok and skipped) and skipped."""
    n_ok, n_skipped = int((status == OK).sum()), int((status == SKIPPED).sum())
    return {
        "n_runs": len(status),
        "n_ok": n_ok,
        "n_failed": len(status) - n_ok - n_skipped,
        "n_skipped": n_skipped,
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
        ``<metric>.hi`` (two-sided 95% Student-t interval over the successful runs,
        ``mean ± t(0.975, n - 1) · sd / sqrt(n)``) and ``<metric>.n`` (runs with a value).
    """
    by = [key for key in override_keys(df) if key != SEED_KEY] if by is None else list(by)
    unknown = [key for key in by if key not in df.columns]
    if unknown:
        raise KeyError(f"cannot group by missing columns: {', '.join(unknown)}")
    chosen = DEFAULT_SUMMARY_METRICS if metrics is None else metrics
    present = [column for column in chosen if column in df.columns]
    stat_columns = [f"{column}.{part}" for column in present for part in ("mean", "lo", "hi", "n")]
    rows = []
    for values, group in _groups(df, by):
        row: dict[str, Any] = dict(zip(by, values, strict=True))
        row.update(_status_counts(group["status"]))
        ok = group[group["status"] == OK]
        for column in present:
            mean, low, high, n = interval(ok[column])
            row.update({f"{column}.mean": mean, f"{column}.lo": low, f"{column}.hi": high})
            row[f"{column}.n"] = n
        rows.append(row)
    columns = [*by, "n_runs", "n_ok", "n_failed", "n_skipped", *stat_columns]
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
    return labels


def _dp_on(df: pd.DataFrame) -> pd.Series:
    """True for runs trained with differential privacy."""
    return ~dp_setting(df).str.lower().isin(DP_OFF)


def _is_numeric(series: pd.Series) -> bool:
    """True when every set value is a number (and at least one is set)."""
    values = series.dropna()
    return len(values) > 0 and all(_is_number(value) for value in values)


def epsilon_key(df: pd.DataFrame) -> str | None:
    """The epsilon column swept among DP runs (``dp.epsilon``-like override first), if any."""
    on = df[_dp_on(df)]
    candidates = [key for key in override_keys(df) if key.startswith("dp") and "epsilon" in key]
    for key in [*candidates, "config.dp_epsilon"]:
        if key in on.columns and _is_numeric(on[key]) and on[key].dropna().nunique() > 1:
            return key
    return None


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


def _wants_log(df: pd.DataFrame, key: str | None) -> bool:
    """Log x for epsilon, or for positive values spanning a factor of 50 or more."""
    if key is None or not _is_numeric(df[key]):
        return False
    values = df[key].dropna().astype(float)
    if (values <= 0).any():
        return False
    return "epsilon" in key or values.max() / values.min() >= 50


def _pick_x(df: pd.DataFrame, keys: list[str]) -> str | None:
    """The numeric key with most distinct values; else the categorical one with most."""
    if not keys:
        return None
    distinct = {key: len({_norm(value) for value in df[key]}) for key in keys}
    numeric = [key for key in keys if _is_numeric(df[key])]
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
    return PlotLayout(x=x, style=style, facets=facets, log_x=_wants_log(df, x))


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
        values = {_norm(value) for value in df[key]}
        numeric = _is_numeric(df[key])
        if numeric:
            values.discard(None)
        return cls(key, tuple(sorted(values, key=_value_sort_key)), numeric, log and numeric)

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


def _new_figure(panels: int) -> tuple[Figure, list[Axes]]:
    """A constrained-layout Agg figure with a grid of panels (shared y axis)."""
    ncols = min(3, max(panels, 1))
    nrows = math.ceil(max(panels, 1) / ncols)
    fig = Figure(figsize=(4.6 * ncols + 2.8, 3.6 * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    axes = list(grid.ravel())
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[: max(panels, 1)]


def _panels(df: pd.DataFrame, facets: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """One (title, rows) pair per combination of the facet overrides."""
    panels = []
    for values, rows in _groups(df, facets):
        title = ", ".join(
            f"{key}={_fmt_value(value)}" for key, value in zip(facets, values, strict=True)
        )
        panels.append((title, rows))
    return panels or [("", df)]


def _slot_offset(slot: int, slots: int) -> float:
    """Sideways offset (fraction of the axis span) of line ``slot`` out of ``slots``."""
    step = min(0.012, 0.12 / max(slots, 1))
    return (slot - (slots - 1) / 2) * step


def _draw_line(
    ax: Axes, rows: pd.DataFrame, column: str, axis: _Axis, offset: float, **style: Any
) -> bool:
    """Mean ± interval of ``column`` at each x value; False when there is nothing to draw."""
    if column not in rows.columns:
        return False
    points = []
    for values, group in _groups(rows, [axis.key] if axis.key else []):
        x = axis.position(values[0] if values else None)
        mean, low, high, n = interval(group[column])
        if x is not None and n:
            points.append((x, mean, low, high))
    if not points:
        return False
    xs, means, lows, highs = (np.array(part, dtype=float) for part in zip(*points, strict=True))
    errors = np.vstack([np.nan_to_num(means - lows), np.nan_to_num(highs - means)])
    xs = axis.dodge(xs, offset)
    ax.errorbar(xs, means, yerr=errors, capsize=3, markersize=5, linewidth=1.4, **style)
    return True


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
        (f" [{key}={_fmt_value(values[0])}]", LINESTYLES[i % len(LINESTYLES)], group)
        for i, (values, group) in enumerate(_groups(rows, [key]))
    ]


def _decorate(ax: Axes, axis: _Axis, log_x: bool, title: str, ylabel: str) -> None:
    """Axis labels, ticks and grid of one panel (a log axis is ticked at the swept values)."""
    if not axis.numeric:
        ax.set_xticks(range(len(axis.categories)), [_fmt_value(v) for v in axis.categories])
        ax.set_xlim(-0.5, len(axis.categories) - 0.5)
    elif log_x:
        ax.set_xscale("log")
        ax.set_xticks([float(v) for v in axis.categories], [_fmt_value(v) for v in axis.categories])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(axis.key or "")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)


def _title(fig: Figure, axes: Sequence[Axes], text: str) -> None:
    """Figure title; above the only panel when there is one, so it clears the legend."""
    text += "\nmean and 95% t-interval over seeds"
    if len(axes) == 1 and not axes[0].get_title():
        axes[0].set_title(text, fontsize="medium")
    else:
        fig.suptitle(text, fontsize="medium")


def _figure_legend(fig: Figure, axes: Sequence[Axes]) -> None:
    """One legend for all panels, outside on the right, without duplicate labels."""
    entries: dict[str, Any] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()), list(entries), loc="outside right upper", fontsize="small"
        )


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
        Error bars are 95% t-intervals over seeds; see :func:`choose_layout` for the axes.
    """
    ok = df[df["status"] == OK]
    layout = choose_layout(df)
    axis = _Axis.of(ok, layout.x, layout.log_x)
    panels = _panels(ok, layout.facets)
    fig, axes = _new_figure(len(panels))
    for ax, (title, rows) in zip(axes, panels, strict=True):
        styles = _style_groups(rows, layout.style)
        slots = len(styles) * len(PLOT_MODELS)
        for i, (suffix, linestyle, group) in enumerate(styles):
            for j, (prefix, color, marker) in enumerate(PLOT_MODELS):
                column = f"{prefix}.{metric}"
                label = _bank_label(group, prefix, column) + suffix
                offset = _slot_offset(i * len(PLOT_MODELS) + j, slots)
                _draw_line(
                    ax, group, column, axis, offset,
                    color=color, marker=marker, linestyle=linestyle, label=label,
                )  # fmt: skip
        _decorate(ax, axis, layout.log_x, title, ylabel)
    _figure_legend(fig, axes)
    subject = f" vs {layout.x}" if layout.x else ""
    note = _fixed_dp_note(ok, layout)
    _title(fig, axes, f"{ylabel}{subject}{note}")
    return fig


def _baseline(ax: Axes, rows: pd.DataFrame) -> None:
    """Federated AUC without DP as a horizontal line with its interval as a band."""
    mean, low, high, n = interval(rows["federated.auc"] if "federated.auc" in rows.columns else [])
    if not n:
        ax.text(0.02, 0.02, "no non-DP runs in this sweep", transform=ax.transAxes, fontsize=8)
        return
    ax.axhline(mean, color="C0", linestyle=":", linewidth=1.4, label="federated, no DP")
    if not math.isnan(low):
        ax.axhspan(low, high, color="C0", alpha=0.12)


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
        mean federated AUC of the sweep's non-DP runs as a horizontal line. One panel per
        combination of the other varying overrides.
    """
    ok = df[df["status"] == OK].copy()
    ok["_dp"] = dp_setting(ok)
    on = _dp_on(ok)
    facets = [key for key in varying_keys(df) if key not in (eps_key, "dp", "dp.mode")]
    axis = _Axis.of(ok[on], eps_key, _wants_log(ok[on], eps_key))
    models = (PLOT_MODELS[0], *PLOT_MODELS[3:])
    panels = _panels(ok, facets)
    fig, axes = _new_figure(len(panels))
    for ax, (title, rows) in zip(axes, panels, strict=True):
        modes = list(_groups(rows[on.loc[rows.index]], ["_dp"]))
        for i, ((mode,), group) in enumerate(modes):
            for j, (prefix, color, marker) in enumerate(models):
                column = f"{prefix}.auc"
                label = f"{_bank_label(group, prefix, column)}, DP ({mode})"
                linestyle = "-" if prefix == "federated" else "--"
                offset = _slot_offset(i * len(models) + j, len(modes) * len(models))
                _draw_line(
                    ax, group, column, axis, offset,
                    color=color, marker=marker, linestyle=linestyle, label=label,
                )  # fmt: skip
        _baseline(ax, rows[~on.loc[rows.index]])
        _decorate(ax, axis, axis.log, title, "AUC")
    _figure_legend(fig, axes)
    _title(fig, axes, f"Privacy-utility: AUC vs {eps_key}")
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
        ``plot_auc.png``, ``plot_ks.png``, ``plot_default_recall.png`` and, when the sweep varies
        epsilon among DP runs, ``plot_privacy_utility.png``.
    """
    if df.empty or not (df["status"] == OK).any():
        return {}
    figures = {name: model_figure(df, metric, label) for metric, label, name in PLOT_METRICS}
    eps_key = epsilon_key(df)
    if eps_key is not None:
        figures[PRIVACY_PLOT] = privacy_figure(df, eps_key)
    return figures


# --------------------------------------------------------------------------- Markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows), ""]


def _fmt_number(value: float, digits: int = 3) -> str:
    """Fixed-point text, or an en dash for NaN."""
    return "–" if _is_missing(value) else f"{float(value):.{digits}f}"


def _fmt_stats(stats_: tuple[float, float, float, int], n_ok: int, digits: int = 3) -> str:
    """``mean [lo, hi]`` from :func:`interval`; notes n when it differs from ``n_ok``."""
    mean, low, high, n = stats_
    if not n:
        return "–"
    text = _fmt_number(mean, digits)
    if n > 1:
        text += f" [{_fmt_number(low, digits)}, {_fmt_number(high, digits)}]"
    return text + (f" (n={n})" if n != n_ok or n == 1 else "")


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
        [*(_fmt_value(row[key]) for key in by)]
        + [_fmt_interval(row, f"{prefix}.{metric}") for prefix in models]
        for _, row in summary.iterrows()
    ]
    return [f"## {title}", "", *_md_table(header, rows)]


def _names(rows: pd.DataFrame, role: str) -> str:
    """Bank(s) in a role and their mean training rows, e.g. ``bank_0 (1,234 rows)``."""
    name_column, rows_column = f"local.{role}.name", f"local.{role}.rows"
    if name_column not in rows.columns:
        return "–"
    names = sorted({str(name) for name in rows[name_column].dropna()}, key=_natural_key)
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
    for values, group in _groups(df, by):
        counts = _status_counts(group["status"])
        ok = group[group["status"] == OK]
        row = [*(_fmt_value(value) for value in values)]
        row += [str(counts[key]) for key in ("n_ok", "n_failed", "n_skipped")]
        row += [_names(ok, "smallest"), _names(ok, "largest")]
        row += [_fmt_number(interval(ok[c])[0], 1) for c in ("wall_time_s", "engine_time_s")]
        if with_privacy:
            row.append(_fmt_stats(interval(ok["privacy.epsilon_max"]), len(ok), digits=2))
        rows.append(row)
    return ["## Runs", "", *_md_table(header, rows)]


def _dp_section(df: pd.DataFrame, eps_key: str) -> list[str]:
    """DP on/off table: non-DP runs first, then each DP mode and epsilon budget."""
    work = df.copy()
    work["DP"] = dp_setting(work)
    on = _dp_on(work)
    work["target ε"] = work[eps_key].where(on)
    facets = [key for key in varying_keys(df) if key not in (eps_key, "dp", "dp.mode")]
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
        cells = [_fmt_value(row[key]) for key in facets]
        cells += [str(row["DP"]), _fmt_value(row["target ε"]) if row["_on"] else "–"]
        cells += [str(row["n_ok"]), str(row["n_failed"])]
        cells += [_fmt_interval(row, column, 2 if "epsilon" in column else 3) for column in columns]
        rows.append(cells)
    return ["## DP on / off", "", *_md_table(header, rows)]


def _problem_section(df: pd.DataFrame) -> list[str]:
    """Every run that is not ok, with its overrides and one-line error."""
    bad = df[df["status"] != OK]
    if bad.empty:
        return []
    keys = override_keys(df)
    rows = []
    for _, run in bad.iterrows():
        overrides = " ".join(f"{k}={_fmt_value(run[k])}" for k in keys if not _is_missing(run[k]))
        error = run["error"] if isinstance(run["error"], str) else ""
        rows.append([str(run["job"]), str(run["status"]), overrides, error])
    table = _md_table(["job", "status", "overrides", "error"], rows)
    return ["## Failed and skipped runs", "", *table]


def _header_lines(df: pd.DataFrame, root: Path) -> list[str]:
    """Title, run counts, swept and fixed overrides, seeds and the interval method."""
    counts = _status_counts(df["status"])
    lines = [f"# Sweep summary: {root.resolve().name}", ""]
    lines.append(
        f"{counts['n_runs']} runs: {counts['n_ok']} ok, {counts['n_failed']} failed, "
        f"{counts['n_skipped']} skipped. Total wall time {np.nansum(df['wall_time_s']):.1f} s "
        f"(engine start/stop {np.nansum(df['engine_time_s']):.1f} s)."
    )
    varying = varying_keys(df)
    fixed = [key for key in override_keys(df) if key not in varying and key != SEED_KEY]
    layout = choose_layout(df)
    lines.append("")
    lines.append(
        f"- Swept: {', '.join(f'`{k}`' for k in varying) or 'nothing'}"
        + (f" (plots: x = `{layout.x}`)" if layout.x else "")
    )
    if fixed:
        lines.append("- Fixed: " + ", ".join(f"`{k}={_fmt_value(df[k].iloc[0])}`" for k in fixed))
    if SEED_KEY in df.columns:
        seeds = sorted({_norm(v) for v in df[SEED_KEY]} - {None}, key=_value_sort_key)
        lines.append(f"- Seeds: {', '.join(_fmt_value(s) for s in seeds)}")
    lines.append(
        "- Cells: mean [lo, hi] over seeds, 95% Student-t interval "
        "(mean ± t(0.975, n−1)·sd/√n); n is shown when it differs from the ok runs."
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


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temporary file in the same folder, then ``os.replace`` it into place."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def _write_text(path: Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _write_figure(path: Path, fig: Figure) -> Path:
    """Atomically write a figure as PNG."""
    return _atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))


def write_report(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """Rebuild ``summary.csv``, ``summary.md`` and the plots of a sweep from its run folders.

    Parameters
    ----------
    sweep_dir : str or os.PathLike
        Hydra's multirun folder (``hydra.sweep.dir``).

    Returns
    -------
    list of pathlib.Path
        The files written, ``summary.csv`` and ``summary.md`` first. Plots from an earlier
        report that no longer apply are removed.

    Raises
    ------
    NotADirectoryError
        If ``sweep_dir`` is not a directory.
    """
    root = Path(sweep_dir)
    df = collect_runs(root)
    figures = build_figures(df)
    written = [
        _write_text(root / "summary.csv", df.to_csv(index=False)),
        _write_text(root / "summary.md", render_markdown(df, root, list(figures))),
    ]
    written += [_write_figure(root / name, fig) for name, fig in figures.items()]
    for name in REPORT_PLOTS:
        if name not in figures:
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild a sweep's report and print ``summary.md``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 when the path is not a sweep folder, 1 when writing failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m simulations.report",
        description="Rebuild summary.csv, summary.md and plots of a Hydra multirun folder.",
    )
    parser.add_argument("sweep_dir", help="the multirun folder (Hydra's hydra.sweep.dir)")
    root = Path(parser.parse_args(argv).sweep_dir)
    if not root.is_dir():
        reason = "does not exist" if not root.exists() else "is not a directory"
        print(f"error: {root} {reason}", file=sys.stderr)
        return 2
    if not find_run_dirs(root):
        print(f"error: no run folders (status.json or .hydra/) in {root}", file=sys.stderr)
        return 2
    try:
        write_report(root)
        text = (root / "summary.md").read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the report in {root}: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
