"""The files of one run folder, each written atomically (temp file, then rename).

A run folder also remembers which configuration produced its results: ``status.json`` holds
``config_hash``, a digest of the resolved configuration (:func:`config_hash`), so a rerun
into the same folder can tell "the same experiment, already done" from "another experiment
that would be reported under this folder's results" (:func:`resume_check`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUS = "status.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
MODEL = "model.pt"
RESOLVED_CONFIG = "config_resolved.yaml"
CALL = ".last_call.json"
"""What the last call into the folder did: ``ran``, ``skipped`` or ``refused``."""
STAGE = ".partial"
"""Where a run's result files are written before they are moved into the folder together."""
HYDRA_DIR = ".hydra"
HYDRA_KEPT = ".hydra_results"
"""Copy of Hydra's ``.hydra`` files of the run whose results the folder holds (Hydra rewrites
``.hydra`` at every call, before our code can refuse a different configuration)."""

NOT_HASHED = ("engine",)
"""Top-level sections left out of :func:`config_hash`: how a run is executed, not what it
computes (``tests/e2e/test_experiment.py`` checks both engine backends give the same model)."""


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: dict) -> Path:
    """Atomically write ``payload`` as indented JSON."""
    return write_atomic(path, json.dumps(_clean(payload), indent=2) + "\n")


def write_history(path: Path, rows: list[dict]) -> Path:
    """Atomically write the per-round history as CSV (union of keys, round first)."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue())


def write_status(
    run_dir: Path,
    *,
    error: str | None,
    wall_seconds: float,
    overrides: list[str],
    engine_seconds: float | None = None,
    config_hash: str | None = None,
) -> Path:
    """Atomically write ``status.json``: ``ok`` when ``error`` is None, else ``failed``.

    ``config_hash`` (see :func:`config_hash`) identifies the configuration of the results;
    ``started_at`` and ``finished_at`` (Unix time) let a sweep report its real wall time.
    """
    now = time.time()
    return write_json(
        Path(run_dir) / STATUS,
        {
            "status": "ok" if error is None else "failed",
            "error": error,
            "wall_time_s": wall_seconds,
            "engine_time_s": engine_seconds,
            "overrides": list(overrides),
            "config_hash": config_hash,
            "started_at": now - wall_seconds,
            "finished_at": now,
        },
    )


def record_call(run_dir: Path, action: str, reason: str = "") -> Path:
    """Record what this call did with the folder (``ran``, ``skipped`` or ``refused``), for
    the sweep summary's counts."""
    return write_json(Path(run_dir) / CALL, {"action": action, "reason": reason})


def read_call(run_dir: Path) -> dict | None:
    """The record of :func:`record_call`, or None."""
    try:
        return json.loads((Path(run_dir) / CALL).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def staging(run_dir: Path) -> Iterator[Path]:
    """A folder for the run's result files, moved into ``run_dir`` by :func:`publish`.

    Anything raised inside, an interrupt included, removes the folder with what was written
    so far: a stopped run leaves no results without a ``status.json``.
    """
    stage = Path(run_dir) / STAGE
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, run_dir: Path) -> None:
    """Move every file of ``stage`` into ``run_dir``, ``status.json`` last (renames only)."""
    files = sorted(stage.iterdir(), key=lambda path: path.name == STATUS)
    for path in files:
        target = Path(run_dir) / path.name
        if path.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(path, target)


