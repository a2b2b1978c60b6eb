"""Attacks on the secagg protocol, played by a malicious server (LocalFederation).

The banks run the unmodified protocol functions; the test plays the server and may send
each bank a different request. Every test first mounts the attack the review found (each
one recovered a bank's exact input, or stalled the federation, on the code before the
hardening: see the commit message), then the smarter follow-up an adversary would try.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.secagg import SecureAggregator, pairkeys
from strategies.secagg import bank_protocol as bank
from strategies.secagg import coordinator_protocol as coord
from strategies.secagg import protocol as proto
from strategies.secagg.blame import judge
from strategies.secagg.identity import generate_identity, make_consortium
from strategies.secagg.inprocess import LocalFederation
from strategies.secagg.keys import encrypt, generate_keypair, public_key_of
from strategies.secagg.masking import check_overflow, max_encoded, quantize
from strategies.secagg.shamir import reconstruct_secret, share_from_bytes
from strategies.secagg.vector import Bounds, Layout

NODES = [3, 17, 42, 99, 123]
BOUNDS = Bounds(value_range=1e6, metric_range=1e6, max_weight=1.0, bits=0)
D = 16
LAYOUT = Layout(mode="sum", arrays=(("a", "x", (D - 1,)),), metrics=())


def _zeros() -> np.ndarray:
    return np.zeros(D, np.uint64)


def _secret(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**40, size=D, dtype=np.uint64)


def _collect(inst: coord.ServerInstance, replies: dict) -> None:
    inst.collect_masked(replies, dict.fromkeys(replies, LAYOUT.to_json()))


def _reconstruct(epoch: coord.ServerEpoch, answers: dict, field: str, k: int) -> bytes:
    """What the server rebuilds from the k-th revealed share of every answer."""
    shares = [
        (epoch.members.index(n) + 1, share_from_bytes(a[field][k][proto.SALT_BYTES :]))
        for n, a in answers.items()
    ]
    return reconstruct_secret(shares[: epoch.threshold], 32)


# --- 1. reveal before use ------------------------------------------------------------------


def test_key_revealed_for_a_withheld_instance_is_never_used() -> None:
    """The server withholds instance 1 from the victim, claims it dropped, gets
    its mask key from the peers, then asks the victim to mask instance 2 with that key."""
    fed = LocalFederation(NODES, threshold=3)
    epoch = fed.setup()
    victim = 42
    inst = epoch.open_instance(NODES, BOUNDS, "sum")
    replies = {
        n: bank.client_mask(fed.states[n], n, inst.mask_request(n), _zeros())
        for n in NODES
        if n != victim
    }
    _collect(inst, replies)
    answers = fed.unmask(inst)
    sk_v = _reconstruct(epoch, answers, "key-shares", 0)
    assert public_key_of(sk_v) == inst.used_pks[victim]  # the server holds the key ...
    # ... but it serves instance 1 only: the victim refuses to use it for instance 2,
    stale = {**inst.mask_request(victim), "seq": inst.seq + 1}
    with pytest.raises(proto.ProtocolError, match="serves instance 1, not 2"):
        bank.client_mask(fed.states[victim], victim, stale, _secret(1))
    # and no peer masks with it under instance 2 (its dealing is bound to instance 1).
    peer = 17
    nxt = epoch.open_instance(epoch.ready, BOUNDS, "sum").mask_request(peer)
    k = NODES.index(victim)
    forged = {**nxt, "participants": NODES}
    for key, old in (("mask-pks", inst.used_pks[victim]),):
        forged[key] = [*nxt[key][:k], old, *nxt[key][k:]]
    row = inst.mask_request(peer)
    for key in ("deal-cts", "deal-key-commits", "deal-b-commits"):
        forged[key] = [*nxt[key][:k], row[key][k], *nxt[key][k:]]
    with pytest.raises(proto.ProtocolError) as err:
        bank.client_mask(fed.states[peer], peer, forged, _zeros())
    assert err.value.culprit == victim  # reused key / dealing for another instance


def test_late_delivery_of_a_withheld_instance_reveals_nothing() -> None:
    """Smarter: withhold instance 1 from the victim, get its key from the peers, *then*
    deliver instance 1 to it. The victim masks with that key, but its self-mask seed
    needs t shares, and the peers have already answered the one unmask of instance 1."""
    fed = LocalFederation(NODES, threshold=3)
    epoch = fed.setup()
    victim = 42
    inst = epoch.open_instance(NODES, BOUNDS, "sum")
    requests = {n: inst.mask_request(n) for n in NODES}
    replies = {
        n: bank.client_mask(fed.states[n], n, requests[n], _zeros()) for n in NODES if n != victim
    }
    _collect(inst, replies)
    fed.unmask(inst)  # the key of the victim is out
    late = bank.client_mask(fed.states[victim], victim, requests[victim], _secret(2))
    assert late["masked"].shape == (D,)
    inst.survivors, inst.dropped = sorted(NODES), []  # now claim it survived
    for n in NODES:
        if n != victim:
            with pytest.raises(proto.ProtocolError, match="no pending instance"):
                bank.client_unmask(fed.states[n], n, inst.unmask_request(n))
    own = bank.client_unmask(fed.states[victim], victim, inst.unmask_request(victim))
    # The server holds one share of the victim's seed (the victim's own), threshold 3:
    k = epoch.members.index(victim)
    guess = proto.reconstruct_key([(k + 1, share_from_bytes(own["b-shares"][k][16:]))])
    seed_commit = inst.dealings[victim].seed_commit
    assert guess is None or (
        proto.self_mask_commitment(epoch.epoch, inst.seq, victim, guess) != seed_commit
    )


@pytest.mark.parametrize("threshold", [3, 4])
def test_server_with_one_colluding_bank_needs_t_above_half_of_n_plus_one(threshold: int) -> None:
    """The argument's bound: with ``c`` colluding banks, split views reveal a bank's input
    iff ``2 t <= n + c``. n = 5, c = 1: the default majority t = 3 is broken (documented;
    ``SecureAggregator(colluders=1)`` raises t to 4), t = 4 holds."""
    fed = LocalFederation(NODES, threshold=threshold)
    epoch = fed.setup()
    a, b, victim, colluder, c = NODES
    x_v = _secret(7)
    inst, replies = fed.mask({n: x_v if n == victim else _zeros() for n in NODES}, BOUNDS)
    _collect(inst, replies)
    views = {  # a and b are told the victim dropped; c and the victim that a and b did
        a: ([a, b, colluder, c], [victim]),
        b: ([a, b, colluder, c], [victim]),
        c: ([victim, colluder, c], [a, b]),
        victim: ([victim, colluder, c], [a, b]),
    }
    key_shares, seed_shares = [], []
    for node, (survivors, dropped) in views.items():
        req = {**inst.unmask_request(node), "survivors": sorted(survivors), "dropped": dropped}
        try:
            ans = bank.client_unmask(fed.states[node], node, req)
        except proto.ProtocolError:
            continue
        x = epoch.members.index(node) + 1
        if victim in dropped:
            share = ans["key-shares"][dropped.index(victim)]
            key_shares.append((x, share_from_bytes(share[proto.SALT_BYTES :])))
        else:
            share = ans["b-shares"][sorted(survivors).index(victim)]
            seed_shares.append((x, share_from_bytes(share[proto.SALT_BYTES :])))
    # The colluding bank hands over both of its shares of the victim's secrets.
    state, k = fed.states[colluder], NODES.index(victim)
    x_m = epoch.members.index(colluder) + 1
    key_shares.append((x_m, share_from_bytes(state["pending-held-key"][k][proto.SALT_BYTES :])))
    seed_shares.append((x_m, share_from_bytes(state["pending-held-b"][k][proto.SALT_BYTES :])))
    enough = len(key_shares) >= threshold and len(seed_shares) >= threshold
    if threshold == 3:
        assert enough
        sk = reconstruct_secret(key_shares[:3], 32)
        seed = reconstruct_secret(seed_shares[:3], 32)
        y = replies[victim]["masked"] - proto.prg(seed, D)
        for peer in NODES:
            if peer != victim:
                y -= proto.pairwise_mask(
                    sk, inst.used_pks[peer], epoch.epoch, inst.seq, victim, peer, D
                )
        np.testing.assert_array_equal(y, x_v)  # the bound is tight
    else:
        assert not enough  # c and the victim refuse 3 survivors; 3 key shares < 4
        assert SecureAggregator(colluders=1).threshold_for(5) == 4
        assert SecureAggregator(colluders=1).threshold_for(6) == 4  # even n: majority is 4
        assert SecureAggregator().threshold_for(5) == 3


# --- 2. stale or relabelled keys -----------------------------------------------------------


def _drop_two_then_reveal(fed: LocalFederation) -> tuple[coord.ServerInstance, dict]:
    """Instance 1 where banks 3 and 17 really drop: the others reveal their mask keys."""
    assert fed.epoch is not None
    inst = fed.epoch.open_instance(NODES, BOUNDS, "sum")
    replies = {
        n: bank.client_mask(fed.states[n], n, inst.mask_request(n), _zeros()) for n in NODES
    }
    del replies[3], replies[17]
    _collect(inst, replies)
    return inst, fed.unmask(inst)


def test_old_keys_of_dropped_banks_are_not_accepted_again() -> None:
    """2 of 5 banks dropped and their keys were revealed; the server lists those
    keys (relabelled) as the victim's peers' keys, to strip every pairwise mask."""
    fed = LocalFederation(NODES, threshold=3)
    fed.setup()
    inst, answers = _drop_two_then_reveal(fed)
    assert fed.epoch is not None
    sk_a = _reconstruct(fed.epoch, answers, "key-shares", 0)
    assert public_key_of(sk_a) == inst.used_pks[3]
    victim, impostor = 42, 99
    nxt = fed.epoch.open_instance(fed.epoch.ready, BOUNDS, "sum")
    req = nxt.mask_request(victim)
    k = req["participants"].index(impostor)
    # The old key, with its old dealing: bound to instance 1 and to bank 3, and seen before.
    req["mask-pks"][k] = inst.used_pks[3]
    req["deal-cts"][k] = inst.mask_request(victim)["deal-cts"][0]
    with pytest.raises(proto.ProtocolError, match="reused") as err:
        bank.client_mask(fed.states[victim], victim, req, _secret(3))
    assert err.value.culprit == impostor


def test_fresh_server_key_for_a_peer_does_not_authenticate() -> None:
    """Smarter: a key the server made itself (never seen, not low order) for a peer, with
    a dealing ciphertext the server encrypted under a key of its own."""
    fed = LocalFederation(NODES, threshold=3)
    epoch = fed.setup()
    victim, impostor = 42, 99
    inst = epoch.open_instance(NODES, BOUNDS, "sum")
    req = inst.mask_request(victim)
    k = req["participants"].index(impostor)
    _, fake_pk = generate_keypair()
    req["mask-pks"][k] = fake_pk
    ad = proto.deal_ad(epoch.epoch, impostor, victim, inst.seq, fake_pk)
    req["deal-cts"][k] = encrypt(b"\x07" * 32, b"\x00" * (2 * proto.SHARE_PLAIN), ad)
    with pytest.raises(proto.ProtocolError, match="does not authenticate") as err:
        bank.client_mask(fed.states[victim], victim, req, _secret(4))
    assert err.value.culprit == impostor


# --- 3. key substitution at setup ----------------------------------------------------------


def _advertise(fed: LocalFederation, epoch_id: str) -> dict[int, dict]:
    return {
        n: bank.client_advertise(
            fed.states[n], n, {"epoch": epoch_id}, fed.identities[n], fed.consortium.members
        )
        for n in NODES
    }


def test_server_substituted_encryption_keys_are_refused() -> None:
    """The server gives the victim its own encryption keys for every peer (it
    could then read every share the victim deals)."""
    fed = LocalFederation(NODES, threshold=3)
    victim = 42
    epoch_id = coord.ServerEpoch.new_id()
    adverts, _ = coord.ServerEpoch.collect_advertise(epoch_id, _advertise(fed, epoch_id))
    request = coord.ServerEpoch.share_keys_request(epoch_id, adverts, 3)
    fakes = {m: generate_keypair()[1] for m in NODES}
    to_victim = {**request, "c-pks": [adverts[m].c_pk if m == victim else fakes[m] for m in NODES]}
    with pytest.raises(proto.ProtocolError, match="not signed") as err:
        bank.client_share_keys(fed.states[victim], victim, to_victim, fed.consortium)
    assert err.value.culprit == NODES[0]
    assert fed.states[victim]["stage"] == "advertised"  # nothing dealt


def test_replayed_or_forged_advertisements_are_refused() -> None:
    """Smarter: replay a genuine signed advertisement from an earlier epoch, or under
    another node id, or sign a fake bank with a key outside the roster."""
    fed = LocalFederation(NODES, threshold=3)
    victim, target = 42, 99
    old_id = coord.ServerEpoch.new_id()
    old = _advertise(fed, old_id)[target]  # a genuine advertisement of epoch "old"
    epoch_id = coord.ServerEpoch.new_id()
    adverts, _ = coord.ServerEpoch.collect_advertise(epoch_id, _advertise(fed, epoch_id))
    request = coord.ServerEpoch.share_keys_request(epoch_id, adverts, 3)
    k = NODES.index(target)
    outsider = generate_identity(adverts[target].name)  # same name, key not in the roster
    fake_pk = generate_keypair()[1]
    cases = {
        "earlier epoch": (old["c-pk"], old["signature"], adverts[target].name),
        "other node": None,
        "outside the roster": (
            fake_pk,
            outsider.sign(proto.advertisement(epoch_id, target, outsider.name, fake_pk)),
            outsider.name,
        ),
    }
    for why, case in cases.items():
        forged = {key: list(v) if isinstance(v, list) else v for key, v in request.items()}
        if case is None:  # genuine advertisements of nodes 3 and 99, swapped
            j = NODES.index(3)
            for key in ("c-pks", "signatures", "names"):
                forged[key][k], forged[key][j] = request[key][j], request[key][k]
        else:
            forged["c-pks"][k], forged["signatures"][k], forged["names"][k] = case
        with pytest.raises(proto.ProtocolError, match="not signed"):
            bank.client_share_keys(dict(fed.states[victim]), victim, forged, fed.consortium)
        assert fed.states[victim]["stage"] == "advertised", why
    # The server with the roster drops such advertisements itself, naming the node.
    replay = {**_advertise(fed, epoch_id), target: old}
    kept, refused = coord.ServerEpoch.collect_advertise(epoch_id, replay, fed.consortium)
    assert target not in kept and "not signed" in refused[target]


def test_duplicate_bank_name_is_refused_by_the_server() -> None:
    fed = LocalFederation(NODES, threshold=3)
    epoch_id = coord.ServerEpoch.new_id()
    replies = _advertise(fed, epoch_id)
    ident = fed.identities[3]
    c_pk = b"".join(generate_keypair()[1] for _ in range(len(NODES)))  # per peer + signing
    replies[99] = {  # a second node signing as bank 3 (with bank 3's own key)
        "name": ident.name,
        "c-pk": c_pk,
        "signature": ident.sign(proto.advertisement(epoch_id, 99, ident.name, c_pk)),
    }
    kept, refused = coord.ServerEpoch.collect_advertise(epoch_id, replies, fed.consortium)
    assert 3 not in kept and 99 not in kept and "two nodes" in refused[99]


def test_unregistered_bank_cannot_join() -> None:
    fed = LocalFederation(NODES, threshold=3)
    other = make_consortium([generate_identity(f"bank_{k}") for k in range(5)])
    epoch_id = coord.ServerEpoch.new_id()
    kept, refused = coord.ServerEpoch.collect_advertise(epoch_id, _advertise(fed, epoch_id), other)
    assert not kept and len(refused) == len(NODES)


# --- 4. differencing (protocol side; through Flower in test_secagg_attacks_flower.py) -----


def test_pinned_statistics_refuse_a_claimed_dropout_even_after_rekeying() -> None:
    """A statistics query over all banks, then the same query where the server
    claims the victim dropped (it would get the others' sum, hence the victim's by
    subtraction); the pin survives a new key epoch."""
    fed = LocalFederation(NODES, threshold=3)
    fed.setup()
    stats = {n: np.full(D, 100 + n, np.uint64) for n in NODES}
    inst, replies = fed.mask(stats, BOUNDS, kind="query")
    _collect(inst, replies)
    np.testing.assert_array_equal(inst.finish(fed.unmask(inst)), sum(stats.values()))
    fed.setup()  # a fresh epoch: the pinned set is kept in the run-wide state
    victim = 42
    inst, replies = fed.mask(stats, BOUNDS, kind="query")
    del replies[victim]
    _collect(inst, replies)
    for n in inst.survivors:
        with pytest.raises(proto.ProtocolError, match="pinned"):
            bank.client_unmask(fed.states[n], n, inst.unmask_request(n))
    # Nor will any bank take part in a statistics sum without the victim.
    fed.setup()
    others = {n: v for n, v in stats.items() if n != victim}
    with pytest.raises(proto.ProtocolError, match="pinned"):
        fed.mask(others, BOUNDS, kind="query")


def test_first_statistics_query_is_refused_with_a_claimed_dropout() -> None:
    fed = LocalFederation(NODES, threshold=3)
    fed.setup()
    inst, replies = fed.mask({n: _zeros() for n in NODES}, BOUNDS, kind="query")
    del replies[42]
    _collect(inst, replies)
    with pytest.raises(proto.ProtocolError, match="pinned"):
        bank.client_unmask(fed.states[3], 3, inst.unmask_request(3))


# --- 5. fewer than three banks -------------------------------------------------------------


def test_two_bank_epoch_is_refused() -> None:
    """With two banks each learns the other's input from the sum."""
    fed = LocalFederation([1, 2])
    with pytest.raises(proto.ProtocolError, match="at least 3"):
        fed.setup()


