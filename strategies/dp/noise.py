"""Distributed Gaussian noise: each party adds a share, the released sum carries the whole.

A sum released under secure aggregation holds the replies of at least ``t`` parties (its
threshold). If each adds Gaussian noise of variance ``(sigma * Delta)^2 / (t - k)``, every sum
the coordinator can unmask carries at least the variance ``(sigma * Delta)^2`` of the
Gaussian mechanism with noise multiplier ``sigma`` on a query of L2 sensitivity ``Delta``,
even after ``k`` colluding parties subtract their own shares. Summed in the clear, each reply
is a release of its own: then ``t = 1`` and every party adds the full noise.
"""

from __future__ import annotations

import math

import numpy as np

from strategies.dp.errors import PrivacyConfigError


def noise_std_share(
    *, noise_multiplier: float, sensitivity: float, contributors: int, colluders: int = 0
) -> float:
    """Standard deviation of one party's share.

    Parameters
    ----------
    noise_multiplier : float
        sigma of the release.
    sensitivity : float
        L2 sensitivity of the summed vector to one record (or one party).
    contributors : int
        The fewest replies any released sum holds (the secure-aggregation threshold; 1 when
        summed in the clear).
    colluders : int, optional
        Parties that may subtract their own share (k < contributors).

    Returns
    -------
    float
        ``noise_multiplier * sensitivity / sqrt(contributors - colluders)``.
    """
    honest = int(contributors) - int(colluders)
    if honest < 1:
        raise PrivacyConfigError(
            f"dp.colluders={colluders} leaves no honest contributor in a sum of {contributors}"
        )
    return float(noise_multiplier) * float(sensitivity) / math.sqrt(honest)


def add_noise_share(
    values: np.ndarray,
    *,
    noise_multiplier: float,
    sensitivity: float,
    contributors: int,
    colluders: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``values`` plus this party's share of the Gaussian noise (float64)."""
    std = noise_std_share(
        noise_multiplier=noise_multiplier,
        sensitivity=sensitivity,
        contributors=contributors,
        colluders=colluders,
    )
    values = np.asarray(values, dtype=np.float64)
    return values + rng.normal(0.0, std, size=values.shape)
