"""A DP bank's own spend: accounted from what it can verify, held to its own floors.

The request names the DP settings; the epsilon and the mode are floors
(:mod:`fl_credit.bank.floors`). The rest is checked against the bank's own values too:

- delta: the bank's own ceiling (``dp-max-delta``; 0 means the mode's default, ``1e-7``
  for record-level and ``1e-5`` for bank-level DP). A request for a larger delta is
  refused: noise planned for it is too small at the bank's own delta. The plan further
  requires ``rows x delta <= 0.01`` of the bank's own rows (:mod:`strategies.dp.plan`).
- colluders: a request that assumes fewer colluders than the bank's floor (``c``) is
  refused, since each bank's noise share would shrink.
- record-level DP (``dp=opacus``): the sample rate, rounds and releases the request names
  fix the bank's plan once (:func:`strategies.dp.plan.plan_for_round`); its noise is
  planned for exactly that horizon, the bank counts its own steps and releases and refuses
  any beyond it, so what it spends at the plan's delta is at most the plan's epsilon.
- bank-level DP (``dp=central``): each round is one release, with the noise share and
  clip norm the request names. The bank accounts each release itself -- noise multiplier
  ``s sqrt(t - c) / C`` from its share ``s``, the clip norm ``C``, the threshold ``t`` of
  the secure-aggregation instance its reply is masked in (1 when it is not masked; set by
  its own secagg mod) and its own ``c`` -- composes them by RDP over its own count of
  releases, and refuses the release that would take its epsilon at its own delta over its
  floor: more rounds than planned, or a smaller noise share, are refused whatever the
  coordinator counts.
"""

from __future__ import annotations

import logging
import math

from flwr.app import ConfigRecord, Context, Error, Message
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

log = logging.getLogger(__name__)

SPENT_KEY = "central-dp-spent"  # the bank's own state: noise multipliers of its releases


def own_delta(dp_mode: str, max_delta: float) -> float:
    """The delta the bank accounts at: its ceiling, else the mode's default."""
    from strategies.dp.accounting import BANK_LEVEL_DEFAULT_DELTA
    from strategies.dp.plan import DEFAULT_DELTA

    if max_delta > 0:
        return float(max_delta)
    return BANK_LEVEL_DEFAULT_DELTA if dp_mode == "central" else DEFAULT_DELTA


def settings_refusal(floors, settings: ConfigRecord) -> str | None:
    """Why a DP request's ``delta`` or ``colluders`` is below ``floors``, or None.

    Parameters
    ----------
    floors : BankFloors
        The bank's floors.
    settings : ConfigRecord
        The request's settings record.
    """
    colluders = int(settings.get("dp-colluders", 0))  # type: ignore[arg-type]
    if colluders < floors.secagg.colluders:
        return (
            f"below this bank's floor: dp-colluders {colluders}, it assumes "
            f"{floors.secagg.colluders}"
        )
    if floors.dp_mode != "opacus":
        return None  # bank-level DP: accounted at the bank's own delta (central_spend_mod)
    ceiling = own_delta(floors.dp_mode, floors.dp_max_delta)
    asked = float(settings.get("dp-delta", 0.0)) or own_delta("opacus", 0.0)  # type: ignore[arg-type]
    if asked > ceiling * (1 + 1e-12):
        return f"below this bank's floor: dp-delta {asked:.3g}, it allows at most {ceiling:.3g}"
    return None


def _is_central_train(msg: Message) -> bool:
    if msg.metadata.message_type != "train" or not msg.has_content():
        return False
    settings = msg.content.config_records.get("config")
    return settings is not None and str(settings.get("dp-mode", "off")) == "central"


def central_spend_mod(floors_of) -> Mod:
    """Client mod: account each bank-level DP release itself; refuse one over the floor.

    Place it inside the secure-aggregation mod (whose record gives the threshold) and
    outside :func:`strategies.dp.central.central_dp_mod`.
    """
    from fl_credit.bank.privacy import noise_contributors
    from strategies.dp.accounting import accountant_epsilon

    def _mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        floors = floors_of(context)
        if not _is_central_train(msg) or not floors.dp_max_epsilon:
            return call_next(msg, context)
        settings = msg.content.config_records["config"]
        std = float(settings.get("dp-noise-std", 0.0))  # type: ignore[arg-type]
        clip = float(settings.get("dp-clip-norm", 0.0))  # type: ignore[arg-type]
        honest = noise_contributors(msg) - floors.secagg.colluders
        sigma = std * math.sqrt(honest) / clip if honest > 0 and clip > 0 else 0.0
        spent = (
            [float(s) for s in context.state[SPENT_KEY]["sigmas"]]
            if (SPENT_KEY in context.state)
            else []
        )
        delta = own_delta("central", floors.dp_max_delta)
        after = (
            accountant_epsilon([(s, 1.0, 1) for s in [*spent, sigma]], delta, "rdp")
            if (sigma > 0)
            else math.inf
        )
        if not after <= floors.dp_max_epsilon * (1 + 1e-9):
            reason = (
                f"below this bank's floor: release {len(spent) + 1} with noise multiplier "
                f"{sigma:.3g} would bring its own epsilon to {after:.3g} (delta {delta:.1e}), "
                f"over its {floors.dp_max_epsilon:g}"
            )
            log.warning("floors: refusing train: %s", reason)
            error = Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason)
            return Message(error, reply_to=msg)
        reply = call_next(msg, context)
        if not reply.has_error():
            context.state[SPENT_KEY] = ConfigRecord({"sigmas": [*spent, sigma]})
        return reply

    return _mod
