"""One X25519 key pair per (bank, peer) and epoch, so that one pair's channel can be opened.

A bank advertises, signed with its long-term identity, one encryption public key per other
member of the consortium roster (sorted by name), concatenated into one blob. The AES key
of the pair (i, j) is derived from i's key for j and j's key for i. Revealing i's secret
key for j therefore opens the channel between i and j only -- the dealings i and j sent
each other in the epoch -- and anyone holding the two signed advertisements can check it
(its public key is in i's blob) and re-derive the pair's AES key. That is what an
accusation carries as evidence (:mod:`.blame`): it shows the server nothing that the
accused or the accuser did not already hold, whichever of the two is lying.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .keys import KEY_BYTES, generate_keypair, is_valid_public_key


def peer_order(roster: Iterable[str], own: str) -> list[str]:
    """The order of ``own``'s per-peer keys: every other roster name, sorted."""
    return sorted(n for n in roster if n != own)


def new_pair_keys(peers: Sequence[str]) -> tuple[bytes, bytes]:
    """Fresh key pairs, one per peer: ``(secret blob, public blob)``."""
    pairs = [generate_keypair() for _ in peers]
    return b"".join(sk for sk, _ in pairs), b"".join(pk for _, pk in pairs)


def valid_blob(blob: object, count: int | None = None) -> bool:
    """Whether ``blob`` is ``count`` (any number if None, at least 1) usable public keys."""
    if not isinstance(blob, bytes) or not blob or len(blob) % KEY_BYTES:
        return False
    if count is not None and len(blob) != count * KEY_BYTES:
        return False
    return all(is_valid_public_key(slot(blob, k)) for k in range(len(blob) // KEY_BYTES))


def slot(blob: bytes, index: int) -> bytes:
    """The ``index``-th 32-byte key of a blob."""
    return blob[index * KEY_BYTES : (index + 1) * KEY_BYTES]


def key_for(blob: bytes, roster: Iterable[str], owner: str, peer: str) -> bytes:
    """``owner``'s key for ``peer`` in ``owner``'s blob (public or secret)."""
    return slot(blob, peer_order(roster, owner).index(peer))


def pair_secret(state: Mapping[str, Any], node: int) -> bytes:
    """This bank's secret key for the pair with epoch member ``node`` (the evidence)."""
    names: list[str] = list(state["names"])
    peer = names[list(state["members"]).index(int(node))]
    return slot(state["c-sk"], list(state["peer-names"]).index(peer))
