"""Entry point: ``python -m fl_credit.simulate [-v] [hydra overrides] [-m]``.

Runs one experiment (or, with ``-m``, one per sweep point) and writes into the run folder:
``config_resolved.yaml``, ``status.json``, ``metrics.json``, ``history.csv``, ``model.pt``
and ``flower.log`` (Flower's own log; ``-v`` or ``hydra.verbose=true`` also prints it).

Bad input, including the errors Hydra raises before a run starts (a misspelt key, an unknown
option, an override it cannot parse, a run folder it cannot create), ends with one line
``error: ...`` and exit code 2; in a multirun a failing point is recorded in its
``status.json`` and the sweep goes on.

Resuming: a folder that already holds finished results is skipped when they were produced by
the same resolved configuration (``config_hash`` in ``status.json``), so an interrupted sweep
can be rerun. Results of another configuration are never overwritten nor reported under the
new one's labels: the run is refused with one line (in a sweep, that point only), and Hydra's
``.hydra`` files are put back to describe the results the folder holds.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fl_credit.config import store
from fl_credit.config.compose import resolve, to_yaml
from fl_credit.config.errors import FlCreditError, TrainingFailedError, is_user_error, one_line
from fl_credit.config.parsing import from_dict
from fl_credit.run import files as run_files
from fl_credit.run.console import comparison_table, dropped_columns
from fl_credit.runtime import fast_exit, run_log
from fl_credit.runtime.threads import single_threaded_math

CONF = str(Path(__file__).resolve().parents[2] / "conf")
store.register()  # the nodes made from the registries, before Hydra composes

log = logging.getLogger("fl_credit")

VERBOSE_FLAGS = ("-v", "--verbose")
INTERRUPTED = (
    "interrupted: finished points are kept, the stopped one left no results; "
    "rerun the same command to resume"
)
_cli = {"verbose": False, "refused": 0}


def run_in_folder(
    raw: dict[str, Any], run_dir: Path, overrides: list[str], digest: str | None = None
) -> dict:
    """Run the experiment of the resolved config ``raw`` and write its files into ``run_dir``."""
    started = time.perf_counter()
    run_files.write_atomic(run_dir / run_files.RESOLVED_CONFIG, to_yaml(raw))
    experiment = from_dict(raw)
    from fl_credit.data.prepare import prepare

    prepared = prepare(experiment)  # data problems surface before the engine starts
    from fl_credit.run.experiment import run_experiment
    from fl_credit.run.private_release import write_release

    outcome = run_experiment(experiment, prepared, run_dir)
    with run_files.staging(run_dir) as stage:  # results appear together, or not at all
        # model.pt, history, metrics.json, scores.csv, reason codes, report.md (+ not_private/)
        metrics = write_release(stage, outcome, prepared, overrides)
        if not outcome.federation.failure:
            run_files.write_status(
                stage,
                error=None,
                wall_seconds=time.perf_counter() - started,
                overrides=overrides,
                engine_seconds=outcome.metrics["timing"]["engine_start_stop_s"],
                config_hash=digest,
            )
        run_files.publish(stage, run_dir)
    if outcome.federation.failure:
        print_results(metrics, run_dir)
        raise TrainingFailedError(outcome.federation.failure)
    return metrics


def _fail(line: str, multirun: bool) -> None:
    """Print one error line; end the process with exit code 2 unless in a sweep."""
    print(f"error: {line}", file=sys.stderr)
    if not multirun:
        raise SystemExit(2)


# An absolute path: this module is imported by the ``python -m fl_credit.simulate`` command.
@hydra.main(config_path=CONF, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra task: one experiment per call."""
    single_threaded_math()  # the same numbers with any launcher (fl_credit/runtime/threads.py)
    # Flower logs through its own handlers; propagating would print every line twice.
    logging.getLogger("flwr").propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Flower's state store, chatty at INFO
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    folder_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    raw: dict[str, Any] | None = None
    problem: FlCreditError | None = None
    try:
        raw = resolve(cfg)
    except FlCreditError as err:
        problem = err
    check = run_files.resume_check(run_dir, raw)
    if check.action == "skip":
        run_files.restore_hydra_files(run_dir)  # e.g. other engine settings: same results
        run_files.record_call(run_dir, "skipped")
        log.info("already finished with this configuration, skipping: %s", run_dir)
        return
    if check.action == "refuse":
        run_files.restore_hydra_files(run_dir)
        line = one_line(problem) if problem is not None else check.reason
        run_files.record_call(run_dir, "refused", line)
        _cli["refused"] += 1
        _fail(f"{line}; choose another {folder_key} (or delete the folder)", multirun)
        return
    run_files.keep_hydra_files(run_dir)
    run_files.record_call(run_dir, "ran")
    digest = None if raw is None else run_files.config_hash(raw)
    verbose = _cli["verbose"] or bool(hydra_cfg.verbose)
    started = time.perf_counter()
    try:
        if problem is not None:
            raise problem
        with run_log.flower_to_file(run_dir, verbose=verbose):
            metrics = run_in_folder(raw, run_dir, overrides, digest)
    except Exception as err:  # noqa: BLE001 - every failure becomes one recorded line
        line = one_line(err)
        run_files.write_status(
            run_dir,
            error=line,
            wall_seconds=time.perf_counter() - started,
            overrides=overrides,
            config_hash=digest,
        )
        if not is_user_error(err):
            run_files.write_atomic(run_dir / "error.log", traceback.format_exc())
        _fail(line, multirun)
        return
    print_results(metrics, run_dir)


def print_results(metrics: dict, run_dir: Path) -> None:
    """The end-of-run report on the terminal: dropped columns, the comparison table."""
    print()
    print(dropped_columns(metrics["dropped_columns"]))
    print()
    print(comparison_table(metrics))
    print(f"\nrun folder: {run_dir} (Flower's log: {run_log.FLOWER_LOG})")


def _overrides(args: list[str]) -> list[str]:
    return [a for a in args if "=" in a and not a.startswith("-")]


def cli(argv: list[str] | None = None) -> None:
    """Run :func:`main` with ``-v`` handled and Hydra's errors turned into one line, exit 2.

    A sweep in which a point was refused (its folder holds another configuration's results)
    also ends with exit code 2, after the other points ran. With ``HYDRA_FULL_ERROR`` set by
    the user, Hydra's own full error output is kept.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _cli["verbose"] = any(a in VERBOSE_FLAGS for a in args)
    args = [a for a in args if a not in VERBOSE_FLAGS]
    sys.argv = [sys.argv[0], *args]
    if os.environ.get("HYDRA_FULL_ERROR"):
        main()
    else:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing a trace
        try:
            main()
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            raise SystemExit(fast_exit.INTERRUPTED) from None
        except Exception as err:  # noqa: BLE001 - raised by Hydra before (or around) the task
            from fl_credit.config.cli_errors import explain
            from fl_credit.config.compose import conf_dir

            print(f"error: {explain(err, _overrides(args), conf_dir())}", file=sys.stderr)
            raise SystemExit(2) from None
    if _cli["refused"]:
        raise SystemExit(2)


if __name__ == "__main__":
    from fl_credit.runtime.fast_exit import without_teardown

    with without_teardown():  # skips the interpreter teardown (torch, Flower)
        cli()
