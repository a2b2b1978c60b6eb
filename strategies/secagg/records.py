"""Conversions between Flower records and the protocol's plain dicts and vectors.

Record keys and message types used on the wire:

- ``"secagg"`` (ConfigRecord) in every secure-aggregation request and reply, holding the
  protocol fields (see :mod:`strategies.secagg.protocol`) and, in ``mask`` requests,
  ``phase="mask"``, ``round``, ``mode``, ``weights`` (public/secret),
  ``quantization-bits``, ``value-range``, ``metric-range``, ``max-weight``, ``weight-key``
  and ``arrays-key``;
- ``"secagg-masked"`` (ArrayRecord, one ``uint64`` array ``"y"``) in masked replies, whose
  ``"secagg"`` record also echoes the ``view`` the bank masked under (:mod:`.view`);
- ``"secagg-used"`` (ConfigRecord) in a handler's reply inside the bank: what it used
  (:mod:`.view`); the mod removes it before anything leaves the bank;
- message types ``query.secagg_advertise``, ``query.secagg_share_keys`` and
  ``query.secagg_unmask`` for the key setup and unmask exchanges;
- ``context.state["secagg"]`` (ConfigRecord) for the bank's keys, the shares it holds,
  its pending instance, and the run-wide ``run-*`` entries (keys seen, pinned statistics
  set, revealed models) that survive re-keying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord, RecordDict

from .vector import ArrayKey, Decoded, MetricValue

SECAGG_KEY = "secagg"
MASKED_KEY = "secagg-masked"
MASKED_ARRAY = "y"
STATE_KEY = "secagg"

ADVERTISE = "secagg_advertise"
SHARE_KEYS = "secagg_share_keys"
UNMASK = "secagg_unmask"
ACTIONS = (ADVERTISE, SHARE_KEYS, UNMASK)


def message_type(action: str) -> str:
    """Full message type of a secagg query action, e.g. ``query.secagg_unmask``."""
    return f"query.{action}"


def to_config(payload: Mapping[str, Any]) -> ConfigRecord:
    """Protocol dict (without the masked vector) to a ConfigRecord."""
    return ConfigRecord({k: v for k, v in payload.items() if k != "masked"})


def from_config(record: ConfigRecord) -> dict[str, Any]:
    """ConfigRecord to a plain dict (lists copied, so the record is never mutated)."""
    return {k: list(v) if isinstance(v, list) else v for k, v in record.items()}


def load_state(context: Context) -> dict[str, Any]:
    """The bank's secagg state from ``context.state`` (empty dict if none)."""
    if STATE_KEY not in context.state.config_records:
        return {}
    return from_config(context.state.config_records[STATE_KEY])


def save_state(context: Context, state: Mapping[str, Any]) -> None:
    """Store the bank's secagg state in ``context.state``."""
    context.state[STATE_KEY] = to_config(state)


def secagg_config(content: RecordDict) -> dict[str, Any] | None:
    """The ``"secagg"`` ConfigRecord of a message content as a dict, or None."""
    rec = content.config_records.get(SECAGG_KEY)
    return None if rec is None else from_config(rec)


def masked_vector(content: RecordDict) -> np.ndarray | None:
    """The masked vector of a reply, or None if absent or malformed."""
    rec = content.array_records.get(MASKED_KEY)
    if rec is None or MASKED_ARRAY not in rec:
        return None
    try:
        return rec[MASKED_ARRAY].numpy()
    except (ValueError, TypeError):
        return None


def masked_reply_content(payload: Mapping[str, Any], layout_json: str) -> RecordDict:
    """Reply content of a masked bank: protocol fields, the layout and the masked vector."""
    cfg = to_config(payload)
    cfg["layout"] = layout_json
    return RecordDict(
        {
            SECAGG_KEY: cfg,
            MASKED_KEY: ArrayRecord({MASKED_ARRAY: Array(np.asarray(payload["masked"]))}),
        }
    )


