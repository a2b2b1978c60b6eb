"""``data=synthetic``: a generated Lending Club-shaped file of ``data.rows`` rows."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fl_credit.config.schema import DataConfig
from fl_credit.data.frame import CreditData
from fl_credit.data.registry import register_source


@register_source("synthetic")
def load(cfg: DataConfig, seed: int) -> CreditData:
    """The synthetic file at ``data.path`` (or a temporary one per size and seed), generated
    when missing."""
    from fl_credit.data.lending_club import load_lending_club_csv
    from fl_credit.data.synthetic import generate_lending_club_csv

    path = cfg.path or str(Path(tempfile.gettempdir()) / f"fl_credit_synth_{cfg.rows}_{seed}.csv")
    if not Path(path).is_file():
        generate_lending_club_csv(path, n_rows=cfg.rows, seed=seed)
    return load_lending_club_csv(path)
