"""The coordinator's driver of secure aggregation: key epochs, instances and secure sums.

:class:`SecureAggregator` drives the protocol through a Flower ``Grid``. The strategy uses
it for every training (and evaluation) round; the ServerApp can call
:meth:`SecureAggregator.secure_sum` directly, e.g. for the federated scaling statistics
before training, sharing the same key epoch. :func:`plain_sum` has the same call
signature and result type without any protection, so callers can switch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid

from .blame import failure_proof, judge
from .coordinator_protocol import ServerEpoch, ServerInstance
from .identity import Consortium
from .protocol import (
    MIN_BANKS,
    ProtocolError,
    accused_in,
    default_threshold,
    evidence_in,
    min_survivors,
)
from .records import (
    ADVERTISE,
    SECAGG_KEY,
    SHARE_KEYS,
    UNMASK,
    decoded_to_records,
    masked_vector,
    message_type,
    secagg_config,
    to_config,
)
from .results import AggregationReport, SumResult
from .vector import Bounds, Decoded, Layout, check_sum, decode

WEIGHTINGS = ("public", "secret")


@dataclass
class PendingInstance:
    """An instance opened by :meth:`SecureAggregator.begin`, awaiting the masked replies."""

    report: AggregationReport
    bounds: Bounds
    mode: str
    instance: ServerInstance | None = None
    weights: str = "public"
    excuses: list[str] = field(default_factory=list)  # failure proofs (.blame)

    @property
    def participants(self) -> list[int]:
        """Nodes to send the request to (empty if the instance was skipped)."""
        return self.instance.participants if self.instance else []

    def request_record(self, node: int | None = None, **extra: Any) -> ConfigRecord:
        """The ``"secagg"`` ConfigRecord to attach to the request content.

        Parameters
        ----------
        node : int, optional
            The participant the record is for: it then carries only the dealing shares
            addressed to that bank (``n`` ciphertexts). Without it, the record carries
            every participant's (``n^2``) and can be sent to all of them.
        **extra
            Further fields for the banks' mod (``weight-key``, ``arrays-key``).
        """
        assert self.instance is not None
        payload = self.instance.mask_request(node)
        payload.update(
            {
                "phase": "mask",
                "round": self.report.server_round,
                "mode": self.mode,
                "weights": self.weights,
                "quantization-bits": self.bounds.bits,
                "value-range": float(self.bounds.value_range),
                "metric-range": float(self.bounds.metric_range),
                "max-weight": float(self.bounds.max_weight),
            }
        )
        if self.excuses:
            payload["excuse-proofs"] = list(self.excuses)
        payload.update(extra)
        return to_config(payload)

    def messages(
        self, content: RecordDict, message_type: str, group_id: str = "", **extra: Any
    ) -> list[Message]:
        """One request per participant: ``content`` plus its own ``"secagg"`` record."""
        return [
            Message(
                content=RecordDict(
                    {**dict(content.items()), SECAGG_KEY: self.request_record(n, **extra)}
                ),
                dst_node_id=n,
                message_type=message_type,
                group_id=group_id,
            )
            for n in self.participants
        ]


def _replies_by_node(replies: Iterable[Message]) -> dict[int, Message]:
    return {int(m.metadata.src_node_id): m for m in replies}


class SecureAggregator:
    """Runs key epochs and secure-aggregation instances over a Flower ``Grid``.

    Parameters
    ----------
    threshold : int, optional
        Shamir threshold ``t``. Default: a strict majority of the epoch's banks
        (``n // 2 + 1``, at least 2). A value below that is raised to it (honest banks
        refuse a minority threshold), with a warning.
    timeout : float (default: 300)
        Timeout in seconds of the key-setup and unmask exchanges.
    max_instances_per_epoch : int, optional
        Start a fresh key epoch after this many instances (default: only when needed).
    min_threshold : int, optional
        Floor of the threshold: an epoch never has a smaller one, and an instance with
        fewer banks is skipped instead of re-keying below it (bank-level DP plans its noise
        for this many contributors).
    colluders : int (default: 0)
        Banks assumed to collude with the server. Their shares plus split views of the
        honest banks reveal a bank's input when ``2 t <= n + colluders``, so the threshold
        is at least ``floor((n + colluders) / 2) + 1`` (the default majority protects
        against the server alone, and against one colluding bank when ``n`` is even).
    consortium : Consortium, optional
        The roster of bank identities. With it, the server verifies each advertisement's
        signature, leaves out (and blames) forged ones, knows every bank's verified name
        (:attr:`bank_names`) and its registered public weight. Without it, names are as
        claimed (the banks still verify each other) and public weights count 1 each.
    weights : str (default: ``"public"``)
        ``"public"``: in weighted modes each bank encodes its registered weight from its
        own roster, and the decoded total must equal the survivors' registered weights
        exactly. ``"secret"``: each bank's own weight (e.g. its example count) goes inside
        the masked vector; banks accept it only if configured to
        (``install_secagg(..., allow_secret_weights=True)``); see the package docstring
        for its risks.

    Notes
    -----
    A fresh key epoch (2 exchanges) is run when there is none, when the set of connected
    nodes changed, when a wanted node holds no key for the next instance (it dropped out,
    or was left out, of an earlier one), or after ``max_instances_per_epoch`` instances.
    Nodes that failed the last setup are left out until the node set changes; blamed nodes
    for the rest of the run.
    """

    def __init__(
        self,
        threshold: int | None = None,
        timeout: float = 300.0,
        max_instances_per_epoch: int | None = None,
        min_threshold: int | None = None,
        consortium: Consortium | None = None,
        weights: str = "public",
        colluders: int = 0,
    ) -> None:
        if threshold is not None and threshold < 2:
            raise ValueError("threshold must be at least 2")
        if min_threshold is not None and min_threshold < 2:
            raise ValueError("min_threshold must be at least 2")
        if weights not in WEIGHTINGS:
            raise ValueError(f"weights must be one of {WEIGHTINGS}, got {weights!r}")
        self.threshold = threshold
        if colluders < 0:
            raise ValueError("colluders must be >= 0")
        self.min_threshold = min_threshold
        self.colluders = colluders
        self.timeout = timeout
        self.max_instances_per_epoch = max_instances_per_epoch
        self.consortium = consortium
        self.weights = weights
        self.epoch: ServerEpoch | None = None
        self.reports: list[AggregationReport] = []
        self.blamed: dict[int, str] = {}
        self.proofs: dict[int, str] = {}  # failure proofs of blamed dealers (.blame)
        self._names: dict[int, str] = {}
        self._snapshot: frozenset[int] = frozenset()
        self._failed_setup: set[int] = set()
        self._instances_in_epoch = 0
        self._waiting = 0.0  # total time spent in exchanges, for the reports

    @property
    def bank_names(self) -> dict[int, str]:
        """Bank name of every node id seen in a key epoch (verified against the roster
        when the aggregator has one)."""
        return dict(self._names)

    def name_of(self, node: int) -> str:
        """``bank_3`` for a node whose name is known, else the node id."""
        return self._names.get(int(node), str(node))

    def _names_of(self, nodes: Iterable[int]) -> str:
        return "[" + ", ".join(self.name_of(n) for n in nodes) + "]"

    @property
    def threshold_in_force(self) -> int | None:
        """Threshold of the current key epoch (None before the first)."""
        return self.epoch.threshold if self.epoch else None

    def public_weight(self, node: int) -> float:
        """Registered weight of ``node``'s bank (1 without a roster)."""
        if self.consortium is None:
            return 1.0
        return self.consortium.weight(self._names[int(node)])

    # -- exchanges --------------------------------------------------------------------

    def _exchange(
        self,
        grid: Grid,
        nodes: Sequence[int],
        action: str,
        payloads: Callable[[int], dict],
        rnd: int,
    ) -> tuple[dict[int, dict[str, Any] | None], dict[int, str]]:
        messages = [
            Message(
                content=RecordDict({SECAGG_KEY: to_config(payloads(n))}),
                dst_node_id=n,
                message_type=message_type(action),
                group_id=str(rnd),
            )
            for n in nodes
        ]
        out: dict[int, dict[str, Any] | None] = dict.fromkeys(nodes)
        errors: dict[int, str] = {}
        t0 = time.perf_counter()
        replies = grid.send_and_receive(messages, timeout=self.timeout)
        self._waiting += time.perf_counter() - t0
        for node, msg in _replies_by_node(replies).items():
            if node not in out:
                continue
            if msg.has_error():
                errors[node] = str(msg.error.reason)
            elif msg.has_content():
                out[node] = secagg_config(msg.content)
        return out, errors

    def threshold_for(self, num_banks: int) -> int:
        """Threshold of a key epoch of ``num_banks`` banks: the largest of the strict
        majority, ``floor((n + colluders) / 2) + 1``, ``threshold`` and ``min_threshold``
        (it may exceed ``num_banks``: the epoch is then refused)."""
        minimum = max(default_threshold(num_banks), (num_banks + self.colluders) // 2 + 1)
        wanted = max(self.threshold or 0, self.min_threshold or 0)
        if self.threshold is not None and self.threshold < minimum:
            log(
                WARNING,
                "secagg: threshold %d is below a majority of %d banks; using %d",
                self.threshold,
                num_banks,
                max(minimum, wanted),
            )
        return max(minimum, wanted)

    def _blame(self, node: int, reason: str, report: AggregationReport | None = None) -> None:
        node = int(node)
        if report is not None:
            report.blamed[node] = reason
        if node in self.blamed:
            return
        self.blamed[node] = reason
        if self.epoch is not None:
            self.epoch.ready.discard(node)
        log(
            WARNING,
            "secagg: %s (node %d) blamed: %s; excluded from later instances and key epochs",
            self.name_of(node),
            node,
            reason,
        )

    def setup(self, grid: Grid, nodes: Sequence[int], server_round: int = 0) -> str:
        """Run a fresh key epoch with ``nodes``; return ``""`` on success or the reason."""
        t0 = time.perf_counter()
        self.epoch, self._instances_in_epoch = None, 0
        self._snapshot = frozenset(int(n) for n in grid.get_node_ids())
        nodes = sorted(int(n) for n in nodes if int(n) not in self.blamed)
        if len(nodes) < MIN_BANKS:
            return _too_few(len(nodes))
        epoch_id = ServerEpoch.new_id()
        adv, _ = self._exchange(
            grid,
            nodes,
            ADVERTISE,
            lambda _: {"epoch": epoch_id, "round": server_round},
            server_round,
        )
        adverts, refused = ServerEpoch.collect_advertise(
            epoch_id, {n: r for n, r in adv.items() if r is not None}, self.consortium
        )
        for node, reason in refused.items():
            self._blame(node, reason)
        self._names.update({n: a.name for n, a in adverts.items()})
        self._failed_setup = set(nodes) - set(adverts)
        t = self.threshold_for(len(adverts))
        if len(adverts) < max(t, MIN_BANKS):
            if len(adverts) < MIN_BANKS:
                return "key setup: " + _too_few(len(adverts))
            return f"key setup: only {len(adverts)} of {len(nodes)} banks answered, threshold {t}"
        request = ServerEpoch.share_keys_request(epoch_id, adverts, t)
        request["round"] = server_round
        shares, _ = self._exchange(
            grid, sorted(adverts), SHARE_KEYS, lambda _: request, server_round
        )
        epoch = ServerEpoch.from_share_keys(
            epoch_id, adverts, t, {n: r for n, r in shares.items() if r is not None}
        )
        for node, reason in epoch.rejected.items():
            self._blame(node, reason)
        self._failed_setup = set(nodes) - epoch.ready
        if len(epoch.ready) < min_survivors(t):
            n_ok = len(epoch.ready)
            return f"key setup: only {n_ok} of {len(nodes)} banks shared keys, threshold {t}"
        self.epoch = epoch
        log(
            INFO,
            "secagg: key epoch %s set up with %d banks (threshold %d) in %.2fs",
            epoch_id,
            len(epoch.ready),
            t,
            time.perf_counter() - t0,
        )
        return ""

    def _needs_setup(self, grid: Grid, wanted: set[int]) -> bool:
        if self.epoch is None or self.epoch.open:
            return True
        if frozenset(int(n) for n in grid.get_node_ids()) != self._snapshot:
            return True
        if wanted - self.epoch.ready - self._failed_setup:
            return True
        limit = self.max_instances_per_epoch
        return limit is not None and self._instances_in_epoch >= limit

    # -- instances --------------------------------------------------------------------

    def begin(
        self,
        grid: Grid,
        wanted: Iterable[int],
        mode: str,
        bounds: Bounds,
        server_round: int = 0,
        label: str = "",
        consequence: str = "",
    ) -> PendingInstance:
        """Open an instance over the wanted nodes, running a key setup first if needed.

        Returns a :class:`PendingInstance`; if it has no participants the instance was
        skipped (reason logged, followed by ``consequence``, and in ``report.reason``).
        Instances are strictly sequential: complete one before beginning the next.
        """
        t0, w0 = time.perf_counter(), self._waiting
        pending = self._begin(grid, wanted, mode, bounds, server_round, label, consequence)
        pending.report.seconds += time.perf_counter() - t0
        pending.report.exchange_seconds += self._waiting - w0
        return pending

    def _begin(
        self,
        grid: Grid,
        wanted: Iterable[int],
        mode: str,
        bounds: Bounds,
        server_round: int,
        label: str,
        consequence: str,
    ) -> PendingInstance:
        wanted_set = {int(n) for n in wanted} - set(self.blamed)
        report = AggregationReport(
            label=label or f"round {server_round} ({mode})", server_round=server_round
        )
        pending = PendingInstance(
            report=report,
            bounds=bounds,
            mode=mode,
            weights=self.weights,
            excuses=list(self.proofs.values()),
        )
        if self._needs_setup(grid, wanted_set):
            report.exchanges += 2
            reason = self.setup(grid, sorted(self._snapshot_nodes(grid)), server_round)
            if reason:
                return self._skip(pending, reason, consequence)
        assert self.epoch is not None
        participants = sorted(wanted_set & self.epoch.ready)
        report.participants = participants
        need = min_survivors(self.epoch.threshold)
        if len(participants) < need:
            return self._skip(
                pending,
                f"only {len(participants)} of the {len(wanted_set)} requested banks hold keys, "
                f"need {need} (threshold {self.epoch.threshold})",
                consequence,
            )
        try:
            bounds.check(mode, len(participants), 1)
            if mode != "sum" and self.weights == "public":
                for node in participants:
                    if not 0 < self.public_weight(node) <= bounds.max_weight:
                        raise ValueError(
                            f"public weight of {self.name_of(node)} outside "
                            f"(0, {bounds.max_weight:g}]"
                        )
        except ValueError as err:
            return self._skip(pending, str(err), consequence)
        pending.instance = self.epoch.open_instance(participants, bounds, mode)
        self._instances_in_epoch += 1
        report.exchanges += 1  # the request carrying the mask phase
        return pending

    @staticmethod
    def _snapshot_nodes(grid: Grid) -> list[int]:
        return [int(n) for n in grid.get_node_ids()]

    def wait_for_nodes(self, grid: Grid, min_nodes: int) -> list[int]:
        """Wait (up to ``timeout``) until ``min_nodes`` nodes are connected; return them."""
        deadline = time.monotonic() + self.timeout
        while len(nodes := self._snapshot_nodes(grid)) < min_nodes:
            if time.monotonic() > deadline:
                break
            log(INFO, "secagg: waiting for nodes: %d of %d connected", len(nodes), min_nodes)
            time.sleep(1.0)
        return nodes

    def _skip(
        self, pending: PendingInstance, reason: str, consequence: str = ""
    ) -> PendingInstance:
        rep = pending.report
        rep.ok, rep.reason = False, reason
        self.reports.append(rep)
        log(
            WARNING,
            "secagg %s: SKIPPED, %s; nothing aggregated%s",
            rep.label,
            reason,
            consequence,
        )
        return pending

    def complete(
        self,
        grid: Grid,
        pending: PendingInstance,
        replies: Iterable[Message],
        expected: Callable[[Layout], bool] | None = None,
        consequence: str = "",
    ) -> tuple[Decoded | None, AggregationReport]:
        """Collect the masked replies, run the unmask exchange and decode the sum.

        Parameters
        ----------
        grid : Grid
            For the unmask exchange.
        pending : PendingInstance
            From :meth:`begin`.
        replies : Iterable[Message]
            Replies to the requests built with ``pending.request_record(...)``.
        expected : callable, optional
            Extra layout check (e.g. arrays equal the global model's names and shapes).
        consequence : str
            Appended to the log line when the instance fails (e.g. "; model unchanged").

        Returns
        -------
        tuple[Decoded or None, AggregationReport]
            The decoded aggregate (None if the instance failed) and its report.
        """
        t0, w0 = time.perf_counter(), self._waiting
        decoded, rep = self._complete(grid, pending, replies, expected, consequence)
        rep.seconds += time.perf_counter() - t0
        rep.exchange_seconds += self._waiting - w0
        if decoded is not None:
            log(
                INFO,
                "secagg %s: %d participants, %d survivors, dropped %s, %d values clipped "
                "(server: %.3fs secagg compute, %.3fs in secagg exchanges)",
                rep.label,
                len(rep.participants),
                len(rep.survivors),
                self._names_of(rep.dropped) if rep.dropped else "none",
                rep.clipped,
                rep.seconds - rep.exchange_seconds,
                rep.exchange_seconds,
            )
        return decoded, rep

    def _accusations(
        self, inst: ServerInstance, errors: dict[int, str], rep: AggregationReport
    ) -> None:
        """Act on accusations that carry checkable evidence (:mod:`.blame`).

        A participant that refuses a dealing names its dealer and attaches its secret key
        for the pair. If the dealing then fails to open or its commitments, the dealer is
        blamed; if it checks, the false accuser is. Accusations without evidence, or whose
        evidence does not verify (or without a roster to verify it), blame no one.
        """
        if self.consortium is None:
            return
        for node, reason in errors.items():
            culprit, evidence = accused_in(reason), evidence_in(reason)
            if culprit is None or culprit == node or not evidence:
                continue
            guilty = judge(inst, node, culprit, evidence, self.consortium.members)
            if guilty == culprit:
                self._blame(culprit, f"its dealing to {self.name_of(node)} fails (checked)", rep)
            elif guilty == node:
                self._blame(node, f"falsely accused {self.name_of(culprit)}", rep)

    def _complete(
        self,
        grid: Grid,
        pending: PendingInstance,
        replies: Iterable[Message],
        expected: Callable[[Layout], bool] | None,
        consequence: str,
    ) -> tuple[Decoded | None, AggregationReport]:
        rep = pending.report
        inst = pending.instance
        if inst is None:
            return None, rep
        by_node = _replies_by_node(replies)
        payloads: dict[int, dict[str, Any] | None] = {}
        layouts: dict[int, str] = {}
        errors: dict[int, str] = {}
        for node in inst.participants:
            msg = by_node.get(node)
            if msg is None:
                errors[node] = "no reply"
                continue
            if msg.has_error():
                errors[node] = f"error reply: {msg.error.reason}"
                continue
            cfg = secagg_config(msg.content)
            if cfg is None:
                errors[node] = "reply without secagg record"
                continue
            cfg["masked"] = masked_vector(msg.content)
            layouts[node] = str(cfg.pop("layout", ""))
            payloads[node] = cfg
        self._accusations(inst, errors, rep)
        try:
            inst.collect_masked(payloads, layouts, expected)
        except ProtocolError as err:
            # Overflowing layout: the participants' keys are spent, so all must re-key.
            return None, self._fail(rep, str(err), consequence)
        finally:
            for node, reason in inst.blamed.items():
                self._blame(node, reason, rep)
        inst.rejected.update(errors)
        rep.survivors, rep.dropped = list(inst.survivors), list(inst.dropped)
        rep.rejected = {n: inst.rejected.get(n, "dropped") for n in inst.dropped}
        need = min_survivors(inst.epoch.threshold)
        if len(inst.survivors) < need:
            return None, self._fail(
                rep,
                f"only {len(inst.survivors)} of {len(inst.participants)} banks survived "
                f"(dropped {self._names_of(inst.dropped)}), need {need} "
                f"(threshold {inst.epoch.threshold})",
                consequence,
            )
        unmask, _ = self._exchange(
            grid,
            inst.survivors,
            UNMASK,
            lambda n: {**inst.unmask_request(n), "round": rep.server_round},
            rep.server_round,
        )
        rep.exchanges += 1
        try:
            total = inst.finish(unmask)
        except ProtocolError as err:
            for owner in inst.blamed:
                proof = failure_proof(inst, owner, unmask) if owner in inst.survivors else None
                if proof is not None:  # lets the banks retry this model without it
                    self.proofs[owner] = proof
            return None, self._fail(rep, f"unmasking failed: {err}", consequence)
        finally:
            for node, reason in inst.blamed.items():
                self._blame(node, reason, rep)
        assert inst.layout is not None
        public = None
        if inst.layout.weighted and self.weights == "public":
            public = [self.public_weight(u) for u in inst.survivors]
        insane = check_sum(inst.layout, total, pending.bounds, len(inst.survivors), public)
        if insane:
            if inst.views_differ():  # an honest coordinator never gets here
                insane += "; the banks were sent different requests (the coordinator equivocated)"
            return None, self._fail(rep, f"sanity check failed: {insane}", consequence)
        try:
            decoded = decode(inst.layout, total, pending.bounds.bits)
        except (ZeroDivisionError, ValueError) as err:
            return None, self._fail(rep, f"decoding failed: {err}", consequence)
        rep.ok, rep.clipped, rep.total_weight = True, decoded.clipped, decoded.total_weight
        self.reports.append(rep)
        return decoded, rep

    def _fail(self, rep: AggregationReport, reason: str, consequence: str) -> AggregationReport:
        rep.ok, rep.reason = False, reason
        self.reports.append(rep)
        log(WARNING, "secagg %s: SKIPPED, %s; nothing aggregated%s", rep.label, reason, consequence)
        return rep

    # -- secure sum -------------------------------------------------------------------

    def secure_sum(
        self,
        grid: Grid,
        content: RecordDict,
        message_type: str,
        *,
        value_range: float,
        metric_range: float | None = None,
        quantization_bits: int = 16,
        node_ids: Iterable[int] | None = None,
        min_nodes: int = 2,
        server_round: int = 0,
        timeout: float | None = None,
        label: str = "",
    ) -> SumResult:
        """Ask the banks a question and learn only the sum of their answers.

        Every bank's reply (ArrayRecords and MetricRecords only) is clipped to
        ``[-value_range, value_range]`` (metrics to ``metric_range``), quantized with
        ``quantization_bits`` fractional bits and masked; the server learns the sum over
        the surviving banks, and the total number of clipped values.

        Parameters
        ----------
        grid : Grid
            The ServerApp's grid.
        content : RecordDict
            Request content for the banks' handler (e.g. a ConfigRecord).
        message_type : str
            E.g. ``"query.scaling_stats"``; the banks' ClientApp must register a handler
            for it and carry :func:`secagg_mod` among its app-level mods.
        value_range, metric_range : float
            Clipping bounds; choose them so that ``n * range * 2^bits < 2^63``.
        quantization_bits : int (default: 16)
            Fractional bits; each bank's rounding error is at most ``2^-(bits+1)``.
        node_ids : Iterable[int], optional
            Banks to ask (default: all connected nodes).
        min_nodes : int (default: 2)
            Without ``node_ids``, first wait until this many nodes are connected.
        server_round : int (default: 0)
            Round label for logs and the dropout injector.
        timeout : float, optional
            Timeout of the request exchange (default: the aggregator's).
        label : str
            Name of the instance in logs.

        Returns
        -------
        SumResult
            ``records`` holds the sums under the banks' record keys.
        """
        bounds = Bounds(
            value_range=value_range,
            metric_range=metric_range if metric_range is not None else value_range,
            max_weight=1.0,
            bits=quantization_bits,
        )
        if node_ids is not None:
            wanted = [int(n) for n in node_ids]
        else:
            wanted = self.wait_for_nodes(grid, min_nodes)
        pending = self.begin(
            grid, wanted, "sum", bounds, server_round, label or f"sum {message_type}"
        )
        if pending.instance is None:
            return SumResult(None, pending.report)
        messages = pending.messages(content, message_type, str(server_round))
        t0 = time.perf_counter()
        replies = grid.send_and_receive(messages, timeout=timeout or self.timeout)
        pending.report.seconds += time.perf_counter() - t0
        pending.report.exchange_seconds += time.perf_counter() - t0
        decoded, report = self.complete(grid, pending, replies)
        return SumResult(decoded_to_records(decoded) if decoded else None, report)


def _too_few(num_banks: int) -> str:
    return (
        f"{num_banks} banks available; secure aggregation needs at least {MIN_BANKS} "
        "(with 2, each bank learns the other's input from the sum)"
    )


def plain_sum(
    grid: Grid,
    content: RecordDict,
    message_type: str,
    *,
    node_ids: Iterable[int] | None = None,
    min_nodes: int = 2,
    server_round: int = 0,
    timeout: float | None = 300.0,
    **_ignored: Any,
) -> SumResult:
    """Insecure counterpart of :meth:`SecureAggregator.secure_sum`: the server sees every
    bank's reply.

    Same signature (clipping/quantization arguments are accepted and ignored) and result
    type, so a caller can switch between the two.
    """
    t0 = time.perf_counter()
    if node_ids is not None:
        nodes = sorted(int(n) for n in node_ids)
    else:
        nodes = sorted(SecureAggregator(timeout=timeout or 300.0).wait_for_nodes(grid, min_nodes))
    report = AggregationReport(label=f"plain sum {message_type}", server_round=server_round)
    report.participants, report.exchanges = list(nodes), 1
    messages = [
        Message(
            content=content, dst_node_id=n, message_type=message_type, group_id=str(server_round)
        )
        for n in nodes
    ]
    by_node = _replies_by_node(grid.send_and_receive(messages, timeout=timeout))
    sums: dict[str, dict[str, Any]] = {}
    kinds: dict[str, type] = {}
    for node in nodes:
        msg = by_node.get(node)
        if msg is None or msg.has_error():
            report.rejected[node] = "no reply" if msg is None else str(msg.error.reason)
            continue
        report.survivors.append(node)
        for rkey, rec in [*msg.content.array_records.items(), *msg.content.metric_records.items()]:
            kinds[rkey] = type(rec)
            acc = sums.setdefault(rkey, {})
            for name, val in rec.items():
                v = (
                    val.numpy().astype(np.float64)
                    if isinstance(rec, ArrayRecord)
                    else np.asarray(val, dtype=np.float64)
                )
                acc[name] = acc[name] + v if name in acc else v
    report.dropped = sorted(set(nodes) - set(report.survivors))
    out: dict[str, ArrayRecord | MetricRecord] = {}
    for rkey, acc in sums.items():
        if kinds[rkey] is ArrayRecord:
            out[rkey] = ArrayRecord({k: Array(np.asarray(v)) for k, v in acc.items()})
        else:
            out[rkey] = MetricRecord(
                {k: v.tolist() if v.ndim else float(v) for k, v in acc.items()}
            )
    report.ok = bool(report.survivors)
    report.seconds = time.perf_counter() - t0
    return SumResult(RecordDict(out) if report.ok else None, report)
