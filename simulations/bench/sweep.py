"""Sweep points per minute: sequential against Hydra's joblib launcher, and against a baseline.

Runs the same sweep (by default six points of the distribution sweep, ``strategy=fedavg``
since two-bank secure aggregation is refused) three ways, one after the other:

- ``baseline``: the code of a given commit (default: the one before the performance work),
  exported with ``git archive`` into a temporary folder, Hydra's default (sequential)
  launcher;
- ``sequential``: this checkout, Hydra's default launcher;
- ``joblib``: this checkout, ``hydra/launcher=joblib`` (one worker per core).

Each variant's wall time covers the whole command (start, every point, the sweep report).
It checks that ``sequential`` and ``joblib`` give identical metrics for every point.

Usage::

    python -m simulations.bench.sweep [--baseline-ref 792cc79] [--variants baseline sequential
        joblib] [--out simulations/results/bench_sweep.json] [grid overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "simulations" / "results" / "bench_sweep.json"
BASELINE_REF = "792cc79"  # main before the performance work
SWEEP = ["+experiment=distribution_sweep", "strategy=fedavg"]
GRID = ["partition.share=0.05,0.2,0.5", "seed=0,1"]
LAUNCHERS = {
    "baseline": [],
    "sequential": [],
    "joblib": ["hydra/launcher=joblib"],
}


def export_ref(ref: str, folder: Path) -> Path:
    """``git archive`` of ``ref`` unpacked into ``folder`` (no worktree is touched)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_sweep(source: Path, launcher: list[str], grid: list[str], out: Path) -> dict:
    """One multirun from ``source``; wall seconds, point count and return code."""
    command = [
        sys.executable,
        "-m",
        "fl_credit.simulate",
        *SWEEP,
        *grid,
        *launcher,
        f"hydra.sweep.dir={out}",
    ]
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    points = sorted(p for p in out.iterdir() if p.is_dir() and p.name.isdigit())
    ok = [p for p in points if (p / "metrics.json").is_file()]
    return {
        "wall_s": wall,
        "points": len(points),
        "points_ok": len(ok),
        "points_per_minute": 60.0 * len(ok) / wall,
        "returncode": done.returncode,
        "stderr_tail": done.stderr[-1500:],
    }


def identical(a: Path, b: Path) -> list[str]:
    """Points whose metrics differ between two sweep folders (empty when all equal)."""
    problems = []
    for point in sorted(p.name for p in a.iterdir() if p.is_dir() and p.name.isdigit()):
        ma = json.loads((a / point / "metrics.json").read_text())
        mb = json.loads((b / point / "metrics.json").read_text())
        for key in ("federated", "centralized", "reference", "local"):
            if ma[key] != mb[key]:
                problems.append(f"point {point}: {key} differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--variants", nargs="+", default=list(LAUNCHERS), choices=list(LAUNCHERS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("grid", nargs="*", default=GRID)
    args = parser.parse_args(argv)

    result: dict = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "sweep": SWEEP + args.grid,
            "baseline_ref": args.baseline_ref,
            "command": "python -m simulations.bench.sweep " + " ".join(argv or sys.argv[1:]),
            "load_avg_1min_at_start": os.getloadavg()[0],
        },
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        scratch = Path(tmp)
        for name in args.variants:
            source = REPO
            if name == "baseline":
                source = export_ref(args.baseline_ref, scratch / "baseline_src")
            out = scratch / f"sweep_{name}"
            row = run_sweep(source, LAUNCHERS[name], args.grid, out)
            row["load_avg_1min_after"] = os.getloadavg()[0]
            result["variants"][name] = row
            print(
                f"{name}: {row['points_ok']}/{row['points']} points in {row['wall_s']:.1f} s = "
                f"{row['points_per_minute']:.2f} points/min "
                f"(load {row['load_avg_1min_after']:.1f})",
                flush=True,
            )
            if row["returncode"] != 0:
                print(row["stderr_tail"])
        if {"sequential", "joblib"} <= set(result["variants"]):
            problems = identical(scratch / "sweep_sequential", scratch / "sweep_joblib")
            result["sequential_equals_joblib"] = not problems
            result["differences"] = problems
    v = result["variants"]
    for base in ("baseline", "sequential"):
        if base in v and "joblib" in v:
            ratio = v["joblib"]["points_per_minute"] / v[base]["points_per_minute"]
            result[f"joblib_over_{base}"] = ratio
            print(f"joblib / {base}: {ratio:.2f}x points per minute")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written: {args.out}")
    return 0 if not result.get("differences") else 1


if __name__ == "__main__":
    sys.exit(main())
