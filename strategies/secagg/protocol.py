"""The secure-aggregation protocol itself, free of Flower: plain dicts in, plain dicts out.

Client functions take the bank's state (a flat dict that the Flower mod keeps in
``context.state``) and a request dict from the server, and return a reply dict; they
raise :class:`ProtocolError` to refuse, leaving the state untouched. Server classes hold
the server's view of an epoch and of one aggregation instance. Every value in a request,
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

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import pairkeys, policy
from .identity import Consortium, Identity
from .keys import (
    KEY_BYTES,
    NONCE_BYTES,
    CryptoError,
    decrypt,
    derive_key,
    digest,
    encrypt,
    fingerprint,
    generate_keypair,
    is_valid_public_key,
    label,
    public_key_of,
)
from .masking import prg
from .shamir import SHARE_BYTES, reconstruct_secret, share_from_bytes, share_to_bytes, split_secret
from .tag import CONTRIBUTION_BYTES, group_key
from .vector import Bounds, Layout

FIRST_SEQ = 1  # sequence number of an epoch's first instance
MIN_BANKS = 3  # with 2, each bank learns the other's input from the sum
SALT_BYTES = 16
COMMIT_BYTES = 32
SIGNATURE_BYTES = 64
SHARE_PLAIN = SALT_BYTES + SHARE_BYTES  # one committed share: salt || share
DEAL_PLAIN = 2 * SHARE_PLAIN + CONTRIBUTION_BYTES  # two committed shares, group-key part
CT_BYTES = NONCE_BYTES + DEAL_PLAIN + 16  # one holder's ciphertext of a dealing
SEEN_KEY = "run-seen"  # fingerprints of every public key this bank has seen in the run
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


def _enc_info(epoch: str, a: int, b: int) -> bytes:
    return label("share-encryption", epoch, min(a, b), max(a, b))


def _mask_info(epoch: str, seq: int, a: int, b: int, view: bytes = b"") -> bytes:
    """HKDF label of a pairwise mask: the instance, the pair and the request view
    (:mod:`.view`), so that two banks' masks cancel only if they received the same request."""
    return label("pairwise-mask", epoch, seq, min(a, b), max(a, b), view)


def _deal_ad(epoch: str, dealer: int, holder: int, seq: int, mask_pk: bytes) -> bytes:
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
    seed = derive_key(secret_key, peer_pk, _mask_info(epoch, seq, me, peer, view))
    stream = prg(seed, length)
    return stream if peer > me else np.negative(stream)  # negation mod 2^64


def _sorted_unique(values: Sequence[int], what: str) -> list[int]:
    out = [int(v) for v in values]
    if out != sorted(set(out)):
        raise ProtocolError(f"{what} must be sorted and distinct")
    return out


# --- client: state kept across messages ---------------------------------------------------


def _seen_set(state: Mapping[str, Any]) -> set[bytes]:
    blob: bytes = state.get(SEEN_KEY, b"")
    return {blob[i : i + 16] for i in range(0, len(blob), 16)}


def _remember(state: Payload, keys: Iterable[bytes]) -> None:
    state[SEEN_KEY] = state.get(SEEN_KEY, b"") + b"".join(fingerprint(k) for k in keys)


def _start_epoch(state: Payload) -> None:
    """Forget everything of the previous epoch; keep the run-wide (``run-``) entries."""
    for key in [k for k in state if not k.startswith("run-")]:
        del state[key]


def _deal(state: Payload, me: int, seq: int, recipients: set[int]) -> Payload:
    """Make the mask key and self-mask seed for instance ``seq`` and share them.

    The secrets and this bank's own shares go into ``state``; the returned public part
    (key, ciphertexts and commitments aligned with the members) goes to the server.
    """
    epoch = str(state["epoch"])
    members: list[int] = list(state["members"])
    enc_keys: list[bytes] = list(state["enc-keys"])
    threshold = int(state["threshold"])
    sk, pk = generate_keypair()
    seed = os.urandom(KEY_BYTES)
    key_shares = split_secret(sk, threshold, len(members))
    seed_shares = split_secret(seed, threshold, len(members))
    group = os.urandom(CONTRIBUTION_BYTES)  # this bank's part of the group (tag) key
    cts: list[bytes] = []
    key_commits: list[bytes] = []
    b_commits: list[bytes] = []
    own = b""
    for k, member in enumerate(members):
        if member != me and member not in recipients:
            cts.append(b"")
            key_commits.append(b"")
            b_commits.append(b"")
            continue
        ck = os.urandom(SALT_BYTES) + share_to_bytes(key_shares[k][1])
        cb = os.urandom(SALT_BYTES) + share_to_bytes(seed_shares[k][1])
        key_commits.append(share_commitment(epoch, seq, me, member, "key", ck))
        b_commits.append(share_commitment(epoch, seq, me, member, "self", cb))
        if member == me:
            own = ck + cb
            cts.append(b"")
        else:
            plain = ck + cb + group
            cts.append(encrypt(enc_keys[k], plain, _deal_ad(epoch, me, member, seq, pk)))
    _remember(state, [pk])
    state.update({"key-seq": seq, "mask-sk": sk, "mask-pk": pk, "seed": seed, "own-shares": own})
    state["group-own"] = group
    public = {
        "mask-pk": pk,
        "cts": cts,
        "key-commits": key_commits,
        "b-commits": b_commits,
        "seed-commit": self_mask_commitment(epoch, seq, me, seed),
    }
    signed = pairkeys.dealing_digest(epoch, seq, me, threshold, members, public)
    return {**public, "dealing-sig": pairkeys.sign_dealing(state["c-sk"], signed)}


