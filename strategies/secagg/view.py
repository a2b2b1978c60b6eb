"""What a bank was asked, as one hash: the view bound into its masks, and the model it used.

*One view per instance.* A bank's view of an instance is a canonical SHA-256 of the whole
request it received: the message type, every record of the content (model arrays,
configuration, the query's parameters), and the common fields of the ``"secagg"`` record
(key epoch, sequence number, participants, their mask keys, mode and bounds) -- everything
except the dealing ciphertexts and commitments relayed to that bank alone. The bank derives
its pairwise masks from the view (:func:`strategies.secagg.protocol.pairwise_mask`), so the
masks of two banks cancel only if both saw the same request. A coordinator that sends one
bank another model, mean or configuration gets a sum with uncancelled ChaCha20 streams of
the pairs concerned: it fails the decoded-sum check and reveals nothing.

*What the bank holds.* A bank may also compute with values it received earlier and keeps
(the agreed standardiser and class weight, a WoE table): a coordinator that re-hands those to
one bank alone equivocates outside the instance. A handler declares them with
:func:`declare_held`, and the mod binds their digest into the view as well
(:func:`masking_view`).

*Digest what is used.* :func:`model_digest` hashes a model the way the bank uses it: arrays
by name (sorted), shapes, values as float64. A handler declares the digest of what it loaded
with :func:`declare_used`; without a declaration the mod digests every ArrayRecord of the
request. Reordering arrays, renaming the record key or changing the dtype therefore does not
make a model "new"; a train or evaluate request that carries no model is refused. The
declarations travel in a reply record that the secagg mod removes before anything leaves
the bank.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from .keys import digest

PER_BANK_FIELDS = frozenset({"deal-for", "deal-cts", "deal-key-commits", "deal-b-commits"})
"""Fields of a ``mask`` request addressed to one bank alone (its dealing shares)."""

USED_KEY = "secagg-used"
"""Reply ConfigRecord in which a handler declares what it used (``model``, ``held``)."""


def _value(value: Any) -> bytes:
    """Unambiguous bytes of a ConfigRecord / MetricRecord value (type tag + content)."""
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0")
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, float):
        return b"f" + struct.pack("<d", value)
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, bytes):
        return b"y" + value
    if isinstance(value, list | tuple):
        items = [_value(v) for v in value]
        return b"l" + b"".join(len(item).to_bytes(4, "big") + item for item in items)
    raise TypeError(f"cannot digest a value of type {type(value).__name__}")


def _fields(items: Iterable[tuple[str, Any]]) -> list[bytes]:
    parts: list[bytes] = []
    for key, value in sorted(items, key=lambda kv: kv[0]):
        parts += [key.encode(), _value(value)]
    return parts


def _array_parts(record: ArrayRecord) -> list[bytes]:
    """Each array as received (serialised bytes, dtype, shape): no deserialisation."""
    parts: list[bytes] = []
    for name in sorted(record.keys()):
        arr = record[name]
        parts += [name.encode(), arr.stype.encode(), arr.dtype.encode()]
        parts += [str(tuple(arr.shape)).encode(), arr.data]
    return parts


def _values_parts(record: ArrayRecord) -> list[bytes]:
    """Each array by value (dtype, shape, C-order little-endian bytes), however serialised:
    for values each bank stored itself, whose serialisation may differ between banks."""
    parts: list[bytes] = []
    for name in sorted(record.keys()):
        value = np.asarray(record[name].numpy())
        value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        parts += [name.encode(), value.dtype.str.encode(), str(value.shape).encode()]
        parts.append(value.tobytes())
    return parts


def _records_parts(records: Mapping[str, Any], by_value: bool = False) -> list[bytes]:
    parts: list[bytes] = []
    for key in sorted(records):
        record = records[key]
        parts.append(key.encode())
        if isinstance(record, ArrayRecord):
            parts += [b"arrays", *(_values_parts(record) if by_value else _array_parts(record))]
        else:
            kind = b"config" if isinstance(record, ConfigRecord) else b"metrics"
            parts += [kind, *_fields(record.items())]
    return parts


def records_digest(records: Mapping[str, Any]) -> bytes:
    """Canonical digest of named records (ArrayRecord, ConfigRecord, MetricRecord), arrays
    by value."""
    return digest(b"records", *_records_parts(records, by_value=True))


def masking_view(view: bytes, held: bytes) -> bytes:
    """The view a bank masks under: its request's, bound to the digest of what it holds."""
    return digest(b"masking-view", view, held) if held else view


