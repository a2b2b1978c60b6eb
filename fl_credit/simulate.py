"""Entry point: ``python -m fl_credit.simulate [hydra overrides] [-m]``.

Runs one experiment (or, with ``-m``, one per sweep point) and writes into the run folder:
``config_resolved.yaml``, ``status.json``, ``metrics.json``, ``history.csv`` and ``model.pt``.
Bad input ends the run with one line naming the problem and exit code 2; in a multirun the
failure is recorded in that point's ``status.json`` and the sweep goes on. A sweep point
whose folder already holds a finished run is skipped, so an interrupted sweep can be rerun.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from fl_credit import run_files
from fl_credit.config import from_dict
from fl_credit.console import comparison_table, dropped_columns
from fl_credit.errors import FlCreditError, one_line

log = logging.getLogger("fl_credit")


def run_in_folder(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict:
    """Run the experiment described by ``cfg`` and write its files into ``run_dir``."""
    started = time.perf_counter()
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    run_files.write_atomic(run_dir / run_files.RESOLVED_CONFIG, resolved)
    experiment = from_dict(OmegaConf.to_container(cfg, resolve=True))
    from fl_credit.data.prepare import prepare

    prepared = prepare(experiment)  # data problems surface before the engine starts
    from fl_credit.experiment import run_experiment, save_model

    outcome = run_experiment(experiment, prepared)
    run_files.write_history(run_dir / run_files.HISTORY, outcome.history)
    save_model(run_dir / run_files.MODEL, outcome.federation)
    metrics = {**outcome.metrics, "overrides": overrides}
    run_files.write_json(run_dir / run_files.METRICS, metrics)
    run_files.write_status(
        run_dir,
        error=None,
        wall_seconds=time.perf_counter() - started,
        overrides=overrides,
        engine_seconds=outcome.metrics["timing"]["engine_start_stop_s"],
    )
    return metrics


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra task: one experiment per call."""
    # Flower logs through its own console handler; propagating would print every line twice.
    logging.getLogger("flwr").propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Flower's state store, chatty at INFO
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if run_files.finished(run_dir):
        log.info("already finished, skipping: %s", run_dir)
        return
    started = time.perf_counter()
    try:
        metrics = run_in_folder(cfg, run_dir, overrides)
    except Exception as err:  # noqa: BLE001 - every failure becomes one recorded line
        line = one_line(err)
        run_files.write_status(
            run_dir, error=line, wall_seconds=time.perf_counter() - started, overrides=overrides
        )
        if not isinstance(err, FlCreditError):
            run_files.write_atomic(run_dir / "error.log", traceback.format_exc())
        print(f"error: {line}", file=sys.stderr)
        if multirun:
            return
        raise SystemExit(2) from None
    print()
    print(dropped_columns(metrics["dropped_columns"]))
    print()
    print(comparison_table(metrics))
    print(f"\nrun folder: {run_dir}")


if __name__ == "__main__":
    from fl_credit.fast_exit import without_teardown

    with without_teardown():  # skips about 1 s of interpreter teardown (torch, Flower)
        main()
