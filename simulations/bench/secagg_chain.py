"""Time the model chain and the tag inside the rounds of :mod:`simulations.bench.secagg`.

Wraps the bank-side functions they add (tag and group key, forwarded-sum check, chain) with
timers and runs the benchmark once per federation size::

    python -m simulations.bench.secagg_chain --banks 3 10 50 --rounds 5
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from typing import Any

import strategies.secagg.bank_protocol as bank_protocol
import strategies.secagg.client_mod as client_mod
from simulations.bench import secagg as bench_secagg

SPENT: collections.Counter[str] = collections.Counter()


def _timed(module: Any, name: str) -> None:
    inner: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    setattr(module, name, wrapper)


def main(argv: list[str] | None = None) -> None:
    """Print, per size, the chain's and tag's time per round next to the secure round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, nargs="+", default=[3, 10, 50])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="/tmp/bench_secagg_chain.json")
    args = parser.parse_args(argv)
    for module, name in (
        (client_mod.forward, "tag_reply"),
        (client_mod.forward, "forwarded"),
        (client_mod.chain, "chained_content"),
        (bank_protocol, "group_key"),
    ):
        _timed(module, name)
    for n in args.banks:
        SPENT.clear()
        out = bench_secagg.main(
            ["--banks", str(n), "--rounds", str(args.rounds), "--out", args.out]
        )
        secure = out["rounds"][0]["secure_round_s"]
        added = sum(SPENT.values()) / args.rounds
        print(
            f"{n} banks: chain and tag {added * 1e3:.2f} ms per round (key setup included) "
            f"of a {secure * 1e3:.1f} ms secure round ({100 * added / secure:.1f}%)"
        )


if __name__ == "__main__":
    main()
