"""Keep a bank's error details on the bank: the coordinator gets only what kind of error.

Flower turns an exception in a ClientApp into an error reply whose reason is the exception's
text, and the bank's own handlers describe data problems in their messages ("bank_1 has 2
defaults ..."). Either would hand the coordinator facts about the bank's rows. The outermost
mod of the bank's ClientApp logs the full detail locally (the bank operator's log, or the
simulation's console) and replaces the reason the coordinator sees by a fixed text that
depends only on the kind of error. Refusals by a mod that checks the protocol or the
configuration (``MOD_FAILED_PRECONDITION``: secure-aggregation refusals, DP settings) carry no
data and pass unchanged, so the coordinator can still tell a protocol problem from a crash.
"""

from __future__ import annotations

import logging

from flwr.app import Context, Error, Message
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode

log = logging.getLogger(__name__)

BANK_ERROR_CODE = 4001
PUBLIC_CODES = frozenset({ErrorCode.MOD_FAILED_PRECONDITION})
DATA_PROBLEM = "the bank could not use its data or settings (details in that bank's own log)"


def public_reason(code: int, exception: BaseException | None = None) -> str:
    """The data-free reason the coordinator sees for an error of ``code``."""
    if exception is not None:
        return f"the bank's ClientApp raised {type(exception).__name__} (details in its own log)"
    if code == BANK_ERROR_CODE:
        return DATA_PROBLEM
    return f"the bank replied with error code {code} (details in its own log)"


def private_errors_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Outermost client mod: log error details locally, send only their kind.

    Parameters
    ----------
    message : Message
        The incoming message.
    context : Context
        The bank's context.
    call_next : ClientAppCallable
        The rest of the ClientApp (inner mods and the handler).

    Returns
    -------
    Message
        The reply unchanged, or an error reply whose reason names only the kind of error.
    """
    kind = message.metadata.message_type
    try:
        reply = call_next(message, context)
    except Exception as err:  # noqa: BLE001 - every failure becomes a data-free error reply
        log.exception("bank: %s failed", kind)
        return Message(
            Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=public_reason(0, err)),
            reply_to=message,
        )
    if not reply.has_error() or reply.error.code in PUBLIC_CODES:
        return reply
    log.warning("bank: %s failed: %s", kind, reply.error.reason)
    return Message(
        Error(code=reply.error.code, reason=public_reason(reply.error.code)), reply_to=message
    )
