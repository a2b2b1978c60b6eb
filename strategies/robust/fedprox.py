"""FedProx (Flower's :class:`~flwr.serverapp.strategy.FedProx`): FedAvg whose banks add the
proximal term ``proximal_mu / 2 * ||w - w_global||^2`` to their loss. It changes the banks'
training, not the aggregation: against a malicious bank it is FedAvg."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg, FedProx

from .registry import RobustSettings, register_defence, wrapped


@register_defence("fedprox", robust=False)
def fedprox(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """FedAvg sending ``proximal_mu`` to the banks."""
    return wrapped(FedProx, wrap)(proximal_mu=settings.proximal_mu, **common)
