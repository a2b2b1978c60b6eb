"""Cost of a secure-aggregation round against plain FedAvg and against Paillier encryption.

Three measurements, for 3, 10 and 50 banks and for update vectors of 40 floats (a
logistic regression on ~40 features) and 10,000 floats, all in one run:

- ``simulation``: rounds through Flower's simulation engine (Ray, 2 actors of 1 CPU,
  in-memory grid): ``FedAvg`` and ``SecAggFedAvg`` on the same toy ClientApp (numpy "model",
  no training work, so the numbers are pure protocol + transport overhead), federated
  evaluation off in both. One ``run_simulation`` with 50 SuperNodes; smaller federations
  use the first n nodes. A secure round's time excludes the key setup of its first round,
  reported separately. Times are medians over rounds.
- ``protocol``: the same secure round in-process without Flower (all banks and the server
  in one thread, :class:`strategies.secagg.inprocess.LocalFederation`), with the time spent
  in cryptographic primitives (X25519, HKDF, AES-GCM, ChaCha20, Shamir) measured by
  wrapping them; against the plain weighted sum of the same vectors.
- ``paillier``: ``phe`` additive encryption of the same vectors (2048-bit key as in FATE;
  fixed precision 2^-16 so that ciphertexts add without rescaling): every bank encrypts
  its vector, the server adds the ciphertexts and decrypts the sum. Encryptions and
  decryptions are timed on a sample (``--paillier-sample`` values of up to 3 banks) and
  extrapolated linearly to n x d encryptions, (n - 1) x d additions and d decryptions.

Usage::

    python -m simulations.bench_secagg [--banks 3 10 50] [--sizes 40 10000] [--rounds 8]
                                       [--no-simulation] [--out PATH]

Writes JSON (default ``simulations/results/bench_secagg.json``) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from strategies.secagg import SecAggFedAvg, install_secagg, secagg_mod
from strategies.secagg import protocol as secagg_protocol
from strategies.secagg.inprocess import LocalFederation
from strategies.secagg.vector import Bounds, decode, encode, make_layout

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_secagg.json"
BITS = 16
CLIP = 1.0
CRYPTO_PRIMITIVES = (
    "generate_keypair",
    "derive_key",
    "encrypt",
    "decrypt",
    "public_key_of",
    "prg",
    "split_secret",
    "reconstruct_secret",
)


# --- toy federation ---------------------------------------------------------------------------


def _update(pid: int, rnd: int, size: int) -> np.ndarray:
    return np.random.default_rng(10_000 * rnd + pid).normal(scale=0.05, size=size)


def make_client_app() -> ClientApp:
    """Toy bank: adds a small random update to the global vector (no training work)."""
    app = ClientApp(mods=[secagg_mod])
    install_secagg(app)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        w = msg.content["arrays"]["w"].numpy()
        reply = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(w + _update(pid, rnd, w.size))}),
                "metrics": MetricRecord({"num-examples": 100 + pid, "loss": 0.5}),
            }
        )
        return Message(reply, reply_to=msg)

    return app


class SubsetGrid(Grid):
    """A view of a Grid that exposes only some of its nodes (for smaller federations)."""

    def __init__(self, grid: Grid, nodes: Iterable[int]) -> None:
        self._grid = grid
        self._nodes = list(nodes)

    def set_run(self, run: Any) -> None:
        """Delegate."""
        self._grid.set_run(run)

    @property
    def run(self) -> Any:
        """Delegate."""
        return self._grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        """Delegate."""
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> list[int]:
        """Only the chosen nodes."""
        return list(self._nodes)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Delegate."""
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Delegate."""
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Delegate."""
        return self._grid.send_and_receive(messages, timeout=timeout)


def _timed(cls: type[FedAvg]) -> type[FedAvg]:
    """Subclass recording each round's wall time (configure_train to aggregate_train)."""

    class Timed(cls):  # type: ignore[valid-type, misc]
        round_times: list[float]

        def configure_train(self, *args: Any, **kwargs: Any) -> Any:
            self._t0 = time.perf_counter()
            return super().configure_train(*args, **kwargs)

        def aggregate_train(self, *args: Any, **kwargs: Any) -> Any:
            out = super().aggregate_train(*args, **kwargs)
            self.round_times.append(time.perf_counter() - self._t0)
            return out

    Timed.__name__ = f"Timed{cls.__name__}"
    return Timed