def read_status(run_dir: Path) -> dict | None:
    """The run's status record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / STATUS).read_text())
    except (OSError, ValueError):
        return None


def finished(run_dir: Path) -> bool:
    """True when the run already completed and its metrics are on disk."""
    status = read_status(run_dir)
    return bool(status and status.get("status") == "ok" and (Path(run_dir) / METRICS).is_file())


# --- which configuration produced a folder's results ---------------------------------------


def _canonical(value: Any) -> Any:
    """Numbers as floats (``lr=1`` and ``lr=1.0`` are one setting), tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def hashed_part(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that :func:`config_hash` covers (no ``NOT_HASHED``)."""
    return {k: _canonical(v) for k, v in raw.items() if k not in NOT_HASHED and k != "hydra"}


def config_hash(raw: Mapping[str, Any]) -> str:
    """SHA-256 of the resolved experiment config, without ``engine`` and Hydra's own node.

    Parameters
    ----------
    raw : mapping
        The resolved config (``OmegaConf.to_container(cfg, resolve=True)``); output paths
        live in the ``hydra`` node, which is never part of it.

    Returns
    -------
    str
        Hex digest; equal for configs that differ only in key order, int/float spelling
        of the same number, or engine settings.
    """
    text = json.dumps(hashed_part(raw), sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config a run folder's results were produced with, if readable."""
    import yaml

    try:
        loaded = yaml.safe_load((Path(run_dir) / RESOLVED_CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


def stored_hash(run_dir: Path) -> str | None:
    """``config_hash`` from ``status.json``; for folders written before it existed, the hash
    of their ``config_resolved.yaml``."""
    status = read_status(run_dir) or {}
    if status.get("config_hash"):
        return str(status["config_hash"])
    old = stored_config(run_dir)
    return None if old is None else config_hash(old)


def config_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any], limit: int = 3) -> str:
    """The first ``limit`` settings that differ, as ``key old -> new`` (hashed part only)."""
    if old is None:
        return "its configuration is unknown"
    flat_old, flat_new = _flatten(hashed_part(old)), _flatten(hashed_part(new))
    keys = sorted(set(flat_old) | set(flat_new))
    changed = [k for k in keys if flat_old.get(k, "<unset>") != flat_new.get(k, "<unset>")]
    shown = [
        f"{k} {_show(flat_old.get(k, '<unset>'))} -> {_show(flat_new.get(k, '<unset>'))}"
        for k in changed[:limit]
    ]
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(shown) + more


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class ResumeCheck:
    """What to do with a run folder before running ``config`` into it.

    ``action`` is ``"run"`` (nothing finished there, or only a failed/killed attempt),
    ``"skip"`` (finished with the same configuration) or ``"refuse"`` (finished with
    another configuration; ``reason`` says which settings differ).
    """

    action: str
    reason: str = ""


def resume_check(run_dir: Path, raw: Mapping[str, Any] | None) -> ResumeCheck:
    """Decide whether a run of the resolved config ``raw`` may use ``run_dir``.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (Hydra's ``runtime.output_dir``).
    raw : mapping or None
        The new resolved config; None when it could not be resolved.

    Returns
    -------
    ResumeCheck
        Finished results are reused only for an identical configuration and never
        overwritten by another one.
    """
    if not finished(run_dir):
        return ResumeCheck("run")
    if raw is not None and stored_hash(run_dir) == config_hash(raw):
        return ResumeCheck("skip")
    changes = config_changes(stored_config(run_dir), raw or {})
    return ResumeCheck(
        "refuse", f"{run_dir} holds the finished results of another configuration ({changes})"
    )


def keep_hydra_files(run_dir: Path) -> None:
    """Copy Hydra's ``.hydra/*.yaml`` of the run about to start into ``HYDRA_KEPT``."""
    source = Path(run_dir) / HYDRA_DIR
    if not source.is_dir():
        return
    for path in source.glob("*.yaml"):
        write_atomic(Path(run_dir) / HYDRA_KEPT / path.name, path.read_text())


def restore_hydra_files(run_dir: Path) -> None:
    """Put back the ``.hydra`` files that describe the folder's results.

    Hydra rewrites ``.hydra`` before the task runs; after a refusal they would describe the
    refused configuration. Without a kept copy (folders from older versions), at least
    ``overrides.yaml`` is rebuilt from ``status.json``.
    """
    run_dir = Path(run_dir)
    kept = run_dir / HYDRA_KEPT
    if kept.is_dir():
        for path in kept.glob("*.yaml"):
            shutil.copyfile(path, run_dir / HYDRA_DIR / f".{path.name}.tmp")
            os.replace(run_dir / HYDRA_DIR / f".{path.name}.tmp", run_dir / HYDRA_DIR / path.name)
        return
    overrides = (read_status(run_dir) or {}).get("overrides")
    if isinstance(overrides, list) and (run_dir / HYDRA_DIR).is_dir():
        import yaml

        text = yaml.safe_dump([str(o) for o in overrides], default_flow_style=False)
        write_atomic(run_dir / HYDRA_DIR / "overrides.yaml", text)
