"""What a malicious bank sees of one training round, and how it writes its reply.

A Flower ``train`` request carries the global model (ArrayRecord ``"arrays"``) and a
ConfigRecord ``"config"`` with ``"server-round"``; the bank's honest reply carries its trained
model (same array names and shapes) and a MetricRecord with ``"num-examples"``.
:class:`TrainExchange` holds both as float64 numpy arrays so that an attack can compute on
the update ``honest - global`` and hand back a model and a claimed weight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
WEIGHT_KEY = "num-examples"
ROUND_KEY = "server-round"
POISON_KEY = "attack-poison"
"""Key of the ConfigRecord in the bank's own ``context.state`` by which a malicious bank asks
its own train handler to poison its rows (``"spec"``: a JSON string, see
:func:`strategies.attacks.poison_rows`). The state, not the request: the request is what the
bank's secure-aggregation mod binds its masks to, and it must stay the one every bank got."""


class AttackError(Exception):
    """The attack cannot act on this message (one line, sent back as the bank's error)."""


@dataclass
class TrainExchange:
    """One train request and the bank's honest answer to it.

    Attributes
    ----------
    names : list of str
        Array names of the model, in the global model's order.
    global_arrays, honest_arrays : list of numpy.ndarray
        The received global model and the bank's honestly trained model (float64).
    weight : float
        The ``num-examples`` the honest reply claims.
    server_round : int
        The server round of the request.
    partition_id : int
        The simulated bank's partition id.
    """

    names: list[str]
    global_arrays: list[np.ndarray]
    honest_arrays: list[np.ndarray]
    weight: float
    server_round: int
    partition_id: int

    @property
    def update(self) -> list[np.ndarray]:
        """The honest update, trained minus global weights."""
        return [h - g for h, g in zip(self.honest_arrays, self.global_arrays, strict=True)]

    def model_from_update(self, update: list[np.ndarray]) -> list[np.ndarray]:
        """Global weights plus ``update``."""
        return [g + u for g, u in zip(self.global_arrays, update, strict=True)]


def flatten(arrays: list[np.ndarray]) -> np.ndarray:
    """All arrays as one float64 vector."""
    return np.concatenate([np.ravel(a).astype(np.float64) for a in arrays])


def unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Cut ``vector`` back into arrays shaped like ``like``."""
    out, start = [], 0
    for a in like:
        out.append(np.asarray(vector[start : start + a.size], dtype=np.float64).reshape(a.shape))
        start += a.size
    return out


def is_train(message: Message) -> bool:
    """Whether ``message`` is a train request with content."""
    return message.metadata.message_type.split(".")[0] == "train" and message.has_content()


def server_round(message: Message) -> int:
    """The request's ``server-round`` (0 when absent)."""
    config = message.content.config_records.get(CONFIG_KEY)
    return int(config.get(ROUND_KEY, 0)) if config is not None else 0


def set_poison(context: Context, spec: Mapping[str, Any] | None) -> None:
    """Ask the bank's train handler to poison its rows by ``spec`` (None: clean rows)."""
    if spec:
        context.state[POISON_KEY] = ConfigRecord({"spec": json.dumps(dict(spec), sort_keys=True)})
    elif POISON_KEY in context.state:
        del context.state[POISON_KEY]


def poison_order(context: Context) -> str | None:
    """The poisoning order :func:`set_poison` left in the bank's state (None: clean rows)."""
    record = context.state.get(POISON_KEY)
    return None if record is None else str(record["spec"])


def read_exchange(request: Message, reply: Message, partition_id: int) -> TrainExchange:
    """Pair the global model of ``request`` with the model in the honest ``reply``.

    Raises
    ------
    AttackError
        If the reply is not a model of the global model's shape (e.g. a Newton round's
        gradient and Hessian): model-poisoning attacks need model-update rounds.
    """
    global_record = request.content.array_records.get(ARRAYS_KEY)
    reply_record = reply.content.array_records.get(ARRAYS_KEY)
    if global_record is None or reply_record is None:
        raise AttackError("attack: the train request or reply carries no model arrays")
    names = list(global_record.keys())
    if list(reply_record.keys()) != names or any(
        reply_record[n].shape != global_record[n].shape for n in names
    ):
        raise AttackError(
            "attack: the bank's reply is not a model update (model poisoning needs "
            "train.optimizer=sgd rounds)"
        )
    metrics = reply.content.metric_records.get(METRICS_KEY, MetricRecord())
    return TrainExchange(
        names=names,
        global_arrays=[global_record[n].numpy().astype(np.float64) for n in names],
        honest_arrays=[reply_record[n].numpy().astype(np.float64) for n in names],
        weight=float(metrics.get(WEIGHT_KEY, 0.0)),
        server_round=server_round(request),
        partition_id=partition_id,
    )


def rewrite_reply(
    request: Message,
    reply: Message,
    exchange: TrainExchange,
    arrays: list[np.ndarray],
    weight: float,
) -> Message:
    """A reply to ``request``: the honest ``reply`` with its model replaced by ``arrays`` and
    its weight by ``weight``.

    Array dtypes follow the honest reply; other metrics are kept, so that the reply has the
    same public layout as an honest bank's (needed under secure aggregation).
    """
    honest = reply.content[ARRAYS_KEY]
    record = ArrayRecord()
    for name, values in zip(exchange.names, arrays, strict=True):
        dtype = honest[name].numpy().dtype
        record[name] = Array(np.asarray(values, dtype=dtype))
    metrics = MetricRecord(dict(reply.content.metric_records.get(METRICS_KEY, MetricRecord())))
    metrics[WEIGHT_KEY] = float(weight)
    records = dict(reply.content.items())
    records[ARRAYS_KEY] = record
    records[METRICS_KEY] = metrics
    return Message(content=RecordDict(records), reply_to=request)