# --- client: key setup --------------------------------------------------------------------


def client_advertise(
    state: Payload, me: int, request: Mapping[str, Any], identity: Identity, roster: Iterable[str]
) -> Payload:
    """Start a key epoch: fresh encryption keys, one per other ``roster`` member
    (:mod:`.pairkeys`), signed with the bank's identity.

    Anything of an earlier epoch (keys, pending instance) is discarded; the run-wide
    entries (keys seen, pinned statistics set, revealed models) are kept.
    """
    epoch = str(request["epoch"])
    peers = pairkeys.peer_order(roster, identity.name)
    if not peers:
        raise ProtocolError("the roster holds no other bank")
    c_sk, c_pk = pairkeys.new_pair_keys(peers)
    _start_epoch(state)
    _remember(state, [c_pk])
    state.update(
        {
            "epoch": epoch,
            "node-id": me,
            "stage": "advertised",
            "name": identity.name,
            "c-sk": c_sk,
            "c-pk": c_pk,
            "peer-names": peers,
        }
    )
    return {
        "name": identity.name,
        "c-pk": c_pk,
        "signature": identity.sign(advertisement(epoch, me, identity.name, c_pk)),
    }


def client_share_keys(
    state: Payload, me: int, request: Mapping[str, Any], consortium: Consortium
) -> Payload:
    """Verify the epoch's signed advertisements, derive pairwise keys, deal for instance 1.

    Refuses an epoch of fewer than :data:`MIN_BANKS` banks, a minority threshold, an
    advertisement not signed by the roster's key for its name (or for another node or
    epoch), a name twice, and a key that is low order or was seen before in the run.
    """
    if state.get("stage") != "advertised" or state.get("epoch") != request.get("epoch"):
        raise ProtocolError("share_keys for an epoch this bank did not advertise in")
    epoch = str(state["epoch"])
    members = _sorted_unique(request["members"], "members")
    names = [str(n) for n in request["names"]]
    c_pks, sigs = list(request["c-pks"]), list(request["signatures"])
    threshold = int(request["threshold"])
    if me not in members or not len(names) == len(c_pks) == len(sigs) == len(members):
        raise ProtocolError("member list inconsistent")
    check_members(len(members))
    check_threshold(threshold, len(members))
    k_me = members.index(me)
    if c_pks[k_me] != state["c-pk"] or names[k_me] != state["name"]:
        raise ProtocolError("server relayed wrong keys or name for this bank")
    if len(set(names)) != len(names):
        raise ProtocolError("a bank name appears twice in the epoch")
    seen = _seen_set(state)
    for k, member in enumerate(members):
        if member == me:
            continue
        if not consortium.verify(
            names[k], sigs[k], advertisement(epoch, member, names[k], c_pks[k])
        ):
            raise ProtocolError(
                f"advertisement of node {member} as {names[k]!r} is not signed by that "
                "consortium member",
                culprit=member,
            )
        if fingerprint(c_pks[k]) in seen:
            raise ProtocolError(f"node {member} sent a reused key", culprit=member)
    if state["name"] not in consortium.members:
        raise ProtocolError(f"bank {state['name']!r} is not in its own consortium roster")
    enc_keys = []
    roster = list(consortium.members)
    for k, member in enumerate(members):
        if member == me:
            enc_keys.append(b"")
            continue
        if not pairkeys.blob_size_ok(c_pks[k], len(roster) - 1):
            raise ProtocolError(f"node {member} sent malformed keys", culprit=member)
        own_sk = pairkeys.key_for(state["c-sk"], roster, str(state["name"]), names[k])
        their_pk = pairkeys.key_for(c_pks[k], roster, names[k], str(state["name"]))
        try:  # a low-order key is refused here
            enc_keys.append(derive_key(own_sk, their_pk, _enc_info(epoch, me, member)))
        except CryptoError:
            raise ProtocolError(f"node {member} sent a low-order key", culprit=member) from None
    _remember(state, [pk for k, pk in enumerate(c_pks) if k != k_me])
    state.update(
        {
            "stage": "ready",
            "members": members,
            "names": names,
            "threshold": threshold,
            "enc-keys": enc_keys,
            "last-seq": FIRST_SEQ - 1,
            "pending-seq": -1,
            "weight": float(consortium.weight(str(state["name"]))),
        }
    )
    return _deal(state, me, FIRST_SEQ, set(members))


