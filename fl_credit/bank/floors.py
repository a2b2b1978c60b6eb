"""A bank's floors: the least protection it accepts, from its own configuration.

The coordinator builds every request, including the settings record (``config``) that tells
a bank how to train and whether to add DP noise. A bank therefore holds its own floors and
checks each request against them before anything reads its rows:

- secure aggregation required: a data-dependent request without a secure-aggregation
  ``mask`` request is refused (it would be answered in the clear);
- the least threshold, the colluders ``c`` (``2 t > n + c``) and the fewest banks of any
  epoch or sum (:mod:`strategies.secagg.floors`);
- DP required: a request whose ``dp-mode`` is not the bank's, whose ``dp-epsilon`` exceeds
  the bank's or is ``inf`` (no noise; accepted only when the bank's own bound is ``inf``,
  for studies), or (bank-level DP) whose noise share ``dp-noise-std`` is below or clip norm
  ``dp-clip-norm`` above the bank's, is refused;
- the DP spend the bank accounts itself (:mod:`fl_credit.bank.dp_spend`): a ``dp-delta``
  above its own ceiling or fewer ``dp-colluders`` than its ``c`` is refused, and under
  bank-level DP every release is accounted by the bank and refused over its epsilon;
- Newton's model chain: its ``l2``, ``tol`` and monotone constraints are the bank's own
  (:mod:`fl_credit.bank.newton_chain`), never the request's;
- secret noise: whenever DP is on, the bank draws its noise from the OS's randomness,
  whatever the request says; reproducible (seeded) noise only when the bank itself opts in
  (``dp-reproducible-noise``, for studies; the run's ``protection:`` line then says the
  noise is not private: the seed and the bank's name are known to the coordinator, who can
  regenerate the noise and remove it).

Where the floors come from. Deployment: the SuperNode's ``--node-config`` keys below
(:func:`floors_from_node_config`). Simulation: the run's agreed Hydra configuration, handed
to the simulated banks' ClientApp when it is built (:meth:`BankFloors.from_experiment`),
never taken from a message. A request below a floor gets an error reply and one WARNING
line in the bank's log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

from fl_credit.bank.dp_spend import settings_refusal
from fl_credit.bank.newton_chain import NewtonPins
from fl_credit.config.errors import DataError
from fl_credit.config.schema import ExperimentConfig
from strategies.secagg.floors import Floors, plaintext_refusal

log = logging.getLogger(__name__)

# --node-config keys of a deployed bank (docs/deployment.md).
NODE_SECAGG = "secagg-required"
NODE_MIN_THRESHOLD = "secagg-min-threshold"
NODE_COLLUDERS = "secagg-colluders"
NODE_MIN_BANKS = "secagg-min-banks"
NODE_REGROUPING = "secagg-regrouping"
NODE_DP_MODE = "dp-required"
NODE_DP_EPSILON = "dp-max-epsilon"
NODE_REPRODUCIBLE = "dp-reproducible-noise"
NODE_NOISE_STD = "dp-min-noise-std"
NODE_CLIP = "dp-max-clip-norm"
NODE_DELTA = "dp-max-delta"

ANSWERED_IN_CLEAR = frozenset({"query.standardizer", "query.woe_table", "query.privacy"})
"""Requests whose replies hold nothing of the bank's rows (acknowledgements, counters)."""

SETTINGS_KEY = "config"
DP_MODE = "dp-mode"
DP_EPSILON = "dp-epsilon"
SECRET_NOISE = "dp-secret-noise"
NOISE_STD = "dp-noise-std"
CLIP_NORM = "dp-clip-norm"
OWN_MAX_EPSILON = "dp-bank-max-epsilon"
"""Written by the floors mod (never taken from the coordinator): the bank's own DP epsilon
bound, 0 when it requires no DP or sets no bound (:meth:`BankFloors.with_own_dp_cap`)."""


