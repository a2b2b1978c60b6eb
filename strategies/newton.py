"""Federated Newton (IRLS) for an L2-penalised, class-weighted logistic regression.

The objective is the pooled one the SGD path minimises,

``F(theta) = (1 / N) * sum_i s_i * BCE(y_i, sigmoid(x_i . w + b)) + 0.5 * l2 * |w|^2``

over all banks' training rows (``s_i`` = the federation's class weight of row ``i``, ``N`` =
the total row count from the standardisation query, ``theta = [w..., b]``; the bias is not
penalised). Each round every bank returns, for the point ``theta`` the server sent, the sums
over its rows of the weighted BCE gradient and Hessian and of the loss (the message contract
below). The server adds them up, in the clear (:class:`FedNewton`) or through secure
aggregation in ``sum`` mode (:class:`SecAggFedNewton`), adds the L2 term and takes the exact
pooled Newton step.

Safeguard: a backtracking line search on the summed objective. The point sent in a round is
a *candidate*; the bank replies evaluate it. It is accepted when it lowers ``F`` enough
(Armijo), and then its gradient and Hessian give the next direction; otherwise the step is
halved and the halved candidate is sent next round. ``F`` therefore never increases, which
with a positive definite Hessian gives global convergence (and the full Newton step, hence
quadratic convergence, near the optimum). A Hessian that is not numerically positive
definite (``l2 = 0`` and separable or collinear data) is damped Levenberg-style.

Stop: once the Newton step from the accepted point changes no coordinate by more than
``tol``, the strategy records ``converged_round`` and sends no more training messages
(``configure_train`` returns ``[]``), under Flower's ``Strategy.start`` or any other loop.

Message contract (bank side, message type ``train``, ``config["optimizer"] == "newton"``):
the request carries the candidate in the ArrayRecord ``"arrays"`` (weight array of shape
``(1, d)`` and bias of shape ``(1,)``, float64); the reply holds one ArrayRecord ``"arrays"``
with ``"grad"`` of shape ``(d + 1,)`` and ``"hess"`` of shape ``(d + 1, d + 1)``, the
unnormalised sums over the bank's training rows with respect to ``[w..., b]``, and one
MetricRecord ``"metrics"`` with ``"num-examples"`` (a public constant, 1: sums need no
weight) and ``"loss"`` (the sum of the weighted BCE). A bank's row count is never sent.

Participants: when the set of banks whose replies were summed changes (a bank dropped out),
the summed objective changes too; the line search then restarts from the new evaluation
instead of comparing losses of different sums. ``N`` stays the federation's total (the
server does not learn the count of the banks that remain).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING
from typing import Any

import numpy as np
import scipy.linalg
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

GRAD = "grad"
HESS = "hess"
LOSS = "loss"
ARMIJO = 1e-4
MAX_HALVINGS = 30
# One bank's |gradient| (per coordinate) is at most max(s) * N and |Hessian| at most
# max(s) * N / 4 when the features are standardised over the N rows (Cauchy-Schwarz); the
# clip range leaves a factor of 8 for rows not in the standardisation (SMOTE) and for the loss.
RANGE_FACTOR = 8.0
MAX_FRACTIONAL_BITS = 30


def penalty_mask(size: int) -> np.ndarray:
    """1 for every weight, 0 for the bias (last coordinate): the L2 term skips the bias."""
    mask = np.ones(size)
    mask[-1] = 0.0
    return mask


def penalised_terms(
    grad: np.ndarray, hess: np.ndarray, theta: np.ndarray, l2: float, total_rows: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of ``N * F`` from the summed BCE terms (adds ``l2 * N * w``).

    Parameters
    ----------
    grad, hess : numpy.ndarray
        Sums over all rows of the weighted BCE gradient ``(d + 1,)`` and Hessian.
    theta : numpy.ndarray
        The point ``[w..., b]`` they were computed at.
    l2 : float
        L2 penalty on the weights.
    total_rows : float
        ``N``, the number of training rows the objective averages over.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        Penalised gradient and Hessian on the sum scale.
    """
    mask = penalty_mask(len(theta)) * l2 * total_rows
    return grad + mask * theta, hess + np.diag(mask)


