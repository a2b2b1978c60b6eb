"""Cost of a secure-aggregation round against a plain FedAvg round, with real local training.

For 3, 10 and 50 banks, each bank holds synthetic loan-like rows (``--rows`` rows of
``--features`` features, its own seed and default rate) and trains a logistic regression
for ``--local-steps`` full-batch gradient steps per round (numpy, the model of the study).
Both strategies run on the same ClientApp through :class:`strategies.secagg.inprocess.
InProcessGrid`: Flower messages serialized through protobuf and each bank's Context restored
from bytes for every message, as under the Deployment Engine, but without network or
polling, and with every bank and the server in one thread. A round's wall time is therefore
the sum of all banks' work plus the server's: the CPU cost of secure aggregation, which is
what grows with the number of banks. Transport latency (the Deployment Engine's or Ray's
polling) adds the same per exchange to both: a secure round has two exchanges, a plain one.

Measured per federation size:

- ``plain_round_s`` / ``secure_round_s``: median wall time of a round (configure to
  aggregate) over ``--rounds`` rounds; the secure strategy's key setup is run before its
  first round and timed alone (``key_setup_s``, 2 exchanges, all banks' work included);
- ``train_s``: the banks' local training alone, summed over banks (median round);
- ``crypto_s``: time inside the protocol's cryptographic primitives (X25519, HKDF, AES-GCM,
  ChaCha20, Shamir, Ed25519) of all banks and the server, per secure round;
- ``bytes_per_bank``: serialized request + reply of one bank in one round, plain and
  secure, and in the key setup;
- exchanges per round and per key setup; whether every round aggregated.

``--label`` names the run; ``--baseline PATH`` embeds another run's results (e.g. of the code
before the issue-9 hardening, see ``docs``: the same script runs against both APIs) as
``baseline`` so the JSON holds the comparison.

Usage::

    python -m simulations.bench.secagg [--banks 3 10 50] [--rounds 5] [--repeat 1]
                                       [--rows 10000] [--features 40] [--local-steps 20]
                                       [--out PATH] [--label NAME] [--baseline PATH]

Writes JSON (default ``simulations/results/bench_secagg.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.serde import message_to_proto
from flwr.serverapp.strategy import FedAvg

import strategies.secagg as secagg
from strategies.secagg import SecAggFedAvg, install_secagg, secagg_mod
from strategies.secagg.inprocess import InProcessGrid

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "bench_secagg.json"
BITS = 16
CLIP = 4.0
LR = 0.5
HARDENED = hasattr(secagg, "make_consortium")  # this script also runs on the old API
PROTOCOL_MODULES = ("protocol", "bank_protocol", "coordinator_protocol")
CRYPTO_PRIMITIVES = (
    "generate_keypair",
    "derive_key",
    "encrypt",
    "decrypt",
    "public_key_of",
    "is_valid_public_key",
    "prg",
    "split_secret",
    "reconstruct_secret",
)


# --- banks: synthetic rows, logistic regression -----------------------------------------------


def bank_rows(pid: int, rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features and labels of bank ``pid`` (its own default rate)."""
    rng = np.random.default_rng(1000 + pid)
    x = rng.normal(size=(rows, features))
    true_w = np.random.default_rng(7).normal(scale=0.5, size=features)
    logits = x @ true_w - 2.0 + 0.3 * rng.normal() + rng.normal(scale=0.5, size=rows)
    return x, (rng.random(rows) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64)


def train_logistic(
    w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray, steps: int
) -> tuple[np.ndarray, float, float]:
    """Full-batch gradient descent on the mean log loss; returns weights, bias, final loss."""
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        err = p - y
        w = w - LR * (x.T @ err) / len(y)
        b = b - LR * float(err.mean())
    p = np.clip(1.0 / (1.0 + np.exp(-(x @ w + b))), 1e-12, 1 - 1e-12)
    return w, b, float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


_ROWS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _bank_cache(pid: int, rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    key = (pid, rows, features)
    if key not in _ROWS:
        _ROWS[key] = bank_rows(pid, rows, features)
    return _ROWS[key]


def make_client_app(
    secure: bool, rows: int, features: int, steps: int, timer: dict[str, float], provider: Any
) -> ClientApp:
    """A bank: trains the received model on its rows; ``timer["train"]`` accumulates."""
    app = ClientApp(mods=[secagg_mod] if secure else [])
    if secure:
        if HARDENED:
            install_secagg(app, provider)
        else:
            install_secagg(app)  # type: ignore[call-arg]

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        x, y = _bank_cache(pid, rows, features)
        t0 = time.perf_counter()
        arrays = msg.content["arrays"]
        w, b, loss = train_logistic(arrays["w"].numpy(), float(arrays["b"].numpy()[0]), x, y, steps)
        timer["train"] += time.perf_counter() - t0
        reply = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(w), "b": Array(np.array([b]))}),
                "metrics": MetricRecord({"num-examples": rows, "loss": loss}),
            }
        )
        return Message(reply, reply_to=msg)

    return app