@dataclass(frozen=True)
class BankFloors:
    """Everything a bank pins in its own configuration.

    Attributes
    ----------
    secagg : Floors
        Secure-aggregation floors (required, least threshold, colluders, fewest banks).
    dp_mode : str
        ``"off"`` (no DP required), ``"opacus"`` or ``"central"``: requests must ask for it.
    dp_max_epsilon : float
        Largest epsilon a request may ask for (0: no bound).
    reproducible_noise : bool
        Seed the DP noise from public values (studies only: not private).
    dp_min_noise_std : float
        Least per-bank noise share under bank-level DP (0: no bound).
    dp_max_clip_norm : float
        Largest update clip norm under bank-level DP (0: no bound).
    dp_max_delta : float
        Largest delta it accounts at (0: the mode's default, :mod:`fl_credit.bank.dp_spend`).
    newton : NewtonPins
        The configuration of Newton's model chain (:mod:`fl_credit.bank.newton_chain`).
    """

    secagg: Floors = field(default_factory=Floors)
    dp_mode: str = "off"
    dp_max_epsilon: float = 0.0
    reproducible_noise: bool = False
    dp_min_noise_std: float = 0.0
    dp_max_clip_norm: float = 0.0
    newton: NewtonPins = field(default_factory=NewtonPins)
    dp_max_delta: float = 0.0

    @classmethod
    def from_experiment(
        cls, cfg: ExperimentConfig, threshold: int | None, num_banks: int | None = None
    ) -> BankFloors:
        """The floors every simulated bank holds for the agreed configuration ``cfg``.

        ``threshold`` is the run's planned secure-aggregation threshold (None without);
        with ``num_banks``, bank-level DP's planned noise share is a floor too.
        """
        secure = cfg.strategy.name == "secagg"
        std, clip = 0.0, 0.0
        if cfg.dp.mode == "central" and num_banks:
            from fl_credit.protocol.dp_plan import central_dp_accountant

            planned = central_dp_accountant(cfg, num_banks, threshold)
            std, clip = planned.noise_std_share, planned.clip_norm
        return cls(
            secagg=Floors(
                secure_aggregation=secure,
                colluders=cfg.dp.colluders,
                min_threshold=int(threshold or 0),
                regrouping=cfg.strategy.name == "grouped_secagg",
            ),
            dp_mode=cfg.dp.mode,
            dp_max_epsilon=float(cfg.dp.epsilon or 0.0) if cfg.dp.mode != "off" else 0.0,
            reproducible_noise=cfg.dp.reproducible_noise,
            dp_min_noise_std=std,
            dp_max_clip_norm=clip,
            newton=NewtonPins.from_experiment(cfg),
            dp_max_delta=float(cfg.dp.delta or 0.0) if cfg.dp.mode != "off" else 0.0,
        )

    def refusal(self, msg: Message) -> str | None:
        """Why ``msg`` is below these floors, or None."""
        reason = plaintext_refusal(msg, self.secagg, ANSWERED_IN_CLEAR)
        if reason or self.dp_mode == "off" or not msg.has_content():
            return reason
        settings = msg.content.config_records.get(SETTINGS_KEY)
        if settings is None or msg.metadata.message_type in ANSWERED_IN_CLEAR:
            return None
        asked = str(settings.get(DP_MODE, "off"))
        if asked != self.dp_mode:
            return f"below this bank's floor: dp-mode {asked!r}, it requires {self.dp_mode!r}"
        epsilon = float(settings.get(DP_EPSILON, 0.0))  # type: ignore[arg-type]
        if math.isinf(epsilon) and not math.isinf(self.dp_max_epsilon):
            return f"below this bank's floor: dp-epsilon {epsilon:g} adds no noise, it requires DP"
        if self.dp_max_epsilon and not 0 < epsilon <= self.dp_max_epsilon:
            return (
                f"below this bank's floor: dp-epsilon {epsilon:g}, it allows at most "
                f"{self.dp_max_epsilon:g}"
            )
        return settings_refusal(self, settings) or self._central_refusal(settings)

    def _central_refusal(self, settings: ConfigRecord) -> str | None:
        if self.dp_min_noise_std and NOISE_STD in settings:
            std = float(settings[NOISE_STD])  # type: ignore[arg-type]
            if not std >= self.dp_min_noise_std * (1 - 1e-9):
                return (
                    f"below this bank's floor: dp-noise-std {std:g}, it requires at least "
                    f"{self.dp_min_noise_std:g}"
                )
        if self.dp_max_clip_norm and CLIP_NORM in settings:
            clip = float(settings[CLIP_NORM])  # type: ignore[arg-type]
            if not clip <= self.dp_max_clip_norm * (1 + 1e-9):
                return (
                    f"below this bank's floor: dp-clip-norm {clip:g}, it allows at most "
                    f"{self.dp_max_clip_norm:g}"
                )
        return None

    def with_own_noise(self, msg: Message) -> Message:
        """``msg`` with the bank's own choice of noise randomness in its settings record."""
        if not msg.has_content() or SETTINGS_KEY not in msg.content.config_records:
            return msg
        settings = msg.content.config_records[SETTINGS_KEY]
        if str(settings.get(DP_MODE, "off")) == "off" and SECRET_NOISE not in settings:
            return msg
        own = ConfigRecord({**settings, SECRET_NOISE: not self.reproducible_noise})
        content = RecordDict({k: v for k, v in msg.content.items() if k != SETTINGS_KEY})
        content[SETTINGS_KEY] = own
        return Message(content=content, metadata=msg.metadata)

    def with_own_dp_cap(self, msg: Message) -> Message:
        """``msg`` with the bank's own DP epsilon bound (:data:`OWN_MAX_EPSILON`) in its
        settings record, overwriting any value the coordinator put there: a handler that
        relaxes an exact floor under DP (the tree levels) checks the bank's own bound."""
        if not msg.has_content() or SETTINGS_KEY not in msg.content.config_records:
            return msg
        settings = msg.content.config_records[SETTINGS_KEY]
        if str(settings.get(DP_MODE, "off")) == "off" and OWN_MAX_EPSILON not in settings:
            return msg
        cap = self.dp_max_epsilon if self.dp_mode == "opacus" else 0.0
        content = RecordDict({k: v for k, v in msg.content.items() if k != SETTINGS_KEY})
        content[SETTINGS_KEY] = ConfigRecord({**settings, OWN_MAX_EPSILON: float(cap)})
        return Message(content=content, metadata=msg.metadata)


