"""Fixed-point encoding in the ring Z_(2^64) and the ChaCha20 mask generator.

A real value ``v`` is encoded as ``round(v * 2^bits)`` reduced mod 2^64 (numpy ``uint64``
arithmetic wraps, which is exactly the ring addition). Sums of encoded values decode
correctly as long as the true sum stays in ``(-2^63, 2^63) / 2^bits``; :func:`check_overflow`
enforces this from the clipping bounds before any bank sends anything, in exact integer
arithmetic (a value ``v`` encodes to at most ``ceil(|v| 2^bits)`` in magnitude).

Rounding error: each bank's encoded value is off by at most ``2^-(bits+1)``, so a sum of
``n`` values is off by at most ``n * 2^-(bits+1)``, and a weighted average
``sum(w_i x_i) / sum(w_i)`` (where the product ``w_i x_i`` is what gets encoded) by at
most ``n * 2^-(bits+1) / sum(w_i)`` per coordinate (:func:`quantization_error_bound`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

RING_BITS = 64
_HALF_RING = 2**63
_CHACHA_NONCE = bytes(16)  # every seed is used for exactly one stream


def prg(seed: bytes, length: int) -> np.ndarray:
    """Expand a 32-byte seed into ``length`` pseudo-random ``uint64`` values (ChaCha20).

    Parameters
    ----------
    seed : bytes
        32-byte key; each seed is derived for a single use, so a fixed nonce is safe.
    length : int
        Number of 64-bit words.

    Returns
    -------
    numpy.ndarray
        ``uint64`` array of shape ``(length,)``.
    """
    encryptor = Cipher(algorithms.ChaCha20(seed, _CHACHA_NONCE), mode=None).encryptor()
    stream = encryptor.update(bytes(8 * length))
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64, copy=False)


def quantize(values: np.ndarray, bits: int) -> np.ndarray:
    """Encode float values as fixed point with ``bits`` fractional bits in Z_(2^64).

    The caller must have clipped ``values`` so that ``|v| * 2^bits < 2^63``.
    """
    scaled = np.rint(np.asarray(values, dtype=np.float64) * float(2**bits))
    if scaled.size and np.max(np.abs(scaled)) >= _HALF_RING:
        raise OverflowError("value too large for the fixed-point ring")
    return scaled.astype(np.int64).view(np.uint64)


def dequantize(values: np.ndarray, bits: int) -> np.ndarray:
    """Decode ring elements (read as signed 64-bit) back to floats."""
    return np.asarray(values, dtype=np.uint64).view(np.int64).astype(np.float64) / 2**bits


def clip(values: np.ndarray, bound: float) -> tuple[np.ndarray, int]:
    """Clip to ``[-bound, bound]`` and count the values that were outside (NaN counts too).

    Returns
    -------
    tuple[numpy.ndarray, int]
        The clipped float64 values (NaN replaced by 0) and the number of values changed.
    """
    arr = np.asarray(values, dtype=np.float64)
    nan = np.isnan(arr)
    out = np.clip(np.where(nan, 0.0, arr), -bound, bound)
    count = int(np.count_nonzero(nan | (np.abs(arr) > bound)))
    return out, count


def max_encoded(max_abs_value: float, bits: int) -> int:
    """Largest magnitude ``ceil(max_abs_value * 2^bits)`` an encoded value can take (exact)."""
    if not math.isfinite(max_abs_value) or max_abs_value < 0:
        raise ValueError(f"bound must be finite and non-negative, got {max_abs_value}")
    return math.ceil(Fraction(max_abs_value) * 2**bits)


def check_overflow(num_banks: int, max_abs_value: float, bits: int) -> None:
    """Raise ``ValueError`` if a sum of ``num_banks`` encoded values could wrap around.

    Requires ``num_banks * ceil(max_abs_value * 2^bits) < 2^63``, computed in integers: the
    encoder rounds to nearest, so ``2^51 - 0.25`` encodes to ``2^51`` at 0 bits.
    """
    if not 0 <= bits <= 52:
        raise ValueError(f"quantization_bits must be in [0, 52], got {bits}")
    if num_banks * max_encoded(max_abs_value, bits) >= _HALF_RING:
        raise ValueError(
            f"fixed-point overflow: {num_banks} banks x max |value| {max_abs_value:g} x "
            f"2^{bits} >= 2^63; lower quantization_bits or the clipping bounds"
        )


def quantization_error_bound(num_banks: int, bits: int, total_weight: float = 1.0) -> float:
    """Worst-case rounding error per coordinate of a (weighted) average: ``n 2^-(b+1) / W``."""
    return num_banks * 2.0 ** (-(bits + 1)) / total_weight
