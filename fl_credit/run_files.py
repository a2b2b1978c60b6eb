"""The files of one run folder, each written atomically (temp file, then rename)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

STATUS = "status.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
MODEL = "model.pt"
RESOLVED_CONFIG = "config_resolved.yaml"


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
) -> Path:
    """Atomically write ``status.json``: ``ok`` when ``error`` is None, else ``failed``."""
    return write_json(
        Path(run_dir) / STATUS,
        {
            "status": "ok" if error is None else "failed",
            "error": error,
            "wall_time_s": wall_seconds,
            "engine_time_s": engine_seconds,
            "overrides": list(overrides),
        },
    )


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
