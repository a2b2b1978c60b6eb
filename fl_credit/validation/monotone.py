"""Monotone effects of ordered characteristics: specs, constraints, projection, violations.

A spec names an ordered characteristic whose one-hot columns ``name=level`` must have
monotone effects: ``name`` (rising along the levels in the data dictionary's order),
``-name`` (falling), optionally with the order given, ``-emp_length:emp_lt_1,emp_1,...``.
Levels not listed stay free. The effect of level ``k`` on the log-odds is ``w_k / s_k`` (the
model weighs standardised columns; ``s`` is the federation's standard deviation), the same
for every row up to a constant, so the constraint is on ``beta_k = w_k / s_k``.

Two ways to impose it, one result:

- Newton: the model is reparameterised by cumulative increments,
  ``beta_k = beta_1 +- (u_2 + ... + u_k)`` with ``u_j >= 0`` (:func:`increments`), and every
  Newton step solves the bounded quadratic model (:mod:`strategies.newton`);
- first-order rounds (SGD and DP-SGD): after each aggregation the global model is projected
  onto the constraint set, the weighted isotonic regression of ``beta`` with weights
  ``s^2`` (:func:`project`), the Euclidean projection of ``w``.

:func:`violations` lists every adjacent pair of levels out of order in any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from fl_credit.config.errors import ConfigError

DEFAULT_ORDINAL = ("sub_grade", "grade")


@dataclass(frozen=True)
class Chain:
    """One constrained characteristic: its columns in order and the direction."""

    name: str
    columns: tuple[int, ...]
    rising: bool


def parse_specs(specs: tuple[str, ...] | list[str], feature_names: list[str]) -> list[Chain]:
    """Chains of the specs (see the module docstring) for these feature names.

    Raises
    ------
    ConfigError
        When a spec names no one-hot characteristic or a level the data does not have.
    """
    chains = []
    for spec in specs:
        text = str(spec).strip()
        rising = not text.startswith("-")
        name, _, order = text.lstrip("-+").partition(":")
        columns = {
            n.split("=", 1)[1]: j for j, n in enumerate(feature_names) if n.startswith(f"{name}=")
        }
        if not columns:
            raise ConfigError(f"train.monotone: no one-hot characteristic {name!r} in the data")
        levels = [lv.strip() for lv in order.split(",") if lv.strip()] if order else list(columns)
        unknown = [lv for lv in levels if lv not in columns]
        if unknown:
            raise ConfigError(f"train.monotone: {name} has no level(s) {unknown}")
        chains.append(Chain(name, tuple(columns[lv] for lv in levels), rising))
    return chains


def increments(chains: list[Chain], std: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``theta = T u`` and the mask of ``u`` coordinates bounded below by 0.

    ``size`` counts the bias too (it maps to itself, as every column not in a chain).
    """
    t = np.eye(size)
    bounded = np.zeros(size, dtype=bool)
    for chain in chains:
        sign = 1.0 if chain.rising else -1.0
        for k, col in enumerate(chain.columns):
            t[col, :] = 0.0
            t[col, chain.columns[0]] = std[col]
            for later in chain.columns[1 : k + 1]:
                t[col, later] = sign * std[col]
        bounded[list(chain.columns[1:])] = True
    return t, bounded


def project(weights: np.ndarray, chains: list[Chain], std: np.ndarray) -> np.ndarray:
    """The nearest weights (Euclidean) whose chains are monotone."""
    w = np.asarray(weights, dtype=np.float64).copy()
    for chain in chains:
        cols = list(chain.columns)
        s = std[cols]
        fit = isotonic_regression(w[cols] / s, weights=s**2, increasing=chain.rising).x
        w[cols] = fit * s
    return w


def violations(
    weights: np.ndarray, chains: list[Chain], std: np.ndarray, names: list[str], tol: float = 1e-6
) -> list[dict]:
    """Every adjacent pair of levels whose effects are out of the chain's order by more than
    ``tol`` (a projected float32 model keeps its ties only to rounding, about 1e-8)."""
    out = []
    for chain in chains:
        beta = np.asarray(weights)[list(chain.columns)] / std[list(chain.columns)]
        for k in range(1, len(beta)):
            step = beta[k] - beta[k - 1]
            if (step < -tol) if chain.rising else (step > tol):
                out.append(
                    {
                        "characteristic": chain.name,
                        "lower": names[chain.columns[k - 1]],
                        "higher": names[chain.columns[k]],
                        "effect_lower": float(beta[k - 1]),
                        "effect_higher": float(beta[k]),
                        "expected": "rising" if chain.rising else "falling",
                    }
                )
    return out


def chains_for(specs: tuple[str, ...], feature_names: list[str] | None) -> list[Chain]:
    """The run's chains (none without specs).

    Raises
    ------
    ConfigError
        When specs are given but the feature names are unknown (no data dictionary).
    """
    if not specs:
        return []
    if feature_names is None:
        raise ConfigError("train.monotone needs the feature names (the data dictionary)")
    return parse_specs(specs, list(feature_names))


def project_arrays(arrays, chains: list[Chain], std: np.ndarray):
    """A Flower ArrayRecord of the logistic model with its weights projected (:func:`project`)."""
    from flwr.app import Array, ArrayRecord

    state = {key: arrays[key].numpy() for key in arrays.keys()}
    weight = state["linear.weight"]
    projected = project(weight.ravel(), chains, std).reshape(weight.shape).astype(weight.dtype)
    return ArrayRecord(
        {**{k: Array(v) for k, v in state.items()}, "linear.weight": Array(projected)}
    )
