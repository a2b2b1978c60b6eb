"""Benchmark: time and peak memory of loading a full-size Lending Club ``loan.csv``.

Generates (or reuses) a synthetic 887,379-row, 74-column file with the raw schema, then runs
:func:`fl_credit.data.lending_club.load_lending_club_csv` in a fresh subprocess per repeat and
records the wall time of the load and the subprocess's peak resident set size. Targets: under
60 s and under 4 GB.

Usage::

    python -m simulations.bench.loan_csv [--rows 887379] [--seed 0] [--repeat 3]
        [--csv /tmp/loan.csv] [--regenerate] [--out simulations/results/bench_loan_csv.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME_LIMIT_S = 60.0
MEMORY_LIMIT_MB = 4096.0
DEFAULT_OUT = Path("simulations/results/bench_loan_csv.json")


def _maxrss_mb(who: int) -> float:
    """Peak RSS in MB (``ru_maxrss`` is in kB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def worker(csv: str) -> None:
    """Child process: load the file once and print one JSON line with the measurements."""
    baseline = _maxrss_mb(resource.RUSAGE_SELF)  # interpreter only, before pandas
    from fl_credit.data.lending_club import load_lending_club_csv

    imported = _maxrss_mb(resource.RUSAGE_SELF)
    start = time.perf_counter()
    data = load_lending_club_csv(csv)
    elapsed = time.perf_counter() - start
    result = {
        "load_seconds": elapsed,
        "peak_rss_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "rss_before_import_mb": baseline,
        "rss_after_import_mb": imported,
        "rows_kept": len(data.target),
        "features": len(data.features.columns),
        "default_rate": float(data.target.mean()),
        "columns_dropped": len(data.dropped),
    }
    print(json.dumps(result))


def _run_child(csv: Path) -> dict:
    """Run :func:`worker` in a fresh interpreter; add the wall time seen from outside."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "simulations.bench.loan_csv", "--worker", str(csv)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def _ensure_file(csv: Path, rows: int, seed: int, regenerate: bool) -> dict | None:
    """Generate the synthetic file unless a cached one exists.

    The generator runs in its own process: a child's ``ru_maxrss`` starts from the parent's
    resident size at fork, so the parent must stay small for the load measurements to be clean.
    """
    if csv.is_file() and not regenerate:
        return None
    command = [sys.executable, "-m", "fl_credit.data.synthetic"]
    command += ["--rows", str(rows), "--seed", str(seed), "--out", str(csv)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    }


def _summary(runs: list[dict], generated: dict | None, csv: Path, args) -> dict:
    times = [r["load_seconds"] for r in runs]
    peaks = [r["peak_rss_mb"] for r in runs]
    return {
        "file": str(csv),
        "file_mb": csv.stat().st_size / 2**20,
        "rows_in_file": args.rows,
        "seed": args.seed,
        "generated": generated,
        "repeats": len(runs),
        "load_seconds_median": statistics.median(times),
        "load_seconds_max": max(times),
        "peak_rss_mb_max": max(peaks),
        "time_limit_s": TIME_LIMIT_S,
        "memory_limit_mb": MEMORY_LIMIT_MB,
        "within_limits": max(times) < TIME_LIMIT_S and max(peaks) < MEMORY_LIMIT_MB,
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }


def _print_table(summary: dict) -> None:
    first = summary["runs"][0]
    rows = [
        ("file", f"{summary['file']} ({summary['file_mb']:.0f} MB)"),
        ("rows in file / kept", f"{summary['rows_in_file']:,} / {first['rows_kept']:,}"),
        ("features / dropped columns", f"{first['features']} / {first['columns_dropped']}"),
        ("generate (s)", "cached" if summary["generated"] is None
         else f"{summary['generated']['seconds']:.1f}"),
        ("load, median of runs (s)", f"{summary['load_seconds_median']:.1f}"),
        ("load, slowest run (s)", f"{summary['load_seconds_max']:.1f}  (limit 60)"),
        ("peak RSS (MB)", f"{summary['peak_rss_mb_max']:.0f}  (limit 4096)"),
        ("within limits", "yes" if summary["within_limits"] else "NO"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns 0 when within the time and memory limits."""
    parser = argparse.ArgumentParser(prog="python -m simulations.bench.loan_csv")
    parser.add_argument("--rows", type=int, default=887_379)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="load runs (fresh process each)")
    parser.add_argument("--csv", type=Path, help="cached synthetic file (default: temp dir)")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the cached file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    csv = args.csv or Path(tempfile.gettempdir()) / f"fl_credit_loan_{args.rows}_{args.seed}.csv"
    generated = _ensure_file(csv, args.rows, args.seed, args.regenerate)
    runs = [_run_child(csv) for _ in range(args.repeat)]
    summary = _summary(runs, generated, csv, args)
    _print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0 if summary["within_limits"] else 1


if __name__ == "__main__":
    sys.exit(main())
