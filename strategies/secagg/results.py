"""What a sum returns, secure (:meth:`.aggregator.SecureAggregator.secure_sum`) or plain
(:func:`.aggregator.plain_sum`): the summed records and the report of the instance."""

from __future__ import annotations

from dataclasses import dataclass, field

from flwr.app import RecordDict


@dataclass
class AggregationReport:
    """What the server learned about one secure-aggregation instance (besides the sum).

    Attributes
    ----------
    label : str
        Human-readable instance name, e.g. ``"round 3 (train)"``.
    server_round : int
        Server round (0 outside the training loop).
    participants, survivors, dropped : list[int]
        Node ids asked, node ids whose masked input was accepted, the rest.
    rejected : dict[int, str]
        Why each dropped node's input was not accepted (error, malformed, ...).
    blamed : dict[int, str]
        Nodes held responsible for breaking the protocol in this instance (excluded from
        every later instance and key epoch of the run), and why.
    clipped : int
        Total number of values the survivors clipped.
    total_weight : float or None
        Sum of the survivors' weights (weighted modes).
    ok : bool
        Whether the aggregate was produced.
    reason : str
        Why not, if ``ok`` is False.
    exchanges : int
        Message exchanges (send_and_receive calls) this instance used, key setup included.
    seconds : float
        Wall-clock time of the server-side secagg work, including the exchanges it ran
        itself (key setup, unmask, and the request of a secure sum).
    exchange_seconds : float
        The part of ``seconds`` spent waiting for those exchanges.
    """

    label: str
    server_round: int
    participants: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    blamed: dict[int, str] = field(default_factory=dict)
    clipped: int = 0
    total_weight: float | None = None
    ok: bool = False
    reason: str = ""
    exchanges: int = 0
    seconds: float = 0.0
    exchange_seconds: float = 0.0



@dataclass
class SumResult:
    """Result of :meth:`.aggregator.SecureAggregator.secure_sum` / :func:`.aggregator.plain_sum`.

    Attributes
    ----------
    records : RecordDict or None
        The summed ArrayRecords and MetricRecords, under the keys the banks used; None if
        the instance failed (see ``report.reason``).
    report : AggregationReport
        Survivors, dropouts, clipping count, cost.
    """

    records: RecordDict | None
    report: AggregationReport
