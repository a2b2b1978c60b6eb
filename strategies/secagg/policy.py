"""What a bank refuses to reveal, whatever the cryptography would allow: differencing rules.

Secure aggregation hides each input inside a sum, but two sums of the same quantity over
participant sets that differ by one bank give that bank's input by subtraction. The rules
below are checked by each bank on its own view (bank names verified at key setup) and kept
in its state for the whole run, across key epochs (the ``run-`` keys survive re-keying):

- ``query`` instances (data statistics: moments, histograms, bins, federated evaluation)
  are *pinned*: a bank answers them only when the participants, and at unmask the
  survivors, are exactly the banks of its first such instance that it unmasked (pinned at
  the reveal: an instance never unmasked revealed nothing, so a first query that a bank
  spoiled by refusing can be retried without it). A server can therefore not
  obtain two statistics sums over different sets, nor claim a bank dropped in one.
- ``train`` and ``evaluate`` instances carry a global model: a bank reveals (answers the
  unmask of) an aggregate at a given model only once, or again with the very same survivor
  set. Recorded at the unmask, not at the request: a round skipped before its unmask (too
  few replies) revealed nothing and may be retried at the same model.

A server that sends *nearly* the same model twice is not stopped by the second rule; what
it learns then is bounded only by differential privacy (see the package docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from .keys import digest

PIN_KEY = "run-pin-query"
REVEALED_KEY = "run-revealed"
PINNED_KINDS = ("query",)
ONCE_PER_MODEL_KINDS = ("train", "evaluate")
_HALF = 16


class PolicyError(Exception):
    """The bank refuses: answering would allow differencing."""


def instance_kind(message_type: str) -> str:
    """Message category: ``"query.moments"`` -> ``"query"``, ``"train"`` -> ``"train"``."""
    return message_type.partition(".")[0]


def _names_digest(names: Sequence[str]) -> bytes:
    return digest(b"bank-set", *sorted(n.encode() for n in names))[:_HALF]


def _model_key(kind: str, model: bytes) -> bytes:
    return digest(b"model", kind.encode(), model)[:_HALF]


def _revealed_with(state: Mapping[str, Any], kind: str, model: bytes) -> bytes | None:
    key = _model_key(kind, model)
    for entry in state.get(REVEALED_KEY, []):
        if entry[:_HALF] == key:
            return entry[_HALF:]
    return None


def check(
    state: Mapping[str, Any],
    kind: str,
    model: bytes,
    names: Sequence[str],
    dropped: Sequence[str] = (),
    excused: Sequence[str] = (),
) -> None:
    """Raise :class:`PolicyError` if contributing to a sum over ``names`` could difference.

    Parameters
    ----------
    state : Mapping
        The bank's secagg state.
    kind : str
        Instance kind (message category); other kinds than ``query``, ``train`` and
        ``evaluate`` are not restricted.
    model : bytes
        Digest of the global model the request carries (train/evaluate), else ``b""``.
    names : Sequence[str]
        Bank names of the participants (at the request) or survivors (at the unmask).
    dropped : Sequence[str]
        At the unmask: the banks the server claims dropped.
    excused : Sequence[str]
        Banks proven to have dealt inconsistent shares (:func:`.blame.excused`): an
        aggregate at a model already revealed with ``names`` plus these banks may be
        revealed again without them (the failed sum showed nothing, or only their input).
    """
    if kind in PINNED_KINDS:
        pinned = state.get(PIN_KEY)
        if dropped:
            raise PolicyError(
                f"statistics are pinned to {pinned}; refusing to unmask with "
                f"{sorted(dropped)} claimed dropped"
            )
        if pinned and sorted(names) != list(pinned):
            raise PolicyError(
                f"statistics are pinned to {list(pinned)}; refusing a sum over {sorted(names)}"
            )
    elif kind in ONCE_PER_MODEL_KINDS and model:
        previous = _revealed_with(state, kind, model)
        allowed = {_names_digest(names)}
        if excused and not set(excused) & set(names):
            allowed.add(_names_digest([*names, *excused]))
        if previous is not None and previous not in allowed:
            raise PolicyError(
                f"already revealed a {kind} aggregate at this global model with other banks"
            )


def pin(state: MutableMapping[str, Any], kind: str, names: Sequence[str]) -> None:
    """Pin the statistics set at the bank's first unmasked ``query`` instance."""
    if kind in PINNED_KINDS and not state.get(PIN_KEY):
        state[PIN_KEY] = sorted(names)


def record_reveal(
    state: MutableMapping[str, Any], kind: str, model: bytes, names: Sequence[str]
) -> None:
    """Remember that an aggregate at ``model`` was revealed with survivors ``names``."""
    if kind in ONCE_PER_MODEL_KINDS and model and _revealed_with(state, kind, model) is None:
        entries = list(state.get(REVEALED_KEY, []))
        entries.append(_model_key(kind, model) + _names_digest(names))
        state[REVEALED_KEY] = entries
