"""What the coordinator saw: record every message a Flower Grid carries, and read it back.

:class:`RecordingGrid` wraps any Flower ``Grid`` (simulation or deployment) and appends one
JSON line per message to ``<folder>/messages.jsonl``, with the message's ArrayRecords in
``<folder>/arrays/<seq>.npz``:

- ``direction="in"``: a reply the server received (its message type, round, source node,
  ArrayRecords, MetricRecords and ConfigRecords, or its error). Under secure aggregation these
  are the masked vectors (``secagg-masked``) and the protocol records: exactly what the server
  holds, nothing more;
- ``direction="out"``: a message the server sent (the global model, the agreed standardiser,
  the training settings): what the server itself knows;
- ``direction="decoded"``: what the server computed from the replies, recorded by
  :meth:`RecordingGrid.observe`: each round's aggregate returned by the strategy, each summed
  statistic (``query.moments``, ``query.histogram``) and, under secure aggregation, every
  decoded instance (``message_type="secagg"``: the unmasked sums or weighted averages, e.g. a
  Newton round's summed gradient and Hessian) with its report (survivors, total weight).

Turned on for a simulated run by ``audit.record_server_view=true``; the run folder then also
holds the banks' own files under ``banks/`` (the ground truth an auditor scores attacks
against; the server never sees them). :class:`ServerView` reads a recorded folder.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fl_credit.coordinator.grid_wrapper import PassThroughGrid

log = logging.getLogger(__name__)

SERVER_VIEW = "server_view"
GROUND_TRUTH = "banks"
INDEX = "messages.jsonl"
ARRAYS = "arrays"


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a record value (bytes become ``{"__bytes__": base64}``)."""
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def _round_of(message: Message) -> int | None:
    """The server round a message belongs to: its config's ``server-round``, its secagg
    record's ``round``, else its group id when that is a number."""
    content = message.content if message.has_content() else None
    if content is not None:
        for key, record in content.config_records.items():
            name = "round" if key == "secagg" else "server-round"
            if name in record:
                try:
                    return int(record[name])  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    pass
    try:
        return int(message.metadata.group_id)
    except (TypeError, ValueError):
        return None


