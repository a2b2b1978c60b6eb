"""The README's headline results and the threat matrix's findings carry their intervals, and
each interval the README quotes is a committed one.

Every measured figure in the "Headline results" section (a number with two or more decimals)
must be an interval's end, a p-value, a threshold ("below 0.05", "within 0.02"), or followed
by its interval ``[lo, hi]``; and every
``x [lo, hi]`` quoted there must appear verbatim in a committed result or in the docs page
that derives it, so that the README cannot round a claim away from its evidence.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"−?\d+\.\d{2,}")
INTERVAL = re.compile(r"(−?\d+\.\d+) \[(−?\d+\.\d+), (−?\d+\.\d+)\]")


def section(path: str, heading: str, level: str = "## ") -> str:
    """The text under ``heading`` up to the next heading of its level, one line."""
    text = (ROOT / path).read_text(encoding="utf-8")
    start = text.index(heading)
    return re.sub(r"\s+", " ", text[start : text.index(f"\n{level}", start + 1)])


def headline_section() -> str:
    return section("README.md", "## Headline results")


def bare_figures(text: str) -> list[str]:
    """Figures that are neither followed by an interval, inside one, nor a p-value."""
    bare = []
    for match in FIGURE.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        inside = before.rfind("[") > before.rfind("]")
        p_value = re.search(r"\bp (?:[≤<] )?$", before) is not None
        threshold = re.search(r"(?:below|within|above|at least|at most|[≤≥<>]) $", before)
        if not (inside or p_value or threshold or after.startswith(" [")):
            bare.append(f"{match.group()} in '...{before[-40:]}{match.group()}'")
    return bare


def evidence() -> str:
    files = list((ROOT / "docs" / "results").rglob("*.md")) + list((ROOT / "docs").glob("*.md"))
    return re.sub(r"\s+", " ", " ".join(f.read_text(encoding="utf-8") for f in files))


def test_every_headline_figure_carries_its_interval():
    assert bare_figures(headline_section()) == []


def test_every_figure_of_the_threat_matrix_section_carries_its_interval():
    text = section("docs/threats.md", "### The matrix (10 seeds)", level="### ")
    assert "Which defence holds" in text and bare_figures(text) == []


def test_every_quoted_interval_is_a_committed_one():
    source = evidence().replace("-", "−")
    missing = [
        m.group()
        for m in INTERVAL.finditer(headline_section())
        if m.group().replace("-", "−") not in source
    ]
    assert missing == []


def test_a_figure_without_its_interval_is_caught():
    assert bare_figures("FedAvg loses 0.430 AUC, p 0.011") == ["0.430 in '...FedAvg loses 0.430'"]
    assert bare_figures("FedAvg loses 0.430 [0.377, 0.481] AUC, p ≤ 0.011") == []
    assert bare_figures("DnC keeps it below 0.05 (0.02 [0.00, 0.04])") == []