def test_sum_of_two_survivors_is_refused() -> None:
    """Smarter: a 3-bank epoch, then claim one bank dropped: two survivors."""
    fed = LocalFederation([1, 2, 3])
    epoch = fed.setup()
    assert epoch.threshold == 2
    inst, replies = fed.mask({n: _zeros() for n in (1, 2, 3)}, BOUNDS)
    del replies[3]
    _collect(inst, replies)
    for n in (1, 2):
        with pytest.raises(proto.ProtocolError, match="requires 3"):
            bank.client_unmask(fed.states[n], n, inst.unmask_request(n))


# --- 7. one bank stalls everything ---------------------------------------------------------


@pytest.mark.parametrize("num_banks", [12, 13])
def test_lying_survivor_is_filtered_and_blamed(num_banks: int) -> None:
    """With 12 or more banks the old subset search gave up on one liar."""
    nodes = list(range(1, num_banks + 1))
    fed = LocalFederation(nodes)
    fed.setup()
    plains = {n: np.full(D, n, np.uint64) for n in nodes}
    total, inst = fed.aggregate(plains, LAYOUT, BOUNDS, drop_before_reply=(5,), tamper=None)
    np.testing.assert_array_equal(total, sum(p for n, p in plains.items() if n != 5))
    # Again, with a survivor that lies in every share it reveals.
    plains2 = {n: np.full(D, 2 * n, np.uint64) for n in fed.epoch.ready}
    inst2, replies = fed.mask(plains2, BOUNDS)
    _collect(inst2, replies)
    answers = fed.unmask(inst2)
    liar = nodes[0]
    answers[liar]["b-shares"] = [
        s[: proto.SALT_BYTES] + (12345).to_bytes(66, "big") for s in answers[liar]["b-shares"]
    ]
    total2 = inst2.finish(answers)
    np.testing.assert_array_equal(total2, sum(plains2.values()))
    assert set(inst2.blamed) == {liar}


