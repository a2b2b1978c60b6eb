"""Client side: the secagg Mod, the key-setup/unmask query handler, and a dropout injector.

Usage in a ClientApp (Message API)::

    app = ClientApp(mods=[secagg_mod])      # app-level mods wrap every registered handler
    install_secagg(app, identity_provider)  # registers query.secagg_{advertise,share_keys,unmask}

    @app.train()
    def train(msg, context): ...            # unchanged: one ArrayRecord + one MetricRecord

``identity_provider(context)`` returns this bank's :class:`~.identity.Identity` and its own
copy of the consortium roster (:class:`~.identity.Consortium`), e.g. read from files named
in the node config; the bank never takes either from the server.

Everything the protocol must remember between messages (key pairs, pairwise encryption
keys, the mask key and self-mask seed of the next instance, the shares it holds, and the
run-wide differencing records) lives in ``context.state["secagg"]``; nothing is kept in
module globals, so the same code runs under the Deployment Engine, where every message
starts a fresh ClientApp process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from logging import INFO, WARNING
from typing import Any

from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common import log
from flwr.common.constant import ErrorCode

from . import blame, chain, forward, policy
from . import floors as bank_floors
from .bank_protocol import (
    MaskRequest,
    client_advertise,
    client_mask,
    client_share_keys,
    client_unmask,
)
from .identity import Consortium, Identity, IdentityError, check_identity
from .protocol import ProtocolError
from .records import (
    ACTIONS,
    ADVERTISE,
    SECAGG_KEY,
    SHARE_KEYS,
    STATE_KEY,
    UNMASK,
    extract_values,
    load_state,
    masked_reply_content,
    save_state,
    secagg_config,
    to_config,
)
from .vector import Bounds, encode, make_layout
from .view import masking_view, pop_declared, request_models_digest, request_view

IdentityProvider = Callable[[Context], tuple[Identity, Consortium]]
ALLOW_SECRET_KEY = "run-allow-secret-weights"
WEIGHTINGS = ("public", "secret")

KEEP_DECLARATIONS = "secagg-keep-declarations"
"""Entry of the bank's own ``context.state`` (never of a message, which the coordinator
writes), set by an outer mod of the same bank that takes the mask request apart and masks
the reply itself (a simulated malicious bank): the handler's declarations stay on the reply."""


def _refuse(msg: Message, reason: str) -> Message:
    log(WARNING, "secagg: refusing %s: %s", msg.metadata.message_type, reason)
    return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=msg)


def _bank_weight(state: dict[str, Any], request: dict[str, Any], claimed: float) -> float:
    weighting = str(request.get("weights", "public"))
    if weighting == "public":
        return float(state["weight"])  # registered at enrolment, from the bank's own roster
    if weighting == "secret" and state.get(ALLOW_SECRET_KEY):
        return claimed
    raise ProtocolError(f"weighting {weighting!r} not allowed by this bank")


CONTEXT_KEY = "secagg-context"
"""ConfigRecord the mod hands to the app: only ever set by the mod itself, for masked replies.

It holds ``participants`` and ``threshold`` of the instance the reply will be masked in, so
that the app can size a share of distributed DP noise: every sum the server can unmask holds
at least ``threshold`` replies. Any such record in an incoming message is removed first, so a
server cannot make a bank believe its plaintext reply will be masked.
"""


def _without_context(msg: Message) -> Message:
    if not msg.has_content() or CONTEXT_KEY not in msg.content.config_records:
        return msg
    content = RecordDict({k: v for k, v in msg.content.items() if k != CONTEXT_KEY})
    return Message(content=content, metadata=msg.metadata)


