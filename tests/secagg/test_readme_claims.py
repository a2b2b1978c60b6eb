"""The README's protection claims are the security argument's, word for word."""

from __future__ import annotations

import re
from pathlib import Path

import strategies.secagg

ROOT = Path(__file__).resolve().parents[2]


def _bullets(text: str) -> list[str]:
    """Markdown or reST bullets with their continuation lines joined and code marks unified."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif items and line.startswith(" ") and line.strip():
            items[-1] += " " + line.strip()
    return [re.sub(r"\s+", " ", item.replace("``", "`")).strip() for item in items]


def test_readme_protection_claims_match_the_security_argument() -> None:
    doc = strategies.secagg.__doc__ or ""
    limits = doc.split("Threat model and limits\n-----------------------\n", 1)[1]
    limits = limits.split("\nCost\n----", 1)[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What protects the banks", 1)[1].split("\n## ", 1)[0]
    assert _bullets(section) == _bullets(limits)
