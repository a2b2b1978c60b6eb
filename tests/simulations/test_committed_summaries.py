"""Committed sweep summaries show no interval outside its metric's range.

Every ``docs/results/*/summary.md`` written by ``python -m simulations.sweeps.report`` (its
first line is ``# Sweep summary: ...``) is read table by table; each ``mean [lo, hi]`` cell
is checked against the range of the metric its column (or, failing that, its section) names, from
:data:`fl_credit.credit.plotting.METRIC_RANGES`. A Student-t interval over a few seeds gave
AUC [0.382, 1.116] and recall [-0.407, 1.313] in the past.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fl_credit.credit.plotting import METRIC_RANGES

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
SWEEP_TITLE = "# Sweep summary:"
INTERVAL = re.compile(r"(-?\d+(?:\.\d+)?) \[(-?\d+(?:\.\d+)?), (-?\d+(?:\.\d+)?)\]")
SPENT = ("ε spent", "epsilon spent", "wall", "engine")
"""Columns of non-negative quantities without an upper bound."""


def sweep_summaries() -> list[Path]:
    """Every committed summary written by the sweep report."""
    return [
        path
        for path in sorted(RESULTS.glob("*/summary.md"))
        if path.read_text(encoding="utf-8").startswith(SWEEP_TITLE)
    ]


def bounds_of(text: str) -> tuple[float, float] | None:
    """The range of the metric ``text`` (a column header or section title) names."""
    lowered = text.lower()
    if any(word in lowered for word in SPENT):
        return (0.0, float("inf"))
    for metric, bounds in METRIC_RANGES.items():
        if re.search(rf"\b{metric}\b", lowered):
            return bounds
    return None


def out_of_range(path: Path) -> list[str]:
    """``"section / column: cell"`` for every interval outside its metric's range."""
    bad, section, header = [], "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            section, header = line.lstrip("# "), []
            continue
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        for column, cell in zip(header, cells, strict=False):
            bounds = bounds_of(column) or bounds_of(section)
            for match in INTERVAL.finditer(cell):
                low, high = float(match.group(2)), float(match.group(3))
                if bounds and not bounds[0] <= low <= high <= bounds[1]:
                    bad.append(f"{section} / {column}: {match.group(0)}")
    return bad


def test_there_are_committed_sweep_summaries() -> None:
    names = {path.parent.name for path in sweep_summaries()}
    assert {"distribution_sweep", "dp_on_off", "default_seeds"} <= names


@pytest.mark.parametrize("path", sweep_summaries(), ids=lambda path: path.parent.name)
def test_committed_summary_intervals_stay_in_range(path: Path) -> None:
    bad = out_of_range(path)
    assert not bad, f"{path.relative_to(RESULTS.parent.parent)}: " + "; ".join(bad[:5])


def test_the_check_finds_an_impossible_interval(tmp_path: Path) -> None:
    page = tmp_path / "summary.md"
    page.write_text(
        f"{SWEEP_TITLE} s\n\n## AUC\n\n| x | federated |\n| --- | --- |\n"
        "| 1 | 0.749 [0.382, 1.116] |\n\n## Runs\n\n| x | ε spent (max) |\n| --- | --- |\n"
        "| 1 | 2.00 [1.99, 2.01] |\n",
        encoding="utf-8",
    )
    assert out_of_range(page) == ["AUC / federated: 0.749 [0.382, 1.116]"]
