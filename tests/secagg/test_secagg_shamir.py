"""Property tests of the Shamir secret sharing used for secagg dropout recovery."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.secagg.shamir import (
    PRIME,
    SHARE_BYTES,
    reconstruct_secret,
    share_from_bytes,
    share_to_bytes,
    split_secret,
)

secrets_ = st.binary(min_size=1, max_size=65)


@st.composite
def sharing(draw: st.DrawFn) -> tuple[bytes, int, int, list[int]]:
    secret = draw(st.binary(min_size=32, max_size=32))
    n = draw(st.integers(min_value=1, max_value=12))
    t = draw(st.integers(min_value=1, max_value=n))
    subset = draw(st.permutations(range(n)))[:t]
    return secret, t, n, subset


@settings(max_examples=60, deadline=None)
@given(sharing())
def test_any_t_shares_reconstruct(case: tuple[bytes, int, int, list[int]]) -> None:
    secret, t, n, subset = case
    shares = split_secret(secret, t, n)
    assert reconstruct_secret([shares[i] for i in subset], len(secret)) == secret


@settings(max_examples=60, deadline=None)
@given(sharing())
def test_t_minus_one_shares_do_not_reconstruct(case: tuple[bytes, int, int, list[int]]) -> None:
    secret, t, n, subset = case
    if t < 2:
        return
    shares = [split_secret(secret, t, n)[i] for i in subset[: t - 1]]
    try:
        guess = reconstruct_secret(shares, len(secret))
    except ValueError:
        return  # interpolated value does not even fit in 32 bytes
    assert guess != secret  # fails with probability ~2^-265


@settings(max_examples=30, deadline=None)
@given(sharing(), st.binary(min_size=32, max_size=32))
def test_t_minus_one_shares_fit_every_secret(
    case: tuple[bytes, int, int, list[int]], other: bytes
) -> None:
    """Perfect secrecy: t-1 shares plus ANY candidate secret define a valid sharing."""
    secret, t, n, subset = case
    if t < 2:
        return
    shares = split_secret(secret, t, n)
    known = [shares[i] for i in subset[: t - 1]]
    # The unique degree-(t-1) polynomial through (0, other) and the known shares ...
    points = [(0, int.from_bytes(other, "big")), *known]

    def poly(x: int) -> int:
        total = 0
        for i, (xi, yi) in enumerate(points):
            num, den = 1, 1
            for j, (xj, _) in enumerate(points):
                if j != i:
                    num = num * (x - xj) % PRIME
                    den = den * (xi - xj) % PRIME
            total = (total + yi * num * pow(den, -1, PRIME)) % PRIME
        return total

    # ... completes them to n shares from which `other` is reconstructed.
    forged = [(x, poly(x)) for x in range(1, n + 1)]
    assert all(forged[x - 1] == (x, y) for x, y in known)
    assert reconstruct_secret(forged[:t], 32) == other


@settings(max_examples=40, deadline=None)
@given(secrets_, st.integers(min_value=2, max_value=6))
def test_all_subsets_agree(secret: bytes, n: int) -> None:
    t = n // 2 + 1
    shares = split_secret(secret, t, n)
    for subset in itertools.combinations(shares, t):
        assert reconstruct_secret(subset, len(secret)) == secret


def test_seeded_rng_is_deterministic() -> None:
    a = split_secret(b"k" * 32, 3, 5, rng=random.Random(7))
    b = split_secret(b"k" * 32, 3, 5, rng=random.Random(7))
    assert a == b
    assert a != split_secret(b"k" * 32, 3, 5)


def test_share_encoding_roundtrip_and_validation() -> None:
    y = PRIME - 1
    assert share_from_bytes(share_to_bytes(y)) == y
    assert len(share_to_bytes(0)) == SHARE_BYTES
    with pytest.raises(ValueError):
        share_from_bytes(b"\xff" * SHARE_BYTES)  # >= PRIME
    with pytest.raises(ValueError):
        share_from_bytes(b"\x00" * 10)
    with pytest.raises(ValueError):
        split_secret(b"x" * 66, 2, 3)
    with pytest.raises(ValueError):
        split_secret(b"x", 4, 3)
    with pytest.raises(ValueError):
        reconstruct_secret([(1, 5), (1, 6)], 1)
