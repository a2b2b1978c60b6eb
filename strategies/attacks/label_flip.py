"""Label flipping: honest training on the bank's own rows with flipped labels.

Data poisoning: the mod asks the bank's own train handler to poison its rows before
training (:func:`.poisoning.poison_rows`); it sees no other bank's update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Attack
from .poisoning import FLIP_MODES
from .registry import register_attack


@register_attack
class LabelFlip(Attack):
    """Train honestly on flipped labels: every label (``flip=all``) or defaults turned into
    repaid loans (``flip=defaults``), on a random share ``fraction`` of the eligible rows.

    Knows: only its own rows. The reply is the model trained on the poisoned rows.
    """

    name = "label_flip"
    poisons_rows = True
    params = ("fraction", "flip")

    def __init__(self, fraction: float = 1.0, flip: str = "all") -> None:
        if flip not in FLIP_MODES:
            raise ValueError(f"attack.flip must be one of {FLIP_MODES}, got {flip!r}")
        self.fraction = float(fraction)
        self.flip = flip

    @classmethod
    def rewrites(cls, settings: Mapping[str, Any]) -> bool:
        """Never: data poisoning only."""
        return False

    def poison(self, server_round: int) -> dict[str, Any]:
        """Ask the bank's handler to flip labels before training."""
        return {"kind": "label_flip", "fraction": self.fraction, "flip": self.flip}
