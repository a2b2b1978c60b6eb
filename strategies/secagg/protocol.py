"""The secure-aggregation protocol itself, free of Flower: plain dicts in, plain dicts out.

Client functions take the bank's state (a flat dict that the Flower mod keeps in
``context.state``) and a request dict from the server, and return a reply dict; they
raise :class:`ProtocolError` to refuse, leaving the state untouched. Server classes hold
the server's view of an epoch and of one aggregation instance. Every value in a request,
reply or state dict is a ConfigRecord value (int, str, bytes, lists of them), except the
masked vector (a ``uint64`` numpy array) which travels in an ArrayRecord.

Message flow (``n`` banks, threshold ``t``; ``->`` server to banks, ``<-`` replies)::

    setup epoch   -> advertise                 <- 2 X25519 public keys (c: encryption, s: mask)
                  -> share_keys (all pubkeys)  <- AES-GCM(Shamir shares of s_sk) per peer
    each instance -> mask (participants' s_pk) <- y = x + PRG(b) + sum_j +-PRG(s_ij), plus
                                                  AES-GCM(shares of b), next s_pk and
                                                  AES-GCM(shares of the next s_sk)
                  -> unmask (survivors, dropped, ciphertexts addressed to the bank)
                                               <- shares of b_u (survivors u),
                                                  shares of s_sk_v (dropped v)
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .keys import (
    KEY_BYTES,
    NONCE_BYTES,
    CryptoError,
    decrypt,
    derive_key,
    digest,
    encrypt,
    generate_keypair,
    label,
    public_key_of,
)
from .masking import prg
from .shamir import SHARE_BYTES, reconstruct_secret, share_from_bytes, share_to_bytes, split_secret
from .vector import Bounds, Layout

CT_BYTES = NONCE_BYTES + SHARE_BYTES + 16  # one encrypted share
MAX_RECONSTRUCTION_ATTEMPTS = 256

Payload = dict[str, Any]


class ProtocolError(Exception):
    """A request or reply violates the protocol; the bank refuses or the server rejects."""


def default_threshold(num_banks: int) -> int:
    """Smallest threshold an honest bank accepts: a strict majority, at least 2."""
    return max(2, num_banks // 2 + 1)


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


# --- labels ------------------------------------------------------------------------------


def _enc_info(epoch: str, a: int, b: int) -> bytes:
    return label("share-encryption", epoch, min(a, b), max(a, b))


def _mask_info(epoch: str, seq: int, a: int, b: int) -> bytes:
    return label("pairwise-mask", epoch, seq, min(a, b), max(a, b))


def _key_share_ad(epoch: str, src: int, dst: int, gen: int, mask_pk: bytes) -> bytes:
    return label("mask-key-share", epoch, src, dst, gen, mask_pk)


def _self_share_ad(epoch: str, seq: int, src: int, dst: int) -> bytes:
    return label("self-mask-share", epoch, seq, src, dst)


def self_mask_commitment(epoch: str, seq: int, node: int, seed: bytes) -> bytes:
    """Hash commitment to a self-mask seed, so the server can check its reconstruction."""
    return digest(label("self-mask-commit", epoch, seq, node), seed)


def pairwise_mask(
    secret_key: bytes, peer_pk: bytes, epoch: str, seq: int, me: int, peer: int, length: int
) -> np.ndarray:
    """Mask ``me`` adds for ``peer`` in instance ``seq``: +PRG if ``peer > me``, else -PRG."""
    seed = derive_key(secret_key, peer_pk, _mask_info(epoch, seq, me, peer))
    stream = prg(seed, length)
    return stream if peer > me else np.negative(stream)  # negation mod 2^64


def _sorted_unique(values: Sequence[int], what: str) -> list[int]:
    out = [int(v) for v in values]
    if out != sorted(set(out)):
        raise ProtocolError(f"{what} must be sorted and distinct")
    return out


def _share_cts(
    secret: bytes,
    threshold: int,
    members: Sequence[int],
    me: int,
    enc_keys: Sequence[bytes],
    ad: Callable[[int], bytes],
    recipients: set[int] | None = None,
) -> tuple[list[bytes], bytes]:
    """Shamir-share ``secret`` over ``members``; encrypt each peer's share for it.

    Returns the ciphertexts aligned with ``members`` (``b""`` for me and for members not in
    ``recipients``) and my own share.
    """
    shares = split_secret(secret, threshold, len(members))
    cts: list[bytes] = []
    own = b""
    for k, member in enumerate(members):
        raw = share_to_bytes(shares[k][1])
        if member == me:
            own = raw
            cts.append(b"")
        elif recipients is not None and member not in recipients:
            cts.append(b"")
        else:
            cts.append(encrypt(enc_keys[k], raw, ad(member)))
    return cts, own


# --- client ------------------------------------------------------------------------------


def client_advertise(state: Payload, me: int, request: Mapping[str, Any]) -> Payload:
    """Start a key epoch: make the two key pairs and return the public keys.

    Any earlier epoch (keys, pending instance) is discarded.
    """
    epoch = str(request["epoch"])
    c_sk, c_pk = generate_keypair()
    s_sk, s_pk = generate_keypair()
    state.clear()
    state.update(
        {
            "epoch": epoch,
            "node-id": me,
            "stage": "advertised",
            "c-sk": c_sk,
            "c-pk": c_pk,
            "mask-sk": s_sk,
            "mask-pk": s_pk,
            "mask-gen": 0,
        }
    )
    return {"c-pk": c_pk, "mask-pk": s_pk}


def client_share_keys(state: Payload, me: int, request: Mapping[str, Any]) -> Payload:
    """Check the epoch's public keys, derive pairwise encryption keys and share ``s_sk``."""
    if state.get("stage") != "advertised" or state.get("epoch") != request.get("epoch"):
        raise ProtocolError("share_keys for an epoch this bank did not advertise in")
    epoch = str(state["epoch"])
    members = _sorted_unique(request["members"], "members")
    c_pks, mask_pks = list(request["c-pks"]), list(request["mask-pks"])
    threshold = int(request["threshold"])
    if me not in members or len(c_pks) != len(members) or len(mask_pks) != len(members):
        raise ProtocolError("member list inconsistent")
    check_threshold(threshold, len(members))
    k_me = members.index(me)
    if c_pks[k_me] != state["c-pk"] or mask_pks[k_me] != state["mask-pk"]:
        raise ProtocolError("server relayed wrong public keys for this bank")
    if len(set(c_pks)) != len(c_pks) or len(set(mask_pks)) != len(mask_pks):
        raise ProtocolError("duplicate public keys")
    try:
        enc_keys = [
            b"" if m == me else derive_key(state["c-sk"], c_pks[k], _enc_info(epoch, me, m))
            for k, m in enumerate(members)
        ]
    except CryptoError as err:
        raise ProtocolError(f"bad public key: {err}") from err
    gen, mask_pk = int(state["mask-gen"]), state["mask-pk"]
    cts, _ = _share_cts(
        state["mask-sk"],
        threshold,
        members,
        me,
        enc_keys,
        lambda dst: _key_share_ad(epoch, me, dst, gen, mask_pk),
    )
    state.update(
        {
            "stage": "ready",
            "members": members,
            "threshold": threshold,
            "enc-keys": enc_keys,
            "peer-gens": [-1] * len(members),
            "last-seq": -1,
            "pending-seq": -1,
        }
    )
    return {"key-shares": cts}


