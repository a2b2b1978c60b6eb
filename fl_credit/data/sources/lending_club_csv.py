"""``data=lending_club_csv``: a Lending Club ``loan.csv`` file (``data.path``)."""

from __future__ import annotations

from fl_credit.config.schema import DataConfig
from fl_credit.data.frame import CreditData
from fl_credit.data.registry import register_source


def needs(cfg: DataConfig) -> str | None:
    """The file, if it is not given."""
    return None if cfg.path else "data=lending_club_csv needs data.path=<file>"


@register_source("lending_club_csv", check=needs)
def load(cfg: DataConfig, seed: int) -> CreditData:
    """The Lending Club file at ``data.path``."""
    from fl_credit.data.lending_club import load_lending_club_csv

    return load_lending_club_csv(cfg.path)
