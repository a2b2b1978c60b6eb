"""The secure-aggregation protocol, free of Flower: what the bank's half
(:mod:`.bank_protocol`) and the coordinator's half (:mod:`.coordinator_protocol`) share --
the sizes, the refusal error, the threshold rules, the HKDF labels and the commitments.

The bank's functions take its state and a request dict and return a reply dict; they raise
:class:`ProtocolError` to refuse, leaving the state untouched. The coordinator's classes hold
its view of an epoch and of one aggregation instance. Every value in a request,
reply or state dict is a ConfigRecord value (int, str, bytes, lists of them), except the
masked vector (a ``uint64`` numpy array) which travels in an ArrayRecord.

Message flow (``n`` banks, threshold ``t``; ``->`` server to banks, ``<-`` replies)::

    setup epoch   -> advertise                  <- name, X25519 encryption key c_pk,
                                                   Ed25519 signature (epoch, node, name, c_pk)
                  -> share_keys (all adverts)   <- dealing for instance 1 (see below)
    instance s    -> mask (participants' mask   <- y = x + PRG(b) + sum_j +-PRG(s_ij),
                     keys, the dealing shares      plus the dealing for instance s + 1
                     addressed to this bank)
                  -> unmask (survivors, dropped) <- stored shares: b of survivors,
                                                    mask keys of dropped banks

A *dealing* for instance ``s`` is a fresh X25519 mask key pair ``(sk, pk)`` and a fresh
self-mask seed ``b``, both Shamir-shared over the epoch's members: per holder one AES-GCM
ciphertext of ``salt_k || share(sk) || salt_b || share(b) || g`` (``g``: the dealer's part
of the group key of :mod:`.tag`) under the pairwise key, with
associated data ``(epoch, dealer, holder, s, pk)``, plus per share a salted hash
commitment, and a hash commitment to ``b``. The holder opens its ciphertext when the mask
request of instance ``s`` forwards it: success authenticates ``pk`` as the dealer's key for
exactly instance ``s``; the holder checks the commitments, keeps its shares in its state,
and refuses (naming the dealer) otherwise. The unmask reveals kept shares only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .keys import KEY_BYTES, NONCE_BYTES, derive_key, digest, label
from .masking import prg
from .shamir import SHARE_BYTES, reconstruct_secret, share_from_bytes
from .tag import CONTRIBUTION_BYTES

FIRST_SEQ = 1  # sequence number of an epoch's first instance
MIN_BANKS = 3  # with 2, each bank learns the other's input from the sum
SALT_BYTES = 16
COMMIT_BYTES = 32
SIGNATURE_BYTES = 64
SHARE_PLAIN = SALT_BYTES + SHARE_BYTES  # one committed share: salt || share
DEAL_PLAIN = 2 * SHARE_PLAIN + CONTRIBUTION_BYTES  # two committed shares, group-key part
CT_BYTES = NONCE_BYTES + DEAL_PLAIN + 16  # one holder's ciphertext of a dealing
_ACCUSE = re.compile(r"\[accuse (\d+)(?: evidence ([0-9a-f]{64}))?\]")

Payload = dict[str, Any]


class ProtocolError(Exception):
    """A request or reply violates the protocol; the bank refuses or the server rejects.

    ``culprit`` is the node the refusing side holds responsible, if it can tell (a dealer
    whose shares do not open, a bank whose advertisement is not signed, ...). ``evidence``
    is this bank's secret key for the pair with the culprit (:mod:`.pairkeys`), when the
    accusation is about the dealing the culprit sent it: anyone can then check it.
    """

    def __init__(self, message: str, culprit: int | None = None, evidence: bytes = b"") -> None:
        super().__init__(message)
        self.culprit = culprit
        self.evidence = evidence

    def reason(self) -> str:
        """Message for the error reply; carries the accusation in a parseable tag."""
        if self.culprit is None:
            return str(self)
        proof = f" evidence {self.evidence.hex()}" if self.evidence else ""
        return f"{self} [accuse {self.culprit}{proof}]"


def accused_in(reason: str) -> int | None:
    """The node a refusal reason accuses (see :meth:`ProtocolError.reason`), if any."""
    match = _ACCUSE.search(reason or "")
    return int(match.group(1)) if match else None


def evidence_in(reason: str) -> bytes:
    """The evidence an accusation carries (empty if none)."""
    match = _ACCUSE.search(reason or "")
    return bytes.fromhex(match.group(2)) if match and match.group(2) else b""


def default_threshold(num_banks: int) -> int:
    """Smallest threshold an honest bank accepts: a strict majority, at least 2."""
    return max(2, num_banks // 2 + 1)


def min_survivors(threshold: int) -> int:
    """Fewest survivors an honest bank unmasks for: the threshold, and never below 3."""
    return max(threshold, MIN_BANKS)


def check_threshold(threshold: int, num_banks: int) -> None:
    """Raise :class:`ProtocolError` unless ``default_threshold(n) <= t <= n``.

    A strict majority means two disjoint groups of honest banks can never both reach
    ``t``: a server that tells some banks "v dropped" and others "v survived" cannot
    collect ``t`` shares of both of v's secrets.
    """
    if not default_threshold(num_banks) <= threshold <= num_banks:
        raise ProtocolError(
            f"threshold {threshold} invalid for {num_banks} banks "
            f"(need {default_threshold(num_banks)} <= t <= {num_banks})"
        )


def check_members(num_banks: int) -> None:
    """Raise :class:`ProtocolError` if an epoch is too small to hide anyone's input."""
    if num_banks < MIN_BANKS:
        raise ProtocolError(
            f"a key epoch of {num_banks} banks is refused: secure aggregation needs at least "
            f"{MIN_BANKS} (with 2, each bank learns the other's input from the sum)"
        )