@dataclass(frozen=True)
class MaskRequest:
    """A validated ``mask`` request (server -> bank)."""

    epoch: str
    seq: int
    participants: list[int]
    mask_pks: list[bytes]
    mask_gens: list[int]

    @classmethod
    def parse(cls, state: Mapping[str, Any], me: int, request: Mapping[str, Any]) -> MaskRequest:
        """Check a ``mask`` request against the bank's state; raise ProtocolError to refuse."""
        if state.get("stage") != "ready":
            raise ProtocolError("no key epoch set up")
        if request.get("epoch") != state["epoch"]:
            raise ProtocolError("request for another key epoch")
        seq = int(request["seq"])
        if seq <= int(state["last-seq"]):
            raise ProtocolError(f"instance {seq} is not newer than {state['last-seq']}")
        members: list[int] = list(state["members"])
        participants = _sorted_unique(request["participants"], "participants")
        pks, gens = list(request["mask-pks"]), [int(g) for g in request["mask-gens"]]
        if len(pks) != len(participants) or len(gens) != len(participants):
            raise ProtocolError("participant keys inconsistent")
        if me not in participants or not set(participants) <= set(members):
            raise ProtocolError("participants are not members of the epoch")
        if len(participants) < int(state["threshold"]):
            raise ProtocolError(
                f"{len(participants)} participants, below the threshold {state['threshold']}"
            )
        k = participants.index(me)
        if pks[k] != state["mask-pk"] or gens[k] != int(state["mask-gen"]):
            raise ProtocolError("server lists a mask key this bank does not hold")
        peer_gens = list(state["peer-gens"])
        for p, gen, pk in zip(participants, gens, pks, strict=True):
            if p != me and (gen <= peer_gens[members.index(p)] or len(pk) != KEY_BYTES):
                # Reusing a peer's mask key (or an older one) could let the server combine
                # a key it reconstructed with a self mask it learned in another instance.
                raise ProtocolError(f"stale or malformed mask key for peer {p}")
        return cls(str(state["epoch"]), seq, participants, pks, gens)