def bench_simulation(
    banks: list[int], sizes: list[int], rounds: int, pull_intervals: list[float]
) -> list[dict]:
    """Plain vs secure rounds through run_simulation (one Ray start for everything).

    The in-memory grid polls for replies every ``pull_interval`` seconds (Flower's default
    0.1 s), which puts a floor under every exchange; each setting is measured.
    """
    from flwr.simulation import run_simulation  # deprecated entry point, warns on import

    results: list[dict] = []
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        all_nodes = _wait_for(grid, max(banks))
        for pull, n, d in itertools.product(pull_intervals, banks, sizes):
            if hasattr(grid, "pull_interval"):
                grid.pull_interval = pull
            sub = SubsetGrid(grid, sorted(all_nodes)[:n])
            common = {
                "fraction_evaluate": 0.0,
                "min_available_nodes": n,
                "min_train_nodes": n,
            }
            arrays = ArrayRecord({"w": Array(np.zeros(d))})
            plain = _timed(FedAvg)(**common)
            plain.round_times = []
            plain.start(sub, arrays, num_rounds=rounds)
            secure = _timed(SecAggFedAvg)(
                clipping_range=CLIP,
                quantization_bits=BITS,
                secure_evaluate=False,
                **common,
            )
            secure.round_times = []
            secure.start(sub, arrays, num_rounds=rounds + 1)
            steady = [r for r in secure.reports if r.exchanges == 2]
            results.append(
                {
                    "banks": n,
                    "size": d,
                    "pull_interval_s": pull,
                    "plain_round_s": statistics.median(plain.round_times),
                    "secure_round_s": statistics.median(secure.round_times[1:]),
                    "secure_first_round_s": secure.round_times[0],
                    "key_setup_s": secure.round_times[0]
                    - statistics.median(secure.round_times[1:]),
                    "plain_exchanges_per_round": 1,
                    "secure_exchanges_per_round": steady[0].exchanges if steady else None,
                    "secure_first_round_exchanges": secure.reports[0].exchanges,
                    "server_secagg_compute_s": statistics.median(
                        [r.seconds - r.exchange_seconds for r in steady] or [float("nan")]
                    ),
                    "all_rounds_ok": all(r.ok for r in secure.reports),
                }
            )
            print(f"  simulation n={n} d={d}: {results[-1]}", flush=True)

    run_simulation(
        server_app=server,
        client_app=make_client_app(),
        num_supernodes=max(banks),
        backend_config={"client_resources": {"num_cpus": 1}},
    )
    return results


def _wait_for(grid: Grid, n: int) -> list[int]:
    while len(nodes := list(grid.get_node_ids())) < n:
        time.sleep(0.5)
    return nodes


# --- in-process protocol ------------------------------------------------------------------


