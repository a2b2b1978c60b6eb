"""The final status of a deployed run, in one line, and an exit code to script on.

``python -m fl_credit.deploy_status [CONNECTION] [--run-id ID] [--output-dir DIR]``

``flwr run --stream`` exits 0 even when the run fails, and ``flwr list`` cuts the status to
"finished…" in 80 columns. This asks the SuperLink through ``flwr list --format json`` (the
connection from ``$FLWR_HOME/config.toml``) for the given run, or the latest one, and prints

    run 13982601742314065258 (fl-credit==0.1.0): finished:completed after 2m 40s

or the failure reason Flower recorded (``status-details``). Flower 1.41 keeps no record of
which SuperNodes took part in a run, and its ``flwr supernode list`` does not return the
names given at registration; the bank names come from the run's output folder
(``--output-dir``, the ``output-dir`` of ``run_config.toml``): the ServerApp records there the
banks it lost (``metrics.json``, ``lost_banks``) and its own status.

Exit code: 0 when the run finished and completed, 1 when it finished otherwise (failed,
stopped), 3 while it is still pending, starting or running, 2 when the status cannot be read
(no ``flwr``, no such connection or run, SuperLink unreachable), with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_credit.config.errors import FlCreditError

COMPLETED = "finished:completed"
EXIT_COMPLETED, EXIT_FINISHED_OTHERWISE, EXIT_BAD_INPUT, EXIT_NOT_FINISHED = 0, 1, 2, 3


@dataclass(frozen=True)
class RunStatus:
    """One run as ``flwr list --format json`` describes it."""

    run_id: str
    status: str
    details: str
    elapsed: str
    app: str
    pending_at: str = ""

    @property
    def finished(self) -> bool:
        """Whether the run has ended (completed, failed or stopped)."""
        return self.status.startswith("finished")

    @property
    def exit_code(self) -> int:
        """0 completed, 1 finished otherwise, 3 not finished yet."""
        if self.status == COMPLETED:
            return EXIT_COMPLETED
        return EXIT_FINISHED_OTHERWISE if self.finished else EXIT_NOT_FINISHED


def parse_runs(text: str) -> list[RunStatus]:
    """The runs in the JSON printed by ``flwr list --format json``.

    Raises
    ------
    FlCreditError
        When the output is not that JSON, or Flower reports an error.
    """
    start = text.find("{")
    try:
        payload = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        shown = " ".join(text.split())[:200] or "no output"
        raise FlCreditError(f"flwr list did not print JSON: {shown}")
    if not payload.get("success", False):
        message = payload.get("error-message") or payload.get("error") or "unknown error"
        raise FlCreditError(f"flwr list failed: {' '.join(str(message).split())}")
    return [
        RunStatus(
            run_id=str(run.get("run-id", "?")),
            status=str(run.get("status", "?")),
            details=str(run.get("status-details") or ""),
            elapsed=str(run.get("elapsed") or ""),
            app=f"{run.get('fab-name', '?')}=={run.get('fab-version', '?')}",
            pending_at=str(run.get("pending-at") or ""),
        )
        for run in payload.get("runs") or []
    ]


def query(connection: str | None, run_id: str | None, flwr: str = "flwr") -> list[RunStatus]:
    """Run ``flwr list [CONNECTION] [--run-id ID] --format json`` and parse its answer.

    Raises
    ------
    FlCreditError
        When ``flwr`` is missing or its answer is an error.
    """
    home = Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr")
    if not (home / "config.toml").is_file():  # flwr would write a default one there
        raise FlCreditError(
            f"no Flower configuration at {home / 'config.toml'}: set FLWR_HOME (source the "
            "env.sh that python -m fl_credit.export_banks wrote)"
        )
    exe = shutil.which(flwr)
    if exe is None:
        raise FlCreditError(f"'{flwr}' not found: install Flower (pip install flwr) or pass --flwr")
    cmd = [exe, "list", *([connection] if connection else []), "--format", "json"]
    if run_id is not None:
        cmd += ["--run-id", run_id]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    runs = parse_runs(done.stdout)
    if not runs:
        raise FlCreditError("no runs on this SuperLink yet")
    return runs


def latest(runs: Sequence[RunStatus], run_id: str | None) -> RunStatus:
    """The run ``run_id``, or the most recently submitted one (latest ``pending-at``; run ids
    are random numbers in Flower 1.41)."""
    if run_id is not None:
        for run in runs:
            if run.run_id == run_id:
                return run
        raise FlCreditError(f"no run {run_id} on this SuperLink")
    return max(runs, key=lambda run: run.pending_at if run.pending_at[:1].isdigit() else "")


def bank_lines(output_dir: Path | None) -> list[str]:
    """What the run's output folder says about the banks (names) and the ServerApp's status."""
    if output_dir is None:
        return []
    lines: list[str] = []
    status = _read_json(output_dir / "status.json")
    if status is None:
        return [f"  output folder {output_dir}: no status.json (not started or still running)"]
    outcome = status.get("status", "?")
    error = f": {status['error']}" if status.get("error") else ""
    lines.append(f"  ServerApp status in {output_dir}: {outcome}{error}")
    metrics = _read_json(output_dir / "metrics.json") or {}
    banks = metrics.get("banks")
    if isinstance(banks, dict) and banks:
        lines.append(f"  banks: {', '.join(sorted(map(str, banks)))}")
    lost = metrics.get("lost_banks")
    if isinstance(lost, list):
        if lost:
            shown = [
                f"{item.get('bank', '?')} ({item.get('stage', '?')})"
                for item in lost
                if isinstance(item, dict)
            ]
            lines.append(f"  banks lost during the run: {', '.join(shown)}")
        else:
            lines.append("  banks lost during the run: none")
    federated = metrics.get("federated")
    if isinstance(federated, dict) and isinstance(federated.get("auc"), int | float):
        lines.append(f"  federated test AUC {federated['auc']:.4f}")
    return lines


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _duration(elapsed: str) -> str:
    """Flower's elapsed seconds (``160.04``) as ``2m 40s``; other text unchanged."""
    try:
        seconds = round(float(elapsed))
    except ValueError:
        return elapsed
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h " if hours else "") + f"{rest // 60}m {rest % 60:02d}s"


def describe(run: RunStatus) -> str:
    """The one status line."""
    line = f"run {run.run_id} ({run.app}): {run.status}"
    if run.elapsed:
        took = _duration(run.elapsed)
        line += f" after {took}" if run.finished else f", {took} so far"
    if run.details and run.details != "N/A" and run.status != COMPLETED:
        line += f": {' '.join(run.details.split())}"
    return line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (see the module docstring)."""
    parser = _Parser(
        prog="python -m fl_credit.deploy_status",
        description="Print a deployed run's final status; exit 0 only if it completed.",
    )
    parser.add_argument("connection", nargs="?", help="SuperLink connection (default: default)")
    parser.add_argument("--run-id", help="the run (default: the last one submitted)")
    parser.add_argument("--output-dir", type=Path, help="the run's output-dir, for bank names")
    parser.add_argument("--flwr", default="flwr", help="the flwr executable")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        runs = query(args.connection, args.run_id, args.flwr)
        run = latest(runs, args.run_id)
    except FlCreditError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(describe(run))
    for line in bank_lines(args.output_dir):
        print(line)
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