def client_mask(state: Payload, me: int, request: Mapping[str, Any], plain: np.ndarray) -> Payload:
    """Mask a plaintext ring vector for one instance and rotate the bank's mask key.

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

    Returns
    -------
    dict
        ``masked`` (uint64 array), ``b-shares`` (aligned with participants),
        ``b-commit``, ``next-mask-pk``, ``next-key-shares`` (aligned with members).
    """
    req = MaskRequest.parse(state, me, request)
    epoch, seq, length = req.epoch, req.seq, int(plain.shape[0])
    members: list[int] = list(state["members"])
    enc_keys: list[bytes] = list(state["enc-keys"])
    threshold = int(state["threshold"])

    masked = np.array(plain, dtype=np.uint64, copy=True)
    for p, pk in zip(req.participants, req.mask_pks, strict=True):
        if p != me:
            try:
                masked += pairwise_mask(state["mask-sk"], pk, epoch, seq, me, p, length)
            except CryptoError as err:
                raise ProtocolError(f"bad mask key for peer {p}: {err}") from err
    seed = os.urandom(KEY_BYTES)
    masked += prg(seed, length)

    b_cts_all, own_b = _share_cts(
        seed,
        threshold,
        members,
        me,
        enc_keys,
        lambda dst: _self_share_ad(epoch, seq, me, dst),
        recipients=set(req.participants),
    )
    b_cts = [b_cts_all[members.index(p)] for p in req.participants]

    next_sk, next_pk = generate_keypair()
    next_gen = int(state["mask-gen"]) + 1
    key_cts, _ = _share_cts(
        next_sk,
        threshold,
        members,
        me,
        enc_keys,
        lambda dst: _key_share_ad(epoch, me, dst, next_gen, next_pk),
    )

    peer_gens = list(state["peer-gens"])
    for p, gen in zip(req.participants, req.mask_gens, strict=True):
        peer_gens[members.index(p)] = gen
    state.update(
        {
            "mask-sk": next_sk,  # the used key is forgotten: each mask key serves once
            "mask-pk": next_pk,
            "mask-gen": next_gen,
            "peer-gens": peer_gens,
            "last-seq": seq,
            "pending-seq": seq,
            "pending-participants": req.participants,
            "pending-pks": req.mask_pks,
            "pending-gens": req.mask_gens,
            "pending-b-share": own_b,
        }
    )
    return {
        "masked": masked,
        "b-shares": b_cts,
        "b-commit": self_mask_commitment(epoch, seq, me, seed),
        "next-mask-pk": next_pk,
        "next-key-shares": key_cts,
    }


