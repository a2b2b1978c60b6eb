"""Defences against malicious banks: robust aggregation as Flower Message-API strategies.

``strategy=`` name and what it is:

- ``fedmedian``: Flower's :class:`~flwr.serverapp.strategy.FedMedian` (coordinate-wise
  median of the banks' models);
- ``trimmed_mean``: Flower's :class:`~flwr.serverapp.strategy.FedTrimmedAvg` (``beta``);
- ``krum``, ``multikrum``: Flower's :class:`~flwr.serverapp.strategy.Krum` and
  :class:`~flwr.serverapp.strategy.MultiKrum` (``num_malicious``, ``num_selected``);
- ``bulyan``: Flower's :class:`~flwr.serverapp.strategy.Bulyan` (``num_malicious``), read
  without a forced garbage collection per reply (:mod:`.bulyan`);
- ``norm_bound``: :class:`NormBoundFedAvg`, FedAvg of updates clipped to an L2 bound;
- ``centered_clip``: :class:`CenteredClip`, centered clipping over buckets of two
  (Karimireddy et al. 2022);
- ``rfa``: :class:`RFA`, the geometric median by smoothed Weiszfeld (Pillutla et al.);
- ``dnc``: :class:`DnC`, divide-and-conquer spectral filtering (Shejwalkar and Houmansadr
  2021; ``num_malicious``);
- ``grouped_secagg``: :class:`GroupedSecAgg`, secure aggregation within random groups and
  a robust rule across the group means (median, trimmed mean, geometric median or centered
  clipping).

All but ``grouped_secagg`` need each bank's update in plaintext. Imports only Flower,
numpy and :mod:`strategies.secagg`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum

from .bulyan import FastBulyan
from .centered_clip import CenteredClip
from .dnc import DnC
from .geomed import RFA
from .grouped import (
    GROUP_RULES,
    GroupedSecAgg,
    membership_rank,
    solve_bank_totals,
    split_groups,
)
from .norm_bound import NormBoundFedAvg, clip_to_norm

_CLASSES: dict[str, type[FedAvg]] = {
    "fedmedian": FedMedian,
    "trimmed_mean": FedTrimmedAvg,
    "krum": Krum,
    "multikrum": MultiKrum,
    "bulyan": FastBulyan,
    "norm_bound": NormBoundFedAvg,
    "centered_clip": CenteredClip,
    "rfa": RFA,
    "dnc": DnC,
}
PLAINTEXT_ROBUST = tuple(_CLASSES)
ROBUST_STRATEGIES = (*PLAINTEXT_ROBUST, "grouped_secagg")


def build_robust_strategy(
    name: str,
    *,
    num_banks: int,
    beta: float = 0.2,
    num_malicious: int = 1,
    num_selected: int | None = None,
    max_norm: float | None = None,
    seed: int = 0,
    wrap: Callable[[type], type] | None = None,
    **common: Any,
) -> FedAvg:
    """The plaintext robust strategy ``name`` (see module doc).

    Parameters
    ----------
    name : str
        One of :data:`PLAINTEXT_ROBUST`.
    num_banks : int
        Banks taking part (Krum and Bulyan need enough of them for ``num_malicious``).
    beta, num_malicious, num_selected, max_norm, seed
        The strategy's settings (``num_selected`` None: ``num_banks - num_malicious``).
    wrap : callable, optional
        Applied to the strategy class before it is built (e.g. a mixin such as a tolerance
        stop, whose own keyword arguments then go in ``common``).
    **common
        Passed to every strategy (sampling settings of :class:`FedAvg`).

    Raises
    ------
    ValueError
        On an unknown name or too few banks for the assumed number of malicious ones, with
        one line naming the requirement.
    """
    f = int(num_malicious)
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown robust strategy {name!r}; choose one of {PLAINTEXT_ROBUST}")
    cls = wrap(cls) if wrap is not None else cls
    if name == "fedmedian":
        return cls(**common)
    if name == "trimmed_mean":
        return cls(beta=beta, **common)
    if name in ("krum", "multikrum"):
        # Krum scores each update by its n - f - 2 nearest neighbours.
        if num_banks < f + 3:
            raise ValueError(
                f"strategy={name} with num_malicious={f} needs at least {f + 3} banks, "
                f"got {num_banks}"
            )
        if name == "krum":
            return cls(num_malicious_nodes=f, **common)
        selected = num_selected if num_selected is not None else num_banks - f
        if not 1 <= selected <= num_banks:
            raise ValueError(f"strategy.num_selected must be in [1, {num_banks}], got {selected}")
        return cls(num_malicious_nodes=f, num_nodes_to_select=selected, **common)
    if name == "bulyan":
        if num_banks < 4 * f + 3:
            raise ValueError(
                f"strategy=bulyan with num_malicious={f} needs at least {4 * f + 3} banks "
                f"(4 * num_malicious + 3), got {num_banks}"
            )
        return cls(num_malicious_nodes=f, **common)
    if name == "dnc":
        return cls(num_malicious=f, seed=seed, **common)
    if name in ("centered_clip", "rfa"):
        return cls(seed=seed, **common)
    return cls(max_norm=max_norm, **common)


__all__ = [
    "RFA",
    "CenteredClip",
    "DnC",
    "FastBulyan",
    "GROUP_RULES",
    "PLAINTEXT_ROBUST",
    "ROBUST_STRATEGIES",
    "GroupedSecAgg",
    "NormBoundFedAvg",
    "build_robust_strategy",
    "clip_to_norm",
    "membership_rank",
    "solve_bank_totals",
    "split_groups",
]
