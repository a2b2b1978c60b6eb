"""Positive controls of the threat lab: the AUC drop each attack causes under one defence, seed
by seed, and how often Krum selects the Krum-tailored attack.

For every seed it runs the clean federation and one federation per attack in this process
(ten equal banks, SGD rounds, in-process engine) and prints one line per seed and a summary
per attack: the smallest and mean drop (clean AUC minus attacked AUC on the test rows). With
``--krum-selection`` it also records, for ``attack=fang_krum`` under Krum allowing for the two
attackers (the paper's setting), whether the update Krum keeps in each round is the one the
attackers sent.

``python -m simulations.studies.threat_controls --defence fedavg --attacks fang_trim --seeds 0-4``

With ``--from-runs runs.csv`` it runs nothing and prints, from a threat-matrix report's
``runs.csv``, the drop per seed of every attack under ``--defence`` and on how many seeds it
reaches 0.05 (a Markdown table).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from unittest import mock

import numpy as np

from simulations.studies.free_rider_detection import seed_list

SPLIT = "partition=power partition.banks=10 partition.skew=0 train.optimizer=sgd"
FAST = "engine.backend=inprocess metrics.bootstrap=0"
KRUM = "strategy=krum strategy.num_malicious=2"
"""Krum as Fang et al. run it against their attack: it allows for as many malicious banks as
there are attackers (two of ten)."""


class Federations:
    """Runs on one prepared split per seed (the clean and attacked runs share it)."""

    def __init__(self, embedded) -> None:
        self.embedded = embedded
        self.prepared: dict = {}

    def auc(self, overrides: str) -> float:
        """Test AUC of the federated model for ``overrides`` (Hydra syntax)."""
        from fl_credit.config.compose import compose_experiment
        from fl_credit.credit.metrics import evaluate_scores
        from fl_credit.data.prepare import prepare
        from fl_credit.model.logistic import model_from_arrays, predict_proba
        from fl_credit.run.experiment import federate

        cfg, _ = compose_experiment(f"{overrides} {FAST}".split())
        if cfg.seed not in self.prepared:
            self.prepared[cfg.seed] = prepare(cfg, self.embedded)
        prepared = self.prepared[cfg.seed]
        fed, _ = federate(cfg, prepared)
        scores = predict_proba(model_from_arrays(fed.arrays), fed.scaler.transform(prepared.x_test))
        return evaluate_scores(prepared.y_test, scores, val_threshold=0.5, resamples=0)["auc"]


def krum_selection(runs: Federations, base: str, attack: str) -> tuple[float, list[bool]]:
    """AUC of ``attack`` under Krum and, per round, whether Krum kept an attacker's update."""
    import flwr.serverapp.strategy.multikrum as multikrum

    from strategies.attacks import ATTACKS

    cls = ATTACKS[attack]
    sent: list[np.ndarray] = []
    chosen: list[bool] = []
    rewrite, select = cls.rewrite, multikrum.select_multikrum

    def recording_rewrite(self, exchange, tools):
        arrays, weight = rewrite(self, exchange, tools)
        sent.append(np.concatenate([np.ravel(a) for a in arrays]).astype(np.float32))
        return arrays, weight

    def recording_select(contents, num_malicious_nodes, num_nodes_to_select):
        picked = select(contents, num_malicious_nodes, num_nodes_to_select)
        kept = np.concatenate(picked[0]["arrays"].to_numpy_ndarrays(), axis=None)
        chosen.append(any(np.array_equal(kept.astype(np.float32), s) for s in sent))
        return picked

    with (
        mock.patch.object(cls, "rewrite", recording_rewrite),
        mock.patch.object(multikrum, "select_multikrum", recording_select),
    ):
        auc = runs.auc(f"{base} attack={attack}")
    return auc, chosen


def geometry(runs: Federations, overrides: str) -> list[dict]:
    """Per round and attacker of a full-knowledge attack: the norm of the honest mean update
    (the pool it crafts from), the honest diameter, the norm of the update it sends and the
    cosine of that update with the honest mean."""
    from strategies.attacks.exchange import flatten
    from strategies.attacks.full_knowledge import FullKnowledge

    rows: list[dict] = []
    rewrite, honest_pool = FullKnowledge.rewrite, FullKnowledge.honest_pool
    pools: list[np.ndarray] = []

    def kept_pool(self, exchange, tools):
        pools.append(honest_pool(self, exchange, tools))
        return pools[-1]

    def recording(self, exchange, tools):
        arrays, weight = rewrite(self, exchange, tools)
        pool = pools[-1]
        mu = pool.mean(axis=0)
        sent = flatten(arrays) - flatten(exchange.global_arrays)
        gaps = np.linalg.norm(pool[:, None, :] - pool[None, :, :], axis=2)
        rows.append(
            {
                "round": exchange.server_round,
                "bank": exchange.partition_id,
                "honest_mean": float(np.linalg.norm(mu)),
                "honest_diameter": float(gaps.max()),
                "sent": float(np.linalg.norm(sent)),
                "cos_sent_mean": float(
                    sent @ mu / (np.linalg.norm(sent) * np.linalg.norm(mu) or 1)
                ),
            }
        )
        return arrays, weight

    with (
        mock.patch.object(FullKnowledge, "honest_pool", kept_pool),
        mock.patch.object(FullKnowledge, "rewrite", recording),
    ):
        runs.auc(overrides)
    return rows


