"""The bank's side of the forwarded aggregate: tag each reply, verify what comes back.

A bank tags every masked reply (:mod:`.tag`) and keeps, per instance kind and across key
epochs, the group key and layout of its last instance of that kind. A later request of the
same kind may carry that instance's summed ring vector (``prev-sum``, forwarded by the
server with no extra exchange); the bank verifies its tag and decodes it itself, so what a
bank computes from an earlier aggregate (e.g. the next model) depends on the true sum and
never on a value the server chose. A forwarded sum that fails its tag is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from .tag import TagError, append_tag, verify
from .vector import Decoded, Layout, decode

FORWARDED_KEY = "prev-sum"  # field of the mask request: the previous sum, uint64 bytes


def _key(kind: str, what: str) -> str:
    return f"run-tag-{kind}-{what}"  # "run-": kept across key epochs


def tag_reply(
    state: MutableMapping[str, Any],
    kind: str,
    group: bytes,
    num_banks: int,
    layout: Layout,
    plain: np.ndarray,
    bits: int,
) -> tuple[Layout, np.ndarray]:
    """Append this bank's tag to ``plain`` and remember how to verify the instance's sum.

    Parameters
    ----------
    state : MutableMapping
        The bank's secagg state (updated).
    kind : str
        Instance kind (:func:`.policy.instance_kind`).
    group : bytes
        The instance's group key (:class:`.bank_protocol.MaskRequest`).
    num_banks : int
        Participants of the instance.
    layout : Layout
        Layout of ``plain`` (untagged).
    plain : numpy.ndarray
        The plaintext ring vector.
    bits : int
        Fractional bits of the instance.

    Returns
    -------
    tuple[Layout, numpy.ndarray]
        The tagged layout and vector.
    """
    tagged = dataclasses.replace(layout, tagged=True)
    vector = append_tag(plain, group, num_banks)
    state.pop(revealed_key(kind), None)  # not revealed yet
    state[_key(kind, "group")] = group
    state[_key(kind, "layout")] = tagged.to_json()
    state[_key(kind, "bits")] = int(bits)
    return tagged, vector


def revealed_key(kind: str) -> str:
    """State key of the survivors of the bank's last instance of ``kind``, set when the bank
    revealed its shares for it (at the unmask)."""
    return _key(kind, "revealed")


def consume(state: MutableMapping[str, Any], kind: str) -> tuple[list[str], int]:
    """Forget the last instance of ``kind`` (its sum is used once); return its survivors
    (bank names, sorted) and fractional bits."""
    names = state.pop(revealed_key(kind), None)
    state.pop(_key(kind, "group"), None)
    if names is None:
        raise TagError("forwarded aggregate of an instance this bank did not unmask")
    return sorted(str(n) for n in names), int(state[_key(kind, "bits")])


def forwarded(state: Mapping[str, Any], kind: str, request: Mapping[str, Any]) -> Decoded | None:
    """The verified, decoded sum of this bank's last instance of ``kind`` in ``request``.

    Returns None when the request forwards nothing; raises :class:`.tag.TagError` when it
    forwards a sum that is malformed, of another layout, or fails its tag.
    """
    raw = request.get(FORWARDED_KEY)
    if raw is None:
        return None
    group = state.get(_key(kind, "group"))
    if group is None or not isinstance(raw, bytes) or len(raw) % 8:
        raise TagError("forwarded aggregate without an instance of this bank to verify it")
    layout = Layout.from_json(str(state[_key(kind, "layout")]))
    summed = np.frombuffer(raw, dtype=np.uint64).copy()
    if summed.shape != (layout.size(),):
        raise TagError("forwarded aggregate does not match this bank's last layout")
    verify(summed, bytes(group))
    return decode(layout, summed, int(state[_key(kind, "bits")]))


def forward_field(decoded: Decoded | None) -> dict[str, bytes]:
    """The request field that forwards ``decoded``'s sum (server side; {} if none)."""
    if decoded is None or decoded.ring is None:
        return {}
    return {FORWARDED_KEY: np.asarray(decoded.ring, dtype=np.uint64).tobytes()}
