"""Long-term bank identities (Ed25519) and the consortium's roster of them.

Every bank holds one :class:`Identity` (its name and an Ed25519 signing key, kept at the
bank) and the :class:`Consortium` roster (every member bank's name, public verification key
and registered weight). The roster is public and each bank keeps its own copy, obtained at
enrolment: it is never taken from the server. Secure aggregation uses it to verify the key
advertisements of a key epoch (Bonawitz et al.'s active-adversary variant) and, under public
weights, to know every bank's registered weight.

Files (JSON, UTF-8):

- identity: ``{"name": ..., "private_key": <64 hex digits>}``, written with mode 0600;
- roster: ``{"banks": {name: {"public_key": <64 hex digits>, "weight": float}, ...}}``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PUBLIC_KEY_BYTES = 32
_RAW = serialization.Encoding.Raw


class IdentityError(ValueError):
    """An identity or roster file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Identity:
    """A bank's long-term signing identity.

    Parameters
    ----------
    name : str
        The bank's name, as registered in the consortium roster.
    private_bytes : bytes
        Its raw 32-byte Ed25519 signing key; never leaves the bank. (Raw bytes rather than
        a key object, so that an identity can be pickled into simulation workers.)
    """

    name: str
    private_bytes: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise IdentityError("a bank identity needs a name")
        try:
            Ed25519PrivateKey.from_private_bytes(self.private_bytes)
        except (TypeError, ValueError) as err:
            raise IdentityError(f"bank {self.name!r}: malformed signing key") from err

    @property
    def public_key(self) -> bytes:
        """Raw 32-byte Ed25519 verification key."""
        key = Ed25519PrivateKey.from_private_bytes(self.private_bytes).public_key()
        return key.public_bytes(_RAW, serialization.PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``data``."""
        return Ed25519PrivateKey.from_private_bytes(self.private_bytes).sign(data)


@dataclass(frozen=True)
class Member:
    """One roster entry: verification key and registered (public) weight."""

    public_key: bytes
    weight: float = 1.0


@dataclass(frozen=True)
class Consortium:
    """The consortium roster: bank name -> :class:`Member`."""

    members: Mapping[str, Member]

    def __post_init__(self) -> None:
        for name, member in self.members.items():
            _check_member(name, member)

    @property
    def names(self) -> list[str]:
        """Sorted bank names."""
        return sorted(self.members)

    def weight(self, name: str) -> float:
        """Registered weight of ``name`` (KeyError if not a member)."""
        return self.members[name].weight

    def verify(self, name: str, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is ``name``'s Ed25519 signature of ``data``."""
        member = self.members.get(name)
        if member is None or not isinstance(signature, bytes):
            return False
        try:
            Ed25519PublicKey.from_public_bytes(member.public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


def _check_member(name: str, member: Member) -> None:
    if not isinstance(name, str) or not name:
        raise IdentityError("bank names must be non-empty strings")
    if not isinstance(member.public_key, bytes) or len(member.public_key) != PUBLIC_KEY_BYTES:
        raise IdentityError(f"bank {name!r}: public key must be {PUBLIC_KEY_BYTES} bytes")
    if not (isinstance(member.weight, (int, float)) and math.isfinite(member.weight)):
        raise IdentityError(f"bank {name!r}: weight must be a finite number")
    if member.weight <= 0:
        raise IdentityError(f"bank {name!r}: weight must be positive, got {member.weight}")


def generate_identity(name: str) -> Identity:
    """A fresh identity for bank ``name``."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return Identity(name=name, private_bytes=raw)


def make_consortium(
    identities: Iterable[Identity], weights: Mapping[str, float] | None = None
) -> Consortium:
    """The roster of ``identities`` (their public parts), with registered ``weights``
    (default: equal weights of 1)."""
    weights = weights or {}
    members: dict[str, Member] = {}
    for ident in identities:
        if ident.name in members:
            raise IdentityError(f"bank name {ident.name!r} appears twice")
        members[ident.name] = Member(ident.public_key, float(weights.get(ident.name, 1.0)))
    return Consortium(members)


def _write(path: Path, text: str, private: bool) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise IdentityError(f"cannot read {what} {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise IdentityError(f"{what} {path} is not valid JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise IdentityError(f"{what} {path} must hold a JSON object")
    return data


def save_identity(identity: Identity, path: Path) -> Path:
    """Write ``identity`` (private key included) to ``path`` with mode 0600."""
    text = json.dumps({"name": identity.name, "private_key": identity.private_bytes.hex()})
    return _write(Path(path), text, True)


def load_identity(path: Path) -> Identity:
    """Read an identity written by :func:`save_identity`."""
    data = _read_json(Path(path), "identity file")
    try:
        return Identity(
            name=str(data["name"]), private_bytes=bytes.fromhex(str(data["private_key"]))
        )
    except (KeyError, ValueError) as err:
        raise IdentityError(f"identity file {path} is malformed: {err}") from None


def save_consortium(consortium: Consortium, path: Path) -> Path:
    """Write the roster (public keys and weights only) to ``path``."""
    banks = {
        name: {"public_key": m.public_key.hex(), "weight": m.weight}
        for name, m in sorted(consortium.members.items())
    }
    return _write(Path(path), json.dumps({"banks": banks}, indent=2) + "\n", False)


def load_consortium(path: Path) -> Consortium:
    """Read a roster written by :func:`save_consortium`."""
    data = _read_json(Path(path), "consortium roster")
    banks = data.get("banks")
    if not isinstance(banks, dict) or not banks:
        raise IdentityError(f"consortium roster {path} has no banks")
    members = {}
    try:
        for name, entry in banks.items():
            members[str(name)] = Member(
                public_key=bytes.fromhex(str(entry["public_key"])),
                weight=float(entry.get("weight", 1.0)),
            )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise IdentityError(f"consortium roster {path} is malformed: {err}") from None
    return Consortium(members)


def check_identity(identity: Identity, consortium: Consortium) -> None:
    """Raise :class:`IdentityError` unless ``identity`` is registered in ``consortium``."""
    member = consortium.members.get(identity.name)
    if member is None:
        raise IdentityError(f"bank {identity.name!r} is not in the consortium roster")
    if member.public_key != identity.public_key:
        raise IdentityError(f"bank {identity.name!r}: identity key does not match the roster")
