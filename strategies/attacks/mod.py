"""The ClientApp mod that turns chosen simulated banks malicious.

Place it first in the ClientApp's mods (outermost). For a ``train`` request to an attacked
partition from ``start_round`` on, it

1. takes the secure-aggregation request off the message, if any;
2. leaves the attack's poisoning spec in the bank's state (data poisoning; the request, which
   secure aggregation binds its masks to, stays the one every bank got), and lets the rest
   of the ClientApp answer: the bank's own mods (bank-level DP clipping and noise) and its
   train handler;
3. rewrites the plaintext reply (model poisoning), after every bank-side clip and noise,
   which is why a malicious bank "bypasses its own clipping": it is the bank's code;
4. masks the rewritten reply itself with :func:`strategies.secagg.secagg_mod` when the
   request asked for secure aggregation, so that the server cannot tell it from an honest
   masked reply. The per-coordinate clip of secure aggregation still applies to it.

Every other message passes through untouched. The mod reads
``context.node_config["partition-id"]``, so it is for simulation only.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

from .base import Attack, BankTools
from .exchange import (
    CONFIG_KEY,
    AttackError,
    TrainExchange,
    is_train,
    read_exchange,
    rewrite_reply,
    server_round,
    set_poison,
)

log = logging.getLogger(__name__)


def _secagg_request(message: Message) -> bool:
    from strategies.secagg.records import SECAGG_KEY, secagg_config

    request = secagg_config(message.content) if SECAGG_KEY in message.content else None
    return request is not None and request.get("phase") == "mask"


def _without_secagg(message: Message) -> Message:
    from strategies.secagg.records import SECAGG_KEY

    records = {k: v for k, v in message.content.items() if k != SECAGG_KEY}
    return Message(content=RecordDict(records), metadata=message.metadata)


def _rng(message: Message, exchange: TrainExchange) -> np.random.Generator:
    config = message.content.config_records.get(CONFIG_KEY)
    seed = int(config.get("seed", 0)) if config is not None else 0
    return np.random.default_rng([seed, exchange.server_round, exchange.partition_id, 7919])


def _trainer(
    call_next: ClientAppCallable, plain: Message, context: Context, before: RecordDict
) -> Callable[..., list[np.ndarray]]:
    """``train(pid, poison=None)``: the ClientApp's handler again on the received model, as
    partition ``pid`` (this bank's or a peer's rows) with its rows poisoned by ``poison``,
    from a copy of this bank's state before the round, so that the extra training leaves no
    trace in its accountants. A peer trains without this bank's DP plan, which is fixed to
    this bank's row count (its noise is drawn afresh: exact only without DP)."""
    from strategies.dp.plan import STATE_KEY as DP_PLAN

    own = int(context.node_config["partition-id"])

    def train(pid: int, poison: Mapping[str, Any] | None = None) -> list[np.ndarray]:
        state = copy.deepcopy(before)
        if pid != own and DP_PLAN in state:
            del state[DP_PLAN]
        again_context = Context(
            run_id=context.run_id,
            node_id=context.node_id,
            node_config={**context.node_config, "partition-id": int(pid)},
            state=state,
            run_config=context.run_config,
        )
        set_poison(again_context, poison)
        again = call_next(plain, again_context)
        if again.has_error():
            raise AttackError(f"attack: training again as bank {pid} failed: {again.error.reason}")
        return read_exchange(plain, again, int(pid)).honest_arrays

    return train


def attack_mod(attack: Attack, banks: Iterable[int], start_round: int = 1) -> Mod:
    """Wrap ``attack`` as a ClientApp mod acting on the partitions ``banks``.

    Parameters
    ----------
    attack : Attack
        What the malicious banks do.
    banks : Iterable[int]
        Attacked partition ids (``context.node_config["partition-id"]``).
    start_round : int
        First server round in which they attack (earlier rounds are honest).

    Returns
    -------
    Mod
        The mod; put it first in the ClientApp's mods.
    """
    targets = frozenset(int(b) for b in banks)

    def malicious(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        pid = context.node_config.get("partition-id")
        if pid is None or not is_train(msg):
            return call_next(msg, context)
        if int(pid) not in targets:
            return call_next(msg, context)
        rnd = server_round(msg)
        active = rnd >= start_round
        if not active and not attack.observes_before_start:
            return call_next(msg, context)
        if not attack.rewrites_model and not attack.observes_before_start:
            # Data poisoning only: the bank's own mods (secure aggregation included) answer.
            set_poison(context, attack.poison(rnd))
            try:
                return call_next(msg, context)
            finally:
                set_poison(context, None)
        masked = _secagg_request(msg)
        plain = _without_secagg(msg) if masked else msg
        before = copy.deepcopy(context.state)
        spec = attack.poison(rnd) if active else None
        from strategies.secagg.client_mod import KEEP_DECLARATIONS

        if masked:  # the bank's secagg mod leaves the handler's declarations on the reply
            context.state[KEEP_DECLARATIONS] = ConfigRecord({"keep": True})
        set_poison(context, spec)
        try:
            reply = call_next(plain, context)
        finally:
            set_poison(context, None)
            if KEEP_DECLARATIONS in context.state:
                del context.state[KEEP_DECLARATIONS]
        if reply.has_error():
            return reply
        try:
            exchange = read_exchange(plain, reply, int(pid))
            train = _trainer(call_next, plain, context, before)
            tools = BankTools(
                retrain=lambda spec: train(int(pid), spec),
                rng=_rng(plain, exchange),
                peer_model=train,
            )
            attack.observe(exchange, tools)
            if not active:
                arrays, weight = exchange.honest_arrays, exchange.weight
            else:
                arrays, weight = attack.rewrite(exchange, tools)
        except AttackError as err:
            return Message(
                Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=str(err)), reply_to=msg
            )
        out = rewrite_reply(msg, reply, exchange, arrays, weight)
        if active:
            log.debug("partition %s: %s in round %d", pid, attack.name, rnd)
        if not masked:
            return out
        from strategies.secagg import secagg_mod

        return secagg_mod(msg, context, lambda _m, _c: out)

    return malicious
