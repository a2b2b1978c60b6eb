"""Where boosting beats logistic regression.

``python -m simulations.studies.gbm_vs_lr RUN_DIR ...``

Reads the ``metrics.json`` of finished ``model=gbm`` runs (one per seed; each holds the
federated boosted trees and, on the same split, the pooled Newton logistic model, which the
federated Newton run equals) and prints, per metric, the mean over seeds of the federated gbm
value, the LR value, and their paired difference with a 95% t-interval over the seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ("auc", "ks", "brier", "ece")
LR_ROW = "pooled"


def paired(runs: list[dict], metric: str) -> dict:
    """Mean gbm, mean LR and the mean paired difference (gbm - LR) with its 95% t-interval."""
    gbm = np.array([r["federated"][metric] for r in runs], dtype=float)
    lr = np.array([r["lr"][LR_ROW][metric] for r in runs], dtype=float)
    diff = gbm - lr
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    mean = float(diff.mean())
    return {
        "gbm": float(gbm.mean()),
        "lr": float(lr.mean()),
        "difference": mean,
        "interval": [mean - float(half), mean + float(half)],
    }


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    runs = []
    for run_dir in args.run_dirs:
        path = run_dir / "metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        if "lr" not in metrics:
            print(f"error: {run_dir} is not a model=gbm run", file=sys.stderr)
            return 2
        runs.append(metrics)
    if len(runs) < 2:
        print("error: need at least two finished model=gbm runs", file=sys.stderr)
        return 2
    data = runs[0].get("banks", {})
    rows = {name: bank["rows"] for name, bank in data.items()}
    print(f"{len(runs)} seeds; banks {rows}")
    print(f"{'metric':<6} {'gbm':>7} {'LR':>7} {'gbm - LR':>9}  95% t-interval over seeds")
    for metric in METRICS:
        row = paired(runs, metric)
        lo, hi = row["interval"]
        print(
            f"{metric:<6} {row['gbm']:7.4f} {row['lr']:7.4f} {row['difference']:+9.4f}  "
            f"[{lo:+.4f}, {hi:+.4f}]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
