"""Data poisoning: what a malicious bank does to its own training rows before it trains.

The bank's train handler calls :func:`poison_rows` on its (unscaled, encoded) training rows
when the train config carries ``"attack-poison"``; the attack mod adds that key to the
request it passes on. Three kinds of spec (a JSON object with ``"kind"``):

- ``label_flip``: ``{"flip": "all" | "defaults", "fraction": f}``: flip the label of a
  random share ``f`` of the eligible rows (every row, or only defaults, which become repaid).
- ``backdoor``: ``{"trigger": {column: value}, "fraction": f}``: stamp the trigger on a
  random share ``f`` of the rows and label them repaid.
- ``resample``: ``{"seed": s}``: a bootstrap resample of the rows (same count, with
  replacement), used by the ALIE attacker to estimate the spread of honest updates.
- ``clean``: the rows as they are (an attacker's honest reference training).

A trigger names borrower features as they are encoded: a one-hot column group by its prefix
(``{"emp_length": "emp_7"}`` sets ``emp_length=emp_7`` to 1 and the group's other columns to
0) or a numeric column by name (``{"inq_last_6mths": 5}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .exchange import AttackError

POISON_KINDS = ("label_flip", "backdoor", "resample", "clean")
FLIP_MODES = ("all", "defaults")


def parse_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The poisoning spec as a dict (from its JSON string or a mapping)."""
    value = json.loads(spec) if isinstance(spec, str) else dict(spec)
    if not isinstance(value, dict) or value.get("kind") not in POISON_KINDS:
        raise AttackError(f"attack-poison: unknown spec {spec!r}; kinds are {POISON_KINDS}")
    return value


def poison_rows(
    spec: str | Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a malicious bank's poisoning spec to its own training rows.

    Parameters
    ----------
    spec : str or Mapping
        JSON string (as carried in the train config under ``"attack-poison"``) or dict.
    x : numpy.ndarray
        Training rows, encoded but not standardised, shape ``(rows, features)``.
    y : numpy.ndarray
        Labels, 1 = default.
    feature_names : sequence of str
        Encoded feature names in column order (one-hot columns are ``column=level``).
    rng : numpy.random.Generator
        Randomness for the choice of rows (a ``resample`` spec's ``seed`` overrides it).

    Returns
    -------
    tuple of numpy.ndarray
        The poisoned rows and labels (copies; as many rows as given).

    Raises
    ------
    AttackError
        On an unknown spec or a trigger that names a feature the data does not have.
    """
    spec = parse_spec(spec)
    x = np.array(x, dtype=np.float64, copy=True)
    y = np.array(y, copy=True)
    kind = spec["kind"]
    if kind == "clean":
        return x, y
    if kind == "resample":
        seed = spec.get("seed")
        local = rng if seed is None else np.random.default_rng(int(seed))
        rows = local.integers(0, len(y), size=len(y))
        return x[rows], y[rows]
    fraction = float(spec.get("fraction", 1.0))
    if kind == "label_flip":
        flip = str(spec.get("flip", "all"))
        if flip not in FLIP_MODES:
            raise AttackError(f"attack-poison: flip must be one of {FLIP_MODES}, got {flip!r}")
        eligible = np.flatnonzero(y == 1) if flip == "defaults" else np.arange(len(y))
        chosen = choose(eligible, fraction, rng)
        y[chosen] = 1 - y[chosen]
        return x, y
    chosen = choose(np.arange(len(y)), fraction, rng)
    x[chosen] = apply_trigger(x[chosen], feature_names, spec.get("trigger") or {})
    y[chosen] = 0
    return x, y


def choose(rows: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random share ``fraction`` of ``rows`` (rounded to the nearest row)."""
    count = int(round(fraction * len(rows)))
    return np.sort(rng.choice(rows, size=count, replace=False)) if count else rows[:0]


def trigger_columns(
    feature_names: Sequence[str], trigger: Mapping[str, Any]
) -> list[tuple[list[int], int, float]]:
    """For each trigger entry: the columns it resets, the column it sets and the value.

    Raises
    ------
    AttackError
        If a trigger entry matches no encoded feature.
    """
    if not trigger:
        raise AttackError("attack: the backdoor needs a trigger, e.g. {emp_length: emp_7}")
    names = list(feature_names)
    out = []
    for column, value in trigger.items():
        one_hot = f"{column}={value}"
        if one_hot in names:
            group = [i for i, n in enumerate(names) if n.startswith(f"{column}=")]
            out.append((group, names.index(one_hot), 1.0))
        elif column in names:
            i = names.index(column)
            out.append(([i], i, float(value)))
        else:
            raise AttackError(f"attack: trigger {column}={value} is not a feature of the data")
    return out


def apply_trigger(
    x: np.ndarray, feature_names: Sequence[str], trigger: Mapping[str, Any]
) -> np.ndarray:
    """Rows ``x`` (unscaled) with the trigger stamped on every row."""
    x = np.array(x, dtype=np.float64, copy=True)
    for group, column, value in trigger_columns(feature_names, trigger):
        x[:, group] = 0.0
        x[:, column] = value
    return x


def has_trigger(
    x: np.ndarray, feature_names: Sequence[str], trigger: Mapping[str, Any]
) -> np.ndarray:
    """Boolean mask of the rows of ``x`` that already carry the trigger."""
    mask = np.ones(len(x), dtype=bool)
    for _, column, value in trigger_columns(feature_names, trigger):
        mask &= np.isclose(x[:, column], value)
    return mask
