"""Shamir secret sharing over the prime field GF(2^521 - 1).

Secrets are byte strings of at most 65 bytes (X25519 keys and self-mask seeds are 32
bytes), read as big-endian integers below the prime. A share is the point
``(x, f(x))`` of a random polynomial ``f`` of degree ``threshold - 1`` with ``f(0)`` the
secret; ``x`` is the 1-based position of the share holder in the epoch's member list.
Any ``threshold`` shares determine ``f`` and hence the secret; fewer leave every secret
equally likely (perfect secrecy), because for each candidate secret there is exactly one
polynomial of that degree through it and the given shares.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence

PRIME = 2**521 - 1
SHARE_BYTES = (PRIME.bit_length() + 7) // 8  # 66
MAX_SECRET_BYTES = SHARE_BYTES - 1

Share = tuple[int, int]


def split_secret(
    secret: bytes,
    threshold: int,
    num_shares: int,
    rng: random.Random | None = None,
) -> list[Share]:
    """Split ``secret`` into ``num_shares`` shares, any ``threshold`` of which recover it.

    Parameters
    ----------
    secret : bytes
        The secret, at most 65 bytes.
    threshold : int
        Number of shares needed to reconstruct, ``1 <= threshold <= num_shares``.
    num_shares : int
        Number of shares to produce; share ``k`` (0-based) has ``x = k + 1``.
    rng : random.Random, optional
        Source of the polynomial coefficients, for reproducible tests only. The default
        draws them from the operating system's CSPRNG (``secrets``).

    Returns
    -------
    list[tuple[int, int]]
        The shares ``(x, y)`` with ``x = 1..num_shares``.
    """
    if len(secret) > MAX_SECRET_BYTES:
        raise ValueError(f"secret longer than {MAX_SECRET_BYTES} bytes")
    if not 1 <= threshold <= num_shares:
        raise ValueError(f"need 1 <= threshold ({threshold}) <= num_shares ({num_shares})")
    draw = rng.randrange if rng is not None else secrets.randbelow
    coeffs = [int.from_bytes(secret, "big")] + [draw(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, num_shares + 1):
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def reconstruct_secret(shares: Sequence[Share], secret_len: int) -> bytes:
    """Interpolate the shares at 0 and return the secret as ``secret_len`` bytes.

    All given shares are used; pass exactly ``threshold`` of them (more also works when
    they are consistent). Fewer than ``threshold`` shares give an unrelated value.

    Parameters
    ----------
    shares : Sequence[tuple[int, int]]
        Shares with distinct non-zero ``x``.
    secret_len : int
        Length in bytes of the original secret.

    Returns
    -------
    bytes
        The reconstructed secret.

    Raises
    ------
    ValueError
        If the shares are empty, have repeated ``x``, or interpolate to a value that does
        not fit in ``secret_len`` bytes (a sign of wrong or too few shares).
    """
    if not shares:
        raise ValueError("no shares")
    xs = [x % PRIME for x, _ in shares]
    if len(set(xs)) != len(xs) or 0 in xs:
        raise ValueError("share x-coordinates must be distinct and non-zero")
    secret = 0
    for i, (xi, yi) in enumerate(shares):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * secret_len):
        raise ValueError("shares do not interpolate to a secret of the expected length")
    return secret.to_bytes(secret_len, "big")


def share_to_bytes(y: int) -> bytes:
    """Encode a share value ``y`` as fixed-length big-endian bytes."""
    if not 0 <= y < PRIME:
        raise ValueError("share value outside the field")
    return y.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Decode a share value encoded by :func:`share_to_bytes`."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"share must be {SHARE_BYTES} bytes, got {len(data)}")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise ValueError("share value outside the field")
    return y