# --- client: one instance -----------------------------------------------------------------


@dataclass(frozen=True)
class MaskRequest:
    """A validated ``mask`` request (server -> bank), with the dealing shares it carried."""

    epoch: str
    seq: int
    participants: list[int]
    mask_pks: list[bytes]
    held_key: list[bytes]  # this bank's committed share of each participant's mask key
    held_b: list[bytes]  # ... and of each participant's self-mask seed
    names: list[str]
    excused: list[str] = field(default_factory=list)  # proven cheaters (.blame.excused)
    group: bytes = b""  # the instance's group key (:mod:`.tag`), never seen by the server

    @classmethod
    def parse(
        cls,
        state: Mapping[str, Any],
        me: int,
        request: Mapping[str, Any],
        kind: str = "",
        model: bytes | None = b"",
        excused: Sequence[str] = (),
    ) -> MaskRequest:
        """Check a ``mask`` request against the bank's state; raise ProtocolError to refuse.

        Opens and checks the dealing shares addressed to this bank, and applies the
        differencing rules of :mod:`.policy` for instances of ``kind`` at ``model`` (None:
        the model is not known yet and is checked by the caller before masking;
        ``excused``: banks proven to have dealt inconsistent shares).
        """
        if state.get("stage") != "ready":
            raise ProtocolError("no key epoch set up")
        if request.get("epoch") != state["epoch"]:
            raise ProtocolError("request for another key epoch")
        seq = int(request["seq"])
        if seq <= int(state["last-seq"]):
            raise ProtocolError(f"instance {seq} is not newer than {state['last-seq']}")
        if seq != int(state["key-seq"]):
            raise ProtocolError(
                f"this bank's mask key serves instance {state['key-seq']}, not {seq} "
                "(it was skipped or looked dropped): it must re-key"
            )
        epoch = str(state["epoch"])
        members: list[int] = list(state["members"])
        threshold = int(state["threshold"])
        participants = _sorted_unique(request["participants"], "participants")
        pks = list(request["mask-pks"])
        if len(pks) != len(participants):
            raise ProtocolError("participant keys inconsistent")
        if me not in participants or not set(participants) <= set(members):
            raise ProtocolError("participants are not members of the epoch")
        if len(participants) < min_survivors(threshold):
            raise ProtocolError(
                f"{len(participants)} participants, below the {min_survivors(threshold)} "
                "this bank requires"
            )
        k_me = participants.index(me)
        if pks[k_me] != state["mask-pk"]:
            raise ProtocolError("server lists a mask key this bank does not hold")
        if len(set(pks)) != len(pks):
            raise ProtocolError("duplicate mask keys")
        cts, key_commits, b_commits = _my_row(request, me, len(participants))
        all_names: list[str] = list(state["names"])
        names = [all_names[members.index(p)] for p in participants]
        own: bytes = state["own-shares"]
        seen = _seen_set(state)
        held_key, held_b, parts = [], [], []
        for p, pk, ct, kc, bc in zip(participants, pks, cts, key_commits, b_commits, strict=True):
            if p == me:
                held_key.append(own[:SHARE_PLAIN])
                held_b.append(own[SHARE_PLAIN:])
                parts.append(bytes(state["group-own"]))
                continue
            # (A low-order key is refused when the pairwise mask is derived from it.)
            if not isinstance(pk, bytes) or len(pk) != KEY_BYTES or fingerprint(pk) in seen:
                raise ProtocolError(f"malformed or reused mask key of node {p}", culprit=p)
            try:
                plain = decrypt(
                    state["enc-keys"][members.index(p)], ct, _deal_ad(epoch, p, me, seq, pk)
                )
            except CryptoError:
                raise ProtocolError(
                    f"dealing of node {p} for instance {seq} does not authenticate",
                    culprit=p,
                    evidence=pairkeys.pair_secret(state, p),
                ) from None
            ck, cb = plain[:SHARE_PLAIN], plain[SHARE_PLAIN : 2 * SHARE_PLAIN]
            if (
                len(plain) != DEAL_PLAIN
                or share_commitment(epoch, seq, p, me, "key", ck) != kc
                or share_commitment(epoch, seq, p, me, "self", cb) != bc
                or not _share_ok(ck)
                or not _share_ok(cb)
            ):
                raise ProtocolError(
                    f"dealing of node {p} fails its commitments",
                    culprit=p,
                    evidence=pairkeys.pair_secret(state, p),
                )
            held_key.append(ck)
            held_b.append(cb)
            parts.append(plain[2 * SHARE_PLAIN :])
        try:
            policy.check(state, kind, model, names, excused=excused)
        except policy.PolicyError as err:
            raise ProtocolError(str(err)) from None
        group = group_key(seq, participants, parts)
        return cls(
            epoch, seq, participants, pks, held_key, held_b, names, list(excused), group
        )


