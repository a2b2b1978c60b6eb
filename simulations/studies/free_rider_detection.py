"""Measure the free-rider detector (:mod:`fl_credit.threats.free_riders`) on small runs.

For every defence, attack and seed it runs one federation in this process, records the
update each bank sends in each round as the coordinator receives it (before aggregation),
and runs the detector. The simulation's partition ids are matched to the coordinator's node
ids by a pass-through client mod (ground truth for scoring only; the detector never uses
it). Prints and writes one CSV row per run: free riders caught, honest banks flagged.

``python -m simulations.studies.free_rider_detection --defences fedavg,fedmedian --seeds 0-9``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from fl_credit.threats.free_riders import detect_free_riders
from strategies.robust import PLAINTEXT_ROBUST

SPLIT = "partition=power partition.banks=10 partition.skew=0 train.optimizer=sgd"
PER_BANK_UPDATES = ("fedavg", *PLAINTEXT_ROBUST)
"""Defences under which the coordinator holds each bank's update (the detector applies)."""


class Recorder:
    """Per-round per-node updates received by the strategy, and node -> partition ids."""

    def __init__(self) -> None:
        self.rounds: list[dict[int, np.ndarray]] = []
        self.global_changes: list[np.ndarray | None] = []
        self.partition_of: dict[int, int] = {}
        self._last_global: np.ndarray | None = None
        self._global: np.ndarray | None = None

    def mod(self, msg, context, call_next):
        """Client mod: note which node runs which partition (scoring ground truth)."""
        pid = context.node_config.get("partition-id")
        if pid is not None:
            self.partition_of[int(context.node_id)] = int(pid)
        return call_next(msg, context)

    def wrap(self, strategy):
        """Record what ``strategy`` receives before it aggregates."""
        configure, aggregate = strategy.configure_train, strategy.aggregate_train

        def configure_train(server_round, arrays, config, grid):
            flat = _flat(arrays)
            change = None
            if self._global is not None and flat.shape == self._global.shape:
                change = flat - self._global
            self._last_global, self._global = change, flat
            return configure(server_round, arrays, config, grid)

        def aggregate_train(server_round, replies):
            replies = list(replies)
            updates = {}
            for msg in replies:
                if msg.has_error() or "arrays" not in msg.content.array_records:
                    continue
                updates[int(msg.metadata.src_node_id)] = _flat(msg.content["arrays"]) - self._global
            self.rounds.append(updates)
            self.global_changes.append(self._last_global)
            return aggregate(server_round, replies)

        strategy.configure_train = configure_train
        strategy.aggregate_train = aggregate_train
        return strategy


def _flat(record) -> np.ndarray:
    return np.concatenate([np.ravel(a).astype(np.float64) for a in record.to_numpy_ndarrays()])


def measure(embedded, defence: str, attack: str, seed: int, rounds: int) -> dict:
    """One run: free riders caught and honest banks flagged."""
    import fl_credit.coordinator.federation as federation
    import fl_credit.run.experiment as experiment
    from fl_credit.config.compose import compose_experiment
    from fl_credit.data.prepare import prepare

    overrides = f"{SPLIT} train.rounds={rounds} strategy={defence} attack={attack} seed={seed}"
    overrides += " engine.backend=inprocess metrics.bootstrap=0"
    cfg, _ = compose_experiment(overrides.split())
    recorder = Recorder()
    build, mods = federation.build_strategy, experiment.simulation_mods
    with (
        mock.patch.object(
            federation, "build_strategy", lambda *a, **k: recorder.wrap(build(*a, **k))
        ),
        mock.patch.object(experiment, "simulation_mods", lambda *a: [*mods(*a), recorder.mod]),
    ):
        experiment.federate(cfg, prepare(cfg, embedded))
    verdicts = detect_free_riders(recorder.rounds, recorder.global_changes)
    riders = set(cfg.attack.banks)
    by_partition = {recorder.partition_of[n]: v for n, v in verdicts.items()}
    caught = [by_partition[b].flagged for b in riders if b in by_partition]
    honest = [v.flagged for b, v in by_partition.items() if b not in riders]
    return {
        "defence": defence,
        "attack": attack,
        "seed": seed,
        "free_riders": len(caught),
        "caught": int(sum(caught)),
        "honest": len(honest),
        "false_alarms": int(sum(honest)),
        "rider_response": _mean(by_partition[b].response for b in riders),
        "rider_contribution": _mean(by_partition[b].contribution for b in riders),
        "lowest_honest_response": min(
            v.response for b, v in by_partition.items() if b not in riders
        ),
        "lowest_honest_contribution": min(
            v.contribution for b, v in by_partition.items() if b not in riders
        ),
    }


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def seed_list(text: str) -> list[int]:
    """Seeds from ``0-9`` (a range, both ends included) or ``0,2,5`` (a list)."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see module doc)."""
    parser = argparse.ArgumentParser(prog="python -m simulations.studies.free_rider_detection")
    parser.add_argument("--defences", default="fedavg")
    parser.add_argument("--attacks", default="free_rider,disguised_free_rider")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="CSV of the runs")
    args = parser.parse_args(argv)
    defences = args.defences.split(",")
    unknown = [d for d in defences if d not in PER_BANK_UPDATES]
    if unknown:
        print(
            f"error: {unknown[0]} does not show the coordinator each bank's update; choose from "
            f"{', '.join(PER_BANK_UPDATES)}",
            file=sys.stderr,
        )
        return 2
    from fl_credit.data.embedded import load_embedded

    embedded = load_embedded()
    rows = []
    for defence in defences:
        for attack in args.attacks.split(","):
            for seed in seed_list(args.seeds):
                rows.append(measure(embedded, defence, attack, seed, args.rounds))
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    summary = df.groupby(["defence", "attack"]).agg(
        runs=("seed", "count"),
        detection=("caught", "sum"),
        riders=("free_riders", "sum"),
        false_alarms=("false_alarms", "sum"),
        honest=("honest", "sum"),
    )
    summary["detection_rate"] = summary["detection"] / summary["riders"]
    summary["false_alarm_rate"] = summary["false_alarms"] / summary["honest"]
    print(summary.to_string())
    if args.out is not None:
        df.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