def test_inconsistent_dealing_is_blamed_on_the_dealer() -> None:
    """A dealer whose committed shares do not reconstruct its committed seed: the
    instance fails, and the dealer (not a revealer) is blamed; the next epoch without it
    aggregates again."""
    fed = LocalFederation(NODES, threshold=3)
    epoch = fed.setup()
    cheat = 99
    inst, replies = fed.mask({n: _zeros() for n in NODES}, BOUNDS)
    replies[cheat]["seed-commit"] = bytes(32)  # commits to a seed it did not share
    st = fed.states[cheat]  # ... and signs that commitment (else it is caught on receipt)
    signed = pairkeys.dealing_digest(
        st["epoch"], st["key-seq"], cheat, st["threshold"], st["members"], replies[cheat]
    )
    replies[cheat]["dealing-sig"] = pairkeys.sign_dealing(st["c-sk"], signed)
    _collect(inst, replies)
    inst2, replies2 = fed.mask({n: np.full(D, 1, np.uint64) for n in NODES}, BOUNDS)
    _collect(inst2, replies2)
    with pytest.raises(proto.ProtocolError, match="inconsistent"):
        inst2.finish(fed.unmask(inst2))
    assert set(inst2.blamed) == {cheat}
    honest = [n for n in NODES if n != cheat]
    fed.setup(absent=[cheat])
    total, _ = fed.aggregate({n: np.full(D, n, np.uint64) for n in honest}, LAYOUT, BOUNDS)
    np.testing.assert_array_equal(total, np.full(D, sum(honest), np.uint64))
    assert epoch.epoch != fed.epoch.epoch