def client_unmask(state: Payload, me: int, request: Mapping[str, Any]) -> Payload:
    """Reveal self-mask shares of survivors and mask-key shares of dropped banks.

    Refuses unless survivors and dropped partition the instance's participants, this bank
    is a survivor, there are at least ``t`` survivors, and this bank has not answered an
    unmask request for the instance before. Hence, for every peer, it reveals at most one
    of the two secrets that would together expose that peer's input.
    """
    seq = int(request.get("seq", -2))
    if (
        state.get("stage") != "ready"
        or request.get("epoch") != state["epoch"]
        or seq != int(state["pending-seq"])
    ):
        raise ProtocolError("no pending instance matches this unmask request")
    epoch = str(state["epoch"])
    participants: list[int] = list(state["pending-participants"])
    survivors = _sorted_unique(request["survivors"], "survivors")
    dropped = _sorted_unique(request["dropped"], "dropped")
    if set(survivors) & set(dropped) or sorted(survivors + dropped) != participants:
        raise ProtocolError("survivors and dropped do not partition the participants")
    if me not in survivors:
        raise ProtocolError("asked to unmask while listed as dropped")
    if len(survivors) < int(state["threshold"]):
        raise ProtocolError(
            f"only {len(survivors)} survivors claimed, below the threshold {state['threshold']}"
        )
    b_cts, key_cts = list(request["b-shares"]), list(request["key-shares"])
    if len(b_cts) != len(survivors) or len(key_cts) != len(dropped):
        raise ProtocolError("ciphertext lists do not match survivors/dropped")

    members: list[int] = list(state["members"])
    enc_keys: list[bytes] = list(state["enc-keys"])
    pks = dict(zip(participants, state["pending-pks"], strict=True))
    gens = dict(zip(participants, state["pending-gens"], strict=True))

    def _open(src: int, token: bytes, ad: bytes) -> bytes:
        try:
            return decrypt(enc_keys[members.index(src)], token, ad)
        except CryptoError:
            return b""  # a forged or misrouted share is withheld, not fatal

    b_out = [
        state["pending-b-share"] if u == me else _open(u, tok, _self_share_ad(epoch, seq, u, me))
        for u, tok in zip(survivors, b_cts, strict=True)
    ]
    key_out = [
        _open(v, tok, _key_share_ad(epoch, v, me, int(gens[v]), pks[v]))
        for v, tok in zip(dropped, key_cts, strict=True)
    ]
    state["pending-seq"] = -1  # one answer per instance
    return {"b-shares": b_out, "key-shares": key_out}


# --- server ------------------------------------------------------------------------------


@dataclass
class ServerEpoch:
    """The server's view of a key epoch.

    Attributes
    ----------
    epoch : str
        Random epoch identifier.
    members : list[int]
        Sorted node ids that received the key list (Shamir x-coordinate = index + 1).
    threshold : int
        Shamir threshold of the epoch.
    mask_pks, mask_gens : dict
        Current (unused) mask public key and its generation for every ready bank.
    key_shares : dict
        ``(node, gen) -> ciphertexts aligned with members`` of that mask key's shares.
    ready : set[int]
        Banks whose current mask key is unused and known to the server.
    next_seq : int
        Sequence number of the next instance.
    """

    epoch: str
    members: list[int]
    threshold: int
    mask_pks: dict[int, bytes]
    mask_gens: dict[int, int]
    key_shares: dict[tuple[int, int], list[bytes]]
    ready: set[int]
    next_seq: int = 1

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
        replies: Mapping[int, Mapping[str, Any]],
    ) -> dict[int, tuple[bytes, bytes]]:
        """Keep well-formed advertise replies: ``node -> (c_pk, mask_pk)``."""
        out: dict[int, tuple[bytes, bytes]] = {}
        for node, rep in replies.items():
            c_pk, s_pk = rep.get("c-pk"), rep.get("mask-pk")
            if (
                isinstance(c_pk, bytes)
                and isinstance(s_pk, bytes)
                and len(c_pk) == len(s_pk) == KEY_BYTES
            ):
                out[int(node)] = (c_pk, s_pk)
        return out

    @staticmethod
    def share_keys_request(
        epoch: str, keys: Mapping[int, tuple[bytes, bytes]], threshold: int
    ) -> Payload:
        """Request of the second setup exchange (the same for every bank)."""
        members = sorted(keys)
        return {
            "epoch": epoch,
            "members": members,
            "c-pks": [keys[m][0] for m in members],
            "mask-pks": [keys[m][1] for m in members],
            "threshold": threshold,
        }

    @classmethod
    def from_share_keys(
        cls,
        epoch: str,
        keys: Mapping[int, tuple[bytes, bytes]],
        threshold: int,
        replies: Mapping[int, Mapping[str, Any]],
    ) -> ServerEpoch:
        """Build the epoch from the share_keys replies (malformed ones are left out)."""
        members = sorted(keys)
        shares: dict[tuple[int, int], list[bytes]] = {}
        for node, rep in replies.items():
            cts = rep.get("key-shares")
            if node in keys and _valid_cts(cts, members, node, set(members)):
                shares[(int(node), 0)] = list(cts)
        ready = {node for node, _ in shares}
        return cls(
            epoch=epoch,
            members=members,
            threshold=threshold,
            mask_pks={n: keys[n][1] for n in ready},
            mask_gens=dict.fromkeys(ready, 0),
            key_shares=shares,
            ready=ready,
        )

    def open_instance(
        self, participants: Sequence[int], bounds: Bounds, mode: str
    ) -> ServerInstance:
        """Start an instance over ``participants`` (ready banks), consuming one sequence number."""
        parts = sorted(set(int(p) for p in participants))
        if not set(parts) <= self.ready:
            raise ProtocolError("participants must be ready members")
        inst = ServerInstance(
            epoch=self,
            seq=self.next_seq,
            participants=parts,
            used_pks={p: self.mask_pks[p] for p in parts},
            used_gens={p: self.mask_gens[p] for p in parts},
            bounds=bounds,
            mode=mode,
        )
        self.next_seq += 1
        return inst


