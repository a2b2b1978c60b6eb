"""The credit files a finished run adds to its folder: scores, reason codes, schema, report.

:func:`write_run_outputs` is called once at the end of a run, after ``metrics.json``:

- ``scores.csv``: every model's test-set scores and the label (:mod:`fl_credit.credit.scores_file`);
- ``reason_codes.csv``: for each test borrower, the federated model's score and its top
  reasons towards default (:mod:`fl_credit.credit.reason_codes`);
- ``schema.json``: the feature dictionary (numeric columns, one-hot categories), which the
  scorecard needs besides ``model.pt``;
- ``report.md`` and its PNGs (:mod:`fl_credit.run.report`). A report that cannot be drawn is
  logged as one warning and never fails the finished run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fl_credit.config.errors import one_line
from fl_credit.coordinator.federation import FederationResult
from fl_credit.credit.outputs import REASONS, reason_codes
from fl_credit.credit.scores_file import SCORES, write_scores
from fl_credit.data.prepare import Prepared
from fl_credit.run.files import write_atomic

log = logging.getLogger(__name__)

REASON_CODES = "reason_codes.csv"
SCHEMA = "schema.json"


def reason_code_table(prepared: Prepared, fed: FederationResult, scores) -> pd.DataFrame:
    """One row per test borrower: score, then ``reason_<i>`` and ``contribution_<i>``."""
    reasons, _ = reason_codes(prepared.x_test, fed.arrays, fed.scaler, prepared.feature_names)
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
    run_dir = Path(run_dir)
    written = [write_scores(run_dir / SCORES, prepared.y_test, outcome.scores)]
    table = reason_code_table(prepared, outcome.federation, outcome.scores["federated"])
    written.append(write_atomic(run_dir / REASON_CODES, table.to_csv(index=False)))
    prepared.schema.to_json(run_dir / SCHEMA)
    written.append(run_dir / SCHEMA)
    try:
        from fl_credit.run.report import write_run_report

        written += write_run_report(run_dir)
    except Exception as err:  # noqa: BLE001 - a report must never fail a finished run
        log.warning("run report not written: %s", one_line(err))
    return written