def _attack(spec: str) -> str:
    """``name`` or ``name:k`` (k attackers, banks 0 to k - 1) as overrides."""
    name, _, count = spec.partition(":")
    return f"attack={name}" + (
        f" attack.banks=[{','.join(map(str, range(int(count))))}]" if count else ""
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see module doc)."""
    parser = argparse.ArgumentParser(prog="python -m simulations.studies.threat_controls")
    parser.add_argument("--defence", default="fedavg", help="strategy= value")
    parser.add_argument(
        "--attacks", default="", help="comma-separated attack= values; 'name:k' = k attackers"
    )
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--krum-selection", action="store_true", help="also fang_krum under strategy=krum"
    )
    parser.add_argument(
        "--geometry",
        action="store_true",
        help="per round: honest mean and diameter, the sent update (first seed only)",
    )
    parser.add_argument("--from-runs", help="a threat-matrix runs.csv: print its drops per seed")
    args = parser.parse_args(argv)
    if args.from_runs:
        return _table_from_runs(args.from_runs, args.defence)
    from fl_credit.config.errors import FlCreditError
    from fl_credit.data.embedded import load_embedded
    from strategies.attacks import attack_names

    attacks = [a for a in args.attacks.split(",") if a]
    unknown = [a for a in attacks if a.split(":")[0] not in attack_names()]
    try:
        seeds = seed_list(args.seeds)
        counts = [int(a.partition(":")[2] or 2) for a in attacks]
    except ValueError:
        seeds, counts = [], []
    if unknown or not seeds or args.rounds < 1 or any(c < 1 for c in counts):
        problem = (
            f"unknown attack {unknown[0]!r}; choose from {', '.join(attack_names()[1:])}"
            if unknown
            else f"--seeds {args.seeds!r} / --rounds {args.rounds} / --attacks {args.attacks!r}: "
            "seeds like 0-9 or 0,3, rounds >= 1, attackers name:k with k >= 1"
        )
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        return _measure(args, attacks, seeds, load_embedded())
    except FlCreditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


MATRIX_COLUMNS = ("defence", "attack", "seed", "status", "auc_drop")
"""The columns of a threat-matrix ``runs.csv`` that ``--from-runs`` reads."""
CONTROL_DROP = 0.05
"""The positive control: an attack drops FedAvg's AUC by at least this on every seed."""


def _table_from_runs(path: str, defence: str) -> int:
    """Print the per-seed drops of every attack under ``defence`` from a matrix's runs.csv."""
    import pandas as pd

    try:
        runs = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        print(f"error: --from-runs {path}: {exc}", file=sys.stderr)
        return 2
    missing = sorted(set(MATRIX_COLUMNS) - set(runs.columns))
    if missing:
        print(
            f"error: --from-runs {path}: not a threat-matrix runs.csv "
            f"(missing columns: {', '.join(missing)})",
            file=sys.stderr,
        )
        return 2
    cells = runs[(runs["defence"] == defence) & (runs["status"] == "ok")]
    if cells.empty:
        print(f"error: no ok runs of defence {defence!r} in {path}", file=sys.stderr)
        return 2
    table = cells[cells["attack"] != "none"].pivot_table(
        index="attack", columns="seed", values="auc_drop"
    )
    seeds = [int(s) for s in table.columns]
    print("| attack | " + " | ".join(map(str, seeds)) + " | smallest | mean | seeds >= 0.05 |")
    print("|---" * (len(seeds) + 4) + "|")
    for attack, row in table.iterrows():
        values = row.to_numpy(dtype=float)
        cells_text = " | ".join(f"{v:.3f}" for v in values)
        print(
            f"| {attack} | {cells_text} | {np.nanmin(values):.3f} | {np.nanmean(values):.3f} | "
            f"{int(np.sum(values >= CONTROL_DROP))} of {np.sum(np.isfinite(values))} |"
        )
    return 0


def _measure(args: argparse.Namespace, attacks: list[str], seeds: list[int], embedded) -> int:
    """The runs and the printed lines of :func:`main`."""
    runs = Federations(embedded)
    drops: dict[str, list[float]] = {a: [] for a in attacks}
    selected: list[list[bool]] = []
    if args.geometry:
        base = f"{SPLIT} train.rounds={args.rounds} seed={seeds[0]}"
        for attack in attacks:
            for row in geometry(runs, f"{base} strategy={args.defence} {_attack(attack)}"):
                if row["bank"] == 0:
                    print(attack, {k: round(v, 3) for k, v in row.items()}, flush=True)
        return 0
    for seed in seeds:
        base = f"{SPLIT} train.rounds={args.rounds} seed={seed}"
        clean = runs.auc(f"{base} strategy={args.defence}") if attacks else float("nan")
        line = {}
        for attack in attacks:
            attacked = runs.auc(f"{base} strategy={args.defence} {_attack(attack)}")
            drops[attack].append(clean - attacked)
            line[attack] = round(drops[attack][-1], 4)
        if args.krum_selection:
            krum = f"{base} {KRUM}"
            krum_clean = runs.auc(krum)
            auc, chosen = krum_selection(runs, krum, "fang_krum")
            selected.append(chosen)
            line["krum: fang_krum selected"] = f"{sum(chosen)}/{len(chosen)}"
            line["krum: fang_krum drop"] = round(krum_clean - auc, 4)
        print(f"seed {seed}: {line}", flush=True)
    for attack, values in drops.items():
        print(
            f"{args.defence} {attack}: smallest drop {min(values):.4f}, mean {np.mean(values):.4f}",
            flush=True,
        )
    if selected:
        rounds = sum(len(c) for c in selected)
        print(
            f"krum selects fang_krum in {sum(map(sum, selected))} of {rounds} rounds; "
            f"fewest on one seed {min(sum(c) for c in selected)} of {args.rounds}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
