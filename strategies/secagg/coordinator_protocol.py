"""The coordinator's half of the secure-aggregation protocol (:mod:`.protocol`), free of
Flower: the view of a key epoch (:class:`ServerEpoch`) and of one aggregation instance
(:class:`ServerInstance`), which validate the banks' replies, blame the ones that break the
protocol, and reconstruct the unmasked sum.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import pairkeys
from .identity import Consortium
from .keys import CryptoError, derive_key, is_valid_public_key, public_key_of
from .masking import prg
from .protocol import (
    COMMIT_BYTES,
    CT_BYTES,
    FIRST_SEQ,
    SALT_BYTES,
    Payload,
    ProtocolError,
    advertisement,
    mask_info,
    reconstruct_key,
    self_mask_commitment,
    share_commitment,
)
from .shamir import share_from_bytes
from .vector import Bounds, Layout


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
                secret = reconstruct_key(got[: ep.threshold])
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
                info = mask_info(ep.epoch, self.seq, u, v, self.views.get(u, b""))
                seed = derive_key(keys[v], self.dealings[u].mask_pk, info)
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
