"""A linear tag that lets the banks verify the aggregate the server reveals.

Every participant of an instance derives the same secret vector ``r`` in ``Z_p^d`` from a
*group key*: each dealer adds a fresh 32-byte contribution to the dealing ciphertexts it
sends its peers (AES-GCM under the pairwise keys, so the server never sees it), and the
group key of an instance hashes the contributions of all its participants. Bank ``i``
appends ``t_i = <r, s_i> mod p`` to its plaintext ring vector ``s_i`` (the signed fixed-point
integers, :func:`.vector.encode`); the tag coordinate is masked like the others. The server
decodes ``S = sum s_i`` and ``T = sum t_i`` (exact: ``n p < 2^64``) and can forward
``(S, T)`` to the banks, who check ``T = <r, S> mod p``. A server that changes ``S`` into
``S' != S`` passes only if ``<r, S' - S> = T' - T mod p``: for ``r`` uniform and unknown
to it, probability ``1 / p`` (``p`` about ``2^57``) per attempt, and a bank refuses for good
after the first failed check. A bank that colludes with the server knows ``r``: against
colluders the tag authenticates nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .masking import prg

PRIME = 2**57 - 13  # the largest prime below 2^57
CONTRIBUTION_BYTES = 32
MAX_BANKS = (2**64 - 1) // PRIME  # n tags below p sum without wrapping the ring


class TagError(ValueError):
    """A forwarded aggregate fails its tag (or is malformed)."""


def group_key(seq: int, participants: Sequence[int], contributions: Sequence[bytes]) -> bytes:
    """Hash the participants' dealt contributions into the instance's group key."""
    digest = hashlib.sha256(b"fl-credit secagg group key v1|" + str(int(seq)).encode())
    for node, part in sorted(zip(participants, contributions, strict=True)):
        if len(part) != CONTRIBUTION_BYTES:
            raise ValueError(f"group-key contribution of node {node} is malformed")
        digest.update(str(int(node)).encode() + b"|" + part)
    return digest.digest()


def tag_vector(key: bytes, length: int) -> list[int]:
    """The secret vector ``r`` in ``Z_p^length`` (Python integers)."""
    seed = HKDF(hashes.SHA256(), 32, salt=None, info=b"fl-credit secagg tag vector").derive(key)
    return [int(v) % PRIME for v in prg(seed, length)]


def _inner(r: Sequence[int], ring: np.ndarray) -> int:
    signed = np.asarray(ring, dtype=np.uint64).view(np.int64)
    return sum(a * int(b) for a, b in zip(r, signed.tolist(), strict=True)) % PRIME


def append_tag(plain: np.ndarray, key: bytes, num_banks: int) -> np.ndarray:
    """``plain`` with its tag ``<r, plain> mod p`` appended (one more ring element)."""
    if num_banks > MAX_BANKS:
        raise ValueError(f"{num_banks} banks: tags would wrap the ring (at most {MAX_BANKS})")
    plain = np.asarray(plain, dtype=np.uint64)
    tag = _inner(tag_vector(key, len(plain)), plain)
    return np.concatenate([plain, np.array([tag], dtype=np.uint64)])


def verify(summed: np.ndarray, key: bytes) -> np.ndarray:
    """Check a forwarded ``[S..., T]``; return ``S`` or raise :class:`TagError`."""
    summed = np.asarray(summed, dtype=np.uint64)
    if summed.ndim != 1 or len(summed) < 2:
        raise TagError("forwarded aggregate is malformed")
    body, tag = summed[:-1], int(summed[-1])
    if tag % PRIME != _inner(tag_vector(key, len(body)), body):
        raise TagError("forwarded aggregate fails its tag: the server changed it")
    return body