def _share_ok(committed: bytes) -> bool:
    try:
        share_from_bytes(committed[SALT_BYTES:])
    except ValueError:
        return False
    return True


def _my_row(
    request: Mapping[str, Any], me: int, width: int
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """This bank's row of the forwarded dealing ciphertexts and commitments."""
    holders = [int(h) for h in request.get("deal-for", [])]
    if me not in holders:
        raise ProtocolError("the request carries no dealing shares for this bank")
    r = holders.index(me)
    rows = []
    for key in ("deal-cts", "deal-key-commits", "deal-b-commits"):
        flat = list(request[key])
        if len(flat) != width * len(holders):
            raise ProtocolError(f"{key} has the wrong length")
        rows.append(flat[r * width : (r + 1) * width])
    return rows[0], rows[1], rows[2]


def client_mask(
    state: Payload,
    me: int,
    request: Mapping[str, Any],
    plain: np.ndarray,
    kind: str = "",
    model: bytes = b"",
    parsed: MaskRequest | None = None,
    view: bytes = b"",
) -> Payload:
    """Mask a plaintext ring vector for one instance and deal the keys of the next.

    Parameters
    ----------
    state : dict
        The bank's state; updated only if the request is accepted.
    me : int
        This bank's node id.
    request : Mapping
        The server's ``mask`` request (see :class:`MaskRequest`).
    plain : numpy.ndarray
        ``uint64`` plaintext vector (:func:`~strategies.secagg.vector.encode`).
    kind, model : str, bytes
        Instance kind and global-model digest for the differencing rules (:mod:`.policy`).
    parsed : MaskRequest, optional
        ``MaskRequest.parse(state, me, request, kind, model)`` if the caller already ran
        it on this very state (the mod does, to refuse before training).
    view : bytes
        Digest of the request as this bank received it (:func:`.view.request_view`); bound
        into the pairwise masks and echoed to the server for dropout recovery.

    Returns
    -------
    dict
        ``masked`` (uint64 array), the ``view`` it masked under, and the dealing for
        instance ``seq + 1`` (``mask-pk``, ``cts``, ``key-commits``, ``b-commits``,
        ``seed-commit``; lists aligned with the epoch's members, filled for this instance's
        participants).
    """
    req = parsed or MaskRequest.parse(state, me, request, kind, model)
    epoch, seq, length = req.epoch, req.seq, int(plain.shape[0])
    masked = np.array(plain, dtype=np.uint64, copy=True)
    for p, pk in zip(req.participants, req.mask_pks, strict=True):
        if p != me:
            try:
                masked += pairwise_mask(state["mask-sk"], pk, epoch, seq, me, p, length, view)
            except CryptoError:
                raise ProtocolError(f"low-order mask key of node {p}", culprit=p) from None
    masked += prg(state["seed"], length)
    _remember(state, [pk for p, pk in zip(req.participants, req.mask_pks, strict=True) if p != me])
    state.update(
        {
            "last-seq": seq,
            "pending-seq": seq,
            "pending-participants": req.participants,
            "pending-held-key": req.held_key,
            "pending-held-b": req.held_b,
            "pending-kind": kind,
            "pending-model": model,
            "pending-excused": req.excused,
        }
    )
    # The used key and seed are forgotten: each serves exactly one instance.
    dealing = _deal(state, me, seq + 1, set(req.participants))
    return {"masked": masked, "view": view, **dealing}


def client_unmask(state: Payload, me: int, request: Mapping[str, Any]) -> Payload:
    """Reveal the kept self-mask shares of survivors and mask-key shares of dropped banks.

    Refuses unless survivors and dropped partition the instance's participants, this bank
    is a survivor, there are at least ``max(t, 3)`` survivors, the differencing rules
    allow it, and this bank has not answered an unmask request for the instance before.
    Hence, for every peer, it reveals at most one of the two secrets that would together
    expose that peer's input, and only for the instance those secrets were dealt for.
    """
    seq = int(request.get("seq", -2))
    if (
        state.get("stage") != "ready"
        or request.get("epoch") != state["epoch"]
        or seq != int(state["pending-seq"])
    ):
        raise ProtocolError("no pending instance matches this unmask request")
    participants: list[int] = list(state["pending-participants"])
    survivors = _sorted_unique(request["survivors"], "survivors")
    dropped = _sorted_unique(request["dropped"], "dropped")
    if set(survivors) & set(dropped) or sorted(survivors + dropped) != participants:
        raise ProtocolError("survivors and dropped do not partition the participants")
    if me not in survivors:
        raise ProtocolError("asked to unmask while listed as dropped")
    need = min_survivors(int(state["threshold"]))
    if len(survivors) < need:
        raise ProtocolError(f"only {len(survivors)} survivors claimed, this bank requires {need}")
    members: list[int] = list(state["members"])
    all_names: list[str] = list(state["names"])
    kind, model = str(state["pending-kind"]), bytes(state["pending-model"])
    surv_names = [all_names[members.index(u)] for u in survivors]
    try:
        dropped_names = [all_names[members.index(v)] for v in dropped]
        excused = list(state.get("pending-excused", []))
        policy.check(state, kind, model, surv_names, dropped_names, excused=excused)
    except policy.PolicyError as err:
        raise ProtocolError(str(err)) from None
    held_key: list[bytes] = list(state["pending-held-key"])
    held_b: list[bytes] = list(state["pending-held-b"])
    reply = {
        "b-shares": [held_b[participants.index(u)] for u in survivors],
        "key-shares": [held_key[participants.index(v)] for v in dropped],
    }
    policy.pin(state, kind, surv_names)  # at the reveal: an instance never unmasked shows nothing
    policy.record_reveal(state, kind, model, surv_names)
    state["pending-seq"] = -1  # one answer per instance
    return reply


# --- server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advert:
    """A bank's key advertisement for an epoch."""

    name: str
    c_pk: bytes
    signature: bytes


@dataclass(frozen=True)
class Dealing:
    """The public part of a bank's dealing for one instance (see the module docstring)."""

    mask_pk: bytes
    cts: list[bytes]
    key_commits: list[bytes]
    b_commits: list[bytes]
    seed_commit: bytes
    signature: bytes = b""

    @classmethod
    def parse(
        cls,
        reply: Mapping[str, Any],
        members: Sequence[int],
        dealer: int,
        holders: set[int],
        signed_for: tuple[str, int, int, bytes] | None = None,
    ) -> Dealing:
        """Validate a dealing in a reply; raise :class:`ProtocolError` blaming the dealer.

        ``signed_for = (epoch, seq, threshold, dealer's advertised key blob)``: also check
        the dealer's epoch signature over the dealing (:func:`.pairkeys.dealing_digest`).
        """
        pk = reply.get("mask-pk")
        if not is_valid_public_key(pk):
            raise ProtocolError("mask key missing, malformed or of low order", culprit=dealer)
        fields = {}
        for key, width in (("cts", CT_BYTES), ("key-commits", COMMIT_BYTES),
                           ("b-commits", COMMIT_BYTES)):  # fmt: skip
            values = reply.get(key)
            if not isinstance(values, list) or len(values) != len(members):
                raise ProtocolError(f"malformed {key}", culprit=dealer)
            for member, value in zip(members, values, strict=True):
                held = member in holders and (member != dealer or key != "cts")
                if not isinstance(value, bytes) or len(value) != (width if held else 0):
                    raise ProtocolError(f"malformed {key}", culprit=dealer)
            fields[key] = list(values)
        seed_commit = reply.get("seed-commit")
        if not isinstance(seed_commit, bytes) or len(seed_commit) != COMMIT_BYTES:
            raise ProtocolError("malformed seed-commit", culprit=dealer)
        assert isinstance(pk, bytes)
        signature = reply.get("dealing-sig", b"")
        if signed_for is not None:
            epoch, seq, threshold, blob = signed_for
            signed = pairkeys.dealing_digest(epoch, seq, dealer, threshold, members, reply)
            if not pairkeys.dealing_signed(blob, signature, signed):
                raise ProtocolError("dealing not signed by its epoch key", culprit=dealer)
        return cls(
            pk, fields["cts"], fields["key-commits"], fields["b-commits"], seed_commit, signature
        )


@dataclass
class ServerEpoch:
    """The server's view of a key epoch.

    Attributes
    ----------
    epoch : str
        Random epoch identifier.
    members : list[int]
        Sorted node ids that received the key list (Shamir x-coordinate = index + 1).
    names : dict[int, str]
        Bank name of each member (verified against the roster when the server has one).
    threshold : int
        Shamir threshold of the epoch.
    dealings : dict[int, Dealing]
        Each ready bank's dealing for instance ``next_seq``.
    ready : set[int]
        Banks holding a mask key for instance ``next_seq`` whose dealing the server holds.
    next_seq : int
        Sequence number of the next instance.
    rejected : dict[int, str]
        Members whose share_keys reply was refused, and why.
    open : bool
        Whether an instance of the epoch awaits its masked replies.
    pair_pks : dict[int, bytes]
        Each member's signed blob of per-peer encryption keys and epoch verification key
        (:mod:`.pairkeys`), to check accusations and dealing signatures (:mod:`.blame`).
    advert_sigs : dict[int, bytes]
        Each member's advertisement signature (long-term identity), for failure proofs.
    """

    epoch: str
    members: list[int]
    names: dict[int, str]
    threshold: int
    dealings: dict[int, Dealing]
    ready: set[int]
    next_seq: int = FIRST_SEQ
    rejected: dict[int, str] = field(default_factory=dict)
    open: bool = False
    pair_pks: dict[int, bytes] = field(default_factory=dict)  # advertised key blobs
    advert_sigs: dict[int, bytes] = field(default_factory=dict)

    @staticmethod
    def new_id() -> str:
        """A fresh random epoch id."""
        return os.urandom(8).hex()

    @staticmethod
    def advertise_request(epoch: str) -> Payload:
        """Request of the first setup exchange."""
        return {"epoch": epoch}

    @staticmethod
    def collect_advertise(
        epoch: str,
        replies: Mapping[int, Mapping[str, Any]],
        consortium: Consortium | None = None,
    ) -> tuple[dict[int, Advert], dict[int, str]]:
        """Keep well-formed (and, with a roster, correctly signed) advertisements.

        Returns ``(node -> Advert, node -> reason)`` for the accepted and refused ones.
        Two nodes claiming one name are both refused.
        """
        adverts: dict[int, Advert] = {}
        rejected: dict[int, str] = {}
        for node, rep in replies.items():
            node = int(node)
            name, c_pk, sig = rep.get("name"), rep.get("c-pk"), rep.get("signature")
            if not (isinstance(name, str) and name and isinstance(sig, bytes)):
                rejected[node] = "malformed advertisement"
            elif not pairkeys.valid_blob(
                c_pk, None if consortium is None else len(consortium.members) - 1
            ):
                rejected[node] = "low-order or malformed encryption key"
            elif consortium is not None and not consortium.verify(
                name,
                sig,
                advertisement(epoch, node, name, c_pk),  # type: ignore[arg-type]
            ):
                rejected[node] = f"advertisement as {name!r} not signed by that consortium member"
            else:
                adverts[node] = Advert(name, c_pk, sig)  # type: ignore[arg-type]
        counts = Counter(a.name for a in adverts.values())
        for node in [n for n, a in adverts.items() if counts[a.name] > 1]:
            rejected[node] = f"name {adverts.pop(node).name!r} claimed by two nodes"
        return adverts, rejected

    @staticmethod
    def share_keys_request(epoch: str, adverts: Mapping[int, Advert], threshold: int) -> Payload:
        """Request of the second setup exchange (the same for every bank)."""
        members = sorted(adverts)
        return {
            "epoch": epoch,
            "members": members,
            "names": [adverts[m].name for m in members],
            "c-pks": [adverts[m].c_pk for m in members],
            "signatures": [adverts[m].signature for m in members],
            "threshold": threshold,
        }

    @classmethod
    def from_share_keys(
        cls,
        epoch: str,
        adverts: Mapping[int, Advert],
        threshold: int,
        replies: Mapping[int, Mapping[str, Any]],
    ) -> ServerEpoch:
        """Build the epoch from the share_keys replies (invalid dealings are left out)."""
        members = sorted(adverts)
        dealings: dict[int, Dealing] = {}
        rejected: dict[int, str] = {}
        for node, rep in replies.items():
            try:
                signed_for = (epoch, FIRST_SEQ, threshold, adverts[int(node)].c_pk)
                dealings[int(node)] = Dealing.parse(
                    rep, members, int(node), set(members), signed_for
                )
            except ProtocolError as err:
                rejected[int(node)] = str(err)
        _drop_duplicate_keys(dealings, rejected)
        return cls(
            epoch=epoch,
            members=members,
            names={m: adverts[m].name for m in members},
            threshold=threshold,
            dealings=dealings,
            ready=set(dealings),
            rejected=rejected,
            pair_pks={m: adverts[m].c_pk for m in members},
            advert_sigs={m: adverts[m].signature for m in members},
        )

    def open_instance(
        self, participants: Sequence[int], bounds: Bounds, mode: str
    ) -> ServerInstance:
        """Start instance ``next_seq`` over ``participants`` (ready banks).

        Every other bank's key for this sequence number is thereby unusable: it is no
        longer ready and must re-key before it takes part again.
        """
        parts = sorted(set(int(p) for p in participants))
        if self.open:
            raise ProtocolError("an instance of this epoch is still open (strictly sequential)")
        if not set(parts) <= self.ready:
            raise ProtocolError("participants must be ready members")
        inst = ServerInstance(
            epoch=self,
            seq=self.next_seq,
            participants=parts,
            dealings={p: self.dealings[p] for p in parts},
            bounds=bounds,
            mode=mode,
        )
        self.next_seq += 1
        self.ready, self.dealings, self.open = set(), {}, True
        return inst


def _drop_duplicate_keys(dealings: dict[int, Dealing], rejected: dict[int, str]) -> None:
    counts = Counter(d.mask_pk for d in dealings.values())
    for node in [n for n, d in dealings.items() if counts[d.mask_pk] > 1]:
        del dealings[node]
        rejected[node] = "mask key used by another bank"


@dataclass
class ServerInstance:
    """The server's view of one secure-aggregation instance (a round, or a stats query)."""

    epoch: ServerEpoch
    seq: int
    participants: list[int]
    dealings: dict[int, Dealing]
    bounds: Bounds
    mode: str
    survivors: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    blamed: dict[int, str] = field(default_factory=dict)
    layout: Layout | None = None
    masked: dict[int, np.ndarray] = field(default_factory=dict)
    views: dict[int, bytes] = field(default_factory=dict)

    @property
    def used_pks(self) -> dict[int, bytes]:
        """Each participant's mask public key for this instance."""
        return {p: d.mask_pk for p, d in self.dealings.items()}

    def mask_request(self, node: int | None = None) -> Payload:
        """The protocol fields of the ``mask`` request.

        With ``node``, only the dealing shares addressed to that bank (one ciphertext
        per participant). Without, those of every participant (``n^2`` ciphertexts): the
        same request can then be sent to everyone, at a larger size.
        """
        holders = self.participants if node is None else [int(node)]
        members = self.epoch.members
        cts, kcs, bcs = [], [], []
        for holder in holders:
            k = members.index(holder)
            for p in self.participants:
                d = self.dealings[p]
                cts.append(d.cts[k])
                kcs.append(d.key_commits[k])
                bcs.append(d.b_commits[k])
        return {
            "epoch": self.epoch.epoch,
            "seq": self.seq,
            "participants": self.participants,
            "mask-pks": [self.dealings[p].mask_pk for p in self.participants],
            "deal-for": holders,
            "deal-cts": cts,
            "deal-key-commits": kcs,
            "deal-b-commits": bcs,
        }

    def collect_masked(
        self,
        replies: Mapping[int, Mapping[str, Any] | None],
        layouts: Mapping[int, str],
        expected: Callable[[Layout], bool] | None = None,
    ) -> None:
        """Validate masked replies; everyone else (missing, error, malformed) counts as dropped.

        A reply that arrives but breaks the protocol (malformed vector or dealing, a
        low-order or reused key) also blames its sender (:attr:`blamed`).

        Parameters
        ----------
        replies : Mapping
            ``node -> reply dict`` (``None`` for an error reply).
        layouts : Mapping
            ``node -> layout JSON`` each bank declared.
        expected : callable, optional
            Extra check of the layout (e.g. array names and shapes equal the global model).
        """
        ep = self.epoch
        ep.open = False
        parsed: dict[int, Layout] = {}
        for node in self.participants:
            rep = replies.get(node)
            if rep is None:
                self.rejected[node] = "no reply"
                continue
            try:
                layout = Layout.from_json(layouts.get(node, ""))
            except ValueError as err:
                self._blame(node, str(err))
                continue
            if layout.mode != self.mode or (expected is not None and not expected(layout)):
                self._blame(node, "layout does not match the request")
                continue
            parsed[node] = layout
        # All banks share one layout; a bank that disagrees with the majority is rejected.
        if parsed:
            votes = Counter(lay.to_json() for lay in parsed.values())
            best = Layout.from_json(votes.most_common(1)[0][0])
            self.layout = best
            try:
                self.bounds.check(self.mode, len(self.participants), best.size())
            except ValueError as err:
                raise ProtocolError(str(err)) from err
        dealings: dict[int, Dealing] = {}
        for node, layout in parsed.items():
            rep = replies[node]
            assert rep is not None and self.layout is not None
            reason = self._check_vector(layout, rep)
            if not reason:
                try:
                    signed_for = (ep.epoch, self.seq + 1, ep.threshold, ep.pair_pks[node])
                    dealings[node] = Dealing.parse(
                        rep, ep.members, node, set(self.participants), signed_for
                    )
                except ProtocolError as err:
                    reason = str(err)
            if reason:
                self._blame(node, reason)
                continue
            self.masked[node] = rep["masked"]
            view = rep.get("view", b"")
            self.views[node] = view if isinstance(view, bytes) else b""
        dup: dict[int, str] = {}
        _drop_duplicate_keys(dealings, dup)
        for node, reason in dup.items():
            self._blame(node, reason)
            del self.masked[node]
        self.survivors = sorted(self.masked)
        self.dropped = sorted(set(self.participants) - set(self.survivors))
        # Survivors' next keys serve instance seq + 1; everyone else must re-key.
        ep.dealings = {n: dealings[n] for n in self.survivors}
        ep.ready = set(self.survivors)

    def views_differ(self) -> bool:
        """Whether the survivors masked under different request views: the coordinator
        sent them different requests (their masks do not cancel)."""
        return len({self.views.get(u, b"") for u in self.survivors}) > 1

    def _blame(self, node: int, reason: str) -> None:
        self.rejected[node] = reason
        self.blamed[node] = reason

    def _check_vector(self, layout: Layout, rep: Mapping[str, Any]) -> str:
        assert self.layout is not None
        if layout != self.layout:
            return "layout differs from the other banks'"
        vec = rep.get("masked")
        if not isinstance(vec, np.ndarray) or vec.dtype != np.uint64:
            return "masked vector missing or not uint64"
        if vec.shape != (self.layout.size(),):
            return f"masked vector has shape {vec.shape}, expected ({self.layout.size()},)"
        return ""

    def unmask_request(self, node: int) -> Payload:
        """The ``unmask`` request for survivor ``node`` (the same for every survivor)."""
        return {
            "epoch": self.epoch.epoch,
            "seq": self.seq,
            "survivors": self.survivors,
            "dropped": self.dropped,
        }

    def _verified_shares(
        self, replies: Mapping[int, Mapping[str, Any] | None]
    ) -> tuple[dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]]]:
        """Revealed shares that match their dealer's commitment, per dealer.

        A revealed share that does not match blames the bank that revealed it: honest
        holders checked every share against the same commitment when they received it.
        """
        ep = self.epoch
        b_shares: dict[int, list[tuple[int, int]]] = {u: [] for u in self.survivors}
        k_shares: dict[int, list[tuple[int, int]]] = {v: [] for v in self.dropped}
        for holder in self.survivors:
            rep = replies.get(holder)
            if rep is None:
                continue
            got_b, got_k = rep.get("b-shares"), rep.get("key-shares")
            if not (
                isinstance(got_b, list)
                and isinstance(got_k, list)
                and len(got_b) == len(self.survivors)
                and len(got_k) == len(self.dropped)
            ):
                self.blamed[holder] = "malformed unmask reply"
                continue
            k_holder = ep.members.index(holder)
            for dest, owners, got, kind in (
                (b_shares, self.survivors, got_b, "self"),
                (k_shares, self.dropped, got_k, "key"),
            ):
                for owner, raw in zip(owners, got, strict=True):
                    d = self.dealings[owner]
                    commits = d.b_commits if kind == "self" else d.key_commits
                    ok = isinstance(raw, bytes) and (
                        share_commitment(ep.epoch, self.seq, owner, holder, kind, raw)
                        == commits[k_holder]
                    )
                    if not ok:
                        self.blamed[holder] = (
                            f"revealed a share of node {owner} that does not match its commitment"
                        )
                        continue
                    try:
                        dest[owner].append((k_holder + 1, share_from_bytes(raw[SALT_BYTES:])))
                    except ValueError:
                        self.blamed[owner] = "dealt a share outside the field"
        return b_shares, k_shares

    def finish(self, replies: Mapping[int, Mapping[str, Any] | None]) -> np.ndarray:
        """Reconstruct the secrets from the unmask replies and return the unmasked sum.

        Every revealed share is checked against its dealer's commitment; the first ``t``
        verified shares of a secret decide it. If they do not reconstruct the committed
        secret (seed commitment, or the public key), the dealer dealt inconsistent shares
        and is blamed.

        Raises
        ------
        ProtocolError
            If a secret has fewer than ``t`` verified shares or does not verify.
        """
        ep, length = self.epoch, self.layout.size() if self.layout else 0
        b_shares, k_shares = self._verified_shares(replies)
        seeds: dict[int, bytes] = {}
        keys: dict[int, bytes] = {}
        failures: list[str] = []
        for owners, shares, out, kind in (
            (self.survivors, b_shares, seeds, "self mask"),
            (self.dropped, k_shares, keys, "mask key"),
        ):
            for owner in owners:
                got = shares[owner]
                if len(got) < ep.threshold:
                    failures.append(
                        f"{kind} of node {owner}: {len(got)} shares, need {ep.threshold}"
                    )
                    continue
                secret = _reconstruct(got[: ep.threshold])
                d = self.dealings[owner]
                ok = secret is not None and (
                    self_mask_commitment(ep.epoch, self.seq, owner, secret) == d.seed_commit
                    if kind == "self mask"
                    else _pk_matches(secret, d.mask_pk)
                )
                if not ok:
                    self.blamed[owner] = f"its {kind} shares do not reconstruct its commitment"
                    failures.append(f"{kind} of node {owner}: shares inconsistent")
                    continue
                assert secret is not None
                out[owner] = secret
        if failures:
            raise ProtocolError("; ".join(failures))

        total = np.zeros(length, dtype=np.uint64)
        for u in self.survivors:
            total += self.masked[u]
            total -= prg(seeds[u], length)
        for v in self.dropped:
            for u in self.survivors:
                # Survivor u added pairwise_mask(sk_u, pk_v, ..., me=u, peer=v); v's key gives
                # the same seed from the other side.
                info = _mask_info(ep.epoch, self.seq, u, v, self.views.get(u, b""))
                seed = derive_key(keys[v], self.dealings[u].mask_pk, info)
                stream = prg(seed, length)
                if v > u:
                    total -= stream
                else:
                    total += stream
        return total


def _reconstruct(shares: Sequence[tuple[int, int]]) -> bytes | None:
    try:
        return reconstruct_secret(shares, KEY_BYTES)
    except ValueError:
        return None


def _pk_matches(secret: bytes, pk: bytes) -> bool:
    try:
        return public_key_of(secret) == pk
    except CryptoError:
        return False
