"""Plain Federated Averaging (Flower's :class:`~flwr.serverapp.strategy.FedAvg`): the
coordinator sees each bank's update and takes their weighted mean."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped


@register_defence("fedavg", robust=False, sums=True)
def fedavg(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """The weighted mean of the banks' models, in the clear."""
    return wrapped(FedAvg, wrap)(**common)