@contextlib.contextmanager
def crypto_timer() -> Iterator[dict[str, float]]:
    """Wrap the protocol module's crypto primitives and accumulate their run time."""
    spent: dict[str, float] = dict.fromkeys(CRYPTO_PRIMITIVES, 0.0)
    originals = {name: getattr(secagg_protocol, name) for name in CRYPTO_PRIMITIVES}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0

        return timed

    for name, fn in originals.items():
        setattr(secagg_protocol, name, wrap(name, fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(secagg_protocol, name, fn)


def bench_protocol(n: int, d: int, rounds: int) -> dict:
    """One in-process secure round (all banks + server) vs the plain weighted sum."""
    nodes = list(range(1, n + 1))
    bounds = Bounds(value_range=CLIP, metric_range=1e3, max_weight=2.0**20, bits=BITS)
    glob = {("arrays", "w"): np.zeros(d)}
    fed = LocalFederation(nodes)
    t0 = time.perf_counter()
    fed.setup()
    setup_s = time.perf_counter() - t0
    secure, plain, crypto = [], [], []
    for rnd in range(1, rounds + 1):
        news = {k: {("arrays", "w"): _update(k, rnd, d)} for k in nodes}
        metrics = {("metrics", "loss"): 0.5}
        t0 = time.perf_counter()
        total = sum((100 + k) * news[k][("arrays", "w")] for k in nodes)
        _ = total / sum(100 + k for k in nodes)
        plain.append(time.perf_counter() - t0)
        with crypto_timer() as spent:
            t0 = time.perf_counter()
            layout = make_layout("train", news[nodes[0]], metrics)
            plains = {k: encode(layout, news[k], metrics, bounds, 100 + k, glob)[0] for k in nodes}
            ring_sum, _ = fed.aggregate(plains, layout, bounds)
            decode(layout, ring_sum, BITS)
            secure.append(time.perf_counter() - t0)
        crypto.append(sum(spent.values()))
    sec = statistics.median(secure)
    return {
        "banks": n,
        "size": d,
        "key_setup_s": setup_s,
        "secure_round_s": sec,
        "secure_per_bank_s": sec / n,
        "crypto_s": statistics.median(crypto),
        "crypto_share": statistics.median(crypto) / sec,
        "plain_round_s": statistics.median(plain),
    }


# --- Paillier -----------------------------------------------------------------------------


def bench_paillier(n: int, d: int, sample: int, key_bits: int, keys: Any) -> dict:
    """Encrypt every bank's vector, add the ciphertexts, decrypt (timed on a sample)."""
    pub, priv = keys
    m = min(d, sample)
    banks = min(n, 3)
    t0 = time.perf_counter()
    cts = [
        [pub.encrypt(float(v), precision=2.0**-BITS) for v in _update(k, 1, m)]
        for k in range(banks)
    ]
    enc_each = (time.perf_counter() - t0) / (banks * m)
    t0 = time.perf_counter()
    acc = cts[0]
    for row in cts[1:]:
        acc = [a + b for a, b in zip(acc, row, strict=True)]
    add_each = (time.perf_counter() - t0) / max(1, (banks - 1) * m)
    t0 = time.perf_counter()
    _ = [priv.decrypt(c) for c in acc]
    dec_each = (time.perf_counter() - t0) / m
    enc, add, dec = enc_each * n * d, add_each * (n - 1) * d, dec_each * d
    return {
        "banks": n,
        "size": d,
        "key_bits": key_bits,
        "sampled_values": m,
        "sampled_banks": banks,
        "extrapolated": m < d or banks < n,
        "encrypt_all_s": enc,
        "add_s": add,
        "decrypt_s": dec,
        "total_s": enc + add + dec,
        "per_bank_encrypt_s": enc_each * d,
    }


# --- report -------------------------------------------------------------------------------


def markdown(sim: list[dict], proto: list[dict], pail: list[dict]) -> str:
    """Markdown tables of the results."""
    out = []
    crypto = {(p["banks"], p["size"]): p["crypto_s"] for p in proto}
    if sim:
        out += [
            "Flower simulation engine (Ray, in-memory grid), median seconds per round",
            "",
            "| poll interval | banks | floats | plain round | secure round | ratio "
            "| exchanges plain/secure | key setup (once) | server secagg compute "
            "| crypto / secure round (est.) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sim:
            out.append(
                f"| {r['pull_interval_s']} | {r['banks']} | {r['size']} | "
                f"{r['plain_round_s']:.3f} | "
                f"{r['secure_round_s']:.3f} | {r['secure_round_s'] / r['plain_round_s']:.2f}x | "
                f"{r['plain_exchanges_per_round']}/{r['secure_exchanges_per_round']} | "
                f"{r['key_setup_s']:.3f} | {r['server_secagg_compute_s']:.4f} | "
                f"{_share(crypto.get((r['banks'], r['size'])), r['secure_round_s'])} |"
            )
        out.append("")
    pmap = {(p["banks"], p["size"]): p for p in pail}
    out += [
        "Protocol in-process (all banks + server, one thread) vs Paillier, seconds per round",
        "",
        "| banks | floats | plain sum | secure (all banks + server) | per bank | crypto share "
        "| key setup (once) | Paillier (enc+add+dec) | Paillier / masking |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in proto:
        p = pmap.get((r["banks"], r["size"]))
        pcol = f"{p['total_s']:.1f}{'*' if p['extrapolated'] else ''}" if p else "-"
        ratio = f"{p['total_s'] / r['secure_round_s']:.0f}x" if p else "-"
        out.append(
            f"| {r['banks']} | {r['size']} | {r['plain_round_s']:.6f} | "
            f"{r['secure_round_s']:.4f} | {r['secure_per_bank_s']:.4f} | "
            f"{100 * r['crypto_share']:.0f}% | {r['key_setup_s']:.4f} | {pcol} | {ratio} |"
        )
    out += [
        "",
        "\\* extrapolated linearly from a timed sample (see JSON). Crypto / secure round "
        "(est.): in-process crypto time of all banks and the server for that size, over "
        "the simulated round's wall time (an upper bound: banks run on 2 actors in parallel).",
    ]
    return "\n".join(out)


def _share(part: float | None, whole: float) -> str:
    return "-" if part is None else f"{100 * part / whole:.1f}%"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write JSON and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, nargs="+", default=[3, 10, 50])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 10_000])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--paillier-sample", type=int, default=16)
    parser.add_argument("--paillier-bits", type=int, default=2048)
    parser.add_argument("--pull-intervals", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--no-simulation", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from phe import paillier

    t0 = time.perf_counter()
    keys = paillier.generate_paillier_keypair(n_length=args.paillier_bits)
    paillier_keygen_s = time.perf_counter() - t0

    proto, pail = [], []
    for n in args.banks:
        for d in args.sizes:
            proto.append(bench_protocol(n, d, args.rounds))
            pail.append(bench_paillier(n, d, args.paillier_sample, args.paillier_bits, keys))
            print(f"  protocol n={n} d={d}: {proto[-1]}", flush=True)
    sim = []
    if not args.no_simulation:
        sim = bench_simulation(args.banks, args.sizes, args.rounds, args.pull_intervals)

    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min_at_end": os.getloadavg()[0],
        "rounds": args.rounds,
        "quantization_bits": BITS,
        "paillier_keygen_s": paillier_keygen_s,
        "paillier_key_bits": args.paillier_bits,
        "note": "simulation exchanges are floored by the in-memory grid's reply polling "
        "interval (pull_interval_s; Flower's default 0.1 s)",
    }
    data = {"meta": meta, "simulation": sim, "protocol": proto, "paillier": pail}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(markdown(sim, proto, pail))
    return data


if __name__ == "__main__":
    main()
