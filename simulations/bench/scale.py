"""Scale on one machine: time and peak memory of two large runs.

- ``lc10``: the 887,379-row synthetic Lending Club file (``python -m fl_credit.data.synthetic
  --rows 887379``, written once to ``--loan-csv``) with 10 equal banks, secure aggregation,
  the in-process engine;
- ``banks100``: 100 equal banks x 20 rounds with secure aggregation on the same file
  (``train.tol=0``, so the default Newton optimizer runs every round instead of stopping at
  its tolerance after 6);
- ``secagg``: the secure-aggregation protocol alone (``strategies.secagg.inprocess``, every
  bank and the server in this process, no transport) at 10, 50, 100 and 200 banks, with no
  dropout and with 10% of the banks dropping after masking: key setup, one bank's masking,
  and the server's unmasking, timed apart; log-log slopes between 50 and 200 banks project
  the costs to 1,000 banks.

Each case runs ``python -m fl_credit.simulate`` in a fresh process while a sampler reads its
resident set size (RSS, ``/proc/<pid>/status``) every 0.1 s; it reports the wall time, the CPU
time, the peak RSS (also ``wait4``'s ``ru_maxrss``), and the log line printed last before the
peak, which names the phase that needed the memory. The cases' configs are plain Hydra
overrides, so any of them can be rerun by hand with the printed command.

Usage::

    python -m simulations.bench.scale [--cases lc10 banks100 secagg] [--rounds 20]
        [--loan-csv /tmp/loan.csv] [--out simulations/results/bench_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "simulations" / "results" / "bench_scale.json"
LOAN_ROWS = 887_379


def case_overrides(name: str, loan_csv: Path, rounds: int) -> list[str]:
    """Hydra overrides of a case."""
    data = ["data=lending_club_csv", f"data.path={loan_csv}"]
    if name == "lc10":
        banks = ["partition=power", "partition.banks=10", "partition.skew=0"]
    elif name == "banks100":
        # train.tol=0: all the rounds, not Newton's early stop (6 rounds here).
        banks = ["partition=power", "partition.banks=100", "partition.skew=0", "train.tol=0"]
    else:
        raise ValueError(name)
    return [*data, *banks, "engine.backend=inprocess", f"train.rounds={rounds}"]


def rss_mb(pid: int) -> float:
    """Current resident set size of ``pid`` in MB (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_case(overrides: list[str], run_dir: Path) -> dict:
    """Run one case; wall, CPU, peak RSS and where the peak happened."""
    command = [sys.executable, "-m", "fl_credit.simulate", *overrides, f"hydra.run.dir={run_dir}"]
    lines: list[tuple[float, str]] = []
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter() - started, rss_mb(proc.pid)))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in proc.stdout:
        lines.append((time.perf_counter() - started, line.rstrip()))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_t, peak = max(samples, key=lambda s: s[1]) if samples else (0.0, 0.0)
    before = [line for t, line in lines if t <= peak_t and line.strip()]
    timing = {}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        timing = json.loads(metrics.read_text()).get("timing", {})
    return {
        "command": "python -m fl_credit.simulate " + shlex.join(overrides),
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": max(peak, usage.ru_maxrss / 1024),
        "peak_rss_sampled_mb": peak,
        "peak_at_s": peak_t,
        "last_line_before_peak": before[-1][:300] if before else "",
        "timing": timing,
        "phases": _phases(lines),
        "tail": [line for _, line in lines[-5:]],
    }


def _phases(lines: list[tuple[float, str]]) -> dict:
    """Seconds from the start to the run's landmark log lines."""
    marks = {
        "data_ready": "] - data: ",
        "banks_ready": "banks ready and standardiser agreed",
        "last_round": None,
        "table": "model                        AUC",
    }
    out: dict[str, float] = {}
    for t, line in lines:
        for key, text in marks.items():
            if text and text in line and key not in out:
                out[key] = t
        if "] - round " in line and ": test AUC" in line:
            out["last_round"] = t
    return out


SECAGG_BANKS = (10, 50, 100, 200)
PROJECT_TO = 1000


