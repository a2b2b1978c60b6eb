"""The bank's half of the secure-aggregation protocol (:mod:`.protocol`), free of Flower.

Each function takes the bank's state (a flat dict that the Flower mod keeps in
``context.state``) and a request dict from the coordinator, and returns a reply dict; it
raises :class:`~.protocol.ProtocolError` to refuse, leaving the state untouched. A bank
checks a request only against its own state, its identity and the roster.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import pairkeys, policy
from .identity import Consortium, Identity
from .keys import (
    KEY_BYTES,
    CryptoError,
    decrypt,
    derive_key,
    encrypt,
    fingerprint,
    generate_keypair,
)
from .masking import prg
from .protocol import (
    DEAL_PLAIN,
    FIRST_SEQ,
    SALT_BYTES,
    SHARE_PLAIN,
    Payload,
    ProtocolError,
    advertisement,
    check_members,
    check_threshold,
    deal_ad,
    enc_info,
    min_survivors,
    pairwise_mask,
    self_mask_commitment,
    share_commitment,
    share_ok,
)
from .shamir import share_to_bytes, split_secret
from .tag import CONTRIBUTION_BYTES, group_key

SEEN_KEY = "run-seen"  # fingerprints of every public key this bank has seen in the run


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
            cts.append(encrypt(enc_keys[k], plain, deal_ad(epoch, me, member, seq, pk)))
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
            enc_keys.append(derive_key(own_sk, their_pk, enc_info(epoch, me, member)))
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
                    state["enc-keys"][members.index(p)], ct, deal_ad(epoch, p, me, seq, pk)
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
                or not share_ok(ck)
                or not share_ok(cb)
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
