"""Secure aggregation (:class:`strategies.secagg.SecAggFedAvg`): the coordinator learns only
the sum of the banks' updates, weights and metrics (pairwise masks, Shamir dropout
recovery)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg

from .registry import RobustSettings, register_defence, wrapped


@register_defence("secagg", plaintext=False, robust=False, sums=True)
def secagg(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """Secure FedAvg with the settings' threshold and colluders; ``common`` carries the
    secure-sum settings (clip, quantisation, roster, timeout). Evaluation rounds are not
    masked: the run evaluates with its own federated queries."""
    from strategies.secagg import SecAggFedAvg

    return wrapped(SecAggFedAvg, wrap)(
        threshold=settings.threshold,
        colluders=settings.colluders,
        secure_evaluate=False,
        **common,
    )
