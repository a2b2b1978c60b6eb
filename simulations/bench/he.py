"""Pairwise masking against homomorphic encryption, for the same vectors, measured fairly.

For 3 and 10 banks and update vectors of 40 floats (a logistic regression on ~40 features)
and 10,000 floats, one aggregation (every bank protects its vector, the server combines them,
the sum is recovered), all banks and the server in one process and one thread:

- ``masking``: our secure aggregation (``strategies.secagg``, ``sum`` mode: fixed-point
  encoding in Z_2^64, pairwise X25519/ChaCha20 masks, self masks, the unmasking step, run
  through :class:`strategies.secagg.inprocess.LocalFederation`, i.e. the protocol code of
  banks and server without transport); key setup once per key epoch, reported apart.
- ``paillier``: ``phe`` with ``gmpy2`` (checked: the run stops if ``phe`` would fall back to
  pure Python), 2048-bit key, one ciphertext per float (``phe``'s encoding at precision
  2^-16, as in FATE 1.x HomoLR); the server adds ciphertexts, the key holder decrypts.
- ``paillier_packed``: the same key, many fixed-point values per ciphertext, as peer tools
  do: each float becomes ``round((x + clip) * 2^16)`` in a 64-bit slot, 31 slots per
  2048-bit plaintext (headroom for 2^40 summands per slot), so one encryption carries 31
  values; the server multiplies ciphertexts (adds plaintexts), the key holder decrypts and
  unpacks.
- ``ckks``: TenSEAL CKKS with the settings common in federated tools (poly modulus degree
  N = 8192, coefficient moduli [60, 40, 40, 60] bits, scale 2^40; 4,096 slots per
  ciphertext; one thread): each bank encrypts its vector, the server adds, the key holder
  decrypts.

Times are CPU seconds of this process (``time.process_time``): the machine is shared, and
for this single-threaded work CPU time is what wall time would be on an idle machine.
Every row checks that the recovered sum equals the plain sum (to the encoding's precision)
or the run stops. Paillier costs the same for every ciphertext, so the unpacked and packed
rows time a sample (``--paillier-sample`` ciphertexts of up to ``--sample-banks`` banks)
and scale linearly to all of them; such rows are marked ``extrapolated``. Masking and CKKS
are timed on the full vectors. Every HE step is the median of ``--repeats`` runs, masking
the median of ``--rounds`` instances. Bytes are what one bank sends per aggregation
(ciphertexts, or the masked vector; masking's key-epoch and unmasking messages are extra
and not counted here).

Usage::

    python -m simulations.bench.he [--banks 3 10] [--sizes 40 10000] [--rounds 8]
                                   [--paillier-sample 64] [--repeats 3] [--out PATH]

Writes JSON (default ``simulations/results/bench_he.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "bench_he.json"
CLIP = 1.0
FRACTION_BITS = 16
SLOT_BITS = 64
KEY_BITS = 2048
CKKS_N = 8192
CKKS_MODULI = (60, 40, 40, 60)
CKKS_SCALE_BITS = 40


def bank_vector(bank: int, size: int) -> np.ndarray:
    """The vector bank ``bank`` contributes (as in ``bench_secagg``: small updates)."""
    return np.random.default_rng(10_000 + bank).normal(scale=0.05, size=size).clip(-CLIP, CLIP)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the CPU seconds it took (process time: the machine is shared, and every
    method runs in this one thread, so CPU time is its cost without other jobs' noise)."""
    started = time.process_time()
    out = fn()
    return out, time.process_time() - started


def _check(name: str, got: np.ndarray, want: np.ndarray, tol: float) -> float:
    error = float(np.max(np.abs(np.asarray(got) - want)))
    if not error <= tol:
        raise AssertionError(f"{name}: recovered sum off by {error:g} (> {tol:g})")
    return error


def _add_rows(rows: list[list]) -> list:
    """The server's step: add the banks' ciphertexts position by position."""
    acc = rows[0]
    for row in rows[1:]:
        acc = [a + b for a, b in zip(acc, row, strict=True)]
    return acc


def aggregate(
    encrypt: Callable[[], list[list]], decrypt: Callable[[Any], Any], repeats: int
) -> tuple[list, list[list], float, float, float]:
    """Encrypt every bank's row, add them, decrypt the sums, ``repeats`` times.

    Returns
    -------
    tuple
        The decrypted sums, the last ciphertexts, and the median seconds of the encryption,
        addition and decryption steps (medians: the machine is shared).
    """
    enc_t, add_t, dec_t = [], [], []
    for _ in range(max(1, repeats)):
        cts, enc = _timed(encrypt)
        total, add_s = _timed(lambda cts=cts: _add_rows(cts))
        plain, dec = _timed(lambda total=total: [decrypt(c) for c in total])
        enc_t.append(enc)
        add_t.append(add_s)
        dec_t.append(dec)
    medians = (statistics.median(t) for t in (enc_t, add_t, dec_t))
    return (plain, cts, *medians)