class CountingGrid(InProcessGrid):
    """InProcessGrid that counts exchanges and serialized bytes, and times each bank.

    ``bank_seconds`` sums every bank's handling time; ``slowest_seconds`` sums, per
    exchange, the slowest bank's: with banks working in parallel (as deployed), a round
    takes about ``round - bank_seconds + slowest_seconds``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset()

    def reset(self) -> None:
        """Zero the counters."""
        self.exchanges = 0
        self.bytes = 0
        self.bank_seconds = 0.0
        self.slowest_seconds = 0.0

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        messages = list(messages)
        self.exchanges += bool(messages)
        self.bytes += sum(message_to_proto(m).ByteSize() for m in messages)
        replies, slowest = [], 0.0
        for msg in messages:
            t0 = time.perf_counter()
            replies += super().send_and_receive([msg], timeout=timeout)
            spent = time.perf_counter() - t0
            self.bank_seconds += spent
            slowest = max(slowest, spent)
        self.slowest_seconds += slowest
        self.bytes += sum(message_to_proto(r).ByteSize() for r in replies)
        return replies


def _timed(cls: type[FedAvg]) -> type[FedAvg]:
    """Subclass recording each round's wall time (configure_train to aggregate_train)."""

    class Timed(cls):  # type: ignore[valid-type, misc]
        round_times: list[float]
        round_train: list[float]
        timer: dict[str, float]

        def configure_train(self, *args: Any, **kwargs: Any) -> Any:
            self._t0 = time.perf_counter()
            self._train0 = self.timer["train"]
            return super().configure_train(*args, **kwargs)

        def aggregate_train(self, *args: Any, **kwargs: Any) -> Any:
            out = super().aggregate_train(*args, **kwargs)
            self.round_times.append(time.perf_counter() - self._t0)
            self.round_train.append(self.timer["train"] - self._train0)
            return out

    Timed.__name__ = f"Timed{cls.__name__}"
    return Timed


def protocol_modules() -> list[Any]:
    """The protocol's modules: the shared part and, where the code has them, its two halves."""
    found = []
    for name in PROTOCOL_MODULES:
        with contextlib.suppress(ImportError):
            found.append(importlib.import_module(f"strategies.secagg.{name}"))
    return found


@contextlib.contextmanager
def crypto_timer() -> Iterator[dict[str, float]]:
    """Wrap the protocol modules' cryptographic primitives and accumulate their run time."""
    originals = [
        (module, name, getattr(module, name))
        for module in protocol_modules()
        for name in CRYPTO_PRIMITIVES
        if hasattr(module, name)
    ]
    spent: dict[str, float] = dict.fromkeys(sorted({name for _, name, _ in originals}), 0.0)

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0

        return timed

    for module, name, fn in originals:
        setattr(module, name, wrap(name, fn))
    try:
        yield spent
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)


# --- one federation size ----------------------------------------------------------------------


def _initial(features: int) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.zeros(features)), "b": Array(np.zeros(1))})


def bench(n: int, rounds: int, rows: int, features: int, steps: int) -> dict:
    """Plain and secure rounds for ``n`` banks."""
    common = {"fraction_evaluate": 0.0, "min_available_nodes": n, "min_train_nodes": n}
    timer = {"train": 0.0}
    for pid in range(n):  # the banks' rows exist before anything is timed
        _bank_cache(pid, rows, features)

    plain_grid = CountingGrid(make_client_app(False, rows, features, steps, timer, None), n)
    plain = _timed(FedAvg)(**common)
    plain.round_times, plain.round_train, plain.timer = [], [], timer
    plain.start(plain_grid, _initial(features), num_rounds=rounds)

    provider, extra = None, {}
    if HARDENED:
        from strategies.secagg.inprocess import partition_identities, simulated_identities

        idents, consortium = simulated_identities(n, {f"bank_{p}": rows for p in range(n)})
        provider = partition_identities(idents, consortium)
        extra = {"consortium": consortium}
    grid = CountingGrid(make_client_app(True, rows, features, steps, timer, provider), n)
    secure = _timed(SecAggFedAvg)(
        clipping_range=CLIP,
        quantization_bits=BITS,
        secure_evaluate=False,
        **extra,
        **common,
    )
    secure.round_times, secure.round_train, secure.timer = [], [], timer
    with crypto_timer() as setup_crypto:
        t0 = time.perf_counter()
        reason = secure.aggregator.setup(grid, grid.get_node_ids())
        key_setup_s = time.perf_counter() - t0
    assert not reason, reason
    setup_bytes, setup_exchanges = grid.bytes, grid.exchanges
    setup_parallel = key_setup_s - grid.bank_seconds + grid.slowest_seconds
    grid.reset()
    with crypto_timer() as spent:
        secure.start(grid, _initial(features), num_rounds=rounds)
    reports = [r for r in secure.reports if "(train)" in r.label]
    result = {
        "banks": n,
        "features": features,
        "rows_per_bank": rows,
        "local_steps": steps,
        "plain_round_s": statistics.median(plain.round_times),
        "secure_round_s": statistics.median(secure.round_times),
        "train_s": statistics.median(secure.round_train),
        "plain_train_s": statistics.median(plain.round_train),
        "key_setup_s": key_setup_s,
        "key_setup_parallel_s": setup_parallel,
        "plain_round_parallel_s": _parallel(plain.round_times, plain_grid, rounds),
        "secure_round_parallel_s": _parallel(secure.round_times, grid, rounds),
        "key_setup_crypto_s": sum(setup_crypto.values()),
        "crypto_s": sum(spent.values()) / rounds,
        "crypto_by_primitive_s": {k: v / rounds for k, v in spent.items()},
        "server_secagg_compute_s": statistics.median(
            r.seconds - r.exchange_seconds for r in reports
        ),
        "plain_exchanges_per_round": plain_grid.exchanges / rounds,
        "secure_exchanges_per_round": grid.exchanges / rounds,
        "key_setup_exchanges": setup_exchanges,
        "plain_bytes_per_bank": plain_grid.bytes / rounds / n,
        "secure_bytes_per_bank": grid.bytes / rounds / n,
        "key_setup_bytes_per_bank": setup_bytes / n,
        "all_rounds_ok": all(r.ok for r in reports) and len(reports) == rounds,
    }
    result["secure_overhead_s"] = result["secure_round_s"] - result["plain_round_s"]
    return result


