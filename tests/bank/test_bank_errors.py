"""A bank's error text stays on the bank: the coordinator learns only the kind of error."""

from __future__ import annotations

import logging

from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp

from fl_credit.bank.errors import BANK_ERROR_CODE, private_errors_mod
from fl_credit.config.errors import DataError
from strategies.secagg.inprocess import InProcessGrid

SECRET = "bank_1 has 13 defaults among 1,576 rows"


def make_app(mods: list) -> ClientApp:
    app = ClientApp(mods=mods)

    @app.query("data_problem")
    def data_problem(message: Message, context: Context) -> Message:
        # What fl_credit.bank.client_app.app_handler replies for a bank-side DataError.
        return Message(Error(code=BANK_ERROR_CODE, reason=str(DataError(SECRET))), reply_to=message)

    @app.query("crash")
    def crash(message: Message, context: Context) -> Message:
        raise ValueError(SECRET)

    return app


def ask(app: ClientApp, action: str) -> Message:
    grid = InProcessGrid(app, num_nodes=1)
    message = Message(
        RecordDict({"config": ConfigRecord({"x": 1})}),
        dst_node_id=grid.get_node_ids()[0],
        message_type=f"query.{action}",
    )
    [reply] = grid.send_and_receive([message])
    assert reply.has_error()
    return reply


def test_without_the_mod_the_coordinator_reads_the_banks_data(caplog):
    """Positive control: the leak the mod closes is real."""
    leaky = make_app([])
    assert "13 defaults" in ask(leaky, "data_problem").error.reason
    assert "13 defaults" in ask(leaky, "crash").error.reason


def test_error_details_stay_in_the_banks_log(caplog):
    app = make_app([private_errors_mod])
    with caplog.at_level(logging.WARNING):
        problem = ask(app, "data_problem")
        crash = ask(app, "crash")
    assert "13" not in problem.error.reason and "data or settings" in problem.error.reason
    assert "13" not in crash.error.reason and "ValueError" in crash.error.reason
    assert caplog.text.count("13 defaults") >= 2  # the bank's own log keeps the detail
