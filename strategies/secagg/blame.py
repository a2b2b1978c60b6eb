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
the lying one of them held already. An accusation without evidence (a refusal naming a
peer) frames no one: the refusing bank is merely left out, as if it dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import pairkeys
from .keys import CryptoError, decrypt, derive_key, public_key_of
from .protocol import (
    SHARE_PLAIN,
    ServerInstance,
    _deal_ad,
    _enc_info,
    _share_ok,
    share_commitment,
)


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
        key = derive_key(evidence, their_pk, _enc_info(ep.epoch, accuser, culprit))
        plain = decrypt(
            key, dealing.cts[k], _deal_ad(ep.epoch, culprit, accuser, inst.seq, dealing.mask_pk)
        )
    except CryptoError:
        return culprit
    ck, cb = plain[:SHARE_PLAIN], plain[SHARE_PLAIN:]
    sound = (
        len(plain) == 2 * SHARE_PLAIN
        and share_commitment(ep.epoch, inst.seq, culprit, accuser, "key", ck)
        == dealing.key_commits[k]
        and share_commitment(ep.epoch, inst.seq, culprit, accuser, "self", cb)
        == dealing.b_commits[k]
        and _share_ok(ck)
        and _share_ok(cb)
    )
    return accuser if sound else culprit