def test_bad_dealing_is_refused_before_anyone_masks() -> None:
    """Garbage key or self-mask shares: every holder refuses the next request, naming the
    dealer, before training and before any share is revealed."""
    fed = LocalFederation(NODES, threshold=3)
    fed.setup()
    cheat = 99
    inst, replies = fed.mask({n: _zeros() for n in NODES}, BOUNDS)
    replies[cheat]["cts"] = [bytes(len(c)) for c in replies[cheat]["cts"]]
    _collect(inst, replies)
    nxt = fed.epoch.open_instance(fed.epoch.ready, BOUNDS, "sum")
    for n in NODES:
        if n != cheat:
            with pytest.raises(proto.ProtocolError) as err:
                bank.client_mask(fed.states[n], n, nxt.mask_request(n), _zeros())
            assert err.value.culprit == cheat and f"[accuse {cheat} evidence " in err.value.reason()
            # The evidence (the holder's key for the pair) convicts the dealer, checkably.
            evidence = proto.evidence_in(err.value.reason())
            assert judge(nxt, n, cheat, evidence, fed.consortium.members) == cheat


def test_low_order_keys_are_rejected_on_receipt() -> None:
    fed = LocalFederation(NODES, threshold=3)
    fed.setup()
    inst, replies = fed.mask({n: _zeros() for n in NODES}, BOUNDS)
    replies[99]["mask-pk"] = bytes(32)
    replies[42]["mask-pk"] = (1).to_bytes(32, "little")  # order-4 point
    _collect(inst, replies)
    assert set(inst.blamed) == {42, 99} and set(inst.dropped) == {42, 99}
    total = inst.finish(fed.unmask(inst))  # treated as dropped: the others still aggregate
    np.testing.assert_array_equal(total, _zeros())


