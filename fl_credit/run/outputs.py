"""The credit files a finished run adds to its folder: scores, reason codes, schema, report.

:func:`write_run_outputs` is called once at the end of a run, after ``metrics.json``:

- ``scores.csv``: every model's test-set scores and the label (:mod:`fl_credit.credit.scores_file`);
- ``reason_codes.csv``: for each test borrower, the federated model's score and its top
  reasons towards default (:mod:`fl_credit.credit.reason_codes`);
- ``schema.json``: the feature dictionary (numeric columns, one-hot categories), which the
  scorecard needs besides ``model.pt``;
- ``report.md`` and its PNGs (:mod:`fl_credit.run.report`). A report that cannot be drawn is
  logged as one warning and never fails the finished run;
- ``validation_counts.json``, ``validation.md``, ``validation.json`` and their PNGs
  (:mod:`fl_credit.validation`) when the run summed the validation counts.

A deployed run writes the same files through :func:`write_credit_files`: scores, reason codes
and figures only when the coordinator holds test rows (``test-path``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.config.errors import one_line
from fl_credit.coordinator.federation import FederationResult
from fl_credit.credit.outputs import REASONS, reason_codes
from fl_credit.credit.scores_file import SCORES, write_scores
from fl_credit.data.prepare import Prepared
from fl_credit.data.schema import FeatureSchema
from fl_credit.run.files import write_atomic

log = logging.getLogger(__name__)

REASON_CODES = "reason_codes.csv"
SCHEMA = "schema.json"


def reason_code_table(
    x_test: np.ndarray, feature_names: list[str], fed: FederationResult, scores
) -> pd.DataFrame:
    """One row per test borrower: score, then ``reason_<i>`` and ``contribution_<i>``."""
    from fl_credit.boosting.tree import TreeEnsemble, is_ensemble

    if is_ensemble(fed.arrays):  # model=gbm: per-tree path contributions
        from fl_credit.boosting.explain import reason_codes as tree_reasons

        ensemble = TreeEnsemble.from_arrays(fed.arrays)
        reasons = tree_reasons(x_test, ensemble, feature_names)
    else:
        reasons, _ = reason_codes(x_test, fed.arrays, fed.scaler, feature_names)
    table = {"row": range(len(scores)), "federated": scores}
    for i in range(REASONS):
        table[f"reason_{i + 1}"] = [r[i][0] if len(r) > i else "" for r in reasons]
        table[f"contribution_{i + 1}"] = [r[i][1] if len(r) > i else None for r in reasons]
    return pd.DataFrame(table)


def write_run_outputs(run_dir: Path, outcome, prepared: Prepared) -> list[Path]:
    """Write the run's credit files (see the module docstring) into ``run_dir``.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (``metrics.json`` already written).
    outcome : fl_credit.run.experiment.ExperimentOutcome
        The finished experiment (its ``scores`` and ``federation``).
    prepared : Prepared
        The run's data (test rows, feature schema).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    return write_credit_files(
        run_dir,
        outcome.federation,
        prepared.schema,
        prepared.x_test,
        prepared.y_test,
        outcome.scores,
    )


def write_credit_files(
    run_dir: Path,
    fed: FederationResult,
    schema: FeatureSchema,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    scores: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """The credit files of a simulated or deployed run (see the module docstring).

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (``metrics.json`` already written).
    fed : FederationResult
        The federated model.
    schema : FeatureSchema
        The consortium's data dictionary.
    x_test, y_test : numpy.ndarray, optional
        Unscaled test rows and labels; without them (a deployed coordinator holding no rows)
        there are no scores, reason codes nor figures, and the report says so.
    scores : dict, optional
        Each model's test scores; the federated model's alone when omitted.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    run_dir = Path(run_dir)
    written = []
    if x_test is not None and y_test is not None:
        from fl_credit.coordinator.federation import federated_test_scores

        scores = scores or {"federated": federated_test_scores(fed, x_test)}
        written.append(write_scores(run_dir / SCORES, y_test, scores))
        table = reason_code_table(x_test, schema.feature_names, fed, scores["federated"])
        written.append(write_atomic(run_dir / REASON_CODES, table.to_csv(index=False)))
    schema.to_json(run_dir / SCHEMA)
    written.append(run_dir / SCHEMA)
    written += write_validation_files(run_dir, fed.validation)
    try:
        from fl_credit.run.report import write_run_report

        written += write_run_report(run_dir)  # includes the validation summary
    except Exception as err:  # noqa: BLE001 - a report must never fail a finished run
        log.warning("run report not written: %s", one_line(err))
    return written


def write_validation_files(run_dir: Path, counts: dict) -> list[Path]:
    """``validation_counts.json`` (the summed counts) and ``validation.md`` with its figures;
    nothing when the run made no validation query. A report that cannot be drawn is logged
    as one warning and never fails the finished run."""
    if not counts:
        return []
    import json

    from fl_credit.validation.query import COUNTS_FILE

    written = [write_atomic(run_dir / COUNTS_FILE, json.dumps(counts))]
    try:
        from fl_credit.validation.report import write_validation_report

        written += write_validation_report(run_dir)
    except Exception as err:  # noqa: BLE001 - a report must never fail a finished run
        log.warning("validation report not written: %s", one_line(err))
    return written