# --- Paillier, one float per ciphertext ----------------------------------------------------


def require_gmpy2() -> str:
    """``phe`` uses gmpy2 when it can import it; refuse to benchmark the slow fallback."""
    import phe.util

    if not getattr(phe.util, "HAVE_GMP", False):
        raise SystemExit("error: phe runs without gmpy2 here; pip install gmpy2 (dev extra)")
    return metadata.version("gmpy2")


def gmpy2_speedup(keys: Any, count: int = 20) -> dict:
    """Seconds per ``phe`` encryption with gmpy2 and with phe's pure-Python fallback."""
    import phe.util

    pub, _ = keys
    values = bank_vector(0, count)
    timings = {}
    for label, flag in (("with_gmpy2_s", True), ("without_gmpy2_s", False)):
        saved, phe.util.HAVE_GMP = phe.util.HAVE_GMP, flag
        try:
            _, spent = _timed(lambda: [pub.encrypt(float(v), precision=2.0**-16) for v in values])
        finally:
            phe.util.HAVE_GMP = saved
        timings[label] = spent / count
    return {**timings, "speedup": timings["without_gmpy2_s"] / timings["with_gmpy2_s"]}


def bench_paillier(
    n: int, d: int, keys: Any, sample: int, sample_banks: int, repeats: int = 3
) -> dict:
    """Encrypt each float of every bank, add per coordinate, decrypt (sampled, scaled)."""
    pub, priv = keys
    m, banks = min(d, sample), min(n, sample_banks)
    vectors = [bank_vector(k, d)[:m] for k in range(banks)]
    plain, _, enc, add_s, dec = aggregate(
        lambda: [
            [pub.encrypt(float(v), precision=2.0**-FRACTION_BITS) for v in vec] for vec in vectors
        ],
        priv.decrypt,
        repeats,
    )
    error = _check(
        "paillier", np.array(plain), np.sum(vectors, axis=0), banks * 2.0**-FRACTION_BITS
    )
    ct_bytes = math.ceil(2 * pub.n.bit_length() / 8)
    return _scaled(
        "paillier", n, d, enc / (banks * m), add_s / max(1, (banks - 1) * m), dec / m, d,
        extrapolated=m < d or banks < n, per_ct_values=1, ct_bytes=ct_bytes, error=error,
        sampled=f"{m} values x {banks} banks, median of {repeats}",
    )  # fmt: skip


def _scaled(
    method: str,
    n: int,
    d: int,
    enc_each: float,
    add_each: float,
    dec_each: float,
    cts_per_bank: int,
    *,
    extrapolated: bool,
    per_ct_values: int,
    ct_bytes: int,
    error: float,
    sampled: str,
) -> dict:
    enc = enc_each * n * cts_per_bank
    add = add_each * (n - 1) * cts_per_bank
    dec = dec_each * cts_per_bank
    return {
        "method": method,
        "banks": n,
        "size": d,
        "values_per_ciphertext": per_ct_values,
        "ciphertexts_per_bank": cts_per_bank,
        "encrypt_all_banks_s": enc,
        "add_s": add,
        "decrypt_s": dec,
        "round_s": enc + add + dec,
        "per_bank_encrypt_s": enc / n,
        "bytes_per_bank": ct_bytes * cts_per_bank,
        "max_abs_error": error,
        "extrapolated": extrapolated,
        "timed_sample": sampled,
    }


# --- Paillier, packed ---------------------------------------------------------------------


def slots_per_ciphertext(key_bits: int = KEY_BITS, slot_bits: int = SLOT_BITS) -> int:
    """Values per plaintext: whole slots below the modulus (31 for 2048 bits and 64 bits)."""
    return (key_bits - 1) // slot_bits


def pack(values: np.ndarray, slots: int) -> list[int]:
    """Fixed-point, offset to be non-negative, ``slots`` values per integer (slot 0 lowest)."""
    fixed = np.rint((values + CLIP) * 2**FRACTION_BITS).astype(np.int64)
    out = []
    for start in range(0, len(fixed), slots):
        number = 0
        for i, v in enumerate(fixed[start : start + slots].tolist()):
            number |= int(v) << (SLOT_BITS * i)
        out.append(number)
    return out


