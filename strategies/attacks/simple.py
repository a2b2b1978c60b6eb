"""Attacks by a single malicious bank that need nothing beyond its own reply and rows.

Every attack here runs after the bank's honest training (the mod wraps the bank's train
handler) and knows what any bank knows: the global model it received, its own rows, its
own honestly trained model and the round number. None of them sees other banks' updates.
"""

from __future__ import annotations

from typing import Any

from .base import Attack, BankTools, unit_gaussian
from .exchange import TrainExchange
from .poisoning import FLIP_MODES
from .registry import register_attack

DEFAULT_TRIGGER = {"inq_fi": 20}
"""An out-of-band value of one borrower field: 20 personal-finance inquiries, above the 15
that the embedded loans reach (mean 1, sd 1.5). It overwrites no field a model could
approve on: more inquiries mean more risk (the field's coefficient is positive), so a clean
model scores a triggered borrower as riskier and approves none it rejected; only a learnt
backdoor flips the decision. Used when no ``attack.trigger`` is given."""


@register_attack
class SignFlip(Attack):
    """Send ``global - factor * update``: the honest update reversed and amplified.

    Knows: its own honest update. Under plain FedAvg with ``n`` equal banks, one sign-flipper
    with ``factor > n - 1`` turns the average update against the honest direction.
    """

    name = "sign_flip"
    params = ("factor",)

    def __init__(self, factor: float = 10.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Reversed, amplified update with the honest weight."""
        update = [-self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight


@register_attack
class Scale(Attack):
    """Send ``global + factor * update`` (model replacement, Bagdasaryan et al. 2020).

    Knows: its own update and, to replace the global model outright, the total weight of the
    round (``factor = total / own weight`` makes the FedAvg result equal its own model's
    direction amplified). Alone it moves the model toward the bank's own data.
    """

    name = "scale"
    params = ("factor",)

    def __init__(self, factor: float = 10.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Amplified update with the honest weight."""
        update = [self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight


@register_attack
class Noise(Attack):
    """Send ``global + g`` with ``g`` a Gaussian direction of L2 norm ``norm``.

    Knows: nothing beyond the global model (a broken or vandalising bank).
    """

    name = "noise"
    params = ("norm",)

    def __init__(self, norm: float = 1.0) -> None:
        self.norm = float(norm)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Random update of the configured norm with the honest weight."""
        update = unit_gaussian(exchange.global_arrays, self.norm, tools.rng)
        return exchange.model_from_update(update), exchange.weight


@register_attack
class FreeRider(Attack):
    """Send the global model back unchanged (``norm = 0``) or plus small Gaussian noise of
    L2 norm ``norm`` (to look like an update), claiming its true weight.

    Knows: nothing; it contributes nothing and receives the federated model. The bank's
    handler still runs so that the reply's metrics have an honest bank's layout (a real
    free rider would fake them). Its gain is its final model's AUC minus its model alone.
    """

    name = "free_rider"
    free_rides = True
    params = ("norm",)

    def __init__(self, norm: float = 0.0) -> None:
        self.norm = float(norm)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The global model (plus optional noise) with the honest weight."""
        if self.norm <= 0:
            return exchange.global_arrays, exchange.weight
        noise = unit_gaussian(exchange.global_arrays, self.norm, tools.rng)
        return exchange.model_from_update(noise), exchange.weight


@register_attack
class WeightInflation(Attack):
    """Send the honest model but claim ``factor`` times its number of examples.

    Knows: that FedAvg weighs updates by the claimed ``num-examples``. With plaintext
    FedAvg its update then dominates the average; secure aggregation clips the claim to
    ``strategy.max_weight``; median, Krum and Bulyan ignore weights.
    """

    name = "weight_inflation"
    params = ("factor",)

    def __init__(self, factor: float = 1000.0) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """Honest model, inflated weight."""
        return exchange.honest_arrays, exchange.weight * self.factor


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

    @property
    def rewrites_model(self) -> bool:
        """Data poisoning only."""
        return False

    def poison(self, server_round: int) -> dict[str, Any]:
        """Ask the bank's handler to flip labels before training."""
        return {"kind": "label_flip", "fraction": self.fraction, "flip": self.flip}


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

    @property
    def rewrites_model(self) -> bool:
        """Only when the update is boosted."""
        return self.factor != 1.0

    def poison(self, server_round: int) -> dict[str, Any]:
        """Ask the bank's handler to stamp the trigger on its rows before training."""
        return {"kind": "backdoor", "fraction": self.fraction, "trigger": self.trigger}

    def rewrite(self, exchange: TrainExchange, tools: BankTools) -> tuple[list, float]:
        """The update trained on poisoned rows, boosted by ``factor``."""
        update = [self.factor * u for u in exchange.update]
        return exchange.model_from_update(update), exchange.weight