def penalised_objective(loss: float, theta: np.ndarray, l2: float, total_rows: float) -> float:
    """``F(theta)``: mean weighted BCE over the ``N`` rows plus ``0.5 * l2 * |w|^2``."""
    weights = theta[:-1]
    return float(loss) / total_rows + 0.5 * l2 * float(weights @ weights)


def newton_direction(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """Solve ``hess @ d = -grad``, damping ``hess`` (Levenberg) until it is positive definite.

    Parameters
    ----------
    grad, hess : numpy.ndarray
        Penalised gradient and Hessian (symmetric).

    Returns
    -------
    numpy.ndarray
        The (damped) Newton direction, a descent direction.
    """
    hess = 0.5 * (hess + hess.T)
    scale = max(float(np.max(np.abs(np.diag(hess)))), 1e-300)
    damping = 0.0
    for _ in range(40):
        try:
            factor = scipy.linalg.cho_factor(hess + damping * np.eye(len(grad)))
            # Cholesky can succeed on a matrix that is PD only by rounding; require a sane
            # condition number so the step is not garbage.
            if np.min(np.abs(np.diag(factor[0]))) ** 2 > 1e-13 * scale:
                return scipy.linalg.cho_solve(factor, -grad)
        except np.linalg.LinAlgError:
            pass
        damping = max(damping * 10.0, 1e-10 * scale)
    raise np.linalg.LinAlgError("Hessian could not be made positive definite")


def constrained_direction(
    grad: np.ndarray,
    hess: np.ndarray,
    theta: np.ndarray,
    transform: np.ndarray,
    bounded: np.ndarray,
) -> np.ndarray:
    """Newton direction within ``{theta = T u : u[bounded] >= 0}`` (a convex cone).

    Minimises the quadratic model ``g.d + d'Hd / 2`` over feasible ``d = T du``: with
    ``T'HT = L L'`` that is the bounded least-squares problem
    ``min |L' du + L^-1 T'g|^2`` subject to ``u + du >= 0`` on the bounded coordinates,
    solved exactly by bounded-variable least squares. Every step along the direction up to
    the full one stays feasible.

    Parameters
    ----------
    grad, hess : numpy.ndarray
        Penalised gradient and Hessian at ``theta``.
    theta : numpy.ndarray
        The current (feasible) point.
    transform : numpy.ndarray
        ``T``, invertible.
    bounded : numpy.ndarray
        Boolean mask of the ``u`` coordinates bounded below by 0.
    """
    from scipy.optimize import lsq_linear

    u = np.linalg.solve(transform, theta)
    gu = transform.T @ grad
    hu = transform.T @ hess @ transform
    hu = 0.5 * (hu + hu.T)
    scale = max(float(np.max(np.abs(np.diag(hu)))), 1e-300)
    damping = 0.0
    for _ in range(40):
        try:
            lower = np.linalg.cholesky(hu + damping * np.eye(len(gu)))
            if np.min(np.abs(np.diag(lower))) ** 2 > 1e-13 * scale:
                break
        except np.linalg.LinAlgError:
            pass
        damping = max(damping * 10.0, 1e-10 * scale)
    else:
        raise np.linalg.LinAlgError("Hessian could not be made positive definite")
    target = -scipy.linalg.solve_triangular(lower, gu, lower=True)
    low = np.where(bounded, -np.maximum(u, 0.0), -np.inf)
    result = lsq_linear(lower.T, target, bounds=(low, np.inf), method="bvls", tol=1e-15)
    return transform @ result.x


@dataclass
class Evaluation:
    """The summed terms at one point."""

    theta: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    loss: float


@dataclass
class NewtonSearch:
    """Newton's method with backtracking, one evaluation of the summed terms per call.

    ``candidate`` is the point to evaluate next; :meth:`observe` takes the summed terms at
    that point and decides. The same object drives the federated strategy (one evaluation
    per round) and a local fit on pooled rows (:func:`fit`).

    Parameters
    ----------
    theta0 : numpy.ndarray
        Starting point ``[w..., b]``.
    l2 : float
        L2 penalty on the weights.
    total_rows : float
        ``N`` of the objective.
    tol : float
        Converged when the Newton step changes no coordinate by more than this.
    transform, bounded : numpy.ndarray, optional
        Linear constraints ``theta = T u`` with ``u[bounded] >= 0`` (e.g. monotone effects);
        each step then solves the bounded Newton model (:func:`constrained_direction`).
        ``theta0`` must satisfy them.
    """

    theta0: np.ndarray
    l2: float
    total_rows: float
    tol: float
    transform: np.ndarray | None = None
    bounded: np.ndarray | None = None
    accepted: Evaluation | None = None
    objective: float = math.inf
    direction: np.ndarray | None = None
    step: float = 1.0
    slope: float = 0.0
    converged: bool = False
    stalled: bool = False
    evaluations: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.theta0 = np.asarray(self.theta0, dtype=np.float64).copy()
        self.candidate = self.theta0.copy()

    def to_state(self) -> dict[str, Any]:
        """The search as flat scalars and float64 bytes (to keep in a ConfigRecord)."""
        out: dict[str, Any] = {k: float(getattr(self, k)) for k in _SCALARS}
        out.update(converged=self.converged, stalled=self.stalled, evaluations=self.evaluations)
        out.update(theta0=self.theta0.tobytes(), candidate=self.candidate.tobytes())
        if self.transform is not None and self.bounded is not None:
            out["transform"] = np.asarray(self.transform, dtype=np.float64).tobytes()
            out["bounded"] = np.asarray(self.bounded, dtype=bool).tobytes()
        if self.direction is not None:
            out["direction"] = np.asarray(self.direction, dtype=np.float64).tobytes()
        if self.accepted is not None:
            out.update(
                {f"accepted-{k}": np.asarray(getattr(self.accepted, k), np.float64).tobytes()
                 for k in ("theta", "grad", "hess")},  # fmt: skip
                **{"accepted-loss": self.accepted.loss},
            )
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NewtonSearch:
        """Inverse of :meth:`to_state`."""

        def vec(key: str) -> np.ndarray:
            return np.frombuffer(state[key], dtype=np.float64).copy()

        theta0 = vec("theta0")
        d = len(theta0)
        search = cls(theta0, float(state["l2"]), float(state["total_rows"]), float(state["tol"]))
        if "transform" in state:
            bounded = np.frombuffer(state["bounded"], dtype=bool).copy()
            search.transform = vec("transform").reshape(d, len(bounded))
            search.bounded = bounded
        for key in _SCALARS[3:]:
            setattr(search, key, float(state[key]))
        search.converged, search.stalled = bool(state["converged"]), bool(state["stalled"])
        search.evaluations = int(state["evaluations"])
        search.candidate = vec("candidate")
        search.direction = vec("direction") if "direction" in state else None
        if "accepted-theta" in state:
            search.accepted = Evaluation(
                vec("accepted-theta"),
                vec("accepted-grad"),
                vec("accepted-hess").reshape(d, d),
                float(state["accepted-loss"]),
            )
        return search

    @property
    def theta(self) -> np.ndarray:
        """The best point so far (the start before any evaluation)."""
        return self.accepted.theta if self.accepted is not None else self.theta0

    def observe(
        self,
        grad: np.ndarray,
        hess: np.ndarray,
        loss: float,
        *,
        restart: bool = False,
        slack: float = 0.0,
    ) -> dict[str, float]:
        """Take the summed terms at :attr:`candidate`; accept or halve; propose the next.

        Parameters
        ----------
        grad, hess, loss : numpy.ndarray, numpy.ndarray, float
            Summed BCE gradient, Hessian and loss at the candidate.
        restart : bool
            The sum is over a different set of rows than the accepted point's (a bank
            dropped): accept without comparing objectives.
        slack : float
            Tolerated increase of ``F`` from rounding of the sums (fixed point).

        Returns
        -------
        dict
            What happened: ``objective`` (of the candidate), ``accepted``, ``step``,
            ``newton_step`` (max |d| of the next direction, when accepted), ``converged``.
        """
        self.evaluations += 1
        theta = self.candidate
        value = penalised_objective(loss, theta, self.l2, self.total_rows)
        record = {"objective": value, "step": self.step, "accepted": 0.0}
        first = self.accepted is None or restart
        slack = slack + 1e-12 * abs(self.objective) if math.isfinite(self.objective) else slack
        armijo = self.objective + ARMIJO * self.step * self.slope / self.total_rows + slack
        if not (first or (math.isfinite(value) and value <= armijo)):
            self.step *= 0.5
            if self.step < 0.5**MAX_HALVINGS:
                self.stalled = self.converged = True
            assert self.accepted is not None and self.direction is not None
            self.candidate = self.accepted.theta + self.step * self.direction
            self.history.append(record)
            return record
        self.accepted = Evaluation(theta.copy(), np.asarray(grad), np.asarray(hess), float(loss))
        self.objective = value
        g, h = penalised_terms(
            self.accepted.grad, self.accepted.hess, theta, self.l2, self.total_rows
        )
        if self.transform is None:
            self.direction = newton_direction(g, h)
        else:
            self.direction = constrained_direction(g, h, theta, self.transform, self.bounded)
        self.slope = float(g @ self.direction)
        self.step = 1.0
        largest = float(np.max(np.abs(self.direction)))
        self.converged = largest <= self.tol
        self.candidate = theta + self.direction
        record.update(accepted=1.0, newton_step=largest, converged=float(self.converged))
        self.history.append(record)
        return record


_SCALARS = ("l2", "total_rows", "tol", "objective", "step", "slope")


def rounding_slack(num_survivors: int, bits: int, total_rows: float) -> float:
    """Tolerated increase of ``F`` from fixed-point rounding of a secure sum: each of the
    ``num_survivors`` losses is off by at most ``2^-(bits+1)``."""
    return num_survivors * 2.0 ** -(bits + 1) / (total_rows or 1.0)


def fit(
    terms: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, float]],
    theta0: np.ndarray,
    *,
    l2: float,
    total_rows: float,
    tol: float,
    max_evaluations: int,
    constraints: tuple[np.ndarray, np.ndarray] | None = None,
) -> NewtonSearch:
    """Minimise ``F`` with the summed terms from one place (e.g. pooled rows).

    Parameters
    ----------
    terms : callable
        ``terms(theta) -> (grad, hess, loss)``, the sums over the rows at ``theta``.
    theta0 : numpy.ndarray
        Starting point.
    l2, total_rows, tol : float
        As for :class:`NewtonSearch`.
    max_evaluations : int
        Budget of evaluations (the federated run's rounds).
    constraints : tuple of numpy.ndarray, optional
        ``(T, bounded)`` as for :class:`NewtonSearch`.

    Returns
    -------
    NewtonSearch
        The finished search; ``.theta`` is the solution, ``.evaluations`` its cost.
    """
    transform, bounded = constraints if constraints is not None else (None, None)
    search = NewtonSearch(
        theta0, l2=l2, total_rows=total_rows, tol=tol, transform=transform, bounded=bounded
    )
    while search.evaluations < max_evaluations and not search.converged:
        grad, hess, loss = terms(search.candidate)
        search.observe(grad, hess, loss)
    return search


