"""Secagg protocol without Flower: correctness, dropout recovery, privacy, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from strategies.secagg import bank_protocol as bank
from strategies.secagg import protocol as proto
from strategies.secagg.inprocess import LocalFederation
from strategies.secagg.masking import (
    check_overflow,
    clip,
    dequantize,
    prg,
    quantization_error_bound,
    quantize,
)
from strategies.secagg.shamir import reconstruct_secret, share_from_bytes
from strategies.secagg.vector import Bounds, Layout, decode, encode, make_layout

NODES = [3, 17, 2**63 + 5, 42, 99]  # one id above 2^63: node ids are uint64
BOUNDS = Bounds(value_range=1e6, metric_range=1e6, max_weight=1.0, bits=0)
D = 64


def _layout(d: int = D) -> Layout:
    return Layout(mode="sum", arrays=(("a", "x", (d - 1,)),), metrics=())


def _plains(nodes: list[int], seed: int = 0, d: int = D) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 2**40, size=d, dtype=np.uint64) for n in nodes}


def _fed(threshold: int = 3) -> LocalFederation:
    fed = LocalFederation(NODES, threshold=threshold)
    fed.setup()
    return fed


@pytest.mark.parametrize("dropped", [(), (17,), (3, 42), (2**63 + 5, 99)])
def test_survivors_sum_is_exact(dropped: tuple[int, ...]) -> None:
    fed = _fed()
    plains = _plains(NODES)
    total, inst = fed.aggregate(plains, _layout(), BOUNDS, drop_before_reply=dropped)
    expected = sum((plains[n] for n in NODES if n not in dropped), np.zeros(D, np.uint64))
    np.testing.assert_array_equal(total, expected)
    assert inst.dropped == sorted(dropped)


def test_too_many_dropouts_fail_cleanly() -> None:
    fed = _fed()
    with pytest.raises(proto.ProtocolError, match="only 2 survivors"):
        fed.aggregate(_plains(NODES), _layout(), BOUNDS, drop_before_reply=(3, 17, 42))


def test_survivor_silent_at_unmask_is_tolerated() -> None:
    fed = _fed()
    plains = _plains(NODES, seed=1)
    total, _ = fed.aggregate(
        plains, _layout(), BOUNDS, drop_before_reply=(42,), drop_before_unmask=(99,)
    )
    expected = sum((plains[n] for n in NODES if n != 42), np.zeros(D, np.uint64))
    np.testing.assert_array_equal(total, expected)  # 99's input counts, it was received


def test_one_time_keys_across_instances_with_dropout() -> None:
    """Amortised epoch: several instances, a dropout in the middle, no new key setup."""
    fed = _fed()
    for k, dropped in enumerate([(), (17, 99), ()]):
        assert fed.epoch is not None
        nodes = sorted(fed.epoch.ready)
        plains = _plains(nodes, seed=10 + k)
        total, inst = fed.aggregate(plains, _layout(), BOUNDS, drop_before_reply=dropped)
        expected = sum((plains[n] for n in nodes if n not in dropped), np.zeros(D, np.uint64))
        np.testing.assert_array_equal(total, expected)
        assert inst.seq == k + 1
    assert fed.epoch is not None and fed.epoch.ready == {3, 2**63 + 5, 42}


def test_malformed_replies_are_rejected_like_dropouts() -> None:
    fed = _fed()
    plains = _plains(NODES, seed=2)

    def tamper(node: int, reply: dict) -> dict:
        if node == 17:
            reply["masked"] = reply["masked"][:-1]  # wrong length
        if node == 42:
            reply["masked"] = reply["masked"].astype(np.int64)  # wrong type
        return reply

    total, inst = fed.aggregate(plains, _layout(), BOUNDS, tamper=tamper)
    assert set(inst.rejected) == {17, 42}
    expected = sum((plains[n] for n in NODES if n not in (17, 42)), np.zeros(D, np.uint64))
    np.testing.assert_array_equal(total, expected)


def test_garbage_shares_from_one_bank_are_survived() -> None:
    fed = _fed()
    plains = _plains(NODES, seed=3)
    inst, replies = fed.mask(plains, BOUNDS)
    del replies[99]  # 99 drops: its mask key must be reconstructed
    inst.collect_masked(replies, dict.fromkeys(replies, _layout().to_json()))
    answers = {
        n: bank.client_unmask(fed.states[n], n, inst.unmask_request(n)) for n in inst.survivors
    }
    answers[3]["key-shares"] = [b"\x01" * proto.SHARE_PLAIN]  # a lying survivor
    answers[3]["b-shares"] = [b"\x02" * proto.SHARE_PLAIN] * len(inst.survivors)
    total = inst.finish(answers)  # its shares fail their commitments; the others suffice
    expected = sum((plains[n] for n in NODES if n != 99), np.zeros(D, np.uint64))
    np.testing.assert_array_equal(total, expected)
    assert set(inst.blamed) == {3} and "commitment" in inst.blamed[3]


# --- what the server sees ------------------------------------------------------------------


def test_masked_vector_is_uncorrelated_with_input() -> None:
    fed = _fed()
    d = 20_000
    rng = np.random.default_rng(5)
    x = rng.normal(size=d)
    bounds = Bounds(value_range=8.0, metric_range=8.0, max_weight=1.0, bits=20)
    layout = Layout("sum", (("a", "x", (d - 1,)),), ())
    plains = {}
    for n in NODES:
        vec, _ = encode(layout, {("a", "x"): x[: d - 1] if n == 3 else 0 * x[: d - 1]}, {}, bounds)
        plains[n] = vec
    _, replies = fed.mask(plains, bounds)
    y = replies[3]["masked"].astype(np.float64) / 2.0**64  # what the server receives
    assert abs(np.corrcoef(y[: d - 1], x[: d - 1])[0, 1]) < 0.05
    # Indistinguishable from uniform, and from the masked vector of a different input.
    assert stats.kstest(y, "uniform").pvalue > 1e-4
    y_other = replies[17]["masked"].astype(np.float64) / 2.0**64  # input: all zeros
    assert stats.ks_2samp(y, y_other).pvalue > 1e-4


def test_reply_holds_only_masked_vector_and_ciphertexts() -> None:
    fed = _fed()
    _, replies = fed.mask(_plains(NODES), BOUNDS)
    reply = replies[3]
    public = {"mask-pk", "cts", "key-commits", "b-commits", "seed-commit", "dealing-sig", "view"}
    assert set(reply) == {"masked", *public}
    assert all(len(ct) in (0, proto.CT_BYTES) for ct in reply["cts"])
    assert all(len(c) == proto.COMMIT_BYTES for c in reply["key-commits"] + reply["b-commits"])


# --- a dishonest server ----------------------------------------------------------------------


def test_server_claiming_live_bank_dropped_cannot_unmask_it() -> None:
    fed = _fed()
    victim, d = 42, 4096  # enough coordinates for a tight correlation bound
    rng = np.random.default_rng(9)
    secret = rng.integers(0, 2**40, size=d, dtype=np.uint64)
    plains = {n: secret if n == victim else np.zeros(d, np.uint64) for n in NODES}
    inst, replies = fed.mask(plains, BOUNDS)
    # The server received the victim's masked input but claims it dropped.
    honest = dict(replies)
    del honest[victim]
    inst.collect_masked(honest, dict.fromkeys(honest, _layout(d).to_json()))
    answers = {
        n: bank.client_unmask(fed.states[n], n, inst.unmask_request(n)) for n in inst.survivors
    }
    # It can reconstruct the victim's (one-time) mask key and strip the pairwise masks ...
    shares = [
        (inst.epoch.members.index(n) + 1, share_from_bytes(a["key-shares"][0][proto.SALT_BYTES :]))
        for n, a in answers.items()
    ]
    sk = reconstruct_secret(shares[:3], 32)
    stripped = replies[victim]["masked"].copy()
    for peer in NODES:
        if peer != victim:
            stripped -= proto.pairwise_mask(
                sk, inst.used_pks[peer], inst.epoch.epoch, inst.seq, victim, peer, d
            )
    # ... but the self mask still hides the input,
    assert np.mean(stripped == secret) < 0.01
    assert (
        abs(np.corrcoef(stripped.astype(float), secret.astype(float))[0, 1]) < 0.1
    )  # 6 standard deviations
    # and no bank answers a second unmask request (claiming the victim survived now).
    inst.survivors, inst.dropped = sorted(NODES), []
    inst.masked[victim] = replies[victim]["masked"]
    for n in NODES:
        if n != victim:
            with pytest.raises(proto.ProtocolError, match="no pending instance"):
                bank.client_unmask(fed.states[n], n, inst.unmask_request(n))


def test_bank_refuses_inconsistent_unmask_requests() -> None:
    fed = _fed()
    inst, replies = fed.mask(_plains(NODES), BOUNDS)
    inst.collect_masked(replies, dict.fromkeys(replies, _layout().to_json()))
    base = inst.unmask_request(3)
    cases = {
        "fewer than t survivors": {**base, "survivors": [3, 17], "dropped": [42, 99, 2**63 + 5]},
        "listed as dropped": {**base, "survivors": [17, 42, 99, 2**63 + 5], "dropped": [3]},
        "not a partition": {**base, "survivors": [3, 17, 42], "dropped": [42, 99, 2**63 + 5]},
        "wrong instance": {**base, "seq": base["seq"] + 1},
    }
    for why, req in cases.items():
        req["b-shares"] = [b""] * len(req["survivors"])
        req["key-shares"] = [b""] * len(req["dropped"])
        with pytest.raises(proto.ProtocolError):
            bank.client_unmask(fed.states[3], 3, req)
        assert fed.states[3]["pending-seq"] == base["seq"], why  # refusing reveals nothing


def test_bank_refuses_replayed_requests() -> None:
    """A server cannot make a bank mask twice, or with a key other than the current one."""
    fed = _fed()
    plains = _plains(NODES)
    inst, replies = fed.mask(plains, BOUNDS)
    inst.collect_masked(replies, dict.fromkeys(replies, _layout().to_json()))
    fed.unmask(inst)
    old = inst.mask_request(3)
    assert fed.epoch is not None
    nxt = fed.epoch.open_instance(NODES, BOUNDS, "sum").mask_request(3)
    with pytest.raises(proto.ProtocolError, match="not newer"):
        bank.client_mask(fed.states[3], 3, old, plains[3])
    # The previous instance's keys under the new sequence number: this bank's key is spent.
    with pytest.raises(proto.ProtocolError, match="does not hold"):
        bank.client_mask(fed.states[3], 3, {**old, "seq": nxt["seq"]}, plains[3])
    bank.client_mask(fed.states[3], 3, nxt, plains[3])  # the honest request is fine


def test_minority_threshold_is_refused() -> None:
    fed = LocalFederation(NODES, threshold=2)
    with pytest.raises(proto.ProtocolError, match="threshold"):
        fed.setup()


# --- fixed point -----------------------------------------------------------------------------


def test_quantization_roundtrip_and_bound() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(-3, 3, size=1000)
    for bits in (8, 16, 24):
        back = dequantize(quantize(values, bits), bits)
        assert np.max(np.abs(back - values)) <= 2.0 ** (-(bits + 1)) + 1e-15
    assert quantization_error_bound(5, 16, 100.0) == 5 * 2.0**-17 / 100.0


def test_weighted_train_vector_decodes_to_fedavg() -> None:
    rng = np.random.default_rng(1)
    glob = {("arrays", "w"): rng.normal(size=(3, 4)), ("arrays", "b"): rng.normal(size=4)}
    bounds = Bounds(value_range=0.5, metric_range=10.0, max_weight=1e4, bits=16)
    weights = [120.0, 33.0, 910.0]
    total = None
    news, losses = [], []
    clipped_expected = 0
    for k, w in enumerate(weights):
        new = {
            key: v + rng.normal(scale=0.2 + 0.3 * (k == 2), size=v.shape) for key, v in glob.items()
        }
        loss = {("metrics", "loss"): float(k), ("metrics", "hist"): [1.0, 2.0 * k]}
        layout = make_layout("train", new, loss)
        vec, clipped = encode(layout, new, loss, bounds, weight=w, reference=glob)
        n_out = sum(int(np.sum(np.abs(new[key] - glob[key]) > 0.5)) for key in glob)
        assert clipped == n_out
        clipped_expected += n_out
        total = vec if total is None else total + vec
        news.append(new)
        losses.append(loss)
    out = decode(layout, total, bounds.bits)
    total_w = sum(weights)
    bound = quantization_error_bound(len(weights), bounds.bits, total_w)
    for key in glob:
        fedavg = (
            sum(
                w * np.clip(n[key] - glob[key], -0.5, 0.5)
                for w, n in zip(weights, news, strict=True)
            )
            / total_w
        )
        assert np.max(np.abs(out.arrays[key] - fedavg)) <= bound
    assert out.total_weight == total_w
    assert out.clipped == clipped_expected
    assert (
        abs(out.metrics[("metrics", "loss")] - sum(w * k for k, w in enumerate(weights)) / total_w)
        <= bound
    )


def test_clip_counts_out_of_range_and_nan() -> None:
    out, n = clip(np.array([0.1, -2.0, 3.0, np.nan, np.inf]), 1.0)
    assert n == 4
    np.testing.assert_array_equal(out, [0.1, -1.0, 1.0, 0.0, 1.0])


def test_overflow_is_checked_before_masking() -> None:
    check_overflow(10, 1.0 * 2**20, 16)
    with pytest.raises(ValueError, match="overflow"):
        check_overflow(50, 2.0**40, 20)
    bounds = Bounds(value_range=1e3, metric_range=1.0, max_weight=2**30, bits=24)
    with pytest.raises(ValueError, match="overflow"):
        bounds.check("train", 10, 100)


def test_prg_is_deterministic_per_seed() -> None:
    a, b = prg(b"\x01" * 32, 100), prg(b"\x01" * 32, 100)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, prg(b"\x02" * 32, 100))
    assert a.dtype == np.uint64
