"""Flower's own robust rules as defences: ``fedmedian``, ``trimmed_mean``, ``krum``,
``multikrum``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum

from .registry import RobustSettings, register_defence, wrapped


@register_defence("fedmedian")
def fedmedian(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """Coordinate-wise median of the banks' models."""
    return wrapped(FedMedian, wrap)(**common)


@register_defence("trimmed_mean")
def trimmed_mean(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """Coordinate-wise mean without the ``beta`` share at each end."""
    return wrapped(FedTrimmedAvg, wrap)(beta=settings.beta, **common)


def _krum_banks(name: str, settings: RobustSettings) -> int:
    # Krum scores each update by its n - f - 2 nearest neighbours.
    f = int(settings.num_malicious)
    if settings.num_banks < f + 3:
        raise ValueError(
            f"strategy={name} with num_malicious={f} needs at least {f + 3} banks, "
            f"got {settings.num_banks}"
        )
    return f


@register_defence("krum")
def krum(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """The update closest to its ``n - f - 2`` nearest neighbours."""
    f = _krum_banks("krum", settings)
    return wrapped(Krum, wrap)(num_malicious_nodes=f, **common)


@register_defence("multikrum")
def multikrum(settings: RobustSettings, wrap: Callable | None = None, **common: Any) -> FedAvg:
    """The mean of the ``num_selected`` best Krum updates."""
    f = _krum_banks("multikrum", settings)
    n = settings.num_banks
    selected = settings.num_selected if settings.num_selected is not None else n - f
    if not 1 <= selected <= n:
        raise ValueError(f"strategy.num_selected must be in [1, {n}], got {selected}")
    return wrapped(MultiKrum, wrap)(num_malicious_nodes=f, num_nodes_to_select=selected, **common)
