"""How far the default run is from the floor: the same math without Flower.

For each case (a list of Hydra overrides; by default the default run and the issue's
reference point ``train.optimizer=sgd train.rounds=20``) it runs, in fresh processes and
interleaved so that load changes hit all of them alike:

- the floor, ``python -m simulations.studies.floor_default_run <overrides>``;
- the default run, ``python -m fl_credit.simulate engine.backend=inprocess <overrides>``;
- the same with ``engine.backend=ray``;

and reports the median wall time and CPU time (user + system of the process and the children
it waited for; Ray's own processes are not counted) of each, and the ratios to the floor. It
checks that the floor's metrics equal the run's (the federated AUC to 1e-4, since secure
aggregation rounds the updates to fixed point; the baselines exactly), so the floor cannot
drift from the math the default run does.

``--ablation`` also runs the in-process default run with each speed-up switched off in turn
(Flower's 0.1 s polling, ``torch.optim.SGD`` and so ``torch._dynamo``, the interpreter
teardown, importing Ray), and all of them at once.

Usage::

    python -m simulations.bench.overhead [--repeats 3] [--cases default sgd20]
        [--backends inprocess ray] [--ablation] [--out simulations/results/bench_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "simulations" / "results" / "bench_overhead.json"
CASES = {
    "default": [],
    "sgd20": ["train.optimizer=sgd", "train.rounds=20"],
}

# Each snippet runs before fl_credit.simulate's __main__ and switches one speed-up off.
ABLATIONS = {
    "flower_polling_0.1s": (
        "import fl_credit.runtime.patches_simulation as fp; fp._prompt_polling = lambda: None"
    ),
    "torch_optim_sgd": (
        "import torch, fl_credit.model.training as tr; "
        "tr.PlainSGD = lambda params, lr: torch.optim.SGD(params, lr=lr)"
    ),
    "interpreter_teardown": "import fl_credit.runtime.fast_exit as fe; fe.exit_now = sys.exit",
    "import_ray": "import ray",
}


def measure(command: list[str], cwd: Path) -> dict:
    """Run ``command``: wall seconds, CPU seconds (``wait4``), peak RSS, return code, output."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "returncode": proc.returncode,
        "output": output,
    }


def _seconds(result: dict) -> str:
    return f"{result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} s CPU"


def floor_command(overrides: list[str], out: Path) -> list[str]:
    """The floor script with the case's overrides."""
    floor = "simulations.studies.floor_default_run"
    return [sys.executable, "-m", floor, *overrides, "--out", str(out)]


def run_command(overrides: list[str], run_dir: Path, prelude: str = "") -> list[str]:
    """``fl_credit.simulate`` (optionally after a snippet) into ``run_dir``."""
    args = [*overrides, f"hydra.run.dir={run_dir}"]
    if not prelude:
        return [sys.executable, "-m", "fl_credit.simulate", *args]
    code = (
        "import sys, runpy\n"
        f"{prelude}\n"
        f"sys.argv = ['fl_credit/run/simulate.py', *{args!r}]\n"
        "runpy.run_module('fl_credit.simulate', run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code]


def same_math(floor: dict, run: dict) -> list[str]:
    """Differences between the floor's metrics and the run's (empty when the same math)."""
    problems = []
    pairs = [("federated", 1e-4), ("centralized", 0.0), ("reference", 0.0)]
    pairs += [(f"local/{name}", 0.0) for name in run.get("local", {})]
    for key, tol in pairs:
        a, b = floor["metrics"], run
        for part in key.split("/"):
            a, b = (a or {}).get(part), (b or {}).get(part)
        if a is None or b is None:
            problems.append(f"{key}: missing")
        elif abs(a["auc"] - b["auc"]) > tol:
            problems.append(f"{key}: floor AUC {a['auc']:.6f} vs run {b['auc']:.6f}")
    return problems


def bench_case(
    name: str, overrides: list[str], backends: list[str], repeats: int, scratch: Path
) -> dict:
    """Interleaved repeats of the floor and each backend for one case."""
    samples: dict[str, list[dict]] = {"floor": [], **{b: [] for b in backends}}
    checks: list[str] = []
    for rep in range(repeats):
        kinds = ["floor", *backends]
        kinds = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]  # rotate the order
        floor_json = None
        for kind in kinds:
            if kind == "floor":
                out = scratch / f"{name}_floor_{rep}.json"
                result = measure(floor_command(overrides, out), REPO)
                floor_json = out
            else:
                run_dir = scratch / f"{name}_{kind}_{rep}"
                shutil.rmtree(run_dir, ignore_errors=True)
                cmd = run_command([*overrides, f"engine.backend={kind}"], run_dir)
                result = measure(cmd, REPO)
                result["run_dir"] = run_dir
            if result["returncode"] != 0:
                raise SystemExit(f"{name}/{kind} failed:\n{result['output'][-3000:]}")
            samples[kind].append(result)
            print(f"{name} {kind} #{rep}: {_seconds(result)}")
        floor = json.loads(floor_json.read_text())
        for kind in backends:
            metrics = json.loads((samples[kind][-1]["run_dir"] / "metrics.json").read_text())
            checks += [f"{kind} #{rep}: {p}" for p in same_math(floor, metrics)]
    summary = {
        kind: {
            "wall_s": [s["wall_s"] for s in runs],
            "cpu_s": [s["cpu_s"] for s in runs],
            "median_wall_s": statistics.median(s["wall_s"] for s in runs),
            "median_cpu_s": statistics.median(s["cpu_s"] for s in runs),
        }
        for kind, runs in samples.items()
    }
    floor_wall = summary["floor"]["median_wall_s"]
    floor_cpu = summary["floor"]["median_cpu_s"]
    ratios = {
        kind: {
            "wall": summary[kind]["median_wall_s"] / floor_wall,
            "cpu": summary[kind]["median_cpu_s"] / floor_cpu,
        }
        for kind in backends
    }
    return {
        "overrides": overrides,
        "samples": summary,
        "ratio_to_floor": ratios,
        "same_math_problems": checks,
    }