def fixed_point_bits(num_banks: int, value_range: float) -> int:
    """Most fractional bits such that ``num_banks`` values of ``value_range`` cannot
    overflow the signed 64-bit ring (one bit of headroom), capped at 30."""
    room = 2.0**62 / (max(num_banks, 1) * value_range)
    return max(0, min(MAX_FRACTIONAL_BITS, int(math.floor(math.log2(room)))))


class FedNewton(FedAvg):
    """Federated Newton / IRLS: each round sums the banks' gradients and Hessians.

    The sums are taken in the clear here; :class:`SecAggFedNewton` takes them through
    secure aggregation. ``converged_round`` is the round whose evaluation satisfied the
    tolerance (None until then); from the next round on no training message is sent.

    Parameters
    ----------
    l2 : float
        L2 penalty on the weights (not the bias), as in the SGD objective.
    tol : float
        Converged once the Newton step changes no coefficient by more than ``tol``.
    weight_name, bias_name : str
        Names of the weight ``(1, d)`` and bias ``(1,)`` arrays in the model's ArrayRecord.
    **kwargs
        Passed to :class:`~flwr.serverapp.strategy.FedAvg` (node sampling).

    Notes
    -----
    Call :meth:`set_rows` with the federation's total training row count ``N`` (and the
    largest row weight, for the secure variant's clip range) before the first round.
    """

    def __init__(
        self,
        *,
        l2: float,
        tol: float,
        weight_name: str = "linear.weight",
        bias_name: str = "linear.bias",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.tol = float(tol)
        self.weight_name = weight_name
        self.bias_name = bias_name
        self.total_rows: float | None = None
        self.max_row_weight = 1.0
        self.search: NewtonSearch | None = None
        self.converged_round: int | None = None
        self._survivors: frozenset[int] | None = None
        self._sent: list[int] = []
        self.constraints: tuple[np.ndarray, np.ndarray] | None = None

    def set_constraints(self, transform: np.ndarray, bounded: np.ndarray) -> None:
        """Linear constraints ``theta = T u``, ``u[bounded] >= 0`` on every step (see
        :class:`NewtonSearch`); the starting point must satisfy them."""
        self.constraints = (np.asarray(transform, dtype=np.float64), np.asarray(bounded, bool))

    def set_rows(self, total_rows: float, max_row_weight: float = 1.0) -> None:
        """The objective's ``N`` (public: from the standardisation sums) and the largest
        per-row loss weight (the class weight), which sizes the secure clip range."""
        if not total_rows > 0:
            raise ValueError("total_rows must be positive")
        self.total_rows = float(total_rows)
        self.max_row_weight = max(float(max_row_weight), 1.0)

    def summary(self) -> None:
        """Log the configuration."""
        super().summary()
        log(INFO, "\t└──> Newton: l2 %g | tol %g | N %s", self.l2, self.tol, self.total_rows)

    # -- points <-> arrays --------------------------------------------------------------

    def _theta(self, arrays: ArrayRecord) -> np.ndarray:
        weight = arrays[self.weight_name].numpy().astype(np.float64).ravel()
        bias = arrays[self.bias_name].numpy().astype(np.float64).ravel()
        return np.concatenate([weight, bias])

    def _arrays(self, theta: np.ndarray) -> ArrayRecord:
        return ArrayRecord(
            {
                self.weight_name: Array(np.asarray(theta[:-1], dtype=np.float64)[None, :]),
                self.bias_name: Array(np.asarray(theta[-1:], dtype=np.float64)),
            }
        )

    # -- rounds -------------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask the sampled banks for their terms at the current candidate ([] once converged).

        ``arrays`` is used only in the first round, as the starting point; afterwards the
        strategy keeps its own iterate.
        """
        self._sent = []
        if self.converged_round is not None:
            return []
        if self.total_rows is None:
            raise RuntimeError("FedNewton.set_rows(total_rows) was not called")
        if self.search is None:
            transform, bounded = self.constraints or (None, None)
            self.search = NewtonSearch(
                self._theta(arrays),
                l2=self.l2,
                total_rows=self.total_rows,
                tol=self.tol,
                transform=transform,
                bounded=bounded,
            )
        config = ConfigRecord(dict(config))
        config["optimizer"] = "newton"
        sampled = list(
            super().configure_train(server_round, self._arrays(self.search.candidate), config, grid)
        )
        if not sampled:
            return []
        return self._request(server_round, sampled, grid)

    def _request(self, server_round: int, sampled: list[Message], grid: Grid) -> list[Message]:
        """The messages to send (the secure variant attaches its mask request)."""
        self._sent = [m.metadata.dst_node_id for m in sampled]
        return sampled

    def _sum(
        self, server_round: int, replies: list[Message]
    ) -> tuple[dict[str, Any] | None, dict[str, float]]:
        """Sum the replies in the clear: ``({grad, hess, loss, survivors, slack}, metrics)``."""
        good = [
            m
            for m in replies
            if not m.has_error() and "arrays" in m.content and "metrics" in m.content
        ]
        failed = len(self._sent) - len(good)
        if failed:
            log(WARNING, "newton round %d: %d bank(s) sent no terms", server_round, failed)
        if not good:
            return None, {}
        grad = sum(m.content["arrays"][GRAD].numpy().astype(np.float64) for m in good)
        hess = sum(m.content["arrays"][HESS].numpy().astype(np.float64) for m in good)
        loss = sum(float(m.content["metrics"][LOSS]) for m in good)
        survivors = frozenset(int(m.metadata.src_node_id) for m in good)
        total = {GRAD: grad, HESS: hess, LOSS: loss, "survivors": survivors, "slack": 0.0}
        return total, {"newton-banks": float(len(good))}

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Sum the terms, take the safeguarded Newton step; return the accepted point."""
        replies = list(replies)
        if not self._sent or self.search is None:
            return None, None
        total, extra = self._sum(server_round, replies)
        self._sent = []
        if total is None:
            log(
                WARNING,
                "newton round %d: nothing summed; the candidate is sent again",
                server_round,
            )
            return None, None
        d = len(self.search.candidate)
        if total[GRAD].shape != (d,) or total[HESS].shape != (d, d):
            log(WARNING, "newton round %d: terms of the wrong shape ignored", server_round)
            return None, None
        finite = np.isfinite(total[LOSS]) and np.all(np.isfinite(total[GRAD]))
        if not (finite and np.all(np.isfinite(total[HESS]))):
            log(WARNING, "newton round %d: non-finite terms ignored", server_round)
            return None, None
        restart = self._survivors is not None and total["survivors"] != self._survivors
        if restart:
            log(WARNING, "newton round %d: the banks changed; line search restarted", server_round)
        self._survivors = total["survivors"]
        outcome = self.search.observe(
            total[GRAD], total[HESS], total[LOSS], restart=restart, slack=total["slack"]
        )
        if self.search.converged:
            self.converged_round = server_round
            how = "stalled (no decrease within rounding)" if self.search.stalled else "converged"
            log(INFO, "newton: %s in round %d; no further training rounds", how, server_round)
        metrics = MetricRecord(
            {
                "train_loss": float(outcome["objective"]),
                "newton-accepted": float(outcome["accepted"]),
                "newton-step-size": float(outcome["step"]),
                "newton-step": float(outcome.get("newton_step", math.nan)),
                **extra,
            }
        )
        return self._arrays(self.search.theta), metrics


def chain_constraints(constraints: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """The step constraints as chain-spec fields (none without constraints)."""
    if constraints is None:
        return {}
    transform, bounded = constraints
    return {
        "chain-transform": [float(v) for v in np.asarray(transform, np.float64).ravel()],
        "chain-bounded": [bool(b) for b in np.asarray(bounded, bool)],
    }


class SecAggFedNewton(FedNewton):
    """:class:`FedNewton` whose sums go through secure aggregation (``sum`` mode).

    The server learns only the sums of the banks' gradients, Hessians and losses (and the
    number of values clipped). Values are clipped to ``8 * max(s) * N`` (a bank's gradient
    is at most ``max(s) * N`` per coordinate and its Hessian a quarter of that with
    standardised features) with as many fractional bits as the ring allows for the
    participating banks, at most 30: with ``N = 10^6`` rows and a class weight of 20 that is
    25 bits for 100 banks, an absolute rounding error below ``3e-6`` on sums of size ``N``.

    Parameters
    ----------
    aggregator : SecureAggregator
        The secure aggregator (shared with the run's other secure sums).
    **kwargs
        As for :class:`FedNewton`.
    """

    def __init__(self, *, aggregator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aggregator = aggregator
        self._pending: Any = None
        self._forward: dict[str, bytes] = {}  # the last sum, for the banks to verify

    def chain_spec(self) -> dict[str, Any]:
        """What the banks need to recompute each candidate (:mod:`strategies.secagg.chain`)."""
        return {
            "chain": "newton",
            "chain-l2": self.l2,
            "chain-tol": self.tol,
            "chain-rows": float(self.total_rows or 0.0),
            "chain-arrays": [self.weight_name, self.bias_name],
            **chain_constraints(self.constraints),
        }

    def secure_sum(self, grid: Grid, content: RecordDict, message_type: str, **kwargs: Any) -> Any:
        """The aggregator's secure sum, with this strategy's key epoch."""
        return self.aggregator.secure_sum(grid, content, message_type, **kwargs)

    def bounds(self, num_banks: int) -> Any:
        """Clip range and fixed-point bits for ``num_banks`` banks."""
        from strategies.secagg import Bounds

        assert self.total_rows is not None
        value_range = RANGE_FACTOR * self.max_row_weight * self.total_rows
        return Bounds(
            value_range=value_range,
            metric_range=value_range,
            max_weight=1.0,
            bits=fixed_point_bits(num_banks, value_range),
        )

    def _request(self, server_round: int, sampled: list[Message], grid: Grid) -> list[Message]:
        self._pending = None
        pending = self.aggregator.begin(
            grid,
            [m.metadata.dst_node_id for m in sampled],
            "sum",
            self.bounds(len(sampled)),
            server_round,
            f"round {server_round} (newton)",
            "; the candidate is sent again",
        )
        if pending.instance is None:
            return []
        self._pending = pending
        self._sent = list(pending.participants)
        from strategies.secagg.records import SECAGG_KEY

        content = RecordDict(dict(sampled[0].content.items()))
        content[SECAGG_KEY] = pending.request_record(**self._forward, **self.chain_spec())
        self._forward = {}  # each sum is forwarded once: the banks consume it
        return self._construct_messages(content, pending.participants, MessageType.TRAIN)

    def _sum(
        self, server_round: int, replies: list[Message]
    ) -> tuple[dict[str, Any] | None, dict[str, float]]:
        pending, self._pending = self._pending, None
        if pending is None:
            return None, {}
        decoded, report = self.aggregator.complete(
            self._grid, pending, replies, consequence="; the candidate is sent again"
        )
        from strategies.secagg.forward import forward_field

        self._forward = forward_field(decoded)
        if decoded is None:
            return None, {}
        if report.clipped:
            log(
                WARNING,
                "newton round %d: %d summed values were clipped",
                server_round,
                report.clipped,
            )
        slack = rounding_slack(len(report.survivors), pending.bounds.bits, self.total_rows or 1.0)
        total = {
            GRAD: decoded.arrays[("arrays", GRAD)],
            HESS: decoded.arrays[("arrays", HESS)],
            LOSS: float(decoded.metrics[("metrics", LOSS)]),
            "survivors": frozenset(int(n) for n in report.survivors),
            "slack": slack,
        }
        return total, {
            "secagg-survivors": float(len(report.survivors)),
            "secagg-dropped": float(len(report.dropped)),
            "secagg-clipped": float(report.clipped),
        }

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """As :meth:`FedNewton.configure_train`, with the mask request attached."""
        self._grid = grid
        return super().configure_train(server_round, arrays, config, grid)
