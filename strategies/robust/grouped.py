"""``GroupedSecAgg``: secure aggregation within random groups, a robust rule across them.

Robust rules (median, trimmed mean, Krum) need each bank's update; secure aggregation shows
the server only the sum. Grouping trades between the two. Each round the sampled banks are
shuffled (seeded by the run's seed and the round) and cut into groups of ``group_size``
(the remainder spread over the groups, so none is smaller); each group is one secure
aggregation instance of :class:`strategies.secagg.SecureAggregator` (mode ``train``: the
weighted mean of the group's clipped updates), with its own key epoch, so its Shamir
threshold is a majority of the group. The server combines the group means with the
coordinate-wise median or trimmed mean.

What the server learns: per round, the weighted mean update of each group, its total
weight (the group's rows), its mean metrics, and which banks formed it. No single bank's
update, unless the group had one survivor (refused: the threshold is at least 2).

What that costs in privacy, across rounds: the groups change every round while a bank's
row count does not, so the group weights form a linear system in the banks' row counts.
Once the membership vectors of the groups seen so far span all banks
(:func:`membership_rank` reaches the number of banks), every bank's row count is
determined exactly (:func:`solve_bank_totals`); updates, which change from round to round,
are determined only to the extent that they stay close across rounds. Each round's
aggregated metrics record the rank (``grouped-membership-rank``).

What it buys in robustness: an attacker corrupts at most the groups it sits in; with ``g``
groups the median tolerates fewer than ``g / 2`` corrupted groups, so ``m`` attackers are
tolerated when ``m < g / 2`` regardless of their update's size.

Cost: each group needs its own key setup (2 exchanges) and unmask exchange every round,
because the groups change; a round takes ``3 g + 1`` exchanges instead of 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from logging import INFO
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
from flwr.serverapp.strategy.fedtrimmedavg import trim_mean

from strategies.secagg import Bounds, Consortium, SecureAggregator
from strategies.secagg.results import AggregationReport, SumResult

from .registry import RobustSettings, register_defence, wrapped

GROUP_RULES = ("median", "trimmed_mean", "geomed", "centered_clip")


def split_groups(
    nodes: Sequence[int],
    group_size: int,
    rng: np.random.Generator,
    names: Mapping[int, str] | None = None,
) -> list:
    """Shuffle ``nodes`` and cut them into ``len(nodes) // group_size`` groups of at least
    ``group_size`` (the remainder goes one each to the first groups).

    The shuffle starts from the nodes sorted by bank name when ``names`` knows them all
    (the same seed then groups the same banks, whatever node ids the run was given), else
    by node id.
    """
    nodes = [int(n) for n in nodes]
    if names and all(n in names for n in nodes):
        ordered = sorted(nodes, key=lambda n: (names[n], n))
    else:
        ordered = sorted(nodes)
    order = [ordered[i] for i in rng.permutation(len(ordered))]  # ids are 64-bit unsigned
    count = max(1, len(order) // group_size)
    sizes = [len(order) // count + (1 if i < len(order) % count else 0) for i in range(count)]
    groups, start = [], 0
    for size in sizes:
        groups.append(sorted(order[start : start + size]))
        start += size
    return groups


def membership_matrix(groupings: Sequence[Sequence[Sequence[int]]], nodes: Sequence[int]):
    """One 0/1 row per group seen (over all rounds), one column per node."""
    index = {int(n): i for i, n in enumerate(sorted(nodes))}
    rows = []
    for groups in groupings:
        for group in groups:
            row = np.zeros(len(index))
            row[[index[int(n)] for n in group]] = 1.0
            rows.append(row)
    return np.array(rows).reshape(-1, len(index))


def membership_rank(groupings: Sequence[Sequence[Sequence[int]]], nodes: Sequence[int]) -> int:
    """Rank of the membership matrix: equal to ``len(nodes)`` when per-bank quantities that
    stay constant across rounds (row counts) are determined by the group sums seen."""
    matrix = membership_matrix(groupings, nodes)
    return int(np.linalg.matrix_rank(matrix)) if matrix.size else 0


def solve_bank_totals(
    groupings: Sequence[Sequence[Sequence[int]]],
    group_totals: Sequence[Sequence[float]],
    nodes: Sequence[int],
) -> np.ndarray | None:
    """The curious server's least-squares estimate of a per-bank constant (e.g. its row
    count) from the group totals it saw; None while the membership rank is short."""
    matrix = membership_matrix(groupings, nodes)
    if not matrix.size or np.linalg.matrix_rank(matrix) < len(nodes):
        return None
    totals = np.concatenate([np.asarray(t, dtype=np.float64) for t in group_totals])
    return np.linalg.lstsq(matrix, totals, rcond=None)[0]


class GroupedSecAgg(FedAvg):
    """Secure aggregation in random groups, combined by a robust rule (see module doc).

    Parameters
    ----------
    group_size : int
        Smallest group; at least 2 (the secure-aggregation threshold). Use 3 or more: the
        robust rule releases, per coordinate, one group's mean, and a bank in a group of two
        that learns its group's mean learns its partner's update.
    robust : str
        ``median``, ``trimmed_mean``, ``geomed`` (geometric median) or ``centered_clip``
        across the group means.
    beta : float
        Trimmed share at each end for ``trimmed_mean``.
    seed : int
        Seed of the grouping (with the round).
    clipping_range, quantization_bits, metric_range, max_weight : float, int
        Secure-aggregation bounds of every group (:class:`strategies.secagg.Bounds`).
    timeout : float
        Timeout of the key setup and unmask exchanges.
    consortium : Consortium, optional
        The banks' identity roster (see :class:`strategies.secagg.SecureAggregator`): every
        group's key setup is verified against it, and each bank's weight in its group mean
        is its registered public weight, not the count it claims.
    **kwargs
        Passed to :class:`~flwr.serverapp.strategy.FedAvg` (sampling).
    """

    def __init__(
        self,
        *,
        group_size: int = 3,
        robust: str = "median",
        beta: float = 0.2,
        seed: int = 0,
        clipping_range: float = 4.0,
        quantization_bits: int = 16,
        metric_range: float = 1e3,
        max_weight: float = 2.0**24,
        timeout: float = 300.0,
        consortium: Consortium | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if group_size < 2:
            raise ValueError("group_size must be at least 2 (the secure-aggregation threshold)")
        if robust not in GROUP_RULES:
            raise ValueError(f"robust must be one of {GROUP_RULES}")
        self.group_size = group_size
        self.robust = robust
        self.beta = beta
        self.seed = seed
        self.timeout = timeout
        self.consortium = consortium
        self.bounds = Bounds(
            value_range=clipping_range,
            metric_range=metric_range,
            max_weight=max_weight,
            bits=quantization_bits,
        )
        self.aggregator = SecureAggregator(timeout=timeout, consortium=consortium)
        """Federation-wide aggregator for the run's secure sums (statistics, histograms)."""
        self.groupings: list[list[list[int]]] = []
        self.group_weights: list[list[float]] = []
        self.reports: list[AggregationReport] = []
        self._round: tuple[Grid, ArrayRecord, list] | None = None
        self._regrouped = False

    def summary(self) -> None:
        """Log the grouping."""
        log(
            INFO,
            "\t├──> Grouped secure aggregation: groups of %d, %s across groups",
            self.group_size,
            self.robust,
        )
        super().summary()

    # -- training ---------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample like FedAvg, form the groups, key each group and attach its mask request."""
        self._round = None
        sampled = list(super().configure_train(server_round, arrays, config, grid))
        nodes = [m.metadata.dst_node_id for m in sampled]
        if len(nodes) < 2 * self.group_size:
            log(INFO, "grouped_secagg round %d: too few banks for two groups", server_round)
            return []
        rng = np.random.default_rng([self.seed, server_round, 104_729])
        groups = split_groups(nodes, self.group_size, rng, self.aggregator.bank_names)
        self._regrouped = True
        pending_groups, messages = [], []
        for i, group in enumerate(groups):
            aggregator = SecureAggregator(timeout=self.timeout, consortium=self.consortium)
            label = f"round {server_round} (train, group {i + 1}/{len(groups)})"
            reason = aggregator.setup(grid, group, server_round)
            if reason:
                log(INFO, "grouped_secagg %s: skipped, %s", label, reason)
                continue
            pending = aggregator.begin(
                grid, group, "train", self.bounds, server_round, label, "; group left out"
            )
            if pending.instance is None:
                continue
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
            extra = {"weight-key": self.weighted_by_key, "arrays-key": self.arrayrecord_key}
            messages += pending.messages(content, MessageType.TRAIN, str(server_round), **extra)
            pending_groups.append((aggregator, pending))
        self._round = (grid, arrays, pending_groups)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Unmask each group's mean update and combine the means with the robust rule."""
        replies = list(replies)
        if self._round is None:
            return None, None
        grid, global_arrays, pending_groups = self._round
        self._round = None
        means, weights, metrics, groups = [], [], [], []
        for aggregator, pending in pending_groups:
            members = set(pending.participants)
            mine = [r for r in replies if r.metadata.src_node_id in members]
            decoded, report = aggregator.complete(grid, pending, mine, None, "; group left out")
            self.reports.append(report)
            if decoded is None:
                continue
            means.append({name: delta for (_, name), delta in decoded.arrays.items()})
            weights.append(float(decoded.total_weight or 0.0))
            metrics.append({name: value for (_, name), value in decoded.metrics.items()})
            groups.append(sorted(report.survivors))
        if not means:
            return None, None
        self.groupings.append(groups)
        self.group_weights.append(weights)
        combined = ArrayRecord()
        for name in global_arrays.keys():
            base = global_arrays[name].numpy()
            stacked = np.stack([m[name] for m in means])
            delta = self._combine(stacked.reshape(len(means), -1)).reshape(stacked.shape[1:])
            combined[name] = Array(np.asarray(base + delta, dtype=base.dtype))
        return combined, self._metrics(metrics, weights, groups)

    def _combine(self, means: np.ndarray) -> np.ndarray:
        """The robust rule over the group means (rows)."""
        if self.robust == "median":
            return np.median(means, axis=0)
        if self.robust == "trimmed_mean":
            return trim_mean(means, self.beta)
        if self.robust == "geomed":
            from .geomed import geometric_median

            return geometric_median(means)
        from .centered_clip import centered_clip

        return centered_clip(means, np.zeros(means.shape[1]), iterations=3)[0]

    def _metrics(
        self, metrics: list[dict], weights: list[float], groups: list[list[int]]
    ) -> MetricRecord:
        total = sum(weights) or 1.0
        out = MetricRecord()
        for name in metrics[0]:
            values = [m[name] for m in metrics]
            if all(isinstance(v, int | float) for v in values):
                out[name] = float(sum(w * v for w, v in zip(weights, values, strict=True)) / total)
        nodes = sorted({n for round_groups in self.groupings for g in round_groups for n in g})
        out["grouped-groups"] = len(groups)
        out["grouped-smallest-group"] = min(len(g) for g in groups)
        out["grouped-membership-rank"] = membership_rank(self.groupings, nodes)
        out["grouped-banks"] = len(nodes)
        return out

    # -- secure sums outside training -------------------------------------------------

    def secure_sum(
        self, grid: Grid, content: RecordDict, message_type: str, **kwargs: Any
    ) -> SumResult:
        """A federation-wide secure sum (statistics, histograms): all banks in one instance.

        The groups' key epochs replaced the banks' federation-wide one, so it re-keys first.
        """
        if self._regrouped:
            self.aggregator.epoch = None
            self._regrouped = False
        return self.aggregator.secure_sum(grid, content, message_type, **kwargs)


@register_defence("grouped_secagg", plaintext=False)
def grouped_secagg(settings: RobustSettings, wrap=None, **common) -> FedAvg:
    """Secure sums within random groups of ``group_size``, the rule ``robust`` across the
    group means (``common`` carries the secure-sum settings)."""
    return wrapped(GroupedSecAgg, wrap)(
        group_size=settings.group_size,
        robust=settings.robust,
        beta=settings.beta,
        seed=settings.seed,
        **common,
    )
