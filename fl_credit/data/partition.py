"""Split the training rows between banks; total rows are fixed, every scheme is seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fl_credit.config.errors import ConfigError, DataError
from fl_credit.config.schema import PartitionConfig

CENSUS_REGIONS = {
    "northeast": "CT ME MA NH RI VT NJ NY PA",
    "midwest": "IL IN MI OH WI IA KS MN MO NE ND SD",
    "south": "DE DC FL GA MD NC SC VA WV AL KY MS TN AR LA OK TX",
    "west": "AZ CO ID MT NV NM UT WY AK CA HI OR WA",
}
MIN_ROWS_PER_CLASS = 2
DIRICHLET_TRIES = 200


@dataclass(frozen=True)
class BankSplit:
    """Positions (into the training rows) held by one bank."""

    name: str
    label: str
    rows: np.ndarray


def bank_shares(cfg: PartitionConfig) -> list[float]:
    """Size shares per bank for the size-based schemes (shares, two_banks, power)."""
    if cfg.scheme == "shares":
        return [float(s) for s in cfg.shares]
    if cfg.scheme == "two_banks":
        return [float(cfg.share), 1.0 - float(cfg.share)]
    if cfg.scheme == "power":
        weights = np.arange(1, cfg.banks + 1, dtype=float) ** -float(cfg.skew)
        return list(weights / weights.sum())
    raise ConfigError(f"partition scheme {cfg.scheme!r} has no size shares")


def split_banks(
    cfg: PartitionConfig, target: np.ndarray, region: pd.Series | None, seed: int
) -> list[BankSplit]:
    """Assign every training row to exactly one bank.

    Parameters
    ----------
    cfg : PartitionConfig
        The scheme and its parameters.
    target : numpy.ndarray
        0/1 labels of the training rows.
    region : pandas.Series or None
        Borrower state per training row (needed by ``region``).
    seed : int
        Seed for the shuffle and for Dirichlet draws.

    Returns
    -------
    list of BankSplit
        One entry per bank, each with at least two rows of each class.

    Raises
    ------
    DataError
        When a bank would be left with no rows or a single class.
    """
    rng = np.random.default_rng(seed)
    if cfg.scheme == "dirichlet":
        parts = _dirichlet(target, cfg.banks, cfg.alpha, rng)
        labels = [f"{len(p)} rows" for p in parts]
    elif cfg.scheme == "region":
        parts, labels = _by_region(region)
    else:
        parts = _by_size(len(target), bank_shares(cfg), rng)
        labels = [f"{s:.1%} of rows" for s in bank_shares(cfg)]
    pairs = enumerate(zip(parts, labels, strict=True))
    splits = [BankSplit(f"bank_{i}", lab, np.sort(p)) for i, (p, lab) in pairs]
    for split in splits:
        _check_bank(split, target)
    return splits


def _by_size(n_rows: int, shares: list[float], rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n_rows)
    bounds = np.rint(np.cumsum([0.0, *shares]) * n_rows).astype(int)
    bounds[-1] = n_rows
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _dirichlet(
    target: np.ndarray, banks: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per class, split its rows between banks by proportions drawn from Dir(alpha)."""
    by_class = [rng.permutation(np.flatnonzero(target == c)) for c in (0, 1)]
    for _ in range(DIRICHLET_TRIES):
        parts: list[list[np.ndarray]] = [[] for _ in range(banks)]
        for rows in by_class:
            props = rng.dirichlet(np.full(banks, alpha))
            bounds = np.rint(np.cumsum([0.0, *props]) * len(rows)).astype(int)
            for b in range(banks):
                parts[b].append(rows[bounds[b] : bounds[b + 1]])
        counts = [[len(p) for p in bank] for bank in parts]
        if all(min(c) >= MIN_ROWS_PER_CLASS for c in counts):
            return [np.concatenate(bank) for bank in parts]
    raise DataError(
        f"partition=dirichlet with alpha={alpha} and {banks} banks left some bank with fewer than "
        f"{MIN_ROWS_PER_CLASS} rows of a class in {DIRICHLET_TRIES} draws; raise partition.alpha "
        "or lower partition.banks"
    )


def _by_region(region: pd.Series | None) -> tuple[list[np.ndarray], list[str]]:
    if region is None:
        raise DataError("partition=region needs a borrower state column; this data has none")
    state_to_region = {s: r for r, states in CENSUS_REGIONS.items() for s in states.split()}
    mapped = region.astype(str).str.upper().map(state_to_region)
    unknown = sorted(region[mapped.isna()].astype(str).unique())
    if unknown:
        raise DataError(f"partition=region: unknown state codes {unknown[:5]}")
    names = [r for r in CENSUS_REGIONS if (mapped == r).any()]
    return [np.flatnonzero((mapped == r).to_numpy()) for r in names], names


def _check_bank(split: BankSplit, target: np.ndarray) -> None:
    y = target[split.rows]
    if len(y) == 0:
        raise DataError(f"{split.name} ({split.label}) gets no rows; give it a larger share")
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if min(pos, neg) < MIN_ROWS_PER_CLASS:
        raise DataError(
            f"{split.name} ({split.label}) has {pos} defaults and {neg} repaid loans; every bank "
            f"needs at least {MIN_ROWS_PER_CLASS} of each class — give it a larger share"
        )
