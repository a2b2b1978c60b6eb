"""A DP bank accounts its own spend from what it can verify, not from the request.

The request tells a bank its DP settings. Epsilon and the mode are floors; but a bank that
took the rest from the request spent more than its floor allows when the coordinator asked
for more rounds than planned (bank-level DP: each round is a release), for a smaller noise
share than planned (a deployed bank has no noise floor unless it sets one), for a larger
delta, or for fewer colluders (each bank's noise share shrinks). Each test plays that
coordinator against fl-credit's real ClientApp and measures the epsilon the bank spent at
its own delta.
"""

from __future__ import annotations

import dataclasses

import pytest
from flwr.app import ConfigRecord, Message, RecordDict

from fl_credit.bank.floors import BankFloors
from strategies.dp.accounting import accountant_epsilon
from strategies.secagg.floors import Floors
from tests.secagg.test_secagg_bank_floors import _ask, _bank, _cfg, running_node  # noqa: F401

pytestmark = pytest.mark.usefixtures("running_node")
FLOOR_EPSILON = 4.0


def _train(app, context, settings, arrays, server_round: int, **asked) -> Message:
    config = {**settings.to_config(), "server-round": server_round, **asked}
    message = Message(
        RecordDict({"arrays": arrays, "config": ConfigRecord(config)}),
        dst_node_id=5,
        message_type="train",
    )
    message.metadata.__dict__["_message_id"] = f"m{server_round}"
    return app(message, context)


def _central_bank(embedded, tmp_path, floors: BankFloors):
    from fl_credit.bank.client_app import make_client_app
    from fl_credit.model.logistic import new_model, to_arrays
    from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS
    from strategies.dp.central import CentralDPAccountant

    cfg = _cfg(mode="central", epsilon=FLOOR_EPSILON, clip_norm=1.0)
    prepared, settings, context = _bank(cfg, embedded, tmp_path)
    app = make_client_app(floors=floors)
    d = len(prepared.feature_names)
    agreed = {SCALER_KEYS[0]: [0.0] * d, SCALER_KEYS[1]: [1.0] * d, POS_WEIGHT: 1.0}
    assert not _ask(app, context, agreed, "query.standardizer").has_error()
    # What the coordinator plans for 3 banks in the clear (t = 1: every bank adds it all).
    planned = CentralDPAccountant.from_target(
        target_epsilon=FLOOR_EPSILON, total_rounds=cfg.train.rounds, min_contributors=1
    )
    return app, context, settings, to_arrays(new_model(d, 0)), planned


def _spent(sigmas: list[float], delta: float) -> float:
    return accountant_epsilon([(s, 1.0, 1) for s in sigmas], delta, "rdp")


def _deployed(**kw) -> BankFloors:
    """A deployed bank's floors as export_banks prints them: DP central at epsilon 4."""
    from fl_credit.bank.floors import floors_from_node_config

    config = {"secagg-required": "false", "dp-required": "central", "dp-max-epsilon": 4.0}
    return floors_from_node_config({**config, **kw})


def test_more_rounds_than_planned_are_refused_under_bank_level_dp(embedded, tmp_path) -> None:
    """Before: the horizon was enforced by the coordinator only; a bank answered round
    after round (10 of a 2-round plan: epsilon 12.2 against its floor of 4). The bank now
    counts its own releases and refuses the one that would take it over its floor."""
    app, context, settings, arrays, planned = _central_bank(embedded, tmp_path, _deployed())
    asked = {"dp-noise-std": planned.noise_std_share, "dp-clip-norm": planned.clip_norm}
    answered = []
    for server_round in range(1, 11):
        reply = _train(app, context, settings, arrays, server_round, **asked)
        if reply.has_error():
            assert "floor" in reply.error.reason, reply.error.reason
            continue
        answered.append(planned.noise_multiplier)
    spent = _spent(answered, planned.delta)
    print(f"{len(answered)} rounds answered: epsilon {spent:.2f} (floor {FLOOR_EPSILON})")
    assert len(answered) == planned.total_rounds  # the honest plan is answered in full
    assert spent <= FLOOR_EPSILON * (1 + 1e-9)


