"""Aggregation strategies as Flower Message-API strategies: plain and secure FedAvg, and
the defences against malicious banks (robust aggregation), all in one registry
(:mod:`.registry`).

``strategy=`` name and what it is:

- ``fedavg``, ``fedprox``: Flower's FedAvg / FedProx over plaintext updates;
- ``secagg``: secure FedAvg (:mod:`strategies.secagg`), the coordinator learns sums only;
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
- ``fltrust``: :class:`~.fltrust.FLTrust`, trust by cosine to the coordinator's root-set update
  (Cao et al. 2021; the root update is the caller's callable);
- ``flame``: :class:`~.flame.Flame`, HDBSCAN filtering (the caller's clusterer), median-norm
  clipping and noise (Nguyen et al. 2022);
- ``grouped_secagg``: :class:`GroupedSecAgg`, secure aggregation within random groups and
  a robust rule across the group means (median, trimmed mean, geometric median or centered
  clipping).

The robust rules but ``grouped_secagg`` need each bank's update in plaintext. Imports only Flower,
numpy and :mod:`strategies.secagg`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import FedAvg

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
from .registry import (
    DEFENCES,
    RobustSettings,
    build_defence,
    defence_names,
    plaintext_defences,
    register_defence,
    strategy_names,
    summing_strategies,
)

PLAINTEXT_ROBUST = plaintext_defences()
"""The registered defences that need each bank's update in plaintext."""
ROBUST_STRATEGIES = defence_names()
"""Every registered robust rule (the plaintext ones and ``grouped_secagg``)."""


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
    """A plaintext robust strategy by config name (see the registry, :mod:`.registry`).

    Parameters
    ----------
    name : str
        One of :func:`plaintext_defences`.
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
    plaintext = plaintext_defences()
    if name not in plaintext:
        raise ValueError(f"unknown robust strategy {name!r}; choose one of {plaintext}")
    settings = RobustSettings(num_banks, beta, num_malicious, num_selected, max_norm, seed)
    return build_defence(name, settings, wrap, **common)


__all__ = [
    "DEFENCES",
    "RFA",
    "CenteredClip",
    "DnC",
    "FastBulyan",
    "GROUP_RULES",
    "PLAINTEXT_ROBUST",
    "ROBUST_STRATEGIES",
    "GroupedSecAgg",
    "NormBoundFedAvg",
    "RobustSettings",
    "build_defence",
    "build_robust_strategy",
    "clip_to_norm",
    "defence_names",
    "membership_rank",
    "plaintext_defences",
    "register_defence",
    "solve_bank_totals",
    "split_groups",
    "strategy_names",
    "summing_strategies",
]
