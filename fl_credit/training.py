"""Local training and loss evaluation, shared by banks, the pooled baseline and banks alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fl_credit.config import TrainConfig


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
    when first built (about 1.5 s of every process that trains); this does not."""

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