def _valid_cts(cts: Any, order: Sequence[int], me: int, recipients: set[int]) -> bool:
    """Ciphertext list aligned with ``order``: empty for me, one share each for recipients."""
    if not isinstance(cts, list) or len(cts) != len(order):
        return False
    for node, ct in zip(order, cts, strict=True):
        if not isinstance(ct, bytes):
            return False
        expected = 0 if node == me or node not in recipients else CT_BYTES
        if len(ct) != expected:
            return False
    return True


@dataclass
class ServerInstance:
    """The server's view of one secure-aggregation instance (a round, or a stats query)."""

    epoch: ServerEpoch
    seq: int
    participants: list[int]
    used_pks: dict[int, bytes]
    used_gens: dict[int, int]
    bounds: Bounds
    mode: str
    survivors: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    layout: Layout | None = None
    masked: dict[int, np.ndarray] = field(default_factory=dict)
    b_shares: dict[int, list[bytes]] = field(default_factory=dict)
    b_commits: dict[int, bytes] = field(default_factory=dict)

    def mask_request(self) -> Payload:
        """The protocol fields of the ``mask`` request (the same for every participant)."""
        return {
            "epoch": self.epoch.epoch,
            "seq": self.seq,
            "participants": self.participants,
            "mask-pks": [self.used_pks[p] for p in self.participants],
            "mask-gens": [self.used_gens[p] for p in self.participants],
        }

    def collect_masked(
        self,
        replies: Mapping[int, Mapping[str, Any] | None],
        layouts: Mapping[int, str],
        expected: Callable[[Layout], bool] | None = None,
    ) -> None:
        """Validate masked replies; everyone else (missing, error, malformed) counts as dropped.

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
        parsed: dict[int, Layout] = {}
        for node in self.participants:
            rep = replies.get(node)
            if rep is None:
                self.rejected[node] = "no reply"
                continue
            try:
                layout = Layout.from_json(layouts.get(node, ""))
            except ValueError as err:
                self.rejected[node] = str(err)
                continue
            if layout.mode != self.mode or (expected is not None and not expected(layout)):
                self.rejected[node] = "layout does not match the request"
                continue
            parsed[node] = layout
        # All banks share one layout; a bank that disagrees with the majority is rejected.
        if parsed:
            votes = Counter(lay.to_json() for lay in parsed.values())
            best = Layout.from_json(votes.most_common(1)[0][0])
            self.layout = best
            size = best.size()
            try:
                self.bounds.check(self.mode, len(self.participants), size)
            except ValueError as err:
                raise ProtocolError(str(err)) from err
        for node, layout in parsed.items():
            rep = replies[node]
            assert rep is not None and self.layout is not None
            reason = self._check_reply(node, layout, rep)
            if reason:
                self.rejected[node] = reason
                continue
            self.masked[node] = rep["masked"]
            self.b_shares[node] = list(rep["b-shares"])
            self.b_commits[node] = rep["b-commit"]
            # The bank's next mask key becomes usable; its old one is now spent.
            gen = self.used_gens[node] + 1
            ep.mask_pks[node], ep.mask_gens[node] = rep["next-mask-pk"], gen
            ep.key_shares[(node, gen)] = list(rep["next-key-shares"])
        self.survivors = sorted(self.masked)
        self.dropped = sorted(set(self.participants) - set(self.survivors))
        for node in self.dropped:
            ep.ready.discard(node)  # must re-key before it takes part again
        for node in self.survivors:
            del ep.key_shares[(node, self.used_gens[node])]  # spent key, never to be revealed

    def _check_reply(self, node: int, layout: Layout, rep: Mapping[str, Any]) -> str:
        assert self.layout is not None
        if layout != self.layout:
            return "layout differs from the other banks'"
        vec = rep.get("masked")
        if not isinstance(vec, np.ndarray) or vec.dtype != np.uint64:
            return "masked vector missing or not uint64"
        if vec.shape != (self.layout.size(),):
            return f"masked vector has shape {vec.shape}, expected ({self.layout.size()},)"
        if not _valid_cts(rep.get("b-shares"), self.participants, node, set(self.participants)):
            return "malformed self-mask shares"
        members = self.epoch.members
        if not _valid_cts(rep.get("next-key-shares"), members, node, set(members)):
            return "malformed key shares"
        for key in ("b-commit", "next-mask-pk"):
            val = rep.get(key)
            if not isinstance(val, bytes) or len(val) != KEY_BYTES:
                return f"malformed {key}"
        return ""

    def unmask_request(self, node: int) -> Payload:
        """The ``unmask`` request for survivor ``node``: the ciphertexts addressed to it."""
        ep = self.epoch
        k_node = ep.members.index(node)
        k_part = self.participants.index(node)
        return {
            "epoch": ep.epoch,
            "seq": self.seq,
            "survivors": self.survivors,
            "dropped": self.dropped,
            "b-shares": [self.b_shares[u][k_part] for u in self.survivors],
            "key-shares": [ep.key_shares[(v, self.used_gens[v])][k_node] for v in self.dropped],
        }

    def finish(self, replies: Mapping[int, Mapping[str, Any] | None]) -> np.ndarray:
        """Reconstruct the secrets from the unmask replies and return the unmasked sum.

        Raises
        ------
        ProtocolError
            If fewer than ``t`` valid shares are available for some secret.
        """
        ep, length = self.epoch, self.layout.size() if self.layout else 0
        xs = {m: k + 1 for k, m in enumerate(ep.members)}
        b_shares: dict[int, list[tuple[int, int]]] = {u: [] for u in self.survivors}
        k_shares: dict[int, list[tuple[int, int]]] = {v: [] for v in self.dropped}
        for node in self.survivors:
            rep = replies.get(node)
            if rep is None:
                continue
            got_b, got_k = rep.get("b-shares"), rep.get("key-shares")
            if not isinstance(got_b, list) or not isinstance(got_k, list):
                continue
            if len(got_b) != len(self.survivors) or len(got_k) != len(self.dropped):
                continue
            for dest, owners, got in (
                (b_shares, self.survivors, got_b),
                (k_shares, self.dropped, got_k),
            ):
                for owner, raw in zip(owners, got, strict=True):
                    try:
                        dest[owner].append((xs[node], share_from_bytes(raw)))
                    except (ValueError, TypeError):
                        pass

        total = np.zeros(length, dtype=np.uint64)
        for u in self.survivors:
            total += self.masked[u]
        for u in self.survivors:
            commit = self.b_commits[u]
            seed = _reconstruct(
                b_shares[u],
                ep.threshold,
                lambda s, u=u, c=commit: self_mask_commitment(ep.epoch, self.seq, u, s) == c,
                f"self mask of bank {u}",
            )
            total -= prg(seed, length)
        for v in self.dropped:
            pk = self.used_pks[v]
            sk = _reconstruct(
                k_shares[v],
                ep.threshold,
                lambda s, pk=pk: _pk_matches(s, pk),
                f"mask key of bank {v}",
            )
            for u in self.survivors:
                # Survivor u added pairwise_mask(sk_u, pk_v, ..., me=u, peer=v); v's key gives
                # the same seed from the other side.
                seed = derive_key(sk, self.used_pks[u], _mask_info(ep.epoch, self.seq, u, v))
                stream = prg(seed, length)
                if v > u:
                    total -= stream
                else:
                    total += stream
        return total


def _pk_matches(secret: bytes, pk: bytes) -> bool:
    try:
        return public_key_of(secret) == pk
    except CryptoError:
        return False


def _reconstruct(
    shares: list[tuple[int, int]], threshold: int, ok: Callable[[bytes], bool], what: str
) -> bytes:
    """Reconstruct from ``threshold`` shares, trying other subsets if verification fails."""
    if len(shares) < threshold:
        raise ProtocolError(f"{what}: {len(shares)} shares, need {threshold}")
    for attempt, subset in enumerate(itertools.combinations(shares, threshold)):
        if attempt >= MAX_RECONSTRUCTION_ATTEMPTS:
            break
        try:
            secret = reconstruct_secret(subset, KEY_BYTES)
        except ValueError:
            continue
        if ok(secret):
            return secret
    raise ProtocolError(f"{what}: shares do not reconstruct a verified secret")
