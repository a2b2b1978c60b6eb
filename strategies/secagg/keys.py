"""Key agreement, key derivation and authenticated encryption (all from ``cryptography``).

- X25519 for the two key pairs of every bank (one for share encryption, one for masks),
- HKDF-SHA256 to turn an X25519 shared secret into a 32-byte key bound to a label,
- AES-256-GCM for the Shamir shares sent through the server, with associated data that
  binds sender, recipient, epoch and purpose so a share cannot be replayed elsewhere.
"""

from __future__ import annotations

import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
PROTOCOL_LABEL = b"fl-credit/secagg/v1"

_RAW = serialization.Encoding.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_RAW_PUB = serialization.PublicFormat.Raw


class CryptoError(Exception):
    """A ciphertext failed authentication or a key is malformed."""


def generate_keypair() -> tuple[bytes, bytes]:
    """Generate an X25519 key pair.

    Returns
    -------
    tuple[bytes, bytes]
        ``(secret_key, public_key)``, 32 raw bytes each.
    """
    sk = X25519PrivateKey.generate()
    return (
        sk.private_bytes(_RAW, _RAW_PRIV, serialization.NoEncryption()),
        sk.public_key().public_bytes(_RAW, _RAW_PUB),
    )


def public_key_of(secret_key: bytes) -> bytes:
    """Return the raw X25519 public key of a raw secret key."""
    try:
        sk = X25519PrivateKey.from_private_bytes(secret_key)
    except ValueError as err:
        raise CryptoError(str(err)) from err
    return sk.public_key().public_bytes(_RAW, _RAW_PUB)


_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))  # fixed, public probe key


def is_valid_public_key(public_key: object) -> bool:
    """Whether ``public_key`` is a usable X25519 public key (32 bytes, not low order).

    A low-order point (the all-zero key among them) makes every agreement with it
    degenerate; ``cryptography`` refuses to compute such an agreement, so one probe
    agreement with a fixed key detects it.
    """
    if not isinstance(public_key, bytes) or len(public_key) != KEY_BYTES:
        return False
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        return False
    return True


def fingerprint(public_key: bytes) -> bytes:
    """16-byte fingerprint of a public key (for the "seen before" check)."""
    return digest(b"key-fingerprint", public_key)[:16]


@functools.lru_cache(maxsize=4)
def _private_key(secret_key: bytes) -> X25519PrivateKey:
    """Key object of a raw secret key (one party derives many pairwise keys from it)."""
    return X25519PrivateKey.from_private_bytes(secret_key)


def derive_key(secret_key: bytes, peer_public_key: bytes, info: bytes) -> bytes:
    """X25519 with a peer, then HKDF-SHA256 to a 32-byte key labelled by ``info``.

    Both ends of a pair derive the same key with the same ``info``; different labels give
    independent keys.
    """
    try:
        shared = _private_key(secret_key).exchange(
            X25519PublicKey.from_public_bytes(peer_public_key)
        )
    except ValueError as err:  # wrong length or a low-order point
        raise CryptoError(str(err)) from err
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
    return hkdf.derive(shared)


def label(*parts: str | int | bytes) -> bytes:
    """Build an unambiguous HKDF / associated-data label from parts."""
    out = [PROTOCOL_LABEL]
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out.append(len(raw).to_bytes(2, "big") + raw)
    return b"|".join(out)


def encrypt(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM encrypt; returns ``nonce || ciphertext || tag``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def decrypt(key: bytes, token: bytes, associated_data: bytes) -> bytes:
    """Decrypt a token from :func:`encrypt`; raise :class:`CryptoError` if it is not authentic."""
    if len(token) < NONCE_BYTES + 16:
        raise CryptoError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(token[:NONCE_BYTES], token[NONCE_BYTES:], associated_data)
    except InvalidTag as err:
        raise CryptoError("ciphertext failed authentication") from err


def digest(*parts: bytes) -> bytes:
    """SHA-256 over length-prefixed parts (commitments and key fingerprints)."""
    h = hashlib.sha256(PROTOCOL_LABEL)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()