def test_low_order_encryption_key_is_refused_at_setup() -> None:
    """A bank advertising a (validly signed) low-order key, relayed by a server without
    the roster: its peers refuse the epoch naming it, instead of deriving a known key."""
    fed = LocalFederation(NODES, threshold=3)
    epoch_id = coord.ServerEpoch.new_id()
    replies = _advertise(fed, epoch_id)
    cheat = 99
    ident = fed.identities[cheat]
    zeros = bytes(32 * len(NODES))  # a low-order key for every peer (and a signing key)
    replies[cheat] = {
        "name": ident.name,
        "c-pk": zeros,
        "signature": ident.sign(proto.advertisement(epoch_id, cheat, ident.name, zeros)),
    }
    kept, refused = coord.ServerEpoch.collect_advertise(epoch_id, replies, fed.consortium)
    assert cheat not in kept and "low-order" in refused[cheat]  # a server with the roster
    adverts = {n: coord.Advert(r["name"], r["c-pk"], r["signature"]) for n, r in replies.items()}
    request = coord.ServerEpoch.share_keys_request(epoch_id, adverts, 3)
    with pytest.raises(proto.ProtocolError, match="low-order") as err:
        bank.client_share_keys(fed.states[3], 3, request, fed.consortium)
    assert err.value.culprit == cheat


# --- 8. overflow check ---------------------------------------------------------------------


def test_overflow_check_is_exact() -> None:
    """2^51 - 0.25 rounds to 2^51, so 4096 such values wrap around 2^63."""
    value = 2.0**51 - 0.25
    assert max_encoded(value, 0) == 2**51
    wrapped = sum(int(v) for v in quantize(np.full(4096, value), 0).view(np.int64))
    assert wrapped == 2**63  # as a ring sum this is -2^63: the sign flips
    with pytest.raises(ValueError, match="overflow"):
        check_overflow(4096, value, 0)
    check_overflow(4095, value, 0)
