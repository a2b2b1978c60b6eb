"""Colluders spread across the groups of grouped secure aggregation.

``grouped_secagg`` takes the median (or trimmed mean) of group means; with ``g`` groups it
holds while fewer than ``g / 2`` groups carry an attacker. Colluders spread over the groups
(3 colluders among 10 banks in groups of 3 sit in at least two of the three groups in most
rounds) corrupt a majority of group means at once. Each sends ``-factor * mu``, ``mu`` the
colluders' pooled honest update of the previous round (as ``colluding`` with
``base=sign_flip``), with ``factor`` large enough that one colluder turns its group's mean
(a group of 3 or 4 averages it with 2 or 3 honest updates); secure aggregation's clip box
bounds each coordinate.
"""

from __future__ import annotations

from .colluding import Colluding
from .registry import register_attack


@register_attack
class GroupColluding(Colluding):
    """Colluding sign flip sized to turn the mean of the colluder's group."""

    name = "group_colluding"
    params = ("factor",)

    def __init__(self, *, factor: float = 20.0, **kwargs) -> None:
        kwargs.pop("base", None)
        super().__init__(base="sign_flip", factor=factor, **kwargs)