def _median_of(runs: list[dict]) -> dict:
    """Field-wise median of repeated runs (non-numeric fields from the first run)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out[key] = value if not isinstance(value, bool) else all(r[key] for r in runs)
        else:
            out[key] = statistics.median(r[key] for r in runs)
    out["repeats"] = len(runs)
    return out


def _parallel(round_times: list[float], grid: CountingGrid, rounds: int) -> float:
    """Median round time with the banks' work replaced by the slowest bank's per exchange."""
    return statistics.median(round_times) - (grid.bank_seconds - grid.slowest_seconds) / rounds


def markdown(rows: list[dict], baseline: list[dict] | None) -> str:
    """Markdown table; with a baseline, its secure round and key setup side by side."""
    base = {r["banks"]: r for r in baseline or []}
    head = (
        "| banks | plain round | secure round | secure, banks in parallel (est.) "
        "| training (all banks) | crypto / round | exchanges plain/secure "
        "| bytes/bank/round plain/secure | key setup: serial / parallel (est.) |"
    )
    sep = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if base:
        head += " before hardening: secure round / key setup (serial) |"
        sep += "---:|"
    out = [head, sep]
    for r in rows:
        line = (
            f"| {r['banks']} | {r['plain_round_s']:.3f} s | {r['secure_round_s']:.3f} s "
            f"({r['secure_round_s'] / r['plain_round_s']:.2f}x) | "
            f"{r['secure_round_parallel_s']:.3f} s vs {r['plain_round_parallel_s']:.3f} s | "
            f"{r['train_s']:.3f} s | {r['crypto_s']:.3f} s | "
            f"{r['plain_exchanges_per_round']:g}/{r['secure_exchanges_per_round']:g} | "
            f"{r['plain_bytes_per_bank'] / 1e3:.1f}/{r['secure_bytes_per_bank'] / 1e3:.1f} kB | "
            f"{r['key_setup_s']:.3f} s / {r['key_setup_parallel_s']:.3f} s |"
        )
        if base:
            b = base.get(r["banks"])
            line += f" {b['secure_round_s']:.3f} s / {b['key_setup_s']:.3f} s |" if b else " - |"
        out.append(line)
    return "\n".join(out)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(secagg.__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write JSON and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, nargs="+", default=[3, 10, 50])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--local-steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (medians)")
    parser.add_argument("--label", default="hardened" if HARDENED else "before")
    parser.add_argument("--baseline", type=Path, help="JSON of an earlier run to embed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    rows = []
    for n in args.banks:
        runs = [
            bench(n, args.rounds, args.rows, args.features, args.local_steps)
            for _ in range(args.repeat)
        ]
        rows.append(_median_of(runs))
        print(f"  n={n}: {rows[-1]}", flush=True)
    meta = {
        "label": args.label,
        "code": _commit(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min_at_end": os.getloadavg()[0],
        "rounds": args.rounds,
        "repeats": args.repeat,
        "quantization_bits": BITS,
        "clipping_range": CLIP,
        "grid": "InProcessGrid (protobuf messages, Context restored per message, one thread)",
    }
    data: dict[str, Any] = {"meta": meta, "rounds": rows}
    baseline = None
    if args.baseline:
        base = json.loads(args.baseline.read_text())
        baseline = base["rounds"]
        data["baseline"] = {"meta": base["meta"], "rounds": baseline}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(markdown(rows, baseline))
    return data


if __name__ == "__main__":
    main()
