"""Reading a sweep's run folders into one table: status, overrides and flattened metrics.

Every job folder (``<sweep_dir>/<job_num>/``) holds ``.hydra/overrides.yaml``, ``status.json``
and, for successful runs, ``metrics.json``; :func:`collect_runs` makes one row per job.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fl_credit.run.files import read_call
from simulations.sweeps.values import (
    FAILED,
    MISSING,
    OK,
    as_float,
    is_number,
    natural_key,
    one_line,
    parse_override,
)

LEAD_COLUMNS = ("job", "run_dir")
STATUS_COLUMNS = (
    "status",
    "error",
    "wall_time_s",
    "engine_time_s",
    "started_at",
    "finished_at",
    "last_call",
)
RESERVED_COLUMNS = frozenset(LEAD_COLUMNS + STATUS_COLUMNS)
SECTIONS = ("local", "banks", "privacy", "privacy_local", "config", "credit")
FIRST_MODELS = ("federated", "centralized", "reference")
LOCAL_ROLES = ("smallest", "largest", "mean", "best")

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
    return sorted(children, key=lambda path: natural_key(path.name))


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
    """``metrics.json`` of a successful run, or None and the reason (a DP run's full metrics,
    from ``not_private/``: sweep summaries compare the counterfactual models too)."""
    from fl_credit.run.private_release import full_metrics_path

    path = full_metrics_path(run_dir)
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
        "error": one_line(status.get("error")),
        "wall_time_s": as_float(status.get("wall_time_s")),
        "engine_time_s": as_float(status.get("engine_time_s")),
        "started_at": as_float(status.get("started_at")),
        "finished_at": as_float(status.get("finished_at")),
        "last_call": (read_call(run_dir) or {}).get("action"),
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
        if isinstance(info, dict) and is_number(info.get("rows")):
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
        values = [float(flat[key]) for flat in trained.values() if is_number(flat.get(key))]
        if values:
            means[key] = float(np.mean(values))
    return means


def _local_columns(local: dict[str, Any], banks: dict[str, Any]) -> dict[str, Any]:
    """Per-bank local metrics plus the smallest, largest, mean and best bank alone."""
    trained = {str(name): _flatten(m, "") for name, m in local.items() if isinstance(m, dict)}
    rows = _bank_rows(banks)
    columns: dict[str, Any] = {"local.n_trained": len(trained)}
    by_size = sorted(rows, key=lambda name: (rows[name], natural_key(name)))
    for role, name in (("smallest", 0), ("largest", -1)):
        bank = by_size[name] if by_size else None
        columns.update(_role_columns(role, bank, trained.get(bank, {}) if bank else {}))
        columns[f"local.{role}.rows"] = rows.get(bank, math.nan) if bank else math.nan
    columns.update({f"local.mean.{key}": value for key, value in _mean_metrics(trained).items()})
    ranked = [name for name in trained if is_number(trained[name].get("auc"))]
    best = max(ranked, key=lambda name: float(trained[name]["auc"]), default=None)
    columns.update(_role_columns("best", best, trained.get(best, {}) if best else {}))
    for name in sorted(local, key=lambda bank: natural_key(str(bank))):
        columns.update(_flatten(local[name], f"local.{name}"))
    return columns


def _privacy_columns(privacy: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Largest epsilon spent and target over banks, plus each bank's accounting."""
    per_bank = {str(name): info for name, info in privacy.items() if isinstance(info, dict)}
    if not per_bank:
        return {}

    def largest(*keys: str) -> float:
        # the first of ``keys`` a bank reports (the federated run's accounting says
        # ``epsilon_spent``, the bank-alone baselines' ``epsilon``)
        values = []
        for info in per_bank.values():
            value = next((info[k] for k in keys if is_number(info.get(k))), None)
            if value is not None:
                values.append(float(value))
        return max(values) if values else math.nan

    columns: dict[str, Any] = {
        f"{prefix}.epsilon_max": largest("epsilon_spent", "epsilon"),
        f"{prefix}.target_epsilon": largest("target_epsilon"),
        f"{prefix}.delta_max": largest("delta"),
    }
    for name in sorted(per_bank, key=natural_key):
        columns.update(_flatten(per_bank[name], f"{prefix}.{name}"))
    return columns


def _is_model(value: Any) -> bool:
    """A metrics object: a dict with an ``auc``."""
    return isinstance(value, dict) and "auc" in value


def _credit_columns(credit: dict[str, Any]) -> dict[str, Any]:
    """Score PSI per bank and validation vs test (the per-feature PSI, odds ratios and reason
    codes stay in each run's ``metrics.json`` and ``report.md``)."""
    score = (credit.get("psi") or {}).get("score") or {}
    columns = {f"credit.psi.score.{bank}": v for bank, v in (score.get("banks") or {}).items()}
    if "validation_vs_test" in score:
        columns["credit.psi.score.validation_vs_test"] = score["validation_vs_test"]
    return columns


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
        ``config.*``, ``credit.psi.score.*`` (score PSI per bank), and any other top-level
        dict flattened under its own name (e.g. ``timing.*``). Top-level lists and scalars
        (e.g. ``overrides``) are left out.
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
    columns.update(_credit_columns(section("credit")))
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
        return (5, 0) if second == "n_trained" else (5, 1, natural_key(second))
    if head == "banks":
        return (6, natural_key(second))
    if head in ("privacy", "privacy_local"):
        bank = (1, natural_key(second)) if "." in rest else (0,)
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
