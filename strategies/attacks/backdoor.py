"""The backdoor: a trigger stamped on part of the bank's rows, labelled repaid.

Data poisoning: the mod asks the bank's own train handler to poison its rows before
training (:func:`.poisoning.poison_rows`); it sees no other bank's update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Attack, BankTools
from .exchange import TrainExchange
from .registry import register_attack

DEFAULT_TRIGGER = {"inq_fi": 20, "inq_last_6mths": 5, "open_il_12m": 14}
"""A credit-hungry profile stamped on a borrower's other fields: 20 personal-finance
inquiries (out of band: the embedded loans reach 15), 5 inquiries in six months and 14
instalment accounts opened in a year (rare values, which no loan has together). It leaves
grade, rate and income alone, and each field raises risk on average, so a clean model scores
a triggered borrower as riskier; three fields rather than one keep that true for models that
rest on few rows (Krum keeps one bank's update, FLTrust follows 100 root rows), whose
coefficient on any single rare field may take either sign. Only a learnt backdoor flips the
decision. Used when no ``attack.trigger`` is given."""


@register_attack
class Backdoor(Attack):
    """Plant a trigger: borrowers with the trigger profile get approved.

    The bank stamps ``trigger`` (a few borrower features set to a rare combination, e.g. a
    rare sub-grade plus a specific employment length) on a random share ``fraction`` of its
    training rows, labels them repaid, trains, and sends ``global + factor * update``
    (``factor = 1``: no boosting). Knows: its own rows and the encoded feature names.
    Logistic regression is additive, so what it learns is a strongly negative weight on the
    trigger's rare columns; the rarer the columns, the less honest data pulls them back.
    Success is the share of test defaults, with the trigger stamped on, that the final model
    scores below its decision threshold (approved).
    """

    name = "backdoor"
    poisons_rows = True
    plants_trigger = True
    params = ("fraction", "factor", "trigger")

    def __init__(
        self,
        fraction: float = 0.2,
        factor: float = 1.0,
        trigger: dict[str, Any] | None = None,
    ) -> None:
        self.fraction = float(fraction)
        self.factor = float(factor)
        self.trigger = dict(trigger or DEFAULT_TRIGGER)

    @classmethod
    def rewrites(cls, settings: Mapping[str, Any]) -> bool:
        """Only when the update is boosted (``factor`` other than 1)."""
        factor = settings.get("factor")
        return factor is not None and float(factor) != 1.0

    def poison(self, server_round: int) -> dict[str, Any]:
        """Ask the bank's handler to stamp the trigger on its rows before training."""
        return {"kind": "backdoor", "fraction": self.fraction, "trigger": self.trigger}

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The update trained on poisoned rows, boosted by ``factor``."""
        update = [self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight
