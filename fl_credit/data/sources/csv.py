"""``data=csv``: any CSV file with a binary target (``data.path``, ``data.target``...)."""

from __future__ import annotations

from fl_credit.config.schema import DataConfig
from fl_credit.data.frame import CreditData
from fl_credit.data.registry import register_source


def needs(cfg: DataConfig) -> str | None:
    """The first missing setting: the file, its target column and the default value."""
    if not cfg.path:
        return "data=csv needs data.path=<file>"
    if not cfg.target:
        return "data=csv needs data.target=<column>"
    if cfg.positive is None:
        return "data=csv needs data.positive=<value>"
    if cfg.max_levels < 1:
        return "data.max_levels must be at least 1"
    return None


@register_source("csv", check=needs)
def load(cfg: DataConfig, seed: int) -> CreditData:
    """The CSV file at ``data.path`` with the configured target and value columns."""
    from fl_credit.data.generic_csv import load_csv

    categorical = list(cfg.categorical) if cfg.categorical else None
    negative = list(cfg.negative) if cfg.negative is not None else None
    return load_csv(
        cfg.path,
        cfg.target,
        list(cfg.positive) if isinstance(cfg.positive, tuple) else cfg.positive,
        categorical=categorical,
        region=cfg.region,
        negative=negative,
        sep=cfg.sep,
        exclude=list(cfg.exclude),
        max_levels=cfg.max_levels,
        majority_default=cfg.majority_default,
    )
