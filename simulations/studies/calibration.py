"""How class weights, SMOTE, DP and the optimiser change the calibration of the federated PDs.

Runs the federated model only (no baselines) on the embedded loans, in-process, for a few
settings and seeds, and scores its test-set PDs three ways: as reported and saved, without
any intercept correction ("raw"), and with the prior correction ``log(class weight)``
applied to the raw model (what the default does without DP):

    python -m simulations.studies.calibration [--seeds 0 1 2] [--out docs/results/calibration]

Writes ``calibration.json`` (every run) and ``calibration.md`` (means over seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from fl_credit.config.parsing import resolve_optimizer
from fl_credit.config.schema import (
    DPConfig,
    EngineConfig,
    ExperimentConfig,
    ImbalanceConfig,
    TrainConfig,
)
from fl_credit.credit.calibration import calibration_scores, corrected, prior_correction
from fl_credit.credit.metrics import round_metrics
from fl_credit.data.embedded import load_embedded
from fl_credit.data.prepare import prepare
from fl_credit.model.imbalance import positive_weight
from fl_credit.model.logistic import model_from_arrays, predict_proba
from fl_credit.run.experiment import federate

BASE = ExperimentConfig(engine=EngineConfig(backend="inprocess"), bootstrap=0)
SETTINGS: dict[str, ExperimentConfig] = {
    "class_weight, Newton (default)": BASE,
    "class_weight, SGD 20 rounds": dataclasses.replace(BASE, train=TrainConfig(optimizer="sgd")),
    "SMOTE, Newton": dataclasses.replace(BASE, imbalance=ImbalanceConfig(method="smote")),
    "none (unweighted), Newton": dataclasses.replace(
        BASE, imbalance=ImbalanceConfig(method="none")
    ),
    "class_weight, DP-SGD epsilon 4": dataclasses.replace(
        BASE, dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp")
    ),
    "class_weight, DP-SGD epsilon 1": dataclasses.replace(
        BASE, dp=DPConfig(mode="opacus", epsilon=1.0, accountant="rdp")
    ),
}


def scores(arrays, scaler, x) -> np.ndarray:
    """PDs of a model on unscaled rows."""
    return predict_proba(model_from_arrays(arrays), scaler.transform(x))


def one_run(cfg: ExperimentConfig, data) -> dict:
    """Federate once; test-set calibration with and without the prior correction."""
    cfg = resolve_optimizer(cfg)
    prepared = prepare(cfg, data)
    started = time.perf_counter()
    fed, _ = federate(cfg, prepared)
    seconds = time.perf_counter() - started
    x, y = prepared.x_test, prepared.y_test
    raw_arrays = corrected(fed.arrays, -fed.intercept_correction)
    weight = positive_weight(np.concatenate([b.y_train for b in prepared.banks.values()]))
    prior = corrected(raw_arrays, prior_correction(cfg.imbalance.method, weight))
    out = {
        "seed": cfg.seed,
        "optimizer": cfg.train.optimizer,
        "rounds": len(fed.rounds_applied) + len(fed.rounds_skipped),
        "converged_round": fed.converged_round,
        "seconds": seconds,
        "intercept_correction": fed.intercept_correction,
        "threshold": fed.threshold,
        "validation_ece": fed.calibration.get("ece"),
    }
    for name, arrays in (("reported", fed.arrays), ("raw", raw_arrays), ("prior", prior)):
        p = scores(arrays, fed.scaler, x)
        out[name] = {**round_metrics(y, p), **calibration_scores(y, p, cfg.calibration_bins)}
    return out


def summary_table(results: dict[str, list[dict]]) -> str:
    """Means over seeds, one row per setting."""

    def mean(runs: list[dict], *path: str) -> float:
        values = []
        for run in runs:
            value = run
            for key in path:
                value = value[key]
            values.append(float(value))
        return float(np.mean(values))

    lines = [
        "| setting | AUC | base rate | Brier of base rate | reported: Brier | mean PD | ECE "
        "| ECE on validation (summed bins) | raw: Brier | raw: mean PD | raw: ECE "
        "| prior-corrected: Brier | mean PD | ECE | rounds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        cells = [f"{mean(runs, 'reported', 'auc'):.4f}"]
        cells += [f"{mean(runs, 'reported', k):.4f}" for k in ("base_rate", "brier_base_rate")]
        for variant in ("reported", "raw", "prior"):
            cells += [f"{mean(runs, variant, k):.4f}" for k in ("brier", "mean_pd", "ece")]
            if variant == "reported":
                cells.append(f"{mean(runs, 'validation_ece'):.4f}")
        cells.append(f"{mean(runs, 'rounds'):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run every setting for every seed; write the JSON and the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("docs/results/calibration"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = load_embedded()
    results: dict[str, list[dict]] = {}
    for name, cfg in SETTINGS.items():
        results[name] = [one_run(dataclasses.replace(cfg, seed=s), data) for s in args.seeds]
        print(name, "done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(results, indent=2))
    table = summary_table(results)
    header = (
        "# Calibration of the federated PDs (embedded loans, 3 banks 25/25/50, test rows)\n\n"
        f"`python -m simulations.studies.calibration --seeds {' '.join(map(str, args.seeds))}`; "
        f"means over {len(args.seeds)} seeds. 'reported' = the PDs the run reports and saves; "
        "'raw' = the same model without any intercept correction; 'prior-corrected' = the raw "
        "model's intercept minus log(class weight). Without DP, reported = prior-corrected; "
        "under DP, reported = raw.\n\n"
    )
    (args.out / "calibration.md").write_text(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
