"""``SecAggFedAvg``: FedAvg in which the server learns only the sum of the banks' updates."""

from __future__ import annotations

from collections.abc import Iterable
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from .aggregator import PendingInstance, SecureAggregator
from .identity import Consortium
from .masking import check_overflow, quantization_error_bound
from .results import AggregationReport, SumResult
from .vector import Bounds, Decoded, Layout


class SecAggFedAvg(FedAvg):
    """Federated averaging over secure aggregation (pairwise masking with dropout recovery).

    Each round, every sampled bank masks the vector
    ``[n_k * clip(w_k - w_global), n_k * metrics_k, n_k, clipped_k]``; the server unmasks
    only the sum over the banks that survived, checks it (:func:`~.vector.check_sum`) and
    returns ``w_global + sum(n_k * delta_k) / sum(n_k)`` and the weighted-average metrics,
    like :class:`flwr.serverapp.strategy.FedAvg` (up to clipping and a rounding error of at
    most ``n * 2^-(bits+1) / sum(n_k)`` per coordinate). ``n_k`` is the bank's weight
    registered in the consortium roster (``weights="public"``, the default) or its own
    "num-examples" inside the masked vector (``weights="secret"``). Nothing about a single
    bank's data reaches the server in plaintext.

    The banks' ClientApp must use :func:`~strategies.secagg.secagg_mod` and
    :func:`~strategies.secagg.install_secagg`.

    Parameters
    ----------
    threshold : int, optional
        Shamir threshold; default a strict majority of the banks (``n // 2 + 1``, min 2).
        Up to ``n - threshold`` banks may drop after the key exchange.
    clipping_range : float (default: 1.0)
        Each coordinate of a bank's update ``new - global`` is clipped to this range.
    quantization_bits : int (default: 16)
        Fractional bits of the fixed-point encoding in Z_(2^64).
    metric_range : float (default: 1e3)
        Training (and evaluation) metrics are clipped to this range.
    max_weight : float (default: 2**20)
        Largest weight; secret weights are clipped to ``[0, max_weight]``, public ones must
        lie in ``(0, max_weight]``.
    weights : str (default: ``"public"``)
        ``"public"``: weights fixed at enrolment (the roster); a bank cannot inflate its
        share and the decoded total weight is checked exactly. ``"secret"``: each bank's
        "num-examples" inside the masked vector; the banks must allow it, a bank can then
        claim up to ``max_weight``, and the total weight of two rounds whose survivors
        differ by one bank gives that bank's count.
    consortium : Consortium, optional
        The roster of bank identities (verified names, public weights); see
        :class:`~strategies.secagg.SecureAggregator`.
    min_threshold : int, optional
        Never run an instance with a threshold (or fewer survivors) below this.
    colluders : int (default: 0)
        Banks assumed to collude with the server; raises the threshold to at least
        ``floor((n + colluders) / 2) + 1`` (see :class:`SecureAggregator`).
    secure_evaluate : bool (default: True)
        Aggregate federated-evaluation metrics securely too (2 exchanges instead of 1).
        If False, FedAvg's evaluation runs and each bank's evaluation metrics and
        num-examples reach the server in plaintext.
    timeout : float (default: 300)
        Timeout of the key-setup and unmask exchanges.
    aggregator : SecureAggregator, optional
        Share an aggregator (and its key epoch) with other code; one is created otherwise.
    **kwargs
        Passed to :class:`~flwr.serverapp.strategy.FedAvg` (``fraction_train``,
        ``min_available_nodes``, ``weighted_by_key``, ...). Custom
        ``train_metrics_aggr_fn``/``evaluate_metrics_aggr_fn`` cannot be applied to a
        masked sum and are ignored (weighted averages are used).

    Notes
    -----
    Each round adds one exchange (unmask) to FedAvg's; a key setup adds two more and runs
    only when needed (first round, node-set change, a bank dropped). Every round appends
    an :class:`~strategies.secagg.AggregationReport` to :attr:`reports`, logs one line
    with participants, survivors, dropped banks and the clipped-value count, and adds
    ``secagg-survivors``, ``secagg-dropped`` and ``secagg-clipped`` to the aggregated
    MetricRecord. If fewer than ``threshold`` banks survive, the round is skipped (one
    WARNING line) and the global model is left unchanged.
    """

    def __init__(
        self,
        *,
        threshold: int | None = None,
        clipping_range: float = 1.0,
        quantization_bits: int = 16,
        metric_range: float = 1e3,
        max_weight: float = 2.0**20,
        secure_evaluate: bool = True,
        timeout: float = 300.0,
        aggregator: SecureAggregator | None = None,
        weights: str = "public",
        consortium: Consortium | None = None,
        min_threshold: int | None = None,
        colluders: int = 0,
        **kwargs: Any,
    ) -> None:
        for key in ("train_metrics_aggr_fn", "evaluate_metrics_aggr_fn"):
            if kwargs.pop(key, None) is not None:
                log(WARNING, "SecAggFedAvg: %s ignored (masked sums are averaged)", key)
        super().__init__(**kwargs)
        self.bounds = Bounds(
            value_range=clipping_range,
            metric_range=metric_range,
            max_weight=max_weight,
            bits=quantization_bits,
        )
        # Fail at configuration time if even two banks could overflow the ring.
        check_overflow(2, self.bounds.max_abs("train", 0), quantization_bits)
        self.secure_evaluate = secure_evaluate
        self.aggregator = aggregator or SecureAggregator(
            threshold=threshold,
            timeout=timeout,
            min_threshold=min_threshold,
            colluders=colluders,
            consortium=consortium,
            weights=weights,
        )
        self._train: tuple[Grid, PendingInstance, ArrayRecord] | None = None
        self._eval: tuple[Grid, PendingInstance] | None = None

    @property
    def reports(self) -> list[AggregationReport]:
        """One report per secure-aggregation instance so far (train, evaluate, sums)."""
        return self.aggregator.reports

    def max_banks(self) -> int:
        """Largest number of banks for which the configured bounds cannot overflow."""
        return int(2**63 // (self.bounds.max_abs("train", 0) * 2**self.bounds.bits))

    def summary(self) -> None:
        """Log the configuration."""
        super().summary()
        b = self.bounds
        log(INFO, "\t└──> Secure aggregation:")
        log(
            INFO,
            "\t\t├── threshold: %s | clipping range: %g | metric range: %g | max weight: %g",
            self.aggregator.threshold or "majority",
            b.value_range,
            b.metric_range,
            b.max_weight,
        )
        log(
            INFO,
            "\t\t└── quantization bits: %d (error <= %.2e x n / total weight) | max banks %d",
            b.bits,
            quantization_error_bound(1, b.bits),
            self.max_banks(),
        )

    # -- training ---------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample like FedAvg, set keys up if needed, and attach the mask request."""
        self._train = None
        sampled = list(super().configure_train(server_round, arrays, config, grid))
        if not sampled:
            return []
        pending = self.aggregator.begin(
            grid,
            [m.metadata.dst_node_id for m in sampled],
            "train",
            self.bounds,
            server_round,
            f"round {server_round} (train)",
            "; global model unchanged",
        )
        if pending.instance is None:
            return []
        self._train = (grid, pending, arrays)
        content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        extra = {"weight-key": self.weighted_by_key, "arrays-key": self.arrayrecord_key}
        return pending.messages(content, MessageType.TRAIN, str(server_round), **extra)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Unmask the sum of the survivors' updates and return the FedAvg aggregate."""
        replies = list(replies)
        if self._train is None:
            return None, None
        grid, pending, global_arrays = self._train
        self._train = None
        expected = [(name, tuple(arr.shape)) for name, arr in global_arrays.items()]

        def _matches(layout: Layout) -> bool:
            return [(name, shape) for _, name, shape in layout.arrays] == expected

        decoded, report = self.aggregator.complete(
            grid, pending, replies, _matches, "; global model unchanged"
        )
        if decoded is None:
            return None, None
        new_arrays = ArrayRecord()
        for (_, name), delta in decoded.arrays.items():
            base = global_arrays[name].numpy()
            new_arrays[name] = Array(np.asarray(_cast(base + delta, base.dtype)))
        return new_arrays, self._metrics(decoded, report)

    # -- evaluation -------------------------------------------------------------------

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Like FedAvg; with ``secure_evaluate`` the metrics are masked too."""
        self._eval = None
        sampled = list(super().configure_evaluate(server_round, arrays, config, grid))
        if not sampled or not self.secure_evaluate:
            return sampled
        pending = self.aggregator.begin(
            grid,
            [m.metadata.dst_node_id for m in sampled],
            "mean",
            self.bounds,
            server_round,
            f"round {server_round} (evaluate)",
            "; no evaluation metrics this round",
        )
        if pending.instance is None:
            return []
        self._eval = (grid, pending)
        content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        extra = {"weight-key": self.weighted_by_key, "arrays-key": self.arrayrecord_key}
        return pending.messages(content, MessageType.EVALUATE, str(server_round), **extra)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Unmask the weighted-average evaluation metrics (or FedAvg's, if not secure)."""
        if not self.secure_evaluate:
            return super().aggregate_evaluate(server_round, replies)
        replies = list(replies)
        if self._eval is None:
            return None
        grid, pending = self._eval
        self._eval = None
        decoded, report = self.aggregator.complete(
            grid, pending, replies, consequence="; no evaluation metrics this round"
        )
        return None if decoded is None else self._metrics(decoded, report)

    # -- secure sum -------------------------------------------------------------------

    def secure_sum(
        self, grid: Grid, content: RecordDict, message_type: str, **kwargs: Any
    ) -> SumResult:
        """:meth:`SecureAggregator.secure_sum` with this strategy's key epoch."""
        return self.aggregator.secure_sum(grid, content, message_type, **kwargs)

    @staticmethod
    def _metrics(decoded: Decoded, report: AggregationReport) -> MetricRecord:
        metrics = MetricRecord({name: value for (_, name), value in decoded.metrics.items()})
        metrics["secagg-survivors"] = len(report.survivors)
        metrics["secagg-dropped"] = len(report.dropped)
        metrics["secagg-clipped"] = report.clipped
        return metrics


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return np.rint(values).astype(dtype)
    return values.astype(dtype)
