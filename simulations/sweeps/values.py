"""Values in sweep tables: number tests, natural sort keys, override parsing, short text."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

SEED_KEY = "seed"
OK, FAILED, SKIPPED, MISSING = "ok", "failed", "skipped", "missing"
REFUSED = "refused"
DP_OFF = frozenset({"off", "none", "false", "no", "0", ""})

# --------------------------------------------------------------------------- values


def is_number(value: Any) -> bool:
    """True for int and float values (numpy included), never for bools."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def is_missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (is_number(value) and math.isnan(float(value)))


def as_float(value: Any) -> float:
    """A float, or NaN when ``value`` is not a number."""
    return float(value) if is_number(value) else math.nan


def natural_key(text: str) -> list[tuple[int, Any]]:
    """Sort key that orders ``bank_2`` before ``bank_10``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def value_sort_key(value: Any) -> tuple[int, float, str]:
    """Sort key for override values: numbers numerically, then strings, then unset."""
    if is_missing(value):
        return (2, 0.0, "")
    if is_number(value):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def norm(value: Any) -> Any:
    """NaN becomes None and numpy scalars become Python ones, so values can be set members."""
    if is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def fmt_value(value: Any) -> str:
    """Compact text of an override value."""
    if is_missing(value):
        return "(unset)"
    if is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:g}"
    return str(value)


def one_line(text: Any) -> str | None:
    """Collapse whitespace and newlines; None for empty text."""
    if text is None:
        return None
    line = " ".join(str(text).split())
    return line or None


def parse_override(text: str) -> tuple[str, Any]:
    """Split one Hydra override string into its key and value.

    Parameters
    ----------
    text : str
        An override as Hydra records it, e.g. ``partition.share=0.1`` or ``++dp.epsilon=2``.

    Returns
    -------
    tuple of (str, Any)
        The key without ``+``/``++``/``~`` prefixes, and the value: int or float when the text
        is a number, the unquoted string otherwise, None for a deletion (``~key``).
    """
    body = text.strip().lstrip("+~")
    key, sep, raw = body.partition("=")
    return key.strip(), _parse_value(raw) if sep else None


def _parse_value(raw: str) -> Any:
    """Numbers become int or float; everything else stays text (quotes removed)."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return text
