"""Seconds per deployed round, by phase: the apps on Flower's Deployment Engine on loopback.

Starts a SuperLink (TLS, SuperNode authentication) and one SuperNode per bank on loopback
(``fl_credit.deploy.local_federation``, the setup of ``tests/e2e/test_deployment.py``), submits runs
with ``flwr run`` and reads the phases from the processes' time-stamped logs:

- ``run_setup_s``: ``flwr run`` returning -> the first message reaching a bank (the
  ServerApp's process start, config, test rows, waiting for the banks);
- per exchange (one message to every bank and the replies): ``wait_s`` from the last reply
  of the previous exchange leaving a bank to the first bank receiving this one (the server's
  reply polling and work, the SuperLink, and a SuperNode's idle poll of the SuperLink, which
  Flower 1.41 hard-codes at 3 s), ``clientapp_s`` from a bank holding the message to it
  handing over the reply (median over banks: the SuperExec noticing the task, the ClientApp
  process starting and importing, the handler, the SuperNode's 0.5 s reply poll) and
  ``send_s`` (the reply uploaded);
- per round: from the first training message of one round to the next round's;
- ``run_total_s``: ``flwr run`` returning -> ``flwr list`` reporting it finished.

Modes: ``stock`` (every message starts a fresh ``flwr-clientapp`` process, Flower's default)
and ``warm`` (``--isolation process`` SuperNodes next to ``fl_credit.runtime.warm_superexec``, which
forks each ClientApp from a process that imported the dependencies once). Also measured once:
``cold_import_s``, a fresh interpreter importing Flower's ClientApp runtime and the app, the
import a stock ClientApp process pays on every message.

Usage::

    python -m simulations.bench.deployment [--modes warm stock] [--rounds 1 20]
        [--stock-rounds 1] [--banks 3] [--out simulations/results/bench_deployment.json]
        [overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fl_credit.deploy.local_federation import Deployment, cpu_ticks, descendants, start_deployment

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "simulations" / "results" / "bench_deployment.json"
RECEIVING = re.compile(r"Receiving: (\S+) message")
ROUND = re.compile(r"\[RUN (\d+), ROUND (\S+)\]")


def cold_import_seconds() -> float:
    """A fresh interpreter importing what a stock ``flwr-clientapp`` process imports."""
    code = (
        "import time; t = time.perf_counter()\n"
        "import flwr.supernode.runtime.run_clientapp, fl_credit.bank.client_app\n"
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def bank_events(lines: list[tuple[float, str]], run_id: int) -> list[dict]:
    """The bank's messages of run ``run_id``: type, round, received / replying / sent times."""
    events: list[dict] = []
    current_run = None
    group = None
    for t, line in lines:
        if m := ROUND.search(line):
            current_run, group = int(m.group(1)), m.group(2)
            continue
        if "[RUN " in line:
            current_run, group = int(line.split("[RUN ")[1].split("]")[0]), None
            continue
        if current_run != run_id:
            continue
        if m := RECEIVING.search(line):
            events.append({"type": m.group(1), "round": group, "received": t})
        elif "Received successfully" in line and events:
            events[-1]["stored"] = t
        elif "Sending:" in line and events:
            events[-1]["replying"] = t
        elif "Sent successfully" in line and events:
            events[-1]["sent"] = t
    return [e for e in events if {"received", "replying", "sent"} <= set(e)]