def floors_from_node_config(node_config: Mapping[str, object]) -> BankFloors:
    """A deployed bank's floors from its ``--node-config`` (defaults: secure aggregation
    required, no colluders, at least 3 banks, no DP required, secret noise).

    Raises
    ------
    DataError
        On a value that does not parse or is out of range (one line naming the key).
    """
    try:
        dp_mode = str(node_config.get(NODE_DP_MODE, "off"))
        if dp_mode not in ("off", "opacus", "central"):
            raise ValueError(f"{NODE_DP_MODE} must be off, opacus or central, got {dp_mode!r}")
        return BankFloors(
            secagg=Floors(
                secure_aggregation=_flag(node_config.get(NODE_SECAGG, True)),
                colluders=int(node_config.get(NODE_COLLUDERS, 0)),  # type: ignore[arg-type]
                min_threshold=int(node_config.get(NODE_MIN_THRESHOLD, 0)),  # type: ignore[arg-type]
                min_banks=int(node_config.get(NODE_MIN_BANKS, 3)),  # type: ignore[arg-type]
                regrouping=_flag(node_config.get(NODE_REGROUPING, False)),
            ),
            dp_mode=dp_mode,
            dp_max_epsilon=float(node_config.get(NODE_DP_EPSILON, 0.0)),  # type: ignore[arg-type]
            reproducible_noise=_flag(node_config.get(NODE_REPRODUCIBLE, False)),
            dp_min_noise_std=float(node_config.get(NODE_NOISE_STD, 0.0)),  # type: ignore[arg-type]
            dp_max_clip_norm=float(node_config.get(NODE_CLIP, 0.0)),  # type: ignore[arg-type]
            newton=NewtonPins.from_node_config(node_config),
            dp_max_delta=float(node_config.get(NODE_DELTA, 0.0)),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as err:
        raise DataError(f"bad floor in --node-config: {err}") from None


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise ValueError(f"expected true or false, got {value!r}")
    return text in ("true", "1")


FloorsOf = Callable[[Context], BankFloors]


def floors_provider(simulated: BankFloors | None = None) -> FloorsOf:
    """``context -> BankFloors``: the simulation's agreed floors, else the node config's."""

    def provide(context: Context) -> BankFloors:
        return simulated if simulated is not None else floors_from_node_config(context.node_config)

    return provide


def floors_mod(floors_of: FloorsOf) -> Mod:
    """Client mod: refuse requests below the bank's floors; impose its noise randomness.

    Place it outermost but for the error-privacy mod, so that every other mod and handler
    sees the request as the bank's floors let it through.
    """

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        floors = floors_of(context)
        reason = floors.refusal(msg)
        if reason is not None:
            log.warning("floors: refusing %s: %s", msg.metadata.message_type, reason)
            error = Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason)
            return Message(error, reply_to=msg)
        return call_next(floors.with_own_dp_cap(floors.with_own_noise(msg)), context)

    return _mod


def node_config_floors(cfg: ExperimentConfig) -> dict[str, object]:
    """The ``--node-config`` entries a deployed bank needs to hold the floors of the agreed
    configuration ``cfg`` (only those that differ from a bank's defaults): what
    ``python -m fl_credit.export_banks`` prints on each SuperNode's command line."""
    entries: dict[str, object] = {}
    if cfg.strategy.name != "secagg":
        entries[NODE_SECAGG] = False  # a plaintext (or grouped) consortium, agreed at export
    if cfg.strategy.name == "grouped_secagg":
        entries[NODE_REGROUPING] = True
    if cfg.dp.colluders:
        entries[NODE_COLLUDERS] = int(cfg.dp.colluders)
    if cfg.dp.mode != "off":
        entries[NODE_DP_MODE] = cfg.dp.mode
        entries[NODE_DP_EPSILON] = float(cfg.dp.epsilon or 0.0)
        if cfg.dp.delta:
            entries[NODE_DELTA] = float(cfg.dp.delta)
    entries.update(NewtonPins.from_experiment(cfg).node_config_entries())
    return entries