def secagg_costs(n: int, dropout: float, size: int = 40, repeats: int = 2) -> dict:
    """One secure-aggregation instance among ``n`` banks, its parts timed apart."""
    import numpy as np

    from strategies.secagg.bank_protocol import client_unmask
    from strategies.secagg.inprocess import LocalFederation
    from strategies.secagg.vector import Bounds, encode, make_layout

    nodes = list(range(1, n + 1))
    bounds = Bounds(value_range=1.0, metric_range=1e3, max_weight=2.0**20, bits=16)
    rows = []
    for rep in range(repeats):
        fed = LocalFederation(nodes)
        started = time.perf_counter()
        fed.setup()
        setup = time.perf_counter() - started
        rng = np.random.default_rng(rep)
        news = {k: {("arrays", "w"): rng.normal(scale=0.05, size=size)} for k in nodes}
        layout = make_layout("train", news[1], {})
        glob = {("arrays", "w"): np.zeros(size)}
        plains = {k: encode(layout, news[k], {}, bounds, 100 + k, glob)[0] for k in nodes}
        t = time.perf_counter()
        inst, replies = fed.mask(plains, bounds, layout.mode)
        masking = (time.perf_counter() - t) / n
        lost = set(nodes[: int(round(dropout * n))])
        received = {k: r for k, r in replies.items() if k not in lost}
        t = time.perf_counter()
        inst.collect_masked(received, dict.fromkeys(received, layout.to_json()))
        collect = time.perf_counter() - t
        t = time.perf_counter()
        unmask = {
            k: client_unmask(fed.states[k], k, inst.unmask_request(k)) for k in inst.survivors
        }
        bank_unmask = (time.perf_counter() - t) / max(len(inst.survivors), 1)
        t = time.perf_counter()
        inst.finish(unmask)
        finish = time.perf_counter() - t
        rows.append((setup, masking, bank_unmask, collect + finish))
    setup, masking, bank_unmask, server = (min(col) for col in zip(*rows, strict=True))
    return {
        "banks": n,
        "dropped": int(round(dropout * n)),
        "key_setup_all_banks_s": setup,
        "mask_per_bank_s": masking,
        "unmask_reply_per_bank_s": bank_unmask,
        "server_collect_and_unmask_s": server,
    }


def secagg_projection() -> dict:
    """Costs at ``SECAGG_BANKS`` and their power-law projection to ``PROJECT_TO`` banks."""
    import math

    out: dict = {"measured": [], "projected": {}}
    for dropout in (0.0, 0.1):
        rows = [secagg_costs(n, dropout) for n in SECAGG_BANKS]
        for row in rows:
            print(f"  secagg n={row['banks']} dropped={row['dropped']}: {row}", flush=True)
        out["measured"] += rows
        lo, hi = rows[-3], rows[-1]  # fit between 50 and 200 banks
        for key in (
            "key_setup_all_banks_s",
            "mask_per_bank_s",
            "unmask_reply_per_bank_s",
            "server_collect_and_unmask_s",
        ):
            slope = math.log(hi[key] / lo[key]) / math.log(hi["banks"] / lo["banks"])
            value = hi[key] * (PROJECT_TO / hi["banks"]) ** slope
            out["projected"][f"{key}@dropout{dropout}"] = {
                "exponent": slope,
                f"at_{PROJECT_TO}_banks_s": value,
            }
    return out


def ensure_loan_csv(path: Path) -> None:
    """Write the synthetic 887,379-row file once."""
    if path.is_file():
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_credit.data.synthetic",
            "--rows",
            str(LOAN_ROWS),
            "--out",
            str(path),
        ],
        cwd=REPO,
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["lc10", "banks100", "secagg"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loan-csv", type=Path, default=Path(tempfile.gettempdir()) / "loan.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if {"lc10", "banks100"} & set(args.cases):
        ensure_loan_csv(args.loan_csv)
    # Rerunning some cases keeps the others' results in the same file.
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result: dict = {
        "cases": previous.get("cases", {}),
        **({"secagg": previous["secagg"]} if "secagg" in previous else {}),
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "command": "python -m simulations.bench.scale " + " ".join(argv or sys.argv[1:]),
            "load_avg_1min_at_start": os.getloadavg()[0],
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        for name in args.cases:
            if name == "secagg":
                result["secagg"] = secagg_projection()
                args.out.write_text(json.dumps(result, indent=2))
                continue
            overrides = case_overrides(name, args.loan_csv, args.rounds)
            row = run_case(overrides, Path(tmp) / name)
            row["load_avg_1min_after"] = os.getloadavg()[0]
            result["cases"][name] = row
            print(
                f"{name}: exit {row['returncode']}, {row['wall_s']:.0f} s wall, "
                f"{row['cpu_s']:.0f} s CPU, peak RSS {row['peak_rss_mb']:.0f} MB "
                f"(after: {row['last_line_before_peak'][-90:]!r})",
                flush=True,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
    result["meta"]["load_avg_1min_at_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written: {args.out}")
    return 0 if all(c.get("returncode") == 0 for c in result["cases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
