"""Flower's Bulyan without its forced garbage collection per reply.

``flwr.serverapp.strategy.Bulyan.aggregate_train`` (Flower 1.41) reads each selected reply
with ``ArrayRecord.to_numpy_ndarrays(keep_input=False)``, which calls ``gc.collect()`` for
every reply. In a process that holds a simulation, torch and the data, each collection is
slow, so a 10-bank round spent most of its time collecting garbage. The subclass hands Bulyan
records that keep their input instead; the aggregation itself is Flower's, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.common import NDArray
from flwr.serverapp.strategy import Bulyan, FedAvg

from .registry import RobustSettings, register_defence, wrapped


class _KeptArrayRecord(ArrayRecord):
    """An ArrayRecord whose ``to_numpy_ndarrays`` never empties it (so never collects)."""

    def to_numpy_ndarrays(self, *, keep_input: bool = True) -> list[NDArray]:
        """The arrays, leaving the record as it is."""
        return super().to_numpy_ndarrays(keep_input=True)


class FastBulyan(Bulyan):
    """:class:`flwr.serverapp.strategy.Bulyan`, minus a ``gc.collect()`` per reply."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Bulyan's aggregation of ``replies`` (see module doc)."""
        replies = list(replies)
        for msg in replies:
            if msg.has_content() and self.arrayrecord_key in msg.content.array_records:
                record = msg.content[self.arrayrecord_key]
                msg.content[self.arrayrecord_key] = _KeptArrayRecord(dict(record.items()))
        return super().aggregate_train(server_round, replies)


@register_defence("bulyan")
def bulyan(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """Bulyan over Krum selections (needs ``4 * num_malicious + 3`` banks)."""
    f = int(settings.num_malicious)
    if settings.num_banks < 4 * f + 3:
        raise ValueError(
            f"strategy=bulyan with num_malicious={f} needs at least {4 * f + 3} banks "
            f"(4 * num_malicious + 3), got {settings.num_banks}"
        )
    return wrapped(FastBulyan, wrap)(num_malicious_nodes=f, **common)
