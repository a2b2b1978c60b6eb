"""``data=lending_club_csv``: a Lending Club ``loan.csv`` file (``data.path``)."""

from __future__ import annotations

from fl_credit.config.schema import DataConfig
from fl_credit.data.frame import CreditData
from fl_credit.data.registry import register_source


@register_source("lending_club_csv")
def load(cfg: DataConfig, seed: int) -> CreditData:
    """The Lending Club file at ``data.path``."""
    from fl_credit.data.lending_club import load_lending_club_csv

    return load_lending_club_csv(cfg.path)
