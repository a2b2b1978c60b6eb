"""Blame with evidence: an accusation is acted on only if anyone can check it.

A bank that refuses a request because a peer's dealing does not open, or fails its
commitments, names the dealer and attaches its secret key for the pair (:mod:`.pairkeys`).
The server -- or anyone holding the two signed advertisements and the dealing -- checks:

1. the key is the accuser's advertised key for the dealer (else the accusation is
   unverifiable and ignored: nobody is blamed);
2. with it and the dealer's advertised key for the accuser, it derives the pair's AES key,
   opens the dealer's ciphertext for the accuser (associated data: epoch, dealer, holder,
   instance, mask public key) and checks both share commitments and the field;
3. if that fails the dealer is blamed; if everything checks, the accuser lied and is
   blamed instead.

Revealing the pair's key shows only what the two banks of the pair sent each other, which
the lying one of them held already. If the liar does not collude with the server, the
server gains one share per secret of the honest bank's dealings to the liar in this epoch:
as if one more bank colluded, which the floors' ``t >= c + 2`` absorbs; the accuser itself
re-keys (its key for the refused instance is spent). An accusation without evidence (a
refusal naming a peer) frames no one: the refusing bank is merely left out, as if it
dropped.

A dealer whose self-mask shares turn out inconsistent only after the unmask cannot be
caught before anyone reveals; the instance fails and the model is unchanged. Its signed
dealing and ``t`` revealed shares then prove it (:func:`failure_proof`): honest banks
accept to be asked again at the same model without it (:func:`excused`). That is safe:
either the server could not remove the cheater's self mask (the failed sum showed nothing),
or the cheater gave it its seed, and then the difference of the two sums is the cheater's
own input. Only a bank that signed inconsistent shares -- never an honest one -- can be
excused this way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from . import pairkeys
from .coordinator_protocol import ServerInstance
from .identity import Consortium, Member
from .keys import CryptoError, decrypt, derive_key, public_key_of
from .protocol import (
    DEAL_PLAIN,
    SALT_BYTES,
    SHARE_PLAIN,
    advertisement,
    deal_ad,
    enc_info,
    reconstruct_key,
    self_mask_commitment,
    share_commitment,
    share_ok,
)
from .shamir import share_from_bytes


def judge(
    inst: ServerInstance, accuser: int, culprit: int, evidence: bytes, roster: Iterable[str]
) -> int | None:
    """The node to blame for ``accuser``'s accusation of ``culprit``, or None.

    Parameters
    ----------
    inst : ServerInstance
        The instance whose mask request the accuser refused (it holds the culprit's
        dealing as the server relayed it).
    accuser, culprit : int
        Node ids.
    evidence : bytes
        The accuser's secret key for the pair.
    roster : Iterable[str]
        The consortium's bank names (the order of the advertised key blobs).

    Returns
    -------
    int or None
        ``culprit`` if its dealing fails, ``accuser`` if it checks, None if the evidence
        does not verify (the accusation is ignored).
    """
    ep = inst.epoch
    if culprit not in inst.dealings or accuser not in ep.members or len(evidence) != 32:
        return None
    names, roster = ep.names, list(roster)
    if accuser not in names or culprit not in names or accuser not in ep.pair_pks:
        return None
    try:
        own_pk = pairkeys.key_for(ep.pair_pks[accuser], roster, names[accuser], names[culprit])
        if public_key_of(evidence) != own_pk:
            return None
    except (CryptoError, ValueError):
        return None
    their_pk = pairkeys.key_for(ep.pair_pks[culprit], roster, names[culprit], names[accuser])
    dealing = inst.dealings[culprit]
    k = ep.members.index(accuser)
    try:
        key = derive_key(evidence, their_pk, enc_info(ep.epoch, accuser, culprit))
        plain = decrypt(
            key, dealing.cts[k], deal_ad(ep.epoch, culprit, accuser, inst.seq, dealing.mask_pk)
        )
    except CryptoError:
        return culprit
    ck, cb = plain[:SHARE_PLAIN], plain[SHARE_PLAIN : 2 * SHARE_PLAIN]
    sound = (
        len(plain) == DEAL_PLAIN
        and share_commitment(ep.epoch, inst.seq, culprit, accuser, "key", ck)
        == dealing.key_commits[k]
        and share_commitment(ep.epoch, inst.seq, culprit, accuser, "self", cb)
        == dealing.b_commits[k]
        and share_ok(ck)
        and share_ok(cb)
    )
    return accuser if sound else culprit


# --- a dealer whose shares failed after the unmask ----------------------------------------


def failure_proof(
    inst: ServerInstance, owner: int, replies: Mapping[int, Mapping[str, Any] | None]
) -> str | None:
    """A transferable proof that survivor ``owner`` dealt inconsistent self-mask shares.

    It holds the owner's signed advertisement (its epoch verification key), its signed
    dealing (threshold, members, commitments) and ``t`` revealed shares that match their
    signed commitments but do not reconstruct the signed seed commitment. Honest banks
    accept it in place of the owner when the server retries the same model without it
    (:func:`excused`). None if the dealing carries no signature or too few shares match.
    """
    ep, dealing = inst.epoch, inst.dealings[owner]
    if not dealing.signature or owner not in inst.survivors or owner not in ep.advert_sigs:
        return None
    k_owner = inst.survivors.index(owner)
    shares: list[list[Any]] = []
    for holder in inst.survivors:
        got = (replies.get(holder) or {}).get("b-shares")
        if not isinstance(got, list) or len(got) != len(inst.survivors):
            continue
        raw, x = got[k_owner], ep.members.index(holder)
        commit = share_commitment(ep.epoch, inst.seq, owner, holder, "self", raw)
        if isinstance(raw, bytes) and commit == dealing.b_commits[x]:
            shares.append([x + 1, raw.hex()])
        if len(shares) == ep.threshold:
            break
    if len(shares) < ep.threshold:
        return None
    return json.dumps(
        {
            "epoch": ep.epoch,
            "seq": inst.seq,
            "node": owner,
            "name": ep.names[owner],
            "blob": ep.pair_pks[owner].hex(),
            "advert-sig": ep.advert_sigs[owner].hex(),
            "threshold": ep.threshold,
            "members": ep.members,
            "mask-pk": dealing.mask_pk.hex(),
            "seed-commit": dealing.seed_commit.hex(),
            "key-commits": [c.hex() for c in dealing.key_commits],
            "b-commits": [c.hex() for c in dealing.b_commits],
            "dealing-sig": dealing.signature.hex(),
            "shares": shares,
        }
    )


ROSTER_NAMES = "run-roster-names"
ROSTER_KEYS = "run-roster-keys"


def remember_roster(state: dict[str, Any], consortium: Consortium) -> None:
    """Keep the roster's names and verification keys in the bank's state (run-wide), to
    check failure proofs in later messages."""
    names = consortium.names
    state[ROSTER_NAMES] = names
    state[ROSTER_KEYS] = [consortium.members[n].public_key for n in names]


def excused(proofs: Iterable[str], state: Mapping[str, Any]) -> list[str]:
    """The banks that ``proofs`` show dealt inconsistent shares (checked against the roster
    the bank keeps in its state); malformed or unverifiable proofs excuse no one."""
    names, keys = list(state.get(ROSTER_NAMES, [])), list(state.get(ROSTER_KEYS, []))
    roster = Consortium({n: Member(k) for n, k in zip(names, keys, strict=True)})
    out: list[str] = []
    for text in proofs:
        try:
            name = _proven(json.loads(text), roster)
        except (KeyError, TypeError, ValueError, IndexError):
            name = None
        if name is not None and name not in out:
            out.append(name)
    return sorted(out)


def _proven(p: Mapping[str, Any], roster: Consortium) -> str | None:
    epoch, seq, node, name = str(p["epoch"]), int(p["seq"]), int(p["node"]), str(p["name"])
    blob, threshold = bytes.fromhex(p["blob"]), int(p["threshold"])
    members = [int(m) for m in p["members"]]
    if not roster.verify(
        name, bytes.fromhex(p["advert-sig"]), advertisement(epoch, node, name, blob)
    ):
        return None
    public = {
        "mask-pk": bytes.fromhex(p["mask-pk"]),
        "seed-commit": bytes.fromhex(p["seed-commit"]),
        "key-commits": [bytes.fromhex(c) for c in p["key-commits"]],
        "b-commits": [bytes.fromhex(c) for c in p["b-commits"]],
    }
    signed = pairkeys.dealing_digest(epoch, seq, node, threshold, members, public)
    if not pairkeys.dealing_signed(blob, bytes.fromhex(p["dealing-sig"]), signed):
        return None
    shares, seen = [], set()
    for x, raw_hex in p["shares"]:
        x, raw = int(x), bytes.fromhex(raw_hex)
        if x in seen or not 1 <= x <= len(members):
            return None
        seen.add(x)
        commit = share_commitment(epoch, seq, node, members[x - 1], "self", raw)
        if commit != public["b-commits"][x - 1]:
            return None
        shares.append((x, share_from_bytes(raw[SALT_BYTES:])))
    if len(shares) != threshold or threshold < 2:
        return None
    seed = reconstruct_key(shares)
    consistent = seed is not None and (
        self_mask_commitment(epoch, seq, node, seed) == public["seed-commit"]
    )
    return None if consistent else name
