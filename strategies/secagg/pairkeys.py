"""One X25519 key pair per (bank, peer) and epoch, so that one pair's channel can be opened.

A bank advertises, signed with its long-term identity, one encryption public key per other
member of the consortium roster (sorted by name), concatenated into one blob. The AES key
of the pair (i, j) is derived from i's key for j and j's key for i. Revealing i's secret
key for j therefore opens the channel between i and j only -- the dealings i and j sent
each other in the epoch -- and anyone holding the two signed advertisements can check it
(its public key is in i's blob) and re-derive the pair's AES key. That is what an
accusation carries as evidence (:mod:`.blame`): it shows the server nothing that the
accused or the accuser did not already hold, whichever of the two is lying.

The blob ends with a one-epoch Ed25519 verification key: the bank signs each dealing's
public part with it (:func:`sign_dealing`), so a dealing whose shares turn out inconsistent
after the unmask is a transferable proof against its dealer (:mod:`.blame`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .keys import KEY_BYTES, digest, generate_keypair, is_valid_public_key, label


def peer_order(roster: Iterable[str], own: str) -> list[str]:
    """The order of ``own``'s per-peer keys: every other roster name, sorted."""
    return sorted(n for n in roster if n != own)


def new_pair_keys(peers: Sequence[str]) -> tuple[bytes, bytes]:
    """Fresh key pairs, one per peer, and an epoch signing key.

    Returns ``(secret blob, public blob)``: the X25519 keys in peer order, then the Ed25519
    signing key (secret) or its verification key (public).
    """
    pairs = [generate_keypair() for _ in peers]
    signer = Ed25519PrivateKey.generate()
    sign_sk = signer.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    sign_pk = signer.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return (
        b"".join(sk for sk, _ in pairs) + sign_sk,
        b"".join(pk for _, pk in pairs) + sign_pk,
    )


def blob_size_ok(blob: object, count: int) -> bool:
    """Whether ``blob`` holds ``count`` keys and a verification key (a bank checks only the
    one key it uses for low order, when it derives the pair's key)."""
    return isinstance(blob, bytes) and len(blob) == (count + 1) * KEY_BYTES


def valid_blob(blob: object, count: int | None = None) -> bool:
    """Whether ``blob`` is ``count`` (any number if None) usable public keys and a
    verification key."""
    if not isinstance(blob, bytes) or len(blob) < 2 * KEY_BYTES or len(blob) % KEY_BYTES:
        return False
    keys = len(blob) // KEY_BYTES - 1
    if count is not None and keys != count:
        return False
    return all(is_valid_public_key(slot(blob, k)) for k in range(keys))


def signing_key(blob: bytes) -> bytes:
    """The epoch signing (secret blob) or verification (public blob) key at its end."""
    return blob[-KEY_BYTES:]


def dealing_digest(
    epoch: str, seq: int, dealer: int, threshold: int, members: Sequence[int], public: Mapping
) -> bytes:
    """What a dealer signs: the instance, the threshold, the members and its dealing's
    public part (mask key, share and seed commitments)."""
    parts = [label("dealing-signed", epoch, seq, dealer, threshold, *members)]
    parts += [public["mask-pk"], public["seed-commit"]]
    parts += list(public["key-commits"]) + list(public["b-commits"])
    return digest(*parts)


def sign_dealing(secret_blob: bytes, message: bytes) -> bytes:
    """Ed25519 signature of a dealing digest with the epoch signing key."""
    return Ed25519PrivateKey.from_private_bytes(signing_key(secret_blob)).sign(message)


def dealing_signed(public_blob: bytes, signature: object, message: bytes) -> bool:
    """Whether ``signature`` is the epoch signing key's signature of ``message``."""
    if not isinstance(signature, bytes):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(signing_key(public_blob)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


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
