"""The end-of-run table: a DP run's scikit-learn reference row says it is not DP."""

from __future__ import annotations

from fl_credit.run.console import comparison_table
from tests.simulations.sweeps.test_report import _metrics


def reference_row(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("sklearn reference"))


def test_dp_run_marks_the_reference_as_not_dp() -> None:
    table = comparison_table(_metrics(0.25, 0, dp="opacus", epsilon=2.0))
    assert "not DP" in reference_row(table)
    assert sum("not DP" in line for line in table.splitlines()) == 1
    widths = {line.index("0.") for line in table.splitlines()[2:] if "0." in line}
    assert len(widths) == 1  # the wider label keeps every AUC in one column


def test_non_dp_run_has_no_dp_note() -> None:
    table = comparison_table(_metrics(0.25, 0))
    assert "DP" not in table
    assert reference_row(table).startswith("sklearn reference (pooled) ")


def test_dp_run_labels_what_each_row_spends() -> None:
    """The federated row is the release at the run's epsilon; every other row is a
    counterfactual that DP does not cover (it lives in not_private/)."""
    table = comparison_table(_metrics(0.25, 0, dp="opacus", epsilon=2.0))
    rows = table.splitlines()[2:]
    assert rows[0].startswith("federated (released, epsilon 2 per bank)")
    counterfactual = [r for r in rows if r.startswith(("centralized", "bank_"))]
    assert counterfactual and all("not private" in r for r in counterfactual)
    assert "recall" in table.splitlines()[0] and "ECE" in table.splitlines()[0]
