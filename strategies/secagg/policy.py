"""What a bank refuses to reveal, whatever the cryptography would allow: differencing rules.

Secure aggregation hides each input inside a sum, but two sums of related quantities over
participant sets that differ by one bank give that bank's input by subtraction -- also when
the two sums are of different kinds (the statistics' defaults and rows are linear functions
of a Newton round at the zero model). The rules below are checked by each bank on its own
view (bank names verified at key setup) and kept in its state for the whole run, across key
epochs (the ``run-`` keys survive re-keying). They form one *ledger* per bank over every
data-dependent instance kind (``query``: statistics, WoE counts, histograms, federated
evaluation; ``train``; ``evaluate``):

- the ledger set is the survivors of the bank's last revealed sum, of any kind. A later sum
  (its participants at the request, its survivors at the unmask) must be over that same
  set, or -- for ``train``/``evaluate`` only -- over a subset of it when the bank's last
  ``train``/``evaluate`` sum was already over the whole ledger set: a bank that drops out
  between two training rounds is left out from then on. The set never grows back, and it
  never shrinks between kinds (statistics over all banks, then a first training round
  without one of them, is refused).
- ``query`` instances are also *pinned*: answered only over the banks of the bank's first
  such instance that it unmasked (pinned at the reveal: an instance never unmasked revealed
  nothing, so a first query that a bank spoiled by refusing can be retried without it), and
  a claimed dropout in one is refused at the unmask.
- ``train`` and ``evaluate`` instances carry a model: a bank reveals an aggregate at a given
  model only once, or again with the very same survivors (or without banks proven to have
  dealt inconsistent shares). The model is the digest of what the handler used
  (:mod:`.view`), never a field the request names; a request without one is refused.
  Recorded at the unmask, not at the request: a round skipped before its unmask revealed
  nothing and may be retried at the same model.

What these rules leave (see the package docstring): a genuine or claimed dropout between two
training rounds at models ``w`` and ``w'`` reveals the dropped bank's terms at ``w`` up to
the others' change from ``w`` to ``w'``, once per excluded bank; only DP bounds that.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from .forward import revealed_key
from .keys import digest

PIN_KEY = "run-pin-query"
REVEALED_KEY = "run-revealed"
LEDGER_KEY = "run-ledger"  # survivors of the last revealed sum, of any kind
REGROUPING_KEY = "run-floor-regrouping"  # written by .floors.admit_epoch
CHAIN_KEY = "run-ledger-chain"  # survivors of the last revealed train/evaluate sum
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
    model: bytes | None,
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
    model : bytes or None
        Digest of the model the handler used (train/evaluate), ``b""`` if there is none,
        None if not known yet (checked again before masking).
    names : Sequence[str]
        Bank names of the participants (at the request) or survivors (at the unmask).
    dropped : Sequence[str]
        At the unmask: the banks the server claims dropped.
    excused : Sequence[str]
        Banks proven to have dealt inconsistent shares (:func:`.blame.excused`): an
        aggregate at a model already revealed with ``names`` plus these banks may be
        revealed again without them (the failed sum showed nothing, or only their input).
    """
    if kind not in PINNED_KINDS + ONCE_PER_MODEL_KINDS:
        return
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
    _check_ledger(state, kind, sorted(names))
    if kind in ONCE_PER_MODEL_KINDS and model is not None:
        if not model:
            raise PolicyError(f"refusing a {kind} request that carries no model")
        previous = _revealed_with(state, kind, model)
        allowed = {_names_digest(names)}
        if excused and not set(excused) & set(names):
            allowed.add(_names_digest([*names, *excused]))
        if previous is not None and previous not in allowed:
            raise PolicyError(
                f"already revealed a {kind} aggregate at this global model with other banks"
            )


def _check_ledger(state: Mapping[str, Any], kind: str, names: list[str]) -> None:
    ledger = state.get(LEDGER_KEY)
    if not ledger or names == list(ledger):
        return
    if state.get(REGROUPING_KEY):  # the bank's own consent to grouped aggregation (floors)
        return
    shrinks = set(names) < set(ledger)
    if shrinks and kind in ONCE_PER_MODEL_KINDS and list(state.get(CHAIN_KEY) or []) == ledger:
        return  # a bank left between two training rounds
    why = "only between two training rounds over all of them" if shrinks else "and never grows back"
    raise PolicyError(
        f"ledger: this bank's last sum was over {list(ledger)}; a {kind} sum over {names} "
        f"could be differenced with it (the set may shrink {why})"
    )


def pin(state: MutableMapping[str, Any], kind: str, names: Sequence[str]) -> None:
    """Pin the statistics set at the bank's first unmasked ``query`` instance."""
    if kind in PINNED_KINDS and not state.get(PIN_KEY):
        state[PIN_KEY] = sorted(names)


def record_reveal(
    state: MutableMapping[str, Any], kind: str, model: bytes, names: Sequence[str]
) -> None:
    """Remember that an aggregate (at ``model``) was revealed with survivors ``names``."""
    state[revealed_key(kind)] = sorted(names)  # for a forwarded sum (:mod:`.forward`)
    if kind not in PINNED_KINDS + ONCE_PER_MODEL_KINDS:
        return
    state[LEDGER_KEY] = sorted(names)
    if kind in ONCE_PER_MODEL_KINDS:
        state[CHAIN_KEY] = sorted(names)
    if kind in ONCE_PER_MODEL_KINDS and model and _revealed_with(state, kind, model) is None:
        entries = list(state.get(REVEALED_KEY, []))
        entries.append(_model_key(kind, model) + _names_digest(names))
        state[REVEALED_KEY] = entries