def unpack(numbers: list[int], size: int, slots: int, summands: int) -> np.ndarray:
    """Inverse of :func:`pack` for a sum of ``summands`` packed vectors."""
    mask = (1 << SLOT_BITS) - 1
    values = [(number >> (SLOT_BITS * i)) & mask for number in numbers for i in range(slots)]
    fixed = np.array(values[:size], dtype=np.float64)
    return fixed / 2**FRACTION_BITS - summands * CLIP


def bench_paillier_packed(
    n: int, d: int, keys: Any, sample: int, sample_banks: int, repeats: int = 3
) -> dict:
    """Encrypt packed plaintexts, multiply ciphertexts, decrypt and unpack (sampled, scaled)."""
    from phe import paillier

    pub, priv = keys
    slots = slots_per_ciphertext(pub.n.bit_length())
    per_bank = math.ceil(d / slots)
    m, banks = min(per_bank, sample), min(n, sample_banks)
    size = min(d, m * slots)
    vectors = [bank_vector(k, d)[:size] for k in range(banks)]
    packed = [pack(v, slots) for v in vectors]
    plain, _, enc, add_s, dec = aggregate(
        lambda: [
            [paillier.EncryptedNumber(pub, pub.raw_encrypt(x), 0) for x in row] for row in packed
        ],
        lambda c: priv.raw_decrypt(c.ciphertext(be_secure=False)),
        repeats,
    )
    summed = unpack(plain, size, slots, banks)
    error = _check("packed", summed, np.sum(vectors, axis=0), banks * 2.0**-FRACTION_BITS)
    ct_bytes = math.ceil(2 * pub.n.bit_length() / 8)
    return _scaled(
        "paillier_packed", n, d, enc / (banks * m), add_s / max(1, (banks - 1) * m), dec / m,
        per_bank, extrapolated=m < per_bank or banks < n, per_ct_values=slots,
        ct_bytes=ct_bytes, error=error,
        sampled=f"{m} ciphertexts x {banks} banks, median of {repeats}",
    )  # fmt: skip


# --- CKKS ---------------------------------------------------------------------------------


def ckks_context() -> Any:
    """TenSEAL CKKS context with the usual federated settings (secret key kept)."""
    import tenseal as ts

    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=CKKS_N,
        coeff_mod_bit_sizes=list(CKKS_MODULI),
        n_threads=1,  # one thread, like every other method here
    )
    ctx.global_scale = 2.0**CKKS_SCALE_BITS
    return ctx


def _ckks_encrypt(ctx: Any, vec: np.ndarray) -> list:
    import tenseal as ts

    slots = CKKS_N // 2
    return [ts.ckks_vector(ctx, vec[i : i + slots].tolist()) for i in range(0, len(vec), slots)]


def bench_ckks(n: int, d: int, ctx: Any, repeats: int) -> dict:
    """Every bank encrypts its whole vector, the server adds, the key holder decrypts."""
    vectors = [bank_vector(k, d) for k in range(n)]
    plain, cts, enc, add_s, dec = aggregate(
        lambda: [_ckks_encrypt(ctx, v) for v in vectors], lambda c: c.decrypt(), repeats
    )
    error = _check("ckks", np.concatenate(plain), np.sum(vectors, axis=0), 1e-4)
    return {
        "method": "ckks",
        "banks": n,
        "size": d,
        "values_per_ciphertext": CKKS_N // 2,
        "ciphertexts_per_bank": len(cts[0]),
        "encrypt_all_banks_s": enc,
        "add_s": add_s,
        "decrypt_s": dec,
        "round_s": enc + add_s + dec,
        "per_bank_encrypt_s": enc / n,
        "bytes_per_bank": sum(len(c.serialize()) for c in cts[0]),
        "max_abs_error": error,
        "extrapolated": False,
        "timed_sample": f"all, median of {repeats}",
    }


# --- masking ------------------------------------------------------------------------------