class RecordingGrid(PassThroughGrid):
    """A Grid that passes every call on and records every message it carries.

    Parameters
    ----------
    grid : flwr.serverapp.Grid
        The grid Flower handed to the ServerApp.
    folder : str or Path
        Where ``messages.jsonl`` and ``arrays/`` go (created; an existing index is appended).
    """

    def __init__(self, grid: Grid, folder: str | Path) -> None:
        super().__init__(grid)
        self.folder = Path(folder)
        (self.folder / ARRAYS).mkdir(parents=True, exist_ok=True)
        self._index = self.folder / INDEX
        self._seq = sum(1 for _ in open(self._index)) if self._index.exists() else 0
        # Replies carry no round of their own: they take the round (and refer to the entry) of
        # the last message of the same type sent to their node (exchanges are sequential).
        self._sent: dict[tuple[int, str], tuple[int, int | None]] = {}

    # -- Grid interface ------------------------------------------------------------

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Record the outgoing messages, then push them."""
        messages = list(messages)
        for message in messages:
            self._record_message("out", message)
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Pull replies and record each one."""
        replies = list(self.grid.pull_messages(message_ids))
        for reply in replies:
            self._record_message("in", reply)
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Record the outgoing messages and every reply."""
        messages = list(messages)
        for message in messages:
            self._record_message("out", message)
        replies = list(self.grid.send_and_receive(messages, timeout=timeout))
        for reply in replies:
            self._record_message("in", reply)
        return replies

    # -- what the server computed ----------------------------------------------------

    def observe(self, strategy: Any, banks: Any = None) -> None:
        """Also record what the server decodes: the strategy's round aggregates and the
        summed statistics of ``banks`` (a :class:`~fl_credit.coordinator.bank_sum.BankSum`).

        Wraps ``strategy.aggregate_train`` / ``aggregate_evaluate`` and ``banks.sum`` on these
        instances only; their results are returned unchanged.
        """
        train = strategy.aggregate_train

        def aggregate_train(server_round: int, replies: Iterable[Message]):
            arrays, metrics = train(server_round, replies)
            self.record_decoded(
                "train", server_round, arrays=arrays, metrics=metrics, report=_last_report(strategy)
            )
            return arrays, metrics

        strategy.aggregate_train = aggregate_train
        evaluate = strategy.aggregate_evaluate

        def aggregate_evaluate(server_round: int, replies: Iterable[Message]):
            metrics = evaluate(server_round, replies)
            if metrics is not None:
                self.record_decoded("evaluate", server_round, metrics=metrics)
            return metrics

        strategy.aggregate_evaluate = aggregate_evaluate
        aggregator = getattr(strategy, "aggregator", None)
        if aggregator is not None and hasattr(aggregator, "complete"):
            complete = aggregator.complete

            def complete_and_record(grid: Grid, pending: Any, replies, *args, **kwargs):
                decoded, report = complete(grid, pending, replies, *args, **kwargs)
                if decoded is not None:
                    self._record_secure(decoded, report, str(getattr(pending, "mode", "")))
                return decoded, report

            aggregator.complete = complete_and_record
        if banks is not None:
            summed = banks.sum

            def bank_sum(grid: Grid, nodes: list[int], action: str, config, *args, **kwargs):
                values = summed(grid, nodes, action, config, *args, **kwargs)
                step = config["pass"] if "pass" in config else None
                report = _last_report(strategy) if banks.secure else None
                self.record_decoded(
                    f"query.{action}",
                    0,
                    arrays=ArrayRecord([np.asarray(values)]),
                    report=report,
                    extra={"pass": step, "nodes": [int(n) for n in nodes]},
                )
                return values

            banks.sum = bank_sum

    def _record_secure(self, decoded: Any, report: Any, mode: str) -> None:
        """One decoded secure-aggregation instance: its sums (or weighted averages)."""
        arrays: dict[str, dict[str, np.ndarray]] = {}
        for (record, name), values in decoded.arrays.items():
            arrays.setdefault(record, {})[name] = np.asarray(values)
        metrics = {f"{r}/{n}": v for (r, n), v in decoded.metrics.items()}
        content = RecordDict(
            {k: ArrayRecord({n: Array(a) for n, a in v.items()}) for k, v in arrays.items()}
        )
        entry = {
            "direction": "decoded",
            "message_type": "secagg",
            "server_round": int(getattr(report, "server_round", 0)),
            "report": _plain_dict(asdict(report)) if is_dataclass(report) else None,
            "mode": mode,
            "decoded_metrics": _plain_dict(metrics),
            "total_weight": decoded.total_weight,
        }
        self._write(entry, content)

    def record_decoded(
        self,
        kind: str,
        server_round: int,
        *,
        arrays: ArrayRecord | None = None,
        metrics: MetricRecord | None = None,
        report: Any = None,
        extra: dict | None = None,
    ) -> None:
        """Record one value the server computed (an aggregate, a sum) with its report."""
        entry: dict[str, Any] = {
            "direction": "decoded",
            "message_type": kind,
            "server_round": int(server_round),
        }
        records: dict[str, Any] = {}
        if arrays:
            records["arrays"] = arrays
        if metrics:
            records["metrics"] = metrics
        if report is not None:
            entry["report"] = _plain_dict(asdict(report) if is_dataclass(report) else report)
        if extra:
            entry.update(_plain_dict(extra))
        self._write(entry, RecordDict(records) if records else None)

    # -- storage ---------------------------------------------------------------------

    def _record_message(self, direction: str, message: Message) -> None:
        md = message.metadata
        request = None
        if direction == "out":
            server_round = _round_of(message)
            self._sent[(int(md.dst_node_id), md.message_type)] = (self._seq, server_round)
        else:
            request, server_round = self._sent.get(
                (int(md.src_node_id), md.message_type), (None, None)
            )
        entry = {
            "direction": direction,
            "message_type": md.message_type,
            "server_round": server_round,
            "group_id": md.group_id,
            "src_node": int(md.src_node_id),
            "dst_node": int(md.dst_node_id),
            "message_id": md.message_id,
            "reply_to": md.reply_to_message_id,
            "request_seq": request,
            "error": str(message.error.reason) if message.has_error() else None,
        }
        self._write(entry, message.content if message.has_content() else None)

    def _write(self, entry: dict, content: RecordDict | None) -> None:
        entry = {"seq": self._seq, **entry, "arrays": None, "metrics": {}, "configs": {}}
        if content is not None:
            arrays = {
                f"{key}/{name}": arr.numpy()
                for key, rec in content.array_records.items()
                for name, arr in rec.items()
            }
            if arrays:
                rel = f"{ARRAYS}/{self._seq:06d}.npz"
                np.savez(self.folder / rel, **arrays)
                entry["arrays"] = rel
            entry["metrics"] = {
                k: {n: _plain(v) for n, v in r.items()} for k, r in content.metric_records.items()
            }
            entry["configs"] = {
                k: {n: _plain(v) for n, v in r.items()} for k, r in content.config_records.items()
            }
        with open(self._index, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
        self._seq += 1


def _last_report(strategy: Any) -> Any:
    reports = getattr(strategy, "reports", None)
    return reports[-1] if reports else None


def _plain_dict(payload: dict) -> dict:
    return {
        str(k): _plain_dict(v) if isinstance(v, dict) else _plain(v) for k, v in payload.items()
    }


# -- reading -----------------------------------------------------------------------------


@dataclass
class Entry:
    """One recorded message or decoded value (see the module docstring)."""

    seq: int
    direction: str
    message_type: str
    server_round: int | None
    src_node: int | None = None
    dst_node: int | None = None
    error: str | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    arrays_file: Path | None = None

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """ArrayRecords of the message: record key to array name to values."""
        out: dict[str, dict[str, np.ndarray]] = {}
        if self.arrays_file is None:
            return out
        with np.load(self.arrays_file) as z:
            for key in z.files:
                record, name = key.split("/", 1)
                out.setdefault(record, {})[name] = z[key]
        return out

    def config(self, record: str = "config") -> dict[str, Any]:
        """One ConfigRecord as a dict (empty if absent)."""
        return self.configs.get(record, {})


class ServerView:
    """The entries of a folder written by :class:`RecordingGrid`, in recording order.

    Parameters
    ----------
    folder : str or Path
        A run's ``server_view`` folder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index = self.folder / INDEX
        if not index.is_file():
            raise FileNotFoundError(
                f"no recorded server view in {self.folder} (run with audit.record_server_view=true)"
            )
        known = {f for f in Entry.__dataclass_fields__ if f != "extra"}
        self.entries: list[Entry] = []
        for line in index.read_text().splitlines():
            raw = json.loads(line)
            arrays = raw.pop("arrays", None)
            values = {k: v for k, v in raw.items() if k in known}
            values["configs"] = {
                k: {n: _unplain(v) for n, v in r.items()} for k, r in raw["configs"].items()
            }
            extra = {k: v for k, v in raw.items() if k not in known}
            self.entries.append(
                Entry(**values, extra=extra, arrays_file=self.folder / arrays if arrays else None)
            )

    def select(
        self, direction: str, message_type: str | None = None, where: Callable | None = None
    ) -> Iterator[Entry]:
        """Entries of one direction (and message type), optionally filtered by ``where``."""
        for entry in self.entries:
            if entry.direction != direction:
                continue
            if message_type is not None and entry.message_type != message_type:
                continue
            if where is None or where(entry):
                yield entry

    def replies(self, message_type: str, server_round: int | None = None) -> list[Entry]:
        """Error-free replies of one message type (and round)."""
        return list(
            self.select(
                "in",
                message_type,
                lambda e: (
                    e.error is None and (server_round is None or e.server_round == server_round)
                ),
            )
        )

    def sent(self, message_type: str, server_round: int | None = None) -> list[Entry]:
        """Messages the server sent, of one type (and round)."""
        return list(
            self.select(
                "out",
                message_type,
                lambda e: server_round is None or e.server_round == server_round,
            )
        )

    def request_of(self, reply: Entry) -> Entry | None:
        """The message a reply answers."""
        return None if reply.request_seq is None else self.entries[reply.request_seq]

    def decoded(self, kind: str) -> list[Entry]:
        """Values the server computed, of one kind (``train``, ``query.moments``, ...)."""
        return list(self.select("decoded", kind))

    @property
    def secure(self) -> bool:
        """True when the training replies were masked (secure aggregation)."""
        for entry in self.select("in", "train", lambda e: e.error is None):
            return "secagg-masked" in entry.arrays()
        return False


def recording_grid(grid: Grid, run_dir: str | Path) -> RecordingGrid:
    """``grid`` wrapped to record into ``<run_dir>/server_view``."""
    return RecordingGrid(grid, Path(run_dir) / SERVER_VIEW)


def save_ground_truth(prepared: Any, run_dir: str | Path) -> Path:
    """Write the banks' own files (and the test rows) to ``<run_dir>/banks`` for the audit.

    These are what each bank holds, never what the server sees; an auditor scores
    reconstructions against them.
    """
    from fl_credit.data.prepare import write_bank_files

    folder = Path(run_dir) / GROUND_TRUTH
    write_bank_files(prepared, folder, suffix=".npz")
    return folder
