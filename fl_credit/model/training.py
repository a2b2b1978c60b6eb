"""Local training and loss evaluation, shared by banks, the pooled baseline and banks alone.

Two optimisers: first-order (SGD / Adam / RMSprop epochs, :func:`train`) and Newton / IRLS,
whose bank-side part is :func:`newton_terms` (the sums a bank returns each round) and whose
single-party form is :func:`fit_newton` (the same search as the federated strategy, on rows
held in one place).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fl_credit.config.schema import TrainConfig
from fl_credit.model.logistic import LogisticRegression, model_from_theta


@dataclass(frozen=True)
class LocalTraining:
    """How one party trains: the shared settings plus its own class weight and seed."""

    epochs: int
    lr: float
    batch_size: int
    optimizer: str
    l2: float
    pos_weight: float = 1.0
    proximal_mu: float = 0.0
    seed: int = 0

    @classmethod
    def from_config(
        cls,
        train: TrainConfig,
        *,
        epochs: int,
        pos_weight: float,
        seed: int,
        proximal_mu: float = 0.0,
    ) -> LocalTraining:
        """Settings for ``epochs`` epochs under the shared :class:`TrainConfig`."""
        return cls(
            epochs=epochs,
            lr=train.lr,
            batch_size=train.batch_size,
            optimizer=train.optimizer,
            l2=train.l2,
            pos_weight=pos_weight,
            proximal_mu=proximal_mu,
            seed=seed,
        )


class PlainSGD:
    """Plain gradient descent, ``p -= lr * grad``: the same update as ``torch.optim.SGD``
    without momentum or weight decay. ``torch.optim``'s optimizers import ``torch._dynamo``
    when first built (a cost every process that trains would pay); this does not."""

    def __init__(self, params, lr: float) -> None:
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        """Drop the gradients (as ``Optimizer.zero_grad(set_to_none=True)``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One descent step along the current gradients."""
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The named optimizer over ``params``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def penalised_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: LocalTraining,
    anchor: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Weighted BCE with logits + L2 on the weights (+ FedProx's proximal term)."""
    pos_weight = torch.tensor(settings.pos_weight, dtype=torch.float32)
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y, pos_weight=pos_weight)
    weight = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    loss = loss + 0.5 * settings.l2 * weight.pow(2).sum()
    if anchor is not None and settings.proximal_mu > 0:
        prox = sum((p - a).pow(2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
        loss = loss + 0.5 * settings.proximal_mu * prox
    return loss


def batches(n_rows: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches for one epoch (one batch when ``batch_size`` <= 0)."""
    if batch_size <= 0 or batch_size >= n_rows:
        return [torch.arange(n_rows)]
    return list(torch.randperm(n_rows, generator=generator).split(batch_size))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, settings: LocalTraining) -> float:
    """Train ``model`` in place; return the mean training loss of the last epoch."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    generator = torch.Generator().manual_seed(settings.seed)
    anchor = [p.detach().clone() for p in model.parameters()] if settings.proximal_mu else None
    if settings.optimizer == "sgd":
        optimizer = PlainSGD(model.parameters(), lr=settings.lr)
    else:
        optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.lr)
    model.train()
    epoch_loss = float("nan")
    for _ in range(settings.epochs):
        total = 0.0
        for idx in batches(len(yt), settings.batch_size, generator):
            optimizer.zero_grad()
            loss = penalised_loss(model, xt[idx], yt[idx], settings, anchor)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        epoch_loss = total / len(yt)
    return epoch_loss


def log_loss(model: nn.Module, x: np.ndarray, y: np.ndarray, pos_weight: float = 1.0) -> float:
    """Weighted BCE of ``model`` on ``(x, y)``, without penalties."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits,
            torch.as_tensor(y, dtype=torch.float32),
            pos_weight=torch.tensor(pos_weight, dtype=torch.float32),
        )
    return float(loss)


def newton_terms(
    x: np.ndarray, y: np.ndarray, pos_weight: float, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Sums over the rows of the class-weighted BCE gradient, Hessian and loss.

    Row ``i`` weighs ``s_i = pos_weight`` if it is a default, else 1; the loss is
    ``s_i * BCE(y_i, sigmoid(x_i . w + b))``, as in :func:`penalised_loss` without the L2
    term (the server adds that once, to the sums).

    Parameters
    ----------
    x, y : numpy.ndarray
        Scaled features ``(n, d)`` and 0/1 labels.
    pos_weight : float
        Loss weight of a default.
    theta : numpy.ndarray
        The point ``[w..., b]`` (``d + 1`` values).

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray, float]
        Gradient ``(d + 1,)``, Hessian ``(d + 1, d + 1)`` with respect to ``[w..., b]``, and
        the summed loss, all unnormalised (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    z = x @ theta[:-1] + theta[-1]
    s = np.where(y == 1, float(pos_weight), 1.0)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid, without overflow
    loss = float(np.sum(s * np.where(y == 1, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))))
    r = s * (p - y)
    h = s * p * (1.0 - p)
    xh = x * h[:, None]
    column = xh.sum(axis=0)
    hess = np.empty((len(theta), len(theta)))
    hess[:-1, :-1] = x.T @ xh
    hess[:-1, -1] = hess[-1, :-1] = column
    hess[-1, -1] = h.sum()
    return np.concatenate([x.T @ r, [r.sum()]]), hess, loss


def fit_newton(
    x: np.ndarray,
    y: np.ndarray,
    *,
    pos_weight: float,
    l2: float,
    tol: float,
    max_iterations: int,
    total_rows: float | None = None,
    constraints: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[LogisticRegression, int, bool]:
    """Newton / IRLS on rows held in one place: the federated search with one party.

    Minimises ``sum_i s_i BCE_i / total_rows + 0.5 * l2 * |w|^2`` from zero weights, at most
    ``max_iterations`` evaluations (the federated run's rounds), stopping once the Newton
    step changes no coefficient by more than ``tol``.

    Parameters
    ----------
    x, y : numpy.ndarray
        Scaled (and, for SMOTE, rebalanced) training rows and labels.
    pos_weight : float
        Loss weight of a default.
    l2, tol : float
        L2 penalty on the weights; step tolerance.
    max_iterations : int
        Evaluation budget.
    total_rows : float, optional
        ``N`` of the objective (default ``len(y)``; the rows before SMOTE when rebalanced,
        as in the federation).
    constraints : tuple of numpy.ndarray, optional
        ``(T, bounded)``: every step within ``theta = T u``, ``u[bounded] >= 0``
        (:func:`fl_credit.validation.monotone.increments`).

    Returns
    -------
    tuple[LogisticRegression, int, bool]
        The fitted model (float64 weights), the evaluations used, whether it converged.
    """
    from strategies.newton import fit

    search = fit(
        lambda theta: newton_terms(x, y, pos_weight, theta),
        np.zeros(x.shape[1] + 1),
        l2=l2,
        total_rows=float(total_rows or len(y)),
        tol=tol,
        max_evaluations=max_iterations,
        constraints=constraints,
    )
    return model_from_theta(search.theta), search.evaluations, search.converged