def bench_masking(n: int, d: int, rounds: int) -> dict:
    """Our secure aggregation of the same vectors (``sum`` mode: plain sums, as the HE rows),
    every bank and the server in this process (:class:`LocalFederation`, the protocol code
    the banks and the server run, without transport); median over ``rounds`` instances."""
    from strategies.secagg.inprocess import LocalFederation
    from strategies.secagg.vector import Bounds, decode, encode, make_layout

    nodes = list(range(1, n + 1))
    bounds = Bounds(value_range=CLIP, metric_range=1e3, max_weight=2.0**20, bits=FRACTION_BITS)
    vectors = {k: {("arrays", "w"): bank_vector(k - 1, d)} for k in nodes}
    fed = LocalFederation(nodes)
    _, setup_s = _timed(fed.setup)
    layout = make_layout("sum", vectors[1], {})

    def one_round() -> np.ndarray:
        plains = {k: encode(layout, vectors[k], {}, bounds)[0] for k in nodes}
        ring_sum, _ = fed.aggregate(plains, layout, bounds)
        return decode(layout, ring_sum, FRACTION_BITS).arrays[("arrays", "w")]

    times, summed = [], None
    for _ in range(rounds):
        summed, spent = _timed(one_round)
        times.append(spent)
    want = np.sum([bank_vector(k - 1, d) for k in nodes], axis=0)
    error = _check("masking", summed, want, n * 2.0**-FRACTION_BITS)
    round_s = statistics.median(times)
    return {
        "method": "masking",
        "banks": n,
        "size": d,
        "round_s": round_s,
        "per_bank_encrypt_s": round_s / n,
        "key_setup_s": setup_s,
        "bytes_per_bank": 8 * layout.size(),  # Z_2^64 ring elements: the vector, clip count
        "max_abs_error": error,
        "extrapolated": False,
        "timed_sample": f"all, median of {rounds}",
    }


# --- report -------------------------------------------------------------------------------

LABELS = {
    "masking": "pairwise masking (ours)",
    "paillier": "Paillier, 1 value/ciphertext",
    "paillier_packed": "Paillier, packed",
    "ckks": "CKKS (TenSEAL)",
}


def _fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:,.1f} s"


def _fmt_bytes(count: int) -> str:
    return f"{count / 1024:,.1f} KB" if count < 1024**2 else f"{count / 1024**2:,.1f} MB"


def markdown(rows: list[dict]) -> str:
    """One table: every method per (banks, floats), with its ratio to masking."""
    base = {(r["banks"], r["size"]): r["round_s"] for r in rows if r["method"] == "masking"}
    out = [
        "| banks | floats | method | one aggregation (all banks + server) | / masking "
        "| sent per bank |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["round_s"] / base[(r["banks"], r["size"])]
        star = "*" if r["extrapolated"] else ""
        packing = (
            f" ({r['values_per_ciphertext']:,}/ct)" if r.get("values_per_ciphertext", 1) > 1 else ""
        )
        out.append(
            f"| {r['banks']} | {r['size']:,} | {LABELS[r['method']]}{packing} | "
            f"{_fmt_s(r['round_s'])}{star} | {ratio:,.0f}x | {_fmt_bytes(r['bytes_per_bank'])} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write JSON and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 10_000])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="HE timings: median of this many")
    parser.add_argument("--paillier-sample", type=int, default=64)
    parser.add_argument("--sample-banks", type=int, default=3)
    parser.add_argument("--key-bits", type=int, default=KEY_BITS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    gmpy2_version = require_gmpy2()
    from phe import paillier

    keys, keygen_s = _timed(lambda: paillier.generate_paillier_keypair(n_length=args.key_bits))
    ctx, ckks_setup_s = _timed(ckks_context)
    speedup = gmpy2_speedup(keys)
    print(f"  phe encryption: {speedup}", flush=True)
    rows = []
    for n in args.banks:
        for d in args.sizes:
            rows.append(bench_masking(n, d, args.rounds))
            sampling = (args.paillier_sample, args.sample_banks, args.repeats)
            rows.append(bench_paillier(n, d, keys, *sampling))
            rows.append(bench_paillier_packed(n, d, keys, *sampling))
            rows.append(bench_ckks(n, d, ctx, args.repeats))
            for row in rows[-4:]:
                print(f"  n={n} d={d} {row['method']}: {_fmt_s(row['round_s'])}", flush=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min_at_end": os.getloadavg()[0],
        "phe": metadata.version("phe"),
        "gmpy2": gmpy2_version,
        "tenseal": metadata.version("tenseal"),
        "paillier_key_bits": args.key_bits,
        "paillier_keygen_s": keygen_s,
        "phe_encrypt_gmpy2": speedup,
        "fraction_bits": FRACTION_BITS,
        "packed_slot_bits": SLOT_BITS,
        "ckks": {"N": CKKS_N, "coeff_mod_bit_sizes": list(CKKS_MODULI), "scale_bits": 40},
        "ckks_context_s": ckks_setup_s,
        "timer": "time.process_time (CPU seconds of this process)",
        "note": "one thread, all banks and the server in one process; extrapolated rows time "
        "a sample of ciphertexts (Paillier costs the same per ciphertext) and scale linearly",
    }
    data = {"meta": meta, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(markdown(rows))
    return data


if __name__ == "__main__":
    main()
