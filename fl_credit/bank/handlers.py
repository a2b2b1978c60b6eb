"""Replies a bank builds from its own rows, used by the ClientApp's message handlers."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict

from fl_credit.config.errors import ConfigError
from fl_credit.model.logistic import theta_from_arrays
from fl_credit.model.training import newton_terms
from fl_credit.protocol.settings import BankSettings


def newton_reply(
    message: Message, x: np.ndarray, y: np.ndarray, pos_weight: float, settings: BankSettings
) -> Message:
    """The bank's reply to a Newton ``train`` message: the sums of :func:`newton_terms` at
    the received model (``"arrays"``: ``grad``, ``hess``; ``"metrics"``: ``loss`` and a
    public ``num-examples`` of 1, never the bank's row count).

    Raises
    ------
    ConfigError
        When DP is on: Newton sums carry no DP noise.
    """
    if settings.dp_mode != "off":
        raise ConfigError(f"a Newton round cannot run with dp={settings.dp_mode}")
    theta = theta_from_arrays(message.content["arrays"])
    grad, hess, loss = newton_terms(x, y, pos_weight, theta)
    content = RecordDict(
        {
            "arrays": ArrayRecord({"grad": Array(grad), "hess": Array(hess)}),
            "metrics": MetricRecord({"num-examples": 1.0, "loss": loss}),
        }
    )
    return Message(content=content, reply_to=message)