def secagg_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Mask the reply of any message that carries a secagg ``mask`` request.

    The mod strips the ``"secagg"`` ConfigRecord, checks the request (key bound to this
    instance, peers' dealings, differencing rules) before the app runs, lets the app
    compute its normal reply, checks the once-per-model rule on the model the app declares
    it used (:func:`.view.declare_used`; else every array of the request), turns the reply
    into a plaintext ring vector (clipped, weighted, quantized), masks it under the view of
    the request (:func:`.view.request_view`) and replaces the whole reply content with the
    masked vector, the public layout and the dealing for the next instance. Messages
    without a ``mask`` request pass through untouched.

    Parameters
    ----------
    msg : Message
        Incoming message.
    context : Context
        The node's context; ``context.state["secagg"]`` holds the protocol state.
    call_next : ClientAppCallable
        The rest of the ClientApp.

    Returns
    -------
    Message
        The masked reply, the app's own error reply, or an error if the bank refuses.
    """
    msg = _without_context(msg)
    request = secagg_config(msg.content) if msg.has_content() else None
    if request is None or request.get("phase") != "mask":
        keep = KEEP_DECLARATIONS in context.state  # set by this bank's own code, never sent
        reply = call_next(msg, context)
        if not keep:
            pop_declared(reply)  # declarations never leave the bank
            chain.pop_rule(reply)
        return reply

    me = int(msg.metadata.dst_node_id)
    state = load_state(context)
    kind = policy.instance_kind(msg.metadata.message_type)
    arrays_key = str(request.get("arrays-key", "arrays"))
    try:
        view = request_view(msg.metadata.message_type, msg.content, request, SECAGG_KEY)
        excused = blame.excused(list(request.get("excuse-proofs", [])), state)
        # Refuse before training; the model is checked once the app declared what it used.
        req = MaskRequest.parse(state, me, request, kind, None, excused)
        bank_floors.check_recorded(state, len(req.participants), "participants")
        mode = str(request["mode"])
        bounds = Bounds(
            value_range=float(request["value-range"]),
            metric_range=float(request["metric-range"]),
            max_weight=float(request["max-weight"]),
            bits=int(request["quantization-bits"]),
        )
        if mode != "sum":
            _bank_weight(state, request, 0.0)
        forward.forwarded(state, kind, request)  # a forwarded sum must pass its tag
        own = context.state.config_records.get(chain.OWN_KEY)  # the bank's own, never sent
        chained = chain.chained_content(state, kind, request, msg.content, own, req.names)
    except ProtocolError as err:
        return _refuse(msg, err.reason())
    except (KeyError, ValueError, TypeError) as err:
        return _refuse(msg, str(err))

    content = msg.content if chained is None else chained  # the model it recomputed
    inner_content = RecordDict({k: v for k, v in content.items() if k != SECAGG_KEY})
    inner_content[CONTEXT_KEY] = ConfigRecord(
        {"participants": len(req.participants), "threshold": int(state["threshold"])}
    )
    inner = Message(content=inner_content, metadata=msg.metadata)
    reply = call_next(inner, context)
    declared, held = pop_declared(reply)
    rule = chain.pop_rule(reply)
    if reply.has_error():
        return reply

    model = b""
    if kind in policy.ONCE_PER_MODEL_KINDS:
        model = declared or request_models_digest(msg.content, (SECAGG_KEY,))
    try:
        policy.check(state, kind, model, req.names, excused=req.excused)
        chain.check_rule(rule, request, chained is not None)
    except (policy.PolicyError, chain.ChainError) as err:
        return _refuse(msg, str(err))
    try:
        arrays, metrics, claimed, reference = extract_values(
            mode,
            content,
            reply.content,
            weight_key=str(request.get("weight-key", "num-examples")),
            arrays_key=arrays_key,
        )
        weight = _bank_weight(state, request, claimed) if mode != "sum" else 1.0
        if mode != "sum" and not 0 < weight <= bounds.max_weight:
            raise ValueError(f"weight {weight:g} outside (0, {bounds.max_weight:g}]")
        layout = make_layout(mode, arrays, metrics)
        bounds.check(mode, len(req.participants), layout.size())
        plain, clipped = encode(layout, arrays, metrics, bounds, weight, reference)
        n = len(req.participants)
        layout, plain = forward.tag_reply(state, kind, req.group, n, layout, plain, bounds.bits)
        bound = masking_view(view, held)  # what it holds from earlier messages too
        payload = client_mask(state, me, request, plain, kind, model, parsed=req, view=bound)
    except ProtocolError as err:
        return _refuse(msg, err.reason())
    except (ValueError, KeyError) as err:
        return _refuse(msg, str(err))
    save_state(context, state)
    if clipped:
        # Logged only on the bank's own machine; the server learns only the total.
        log(INFO, "secagg: clipped %d values before masking", clipped)
    return Message(masked_reply_content(payload, layout.to_json()), reply_to=msg)


def make_secagg_handler(
    identity_provider: IdentityProvider,
    *,
    allow_secret_weights: bool = False,
    floors: bank_floors.FloorsProvider | None = None,
) -> Callable[[Message, Context], Message]:
    """The handler of ``query.secagg_{advertise,share_keys,unmask}`` for this bank.

    Parameters
    ----------
    identity_provider : callable
        ``context -> (Identity, Consortium)``: this bank's signing identity and its own
        copy of the roster.
    allow_secret_weights : bool (default: False)
        Whether this bank accepts ``weights="secret"`` instances (its own example count
        as weight, inside the masked vector) instead of its registered public weight.
    floors : callable, optional
        ``context -> Floors`` from the bank's own configuration (:mod:`.floors`); default
        :func:`~.floors.default_floors`.
    """
    floors_of = floors or bank_floors.default_floors

    def handler(msg: Message, context: Context) -> Message:
        action = msg.metadata.message_type.partition(".")[2]
        request = secagg_config(msg.content) if msg.has_content() else None
        if request is None or action not in ACTIONS:
            return _refuse(msg, f"not a secagg request: {msg.metadata.message_type}")
        me = int(msg.metadata.dst_node_id)
        state = load_state(context)
        try:
            if action == UNMASK:
                bank_floors.check_recorded(state, len(request["survivors"]), "survivors")
                reply: dict[str, Any] = client_unmask(state, me, request)
            else:
                identity, consortium = identity_provider(context)
                check_identity(identity, consortium)
                if action == ADVERTISE:
                    reply = client_advertise(state, me, request, identity, consortium.members)
                    state[ALLOW_SECRET_KEY] = bool(allow_secret_weights)
                else:
                    assert action == SHARE_KEYS
                    bank_floors.admit_epoch(state, floors_of(context), request)
                    reply = client_share_keys(state, me, request, consortium)
                    blame.remember_roster(state, consortium)
                    weights = {n: consortium.weight(n) for n in consortium.names}
                    chain.remember_weights(state, weights)
        except ProtocolError as err:
            return _refuse(msg, err.reason())
        except (IdentityError, KeyError, ValueError, TypeError) as err:
            return _refuse(msg, str(err))
        save_state(context, state)
        return Message(RecordDict({SECAGG_KEY: to_config(reply)}), reply_to=msg)

    return handler


def install_secagg(
    app: ClientApp,
    identity_provider: IdentityProvider,
    *,
    allow_secret_weights: bool = False,
    floors: bank_floors.FloorsProvider | None = None,
) -> ClientApp:
    """Register the secagg query actions of ``app`` (:func:`make_secagg_handler`).

    Create the app with ``ClientApp(mods=[..., secagg_mod])`` first: app-level mods are
    bound to handlers when these are registered.

    Parameters
    ----------
    app : ClientApp
        The bank's ClientApp.
    identity_provider : callable
        ``context -> (Identity, Consortium)`` (see :mod:`.identity`).
    allow_secret_weights : bool (default: False)
        Accept secret weights when the server asks for them (see :class:`SecAggFedAvg`).
    floors : callable, optional
        ``context -> Floors``: the bank's own floors (:mod:`.floors`).
    """
    handler = make_secagg_handler(
        identity_provider, allow_secret_weights=allow_secret_weights, floors=floors
    )
    for action in ACTIONS:
        app.query(action)(handler)
    return app


def _message_round(msg: Message) -> int:
    if not msg.has_content():
        return 0
    cfg = msg.content.config_records
    if SECAGG_KEY in cfg and "round" in cfg[SECAGG_KEY]:
        return int(cfg[SECAGG_KEY]["round"])  # type: ignore[arg-type]
    for rec in cfg.values():
        if "server-round" in rec:
            return int(rec["server-round"])  # type: ignore[arg-type]
    return 0


def dropout_mod(partition_ids: Iterable[int], from_round: int = 1) -> Mod:
    """Make simulated banks crash after their key setup (for tests and experiments).

    A node whose ``context.node_config["partition-id"]`` is in ``partition_ids`` answers
    normally until it has completed a key setup; from then on it fails every message of
    round ``from_round`` or later (key setup, training, unmask, evaluation, queries), as a
    bank that crashed after the key exchange would. Place it first in the mods list.

    Parameters
    ----------
    partition_ids : Iterable[int]
        Partitions (simulated banks) that drop out.
    from_round : int (default: 1)
        First server round in which they fail; queries outside the training loop count
        as round 0.

    Returns
    -------
    Mod
        The client mod.
    """
    ids = frozenset(int(p) for p in partition_ids)

    def _dropout(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        pid = context.node_config.get("partition-id")
        keyed = (
            STATE_KEY in context.state.config_records
            and context.state.config_records[STATE_KEY].get("stage") == "ready"
        )
        if pid is not None and int(pid) in ids and keyed and _message_round(msg) >= from_round:
            return Message(
                Error(
                    code=ErrorCode.CLIENT_APP_CRASHED,
                    reason=f"simulated dropout of partition {pid}",
                ),
                reply_to=msg,
            )
        return call_next(msg, context)

    return _dropout