def request_view(
    message_type: str, content: RecordDict, secagg_record: Mapping[str, Any], skip: str
) -> bytes:
    """Canonical hash of the request a bank received, its own dealing shares aside.

    Parameters
    ----------
    message_type : str
        The message's type (``train``, ``query.moments``, ...).
    content : RecordDict
        The message content.
    secagg_record : Mapping
        The ``"secagg"`` request fields.
    skip : str
        Record key of the secagg record in ``content`` (hashed through ``secagg_record``).

    Returns
    -------
    bytes
        32-byte SHA-256 digest.
    """
    parts = [b"request-view", message_type.encode()]
    parts += _records_parts({k: content[k] for k in content.keys() if k != skip})
    common = [(k, v) for k, v in secagg_record.items() if k not in PER_BANK_FIELDS]
    parts += [b"secagg", *_fields(common)]
    return digest(*parts)


_NPY_MAGIC = b"\x93NUMPY"


def _float64_bytes(arr: Any) -> tuple[tuple[int, ...], bytes]:
    """Shape and C-order little-endian float64 bytes of a Flower ``Array``.

    A float64 C-order array is read straight from its ``.npy`` serialisation (Flower's
    deserialisation costs more than the digest); anything else is deserialised and cast.
    """
    data = arr.data
    if arr.stype == "numpy.ndarray" and arr.dtype == "float64" and data[:6] == _NPY_MAGIC:
        size = 2 if data[6] == 1 else 4
        start = 8 + size + int.from_bytes(data[8 : 8 + size], "little")
        header = data[8 + size : start]
        if b"'<f8'" in header and b"'fortran_order': False" in header:
            return tuple(arr.shape), data[start:]
    value = np.ascontiguousarray(np.asarray(arr.numpy(), dtype="<f8"))
    return value.shape, value.tobytes()


def model_digest(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Digest of a model as it is used: names sorted, shapes, values as float64."""
    parts = [b"used-model"]
    for name in sorted(arrays):
        value = np.ascontiguousarray(np.asarray(arrays[name], dtype=np.float64))
        parts += [name.encode(), str(value.shape).encode(), value.tobytes()]
    return digest(*parts)


def request_models_digest(content: RecordDict, skip: Iterable[str] = ()) -> bytes:
    """Digest of every ArrayRecord of a request (``b""`` if it carries none).

    The fallback when a handler does not declare what it used: all arrays the handler could
    have read, each record canonical as in :func:`model_digest`.
    """
    records = sorted(k for k in content.array_records if k not in set(skip))
    if not records:
        return b""
    parts = [b"request-models"]
    for key in records:
        rec = content.array_records[key]
        arrays = []
        for name in sorted(rec.keys()):
            shape, values = _float64_bytes(rec[name])
            arrays += [name.encode(), str(shape).encode(), values]
        parts += [key.encode(), digest(b"used-model", *arrays)]
    return digest(*parts)


def _declare(reply: Message, field: str, value: bytes) -> Message:
    if reply.has_content() and not reply.has_error():
        record = reply.content.get(USED_KEY)
        record = record if isinstance(record, ConfigRecord) else ConfigRecord()
        record[field] = value
        reply.content[USED_KEY] = record
    return reply


def declare_used(reply: Message, arrays: Mapping[str, np.ndarray]) -> Message:
    """Attach to ``reply`` the digest of the model the handler computed it with.

    The secagg mod applies the once-per-model rule to this digest.
    """
    return _declare(reply, "model", model_digest(arrays))


def declare_held(reply: Message, held: bytes) -> Message:
    """Attach to ``reply`` the digest of the values the bank kept from earlier messages and
    computed with (``b""``: none). The secagg mod binds it into the masking view."""
    return _declare(reply, "held", held) if held else reply


def pop_declared(reply: Message) -> tuple[bytes | None, bytes]:
    """Remove the handler's declarations from ``reply``; return ``(model, held)`` digests
    (``None`` / ``b""`` where absent)."""
    record = reply.content.get(USED_KEY) if reply.has_content() else None
    if not isinstance(record, ConfigRecord):
        return None, b""
    model, held = record.get("model"), record.get("held")
    del reply.content[USED_KEY]
    model = model if isinstance(model, bytes) and model else None
    return model, held if isinstance(held, bytes) else b""