def bench_ablation(overrides: list[str], repeats: int, scratch: Path) -> dict:
    """The in-process default run with each speed-up off in turn, and all off."""
    variants = {"all_on": "", **ABLATIONS, "all_off": "\n".join(ABLATIONS.values())}
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(repeats):
        for name, prelude in variants.items():
            run_dir = scratch / f"ablation_{name}_{rep}"
            shutil.rmtree(run_dir, ignore_errors=True)
            cmd = run_command([*overrides, "engine.backend=inprocess"], run_dir, prelude)
            result = measure(cmd, REPO)
            if result["returncode"] != 0:
                raise SystemExit(f"ablation {name} failed:\n{result['output'][-3000:]}")
            walls[name].append(result["wall_s"])
            cpus[name].append(result["cpu_s"])
            print(f"ablation {name} #{rep}: {_seconds(result)}")
    return {
        name: {
            "switched_off": name,
            "wall_s": walls[name],
            "cpu_s": cpus[name],
            "median_wall_s": statistics.median(walls[name]),
            "median_cpu_s": statistics.median(cpus[name]),
        }
        for name in variants
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--backends", nargs="+", default=["inprocess", "ray"])
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    started = time.time()
    result: dict = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min_at_start": os.getloadavg()[0],
            "repeats": args.repeats,
            "command": "python -m simulations.bench.overhead " + " ".join(argv or sys.argv[1:]),
        },
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        scratch = Path(tmp)
        for name in args.cases:
            result["cases"][name] = bench_case(
                name, CASES[name], args.backends, args.repeats, scratch
            )
        if args.ablation:
            result["ablation"] = bench_ablation([], args.repeats, scratch)
    result["meta"]["load_avg_1min_at_end"] = os.getloadavg()[0]
    result["meta"]["seconds"] = time.time() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print()
    print("| case | floor | " + " | ".join(args.backends) + " |")
    print("|---|---|" + "---|" * len(args.backends))
    for name, case in result["cases"].items():
        floor = case["samples"]["floor"]
        cells = [f"{floor['median_wall_s']:.1f} s wall / {floor['median_cpu_s']:.1f} s CPU"]
        for kind in args.backends:
            s, r = case["samples"][kind], case["ratio_to_floor"][kind]
            cells.append(
                f"{s['median_wall_s']:.1f} s ({r['wall']:.2f}x) / "
                f"{s['median_cpu_s']:.1f} s CPU ({r['cpu']:.2f}x)"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, case in result["cases"].items():
        for kind in args.backends:
            print(f"{name}: {kind} / floor = {case['ratio_to_floor'][kind]['wall']:.2f}x wall")
        for problem in case["same_math_problems"]:
            print(f"NOT THE SAME MATH: {name}: {problem}")
    if "ablation" in result:
        print("\nin-process default run, one speed-up switched off at a time (median wall / CPU):")
        for name, row in result["ablation"].items():
            print(f"  {name}: {row['median_wall_s']:.1f} s / {row['median_cpu_s']:.1f} s")
    print(f"\nwritten: {args.out}")
    return 1 if any(c["same_math_problems"] for c in result["cases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