# --- labels ------------------------------------------------------------------------------


def advertisement(epoch: str, node: int, name: str, c_pk: bytes) -> bytes:
    """What a bank signs at key setup: the epoch, its node id, its name and its key."""
    return label("advertise", epoch, node, name, c_pk)


def enc_info(epoch: str, a: int, b: int) -> bytes:
    return label("share-encryption", epoch, min(a, b), max(a, b))


def mask_info(epoch: str, seq: int, a: int, b: int, view: bytes = b"") -> bytes:
    """HKDF label of a pairwise mask: the instance, the pair and the request view
    (:mod:`.view`), so that two banks' masks cancel only if they received the same request."""
    return label("pairwise-mask", epoch, seq, min(a, b), max(a, b), view)


def deal_ad(epoch: str, dealer: int, holder: int, seq: int, mask_pk: bytes) -> bytes:
    """Associated data of a dealing ciphertext: (epoch, sender, receiver, seq, public key).

    A mask key serves exactly one instance, so its generation is the sequence number.
    """
    return label("dealing", epoch, dealer, holder, seq, mask_pk)


def share_commitment(
    epoch: str, seq: int, dealer: int, holder: int, kind: str, committed: bytes
) -> bytes:
    """Salted hash commitment to one share (``committed`` = salt || share)."""
    return digest(label("share-commit", epoch, seq, dealer, holder, kind), committed)


def self_mask_commitment(epoch: str, seq: int, node: int, seed: bytes) -> bytes:
    """Hash commitment to a self-mask seed, so the server can check its reconstruction."""
    return digest(label("self-mask-commit", epoch, seq, node), seed)


def pairwise_mask(
    secret_key: bytes,
    peer_pk: bytes,
    epoch: str,
    seq: int,
    me: int,
    peer: int,
    length: int,
    view: bytes = b"",
) -> np.ndarray:
    """Mask ``me`` adds for ``peer`` in instance ``seq`` under request ``view``: +PRG if
    ``peer > me``, else -PRG."""
    seed = derive_key(secret_key, peer_pk, mask_info(epoch, seq, me, peer, view))
    stream = prg(seed, length)
    return stream if peer > me else np.negative(stream)  # negation mod 2^64


def share_ok(committed: bytes) -> bool:
    """Whether a committed share (salt || share) holds a share inside the field."""
    try:
        share_from_bytes(committed[SALT_BYTES:])
    except ValueError:
        return False
    return True


def reconstruct_key(shares: Sequence[tuple[int, int]]) -> bytes | None:
    """The key-sized secret the Shamir ``shares`` reconstruct, or None if they do not."""
    try:
        return reconstruct_secret(shares, KEY_BYTES)
    except ValueError:
        return None