def phases(per_bank: dict[str, list[dict]], submitted: float, finished: float) -> dict:
    """Exchanges, rounds and totals from every bank's events."""
    counts = {len(ev) for ev in per_bank.values()}
    n = min(counts)
    exchanges = []
    previous_sent = None
    for k in range(n):
        rows = [ev[k] for ev in per_bank.values()]
        first = min(r["received"] for r in rows)
        last_sent = max(r["sent"] for r in rows)
        exchanges.append(
            {
                "type": rows[0]["type"],
                "round": rows[0]["round"],
                "wait_s": None if previous_sent is None else first - previous_sent,
                "clientapp_s": statistics.median(r["replying"] - r["received"] for r in rows),
                "send_s": statistics.median(r["sent"] - r["replying"] for r in rows),
                "exchange_s": last_sent - first,
                "start": first,
            }
        )
        previous_sent = last_sent
    # Round k runs from the k-th training message to the next exchange after that round's
    # own exchanges: the next training message, or the first query after the last round.
    train_idx = [i for i, e in enumerate(exchanges) if e["type"] == "train"]
    rounds = []
    for k, i in enumerate(train_idx):
        if k + 1 < len(train_idx):
            j = train_idx[k + 1]
        else:
            j = i + 1
            while j < len(exchanges) and exchanges[j]["type"] == "query.secagg_unmask":
                j += 1
        end = exchanges[j]["start"] if j < len(exchanges) else None
        if end is not None:
            rounds.append(
                {"round": k + 1, "seconds": end - exchanges[i]["start"], "exchanges": j - i}
            )
    waits = [e["wait_s"] for e in exchanges if e["wait_s"] is not None]
    return {
        "run_setup_s": exchanges[0]["start"] - submitted if exchanges else None,
        "run_total_s": finished - submitted,
        "exchanges": len(exchanges),
        "exchange_types": _count(e["type"] for e in exchanges),
        "median_wait_s": statistics.median(waits) if waits else None,
        "median_clientapp_s": statistics.median(e["clientapp_s"] for e in exchanges),
        "median_send_s": statistics.median(e["send_s"] for e in exchanges),
        "median_exchange_s": statistics.median(
            e["exchange_s"] + (e["wait_s"] or 0) for e in exchanges
        ),
        "rounds": rounds,
        "median_round_s": statistics.median(r["seconds"] for r in rounds) if rounds else None,
        "exchange_detail": [{k: v for k, v in e.items() if k != "start"} for e in exchanges],
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def federation_cpu_seconds(dep: Deployment) -> float:
    """CPU seconds used so far by every federation process and everything below it (the
    ClientApp and ServerApp processes, once reaped, count towards their parents)."""
    ticks = 0
    for started in dep.fed.procs.values():
        pid = started.popen.pid
        ticks += cpu_ticks(pid) + sum(cpu_ticks(c) for c in descendants(pid))
    return ticks / os.sysconf("SC_CLK_TCK")


def run_once(dep: Deployment, rounds: int, overrides: list[str]) -> dict:
    """Submit one run of ``rounds`` rounds; its phases."""
    fed = dep.fed
    run_config = dep.run_config.parent / f"run_config_{rounds}.toml"
    text = dep.run_config.read_text()
    joined = " ".join([*dep.export.overrides, *overrides, f"train.rounds={rounds}"])
    text = re.sub(r'config-overrides = "[^"]*"', f'config-overrides = "{joined}"', text)
    text = re.sub(
        r'output-dir = "([^"]*)"', lambda m: f'output-dir = "{m.group(1)}_{rounds}"', text
    )
    run_config.write_text(text)
    cpu_before = federation_cpu_seconds(dep)
    started = time.time()
    run_id = fed.submit(REPO, run_config)
    submitted = time.time()
    status = fed.wait_finished(run_id)
    finished = time.time()
    if status["status"] != "finished:completed":
        raise SystemExit(f"run {run_id} did not complete: {status}\n{fed.run_log(run_id)}")
    time.sleep(1.0)  # let the last log lines arrive
    banks = {
        name: bank_events(p.lines, run_id)
        for name, p in fed.procs.items()
        if name.startswith("bank_")
    }
    result = phases(banks, submitted, finished)
    output = Path(re.search(r'output-dir = "([^"]*)"', text).group(1))
    result["trees"] = tree_phases(result["exchange_detail"], output)
    result.update(
        {
            "rounds_configured": rounds,
            "submit_s": submitted - started,
            "run_id": run_id,
            "federation_cpu_s": federation_cpu_seconds(dep) - cpu_before,
        }
    )
    return result


def tree_phases(exchanges: list[dict], output: Path) -> dict | None:
    """``model=gbm`` runs: the trees grown (from the run's ``metrics.json``) and the seconds
    from the first ``query.gbm`` exchange to the end of the last one (with its unmasking),
    per tree; None for other runs."""
    gbm = [i for i, e in enumerate(exchanges) if e["type"] == "query.gbm"]
    found = [json.loads(p.read_text()) for p in output.rglob("metrics.json")]
    grown = [m["boosting"]["trees_grown"] for m in found if "trees_grown" in m.get("boosting", {})]
    if not gbm or not grown:
        return None
    trees = int(grown[0])
    last = gbm[-1] + 1
    while last < len(exchanges) and exchanges[last]["type"] == "query.secagg_unmask":
        last += 1
    span = sum(e["exchange_s"] + (e["wait_s"] or 0) for e in exchanges[gbm[0] : last])
    return {
        "trees_grown": trees,
        "gbm_exchanges": len(gbm),
        "exchanges": last - gbm[0],
        "seconds": span,
        "seconds_per_tree": span / max(trees, 1),
        "exchanges_per_tree": (last - gbm[0]) / max(trees, 1),
    }


def summary(r: dict) -> str:
    """One line about a run's phases."""
    per_round = r["median_round_s"] if r["median_round_s"] is not None else float("nan")
    trees = r.get("trees")
    if trees:
        per_round = trees["seconds_per_tree"]
    return (
        f"{r['run_total_s']:.1f} s total, {per_round:.2f} s per {'tree' if trees else 'round'}, "
        f"{r['exchanges']} exchanges, median exchange {r['median_exchange_s']:.2f} s "
        f"(wait {r['median_wait_s'] or 0:.2f}, ClientApp {r['median_clientapp_s']:.2f}, "
        f"send {r['median_send_s']:.2f}), setup {r['run_setup_s']:.1f} s, "
        f"{r['federation_cpu_s']:.0f} CPU-s in the federation"
    )


def write(path: Path, result: dict) -> None:
    """Write the results so far."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["stock", "warm"], choices=["stock", "warm"])
    parser.add_argument("--rounds", nargs="+", type=int, default=[1, 20])
    parser.add_argument(
        "--stock-rounds",
        nargs="+",
        type=int,
        default=[1],
        help="runs in stock mode (every message a fresh process: minutes per round)",
    )
    parser.add_argument("--banks", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args(argv)

    result: dict = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "banks": args.banks,
            "load_avg_1min_at_start": os.getloadavg()[0],
            "command": "python -m simulations.bench.deployment " + " ".join(argv or sys.argv[1:]),
            "cold_import_s": cold_import_seconds(),
        },
        "modes": {},
    }
    overrides = ["metrics.bootstrap=200", *args.overrides]
    for mode in args.modes:
        with tempfile.TemporaryDirectory(prefix=f"bench_deploy_{mode}_") as tmp:
            t = time.time()
            dep = start_deployment(
                Path(tmp), overrides, args.banks, warm=(mode == "warm"), wait_warm=True
            )
            runs = {}
            try:
                start_s = time.time() - t
                result["modes"][mode] = {"federation_start_s": start_s, "runs": runs}
                for rounds in args.stock_rounds if mode == "stock" else args.rounds:
                    runs[str(rounds)] = run_once(dep, rounds, [])
                    write(args.out, result)  # after every run: a crash keeps what was measured
                    print(f"{mode}, {rounds} rounds: {summary(runs[str(rounds)])}", flush=True)
            except BaseException:
                print(dep.fed.report())
                raise
            finally:
                dep.fed.close()
    result["meta"]["load_avg_1min_at_end"] = os.getloadavg()[0]
    write(args.out, result)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
