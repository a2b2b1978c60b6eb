"""What the server holds after the first training round, read from a recorded server view.

Round 1 is the attacker's best round: every bank starts from the all-zero model, so each
row's loss gradient depends only on its label, and a bank's update is a linear function of
its class sums (see :mod:`fl_credit.threats.audit.inversion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fl_credit.config.errors import DataError
from fl_credit.coordinator.view import ServerView
from fl_credit.data.scaling import Standardizer
from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS
from fl_credit.protocol.settings import BankSettings
from fl_credit.threats.audit.replay import Weights

MASKED = "secagg-masked"


@dataclass(frozen=True)
class MaskedReply:
    """One bank's masked input as the server received it."""

    node: int
    vector: np.ndarray
    layout: str
    bits: int


@dataclass
class RoundOne:
    """The server's knowledge relevant to inversion and property inference.

    Attributes
    ----------
    secure : bool
        Whether replies were masked (secure aggregation).
    scaler : Standardizer
        The agreed standardiser (the server computed and sent it).
    pos_weight : float
        The federation's class weight (sent with the standardiser).
    settings : BankSettings
        The training settings sent with round 1.
    start : Weights
        The global model sent with round 1.
    aggregate : Weights or None
        The global model after round 1 (the decoded aggregate).
    total_weight : float or None
        Sum of the weights behind the aggregate (secure aggregation's report, or the sum of
        the plaintext ``num-examples``).
    moments_sum : numpy.ndarray or None
        The decoded first-pass moments ``[defaults, rows, sum x...]`` over all banks.
    moments_exact : bool
        False under ``dp=opacus``: the moments are one noised release of ``[defaults, rows,
        sum of numeric features clipped and mapped to [0, 1]]``.
    moments_config : dict
        The first moments request's ConfigRecord (settings; public ranges under DP).
    value_range : float or None
        Secure aggregation's per-coordinate clip of updates.
    updates : dict
        Plaintext only: node id to ``(Weights, num-examples, metrics)`` of its round-1 reply.
    moments : dict
        Plaintext only: node id to its first-pass moments vector.
    masked : list of MaskedReply
        Secure only: the masked round-1 replies.
    terms : dict
        Plaintext Newton only: node id to its round-1 ``(grad, hess, loss)`` sums.
    sum_terms : tuple or None
        Secure Newton only: the decoded round-1 sums ``(grad, hess, loss)`` over all banks.
    """

    secure: bool
    scaler: Standardizer
    pos_weight: float
    settings: BankSettings
    start: Weights
    aggregate: Weights | None = None
    total_weight: float | None = None
    moments_sum: np.ndarray | None = None
    moments_exact: bool = True
    moments_config: dict = field(default_factory=dict)
    value_range: float | None = None
    updates: dict[int, tuple[Weights, float, dict]] = field(default_factory=dict)
    moments: dict[int, np.ndarray] = field(default_factory=dict)
    masked: list[MaskedReply] = field(default_factory=list)
    terms: dict[int, tuple[np.ndarray, np.ndarray, float]] = field(default_factory=dict)
    sum_terms: tuple[np.ndarray, np.ndarray, float] | None = None

    @property
    def newton(self) -> bool:
        """Whether banks replied with Newton terms (gradient and Hessian sums)."""
        return self.settings.optimizer == "newton"

    @property
    def one_full_batch_step(self) -> bool:
        """Whether a bank's round-1 reply gives its exact gradient sum (Newton terms, or one
        full-batch SGD step without DP: the inversion's exact case); otherwise the attack's
        estimates are approximations."""
        s = self.settings
        sgd_step = s.optimizer == "sgd" and s.local_epochs == 1 and s.batch_size <= 0
        return s.dp_mode == "off" and (self.newton or sgd_step)


def _first(values: list, what: str):
    if not values:
        raise DataError(f"the recorded server view has no {what}")
    return values[0]


def round_one(view: ServerView) -> RoundOne:
    """Collect :class:`RoundOne` from a recorded view.

    Raises
    ------
    DataError
        When the view lacks the standardiser or the first training round.
    """
    agreed = _first(view.sent("query.standardizer"), "standardiser message").config()
    scaler = Standardizer.from_arrays(
        [np.asarray(agreed[key], dtype=np.float64) for key in SCALER_KEYS if key in agreed]
    )
    request = _first(view.sent("train", 1), "round-1 training message")
    settings = BankSettings.from_config(request.config())
    start = Weights.from_arrays(request.arrays()["arrays"])
    secure = view.secure
    knowledge = RoundOne(
        secure=secure,
        scaler=scaler,
        pos_weight=float(agreed[POS_WEIGHT]),
        settings=settings,
        start=start,
    )
    decoded = [e for e in view.decoded("train") if e.server_round == 1]
    if decoded:
        knowledge.aggregate = Weights.from_arrays(decoded[0].arrays()["arrays"])
        report = decoded[0].extra.get("report") or {}
        knowledge.total_weight = report.get("total_weight")
    first_pass = [
        e for e in view.decoded("query.moments") if str(e.extra.get("pass")) in ("1", "private")
    ]
    if first_pass:
        knowledge.moments_sum = next(iter(first_pass[0].arrays()["arrays"].values()))
        knowledge.moments_exact = str(first_pass[0].extra.get("pass")) == "1"
    requests = [
        e for e in view.sent("query.moments") if str(e.config().get("pass")) in ("1", "private")
    ]
    if requests:
        knowledge.moments_config = requests[0].config()
    if not first_pass:
        # No statistics left the banks (dp=central: public ranges and class weight); the
        # audit then hands the attacker the exact moments, as it does under record-level DP.
        knowledge.moments_exact = False
    if knowledge.newton:
        sums = [
            e
            for e in view.decoded("secagg")
            if e.server_round == 1 and "grad" in e.arrays().get("arrays", {})
        ]
        if sums:
            arrays = sums[0].arrays()["arrays"]
            loss = float(sums[0].extra.get("decoded_metrics", {}).get("metrics/loss", np.nan))
            knowledge.sum_terms = (arrays["grad"], arrays["hess"], loss)
    if secure:
        knowledge.value_range = float(request.config("secagg").get("value-range", np.inf))
        for reply in view.replies("train", 1):
            layout = str(reply.config("secagg").get("layout", ""))
            bits = int(view.request_of(reply).config("secagg")["quantization-bits"])
            vector = reply.arrays()[MASKED]["y"]
            knowledge.masked.append(MaskedReply(reply.src_node, vector, layout, bits))
        return knowledge
    for reply in view.replies("train", 1):
        metrics = dict(reply.metrics.get("metrics", {}))
        arrays = reply.arrays()["arrays"]
        if knowledge.newton:
            loss = float(metrics.get("loss", np.nan))
            knowledge.terms[reply.src_node] = (arrays["grad"], arrays["hess"], loss)
            knowledge.updates[reply.src_node] = (start, float(metrics["num-examples"]), metrics)
            continue
        weights = Weights.from_arrays(arrays)
        knowledge.updates[reply.src_node] = (weights, float(metrics["num-examples"]), metrics)
    if knowledge.total_weight is None and knowledge.updates:
        knowledge.total_weight = sum(n for _, n, _ in knowledge.updates.values())
    for reply in view.replies("query.moments"):
        step = str(view.request_of(reply).config().get("pass", ""))
        if step in ("1", "private"):
            knowledge.moments[reply.src_node] = next(iter(reply.arrays()["arrays"].values()))
            knowledge.moments_exact = step == "1"
    return knowledge