def test_a_noise_share_far_below_the_plan_is_refused_by_a_deployed_bank(embedded, tmp_path) -> None:
    """Before: a deployed bank without ``dp-min-noise-std`` (export_banks printed none)
    added whatever noise the request named: a millionth of the plan gave epsilon in the
    millions. Its own accounting now refuses it."""
    app, context, settings, arrays, planned = _central_bank(embedded, tmp_path, _deployed())
    std = planned.noise_std_share * 1e-6
    reply = _train(app, context, settings, arrays, 1, **{"dp-noise-std": std, "dp-clip-norm": 1.0})
    if not reply.has_error():
        print(f"answered at epsilon {_spent([std], planned.delta):.3g} (floor {FLOOR_EPSILON})")
    assert reply.has_error() and "floor" in reply.error.reason


def test_a_larger_delta_or_fewer_colluders_are_refused_under_record_level_dp(
    embedded, tmp_path
) -> None:
    """Before: ``dp-delta`` came from the request (only ``rows x delta <= 0.01`` was
    checked), so a coordinator asking for 0.005 / rows instead of the agreed 1e-7 had the
    bank plan noise whose epsilon at 1e-7 is above its floor; and ``dp-colluders`` 0 under
    a bank that assumes 1 colluder shrank its noise share. Both are below its floors now."""
    from fl_credit.bank.client_app import make_client_app

    cfg = _cfg(mode="opacus", epsilon=FLOOR_EPSILON, accountant="rdp")
    prepared, settings, context = _bank(cfg, embedded, tmp_path)
    floors = BankFloors.from_experiment(cfg, None)
    plain = dataclasses.replace(floors, secagg=Floors(secure_aggregation=False))
    colluding = dataclasses.replace(floors, secagg=Floors(secure_aggregation=False, colluders=1))
    rows = len(prepared.banks["bank_0"].y_train)
    base = {**settings.to_config(), "pass": "private", **prepared.bounds.to_lists()}
    large = 0.005 / rows  # within the plan's own check, rows x delta <= 0.01
    for bank_floors, asked in ((plain, {"dp-delta": large}), (colluding, {"dp-colluders": 0})):
        reply = _ask(make_client_app(floors=bank_floors), context, {**base, **asked})
        if not reply.has_error():
            print(f"{asked}: answered")
        assert reply.has_error() and "floor" in reply.error.reason, asked
    # What the larger delta buys the coordinator: less noise for the same epsilon.
    own = settings.dp_settings()
    lax = dataclasses.replace(own, delta=large).budget().noise_multiplier("statistics")
    print(f"statistics noise multiplier at delta {large:.1e}: {lax:.3f}; at the bank's own "
          f"1e-7: {own.budget().noise_multiplier('statistics'):.3f}")  # fmt: skip
    assert not _ask(make_client_app(floors=plain), context, base).has_error()  # agreed: answered


def test_record_level_spend_stays_within_the_floor_whatever_horizon_is_asked(
    embedded, tmp_path
) -> None:
    """Smarter under ``dp=opacus``: ask for a one-round horizon at a high sample rate (the
    plan's noise then buys one round), then for a second round, or for it under a larger
    horizon. The bank fixed its plan at its first DP message and counts its own steps: both
    are refused, and its own epsilon at its own delta stays within its floor (this held
    before too: the plan composes what the bank does, at the rate it samples with)."""
    from fl_credit.bank.client_app import make_client_app
    from fl_credit.bank.dp_spend import own_delta
    from fl_credit.model.logistic import new_model, to_arrays
    from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS
    from strategies.dp import privacy_report

    cfg = _cfg(mode="opacus", epsilon=FLOOR_EPSILON, accountant="rdp")
    prepared, settings, context = _bank(cfg, embedded, tmp_path)
    floors = BankFloors.from_experiment(cfg, None)
    app = make_client_app(floors=dataclasses.replace(floors, secagg=Floors(False)))
    d = len(prepared.feature_names)
    agreed = {SCALER_KEYS[0]: [0.0] * d, SCALER_KEYS[1]: [1.0] * d, POS_WEIGHT: 1.0}
    assert not _ask(app, context, agreed, "query.standardizer").has_error()
    arrays = to_arrays(new_model(d, 0))
    short = {"total-rounds": 1, "dp-sample-rate": 0.5}
    assert not _train(app, context, settings, arrays, 1, **short).has_error()
    for server_round, asked in ((2, short), (2, {**short, "total-rounds": 10})):
        reply = _train(app, context, settings, arrays, server_round, **asked)
        assert reply.has_error(), f"round {server_round} under {asked} was answered"
    report = privacy_report(context.state)
    print(f"own epsilon {report['epsilon']:.3f} at delta {report['delta']:.1e}")
    assert report["epsilon"] <= FLOOR_EPSILON + 1e-6
    assert report["delta"] <= own_delta("opacus", floors.dp_max_delta)
