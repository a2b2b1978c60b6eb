"""Free-rider detection from what the coordinator legitimately sees: each bank's update.

A free rider sends the global model back (a zero update), a stale update (the previous
round's global change replayed) or, disguised, the global model plus noise (Fraboni et al.
2021). From the per-bank updates of a run the coordinator computes, per bank,

- ``zero_or_stale_rounds``: rounds in which its update was zero or a replay of the last
  global change;
- ``response``: how its update answers the move of the global model. An honest bank trains
  from the global model towards its own data's optimum, so its update is roughly
  ``A (w_bank - w_global)`` with ``A`` positive definite: when the global model moves by
  ``dw`` between two rounds, the update changes by about ``-A dw``, and the cosine of the
  change of its update with ``-dw`` is positive (0.34 or more on the loans, under FedAvg, the
  median and Krum). Noise drawn afresh, or a fixed vector rescaled, does not answer the move
  (cosine near 0). ``response`` is the smallest such cosine over the rounds: the rounds in
  which the rider's own noise was the global move (Krum may select it) answer it by
  construction, the others do not. It replaces the cosine of consecutive updates, which Krum
  breaks for honest banks by moving the global model between single banks' models;
- ``contribution``: a leave-one-out estimate in the first round, the bank's update projected
  on the mean update of the other banks, ``<u_i, g_-i> / ||g_-i||^2``: near 1 for a bank
  whose data pulls the untrained model where the others' does, near 0 for noise or nothing.
  (Later rounds are not used: near the federated optimum the banks' updates point to their
  own optima and cancel, so honest contributions scatter around 0.)

A bank is flagged when it was zero or stale in any round, or its response is below
``response_threshold``, or its first-round contribution below ``contribution_threshold``. It
needs two rounds for the response (with one, only the other two checks apply). It needs
each bank's update: under secure aggregation the coordinator sees only the sum and the
check is not available (a group sum under ``grouped_secagg`` mixes a free rider with honest
banks).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ZERO = 1e-12
RESPONSE_THRESHOLD = 0.25
CONTRIBUTION_THRESHOLD = 0.2


@dataclass(frozen=True)
class BankVerdict:
    """What the detector concluded about one bank over a run."""

    flagged: bool
    zero_or_stale_rounds: int
    response: float
    contribution: float


def round_contributions(updates: Mapping[Hashable, np.ndarray]) -> dict[Hashable, float]:
    """Leave-one-out contribution of each bank in one round (see module doc)."""
    keys = list(updates)
    stacked = np.stack([np.asarray(updates[k], dtype=np.float64).ravel() for k in keys])
    total = stacked.sum(axis=0)
    out = {}
    for i, key in enumerate(keys):
        others = (total - stacked[i]) / max(1, len(keys) - 1)
        size = float(others @ others)
        out[key] = float(stacked[i] @ others / size) if size > ZERO else 0.0
    return out


def is_zero_or_stale(update: np.ndarray, last_change: np.ndarray | None) -> bool:
    """Whether ``update`` is (numerically) zero or a replay of the last global change."""
    update = np.asarray(update, dtype=np.float64).ravel()
    scale = float(np.linalg.norm(update))
    if scale <= 1e-9:
        return True
    if last_change is None:
        return False
    return float(np.linalg.norm(update - np.ravel(last_change))) <= 1e-6 * scale


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    size = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.ravel(a) @ np.ravel(b) / size) if size > ZERO else 0.0


def response(updates: Sequence[np.ndarray], global_changes: Sequence[np.ndarray | None]) -> float:
    """Smallest cosine, over consecutive rounds, between the change of a bank's update and
    the opposite of the global model's move between them (see module doc); NaN when no
    round has a previous update and a known move."""
    cosines = [
        _cosine(np.ravel(now) - np.ravel(before), -np.ravel(move))
        for before, now, move in zip(updates[:-1], updates[1:], global_changes[1:], strict=True)
        if move is not None
    ]
    return min(cosines) if cosines else float("nan")


def detect_free_riders(
    rounds: Sequence[Mapping[Hashable, np.ndarray]],
    global_changes: Sequence[np.ndarray | None] | None = None,
    response_threshold: float = RESPONSE_THRESHOLD,
    contribution_threshold: float = CONTRIBUTION_THRESHOLD,
) -> dict[Hashable, BankVerdict]:
    """Flag free riders from every round's per-bank updates (see module doc).

    Parameters
    ----------
    rounds : sequence of mappings
        One mapping per round, in order: bank key -> its update (model sent minus the
        global model it received).
    global_changes : sequence, optional
        Per round, the change of the global model in the round before (None: unknown).
    response_threshold, contribution_threshold : float
        Flag a bank whose response or first-round contribution is below these.

    Returns
    -------
    dict
        Bank key -> :class:`BankVerdict` (banks seen in at least one round with another).
    """
    rounds = [r for r in rounds if len(r) >= 2]
    changes = list(global_changes) if global_changes is not None else [None] * len(rounds)
    first = round_contributions(rounds[0]) if rounds else {}
    verdicts = {}
    for key in {k for r in rounds for k in r}:
        mine = [(r[key], c) for r, c in zip(rounds, changes, strict=False) if key in r]
        stale = sum(is_zero_or_stale(u, c) for u, c in mine)
        answer = response([u for u, _ in mine], [c for _, c in mine])
        contribution = first.get(key, float("nan"))
        verdicts[key] = BankVerdict(
            flagged=bool(
                stale > 0 or answer < response_threshold or contribution < contribution_threshold
            ),
            zero_or_stale_rounds=int(stale),
            response=answer,
            contribution=float(contribution),
        )
    return verdicts