def extract_values(
    mode: str,
    request: RecordDict,
    reply: RecordDict,
    weight_key: str,
    arrays_key: str,
) -> tuple[
    dict[ArrayKey, np.ndarray], dict[ArrayKey, MetricValue], float, dict[ArrayKey, np.ndarray]
]:
    """Pull the values to aggregate out of the app's reply.

    Parameters
    ----------
    mode : str
        ``train``: FedAvg contract, one ArrayRecord (same names and shapes as the global
        arrays in ``request[arrays_key]``) and one MetricRecord with ``weight_key``.
        ``mean``: one MetricRecord with ``weight_key`` (ArrayRecords are not sent).
        ``sum``: every ArrayRecord and MetricRecord is summed; ConfigRecords are refused.
    request, reply : RecordDict
        Content of the server's request and of the app's reply.
    weight_key, arrays_key : str
        Name of the weight metric; key of the global ArrayRecord in the request.

    Returns
    -------
    tuple
        ``(arrays, metrics, weight, reference)`` keyed by ``(record_key, name)``;
        ``reference`` holds the global arrays in ``train`` mode.

    Raises
    ------
    ValueError
        If the reply does not fit the mode.
    """
    arrays: dict[ArrayKey, np.ndarray] = {}
    metrics: dict[ArrayKey, MetricValue] = {}
    reference: dict[ArrayKey, np.ndarray] = {}
    weight = 1.0
    if mode == "sum":
        if reply.config_records:
            raise ValueError("sum replies may hold only ArrayRecords and MetricRecords")
        for rkey in sorted(reply.array_records):
            for name, arr in reply.array_records[rkey].items():
                arrays[(rkey, name)] = arr.numpy()
        for rkey in sorted(reply.metric_records):
            for name, val in reply.metric_records[rkey].items():
                metrics[(rkey, name)] = _metric(val)
        return arrays, metrics, weight, reference

    if len(reply.metric_records) != 1:
        raise ValueError("reply must hold exactly one MetricRecord")
    mkey, mrec = next(iter(reply.metric_records.items()))
    if weight_key not in mrec or isinstance(mrec[weight_key], list):
        raise ValueError(f"reply MetricRecord lacks a scalar {weight_key!r}")
    weight = float(mrec[weight_key])  # type: ignore[arg-type]
    metrics = {(mkey, k): _metric(v) for k, v in mrec.items() if k != weight_key}
    if mode == "train":
        if len(reply.array_records) != 1:
            raise ValueError("train reply must hold exactly one ArrayRecord")
        akey, arec = next(iter(reply.array_records.items()))
        glob = request.array_records.get(arrays_key)
        if glob is None or set(glob.keys()) != set(arec.keys()):
            raise ValueError("reply arrays do not match the global arrays")
        for name in glob.keys():  # the global model's order, the same for every bank
            arrays[(akey, name)] = arec[name].numpy()
            reference[(akey, name)] = glob[name].numpy()
    return arrays, metrics, weight, reference


def _metric(value: Any) -> MetricValue:
    if isinstance(value, list):
        return [float(v) for v in value]
    return float(value)


def decoded_to_records(decoded: Decoded) -> RecordDict:
    """Summed/averaged values back into ArrayRecords and MetricRecords under their keys."""
    out: dict[str, ArrayRecord | MetricRecord] = {}
    for (rkey, name), arr in decoded.arrays.items():
        rec = out.setdefault(rkey, ArrayRecord())
        assert isinstance(rec, ArrayRecord)
        rec[name] = Array(np.asarray(arr))
    for (rkey, name), val in decoded.metrics.items():
        mrec = out.setdefault(rkey, MetricRecord())
        if not isinstance(mrec, MetricRecord):
            raise ValueError(f"record key {rkey!r} used for both arrays and metrics")
        mrec[name] = val
    return RecordDict(out)
