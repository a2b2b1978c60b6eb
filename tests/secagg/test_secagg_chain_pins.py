"""The Newton chain's configuration comes from the bank, not from the coordinator.

The chain (:mod:`strategies.secagg.chain`) makes a bank train only at the model it recomputes
from the previous sum; but the rule it recomputes with -- the start model, ``l2``, ``tol``,
``N`` and the monotone constraints -- used to be pinned from the coordinator's first chained
request. A coordinator that picks them picks the chain's points: a huge ``l2`` (or ``N``)
makes the "genuine" Newton step tiny, so that one round over all banks and the next one
without the victim is a near-identical replay again. Each test plays that coordinator against
fl-credit's real banks (:class:`Coordinator` of the deviating-coordinator tests).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fl_credit.config.schema import ExperimentConfig, PartitionConfig
from strategies.newton import RANGE_FACTOR, NewtonSearch, fixed_point_bits, rounding_slack
from tests.secagg.test_secagg_deviating_coordinator import Coordinator, model, relative


@pytest.fixture
def four(embedded, tmp_path) -> Coordinator:
    cfg = dataclasses.replace(
        ExperimentConfig(), partition=PartitionConfig(scheme="power", banks=4, skew=0.0)
    )
    return Coordinator(cfg, embedded, tmp_path)


def _search(fed: Coordinator, spec: dict, theta0: np.ndarray, first: dict) -> NewtonSearch:
    """The chain's next point after ``first`` under ``spec`` (as a bank recomputes it)."""
    search = NewtonSearch(theta0, spec["chain-l2"], spec["chain-rows"], spec["chain-tol"])
    if "chain-transform" in spec:
        search.transform = np.asarray(spec["chain-transform"]).reshape(len(theta0), -1)
        search.bounded = np.asarray(spec["chain-bounded"], dtype=bool)
    bits = fixed_point_bits(fed.n, RANGE_FACTOR * fed.pos_weight * fed.count)
    grad, hess = first[("arrays", "grad")], first[("arrays", "hess")]
    slack = rounding_slack(fed.n, bits, fed.count)
    search.observe(grad, hess, first[("metrics", "loss")], slack=slack)
    return search


def _tiny_step_attack(fed: Coordinator, theta0: np.ndarray, **crafted: object):
    """Round 1 over every bank at ``theta0`` under a crafted chain configuration, then the
    chain's next point over all banks but the victim. Returns the victim's Hessian error
    (None if any bank refused) and the refusals."""
    spec = {**fed.chain_spec(), **crafted}
    first, report = fed.newton(dict.fromkeys(fed.nodes, model(theta0)), **crafted)
    if first is None:
        return None, report.rejected
    step = _search(fed, spec, theta0, first).candidate
    print(f"crafted chain {sorted(crafted)}: step {np.max(np.abs(step - theta0)):.1e}")
    forwarded = {"prev-sum": fed.ring.tobytes(), **crafted}  # type: ignore[union-attr]
    rest, report = fed.newton(dict.fromkeys(fed.others, model(step)), **forwarded)
    if rest is None:
        return None, report.rejected
    hess = first[("arrays", "hess")] - rest[("arrays", "hess")]
    return relative(hess, fed.truth(theta0)[1]), {}


@pytest.mark.parametrize(
    "crafted",
    [
        {"chain-l2": 1e6, "chain-tol": 1e-15},  # a huge penalty: the step is about 1e-7
        {"chain-rows": 1e14, "chain-tol": 1e-15},  # a huge N: the same
    ],
    ids=["l2", "rows"],
)
def test_a_chain_configuration_chosen_by_the_coordinator_is_refused(
    four: Coordinator, crafted: dict
) -> None:
    """Before: the banks pinned the crafted configuration at its first use, and the chain's
    "genuine" next step was tiny, so round 1 minus round 2 without the victim gave its
    Hessian to about 1e-7 relative. Now each bank derives the configuration itself (its
    floors) and refuses a request that asks for another."""
    fed = four
    fed.agree_standardizer()
    theta0 = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    error, rejected = _tiny_step_attack(fed, theta0, **crafted)
    if error is not None:
        print(f"crafted {crafted}: victim's Hessian to {error:.1e} relative")
    assert error is None, "a crafted chain configuration isolated the victim"
    assert len(rejected) == fed.n and all("this bank's own" in r for r in rejected.values())


def test_a_probe_point_as_the_chain_start_is_refused(four: Coordinator) -> None:
    """Before: the first chained request's model became the chain's start, so the first
    round was answered at any point of the coordinator's choosing. The start is now the
    agreed zero model (the objective is convex: any start reaches the same optimum)."""
    fed = four
    fed.agree_standardizer()
    probe = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    probe[3] = 5.0
    out, report = fed.newton(dict.fromkeys(fed.nodes, model(probe)))
    assert out is None, "the banks answered at a probe point of the coordinator's choosing"
    assert all("start" in r for r in report.rejected.values()), report.rejected
    honest, report = fed.newton(dict.fromkeys(fed.nodes, model(np.zeros_like(probe))))
    assert honest is not None, report.reason


def test_constraints_chosen_by_the_coordinator_are_refused(four: Coordinator) -> None:
    """Before: ``chain-transform`` restricted the chain to steps the coordinator chose (here
    a single direction of its choosing, ``theta = v u``), and the banks pinned it. A bank
    now steps only under the monotone constraints of its own configuration (none here)."""
    fed = four
    fed.agree_standardizer()
    d = len(fed.scaler.mean) + 1  # type: ignore[union-attr]
    direction = np.zeros(d)
    direction[3] = 1.0
    crafted = {"chain-transform": direction.tolist(), "chain-bounded": [False]}
    first, report = fed.newton(dict.fromkeys(fed.nodes, model(np.zeros(d))), **crafted)
    assert first is None, "the banks stepped along the coordinator's direction"
    assert all("this bank's own" in r for r in report.rejected.values()), report.rejected


def test_a_configuration_sent_to_the_victim_alone_or_changed_later_is_refused(
    four: Coordinator,
) -> None:
    """Smarter: the honest configuration to the other banks and a crafted one to the victim
    alone (refused by the victim); or the honest one in round 1 and a crafted one, with its
    next point, in round 2 (refused: the chain never changes)."""
    fed = four
    fed.agree_standardizer()
    theta0 = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    pending_records = fed.agg.begin  # the victim alone gets l2 = 1e6

    def crafted_for_victim(grid, nodes, *args, **kwargs):
        pending = pending_records(grid, nodes, *args, **kwargs)
        honest = pending.request_record

        def record(node, **extra):
            lie = {"chain-l2": 1e6} if node == fed.victim else {}
            return honest(node, **{**extra, **lie})

        pending.request_record = record
        return pending

    fed.agg.begin = crafted_for_victim  # type: ignore[method-assign]
    out, report = fed.newton(dict.fromkeys(fed.nodes, model(theta0)))
    fed.agg.begin = pending_records  # type: ignore[method-assign]
    assert out is None
    assert "this bank's own" in report.rejected.get(fed.victim, report.reason), report
    first, report = fed.newton(dict.fromkeys(fed.nodes, model(theta0)))
    assert first is not None, report.reason
    crafted = {"chain-l2": 1e6}
    step = _search(fed, {**fed.chain_spec(), **crafted}, theta0, first).candidate
    out, report = fed.newton(
        dict.fromkeys(fed.nodes, model(step)), **{"prev-sum": fed.ring.tobytes(), **crafted}
    )
    assert out is None and all("this bank's own" in r for r in report.rejected.values())


def test_the_chain_configuration_is_the_bank_own_in_simulation_and_deployment() -> None:
    """Simulated banks hold the agreed configuration's values; a deployed bank its node
    config's (defaults: the schema's), and ``export_banks`` prints those that differ."""
    from fl_credit.bank.floors import BankFloors, floors_from_node_config, node_config_floors
    from fl_credit.bank.newton_chain import NewtonPins
    from fl_credit.config.schema import TrainConfig

    cfg = dataclasses.replace(
        ExperimentConfig(), train=TrainConfig(l2=0.5, tol=1e-8, monotone=("a", "-b:x,y"))
    )
    pins = NewtonPins(0.5, 1e-8, ("a", "-b:x,y"))
    assert BankFloors.from_experiment(cfg, 2).newton == pins
    printed = node_config_floors(cfg)
    assert printed["newton-l2"] == 0.5 and printed["newton-monotone"] == "a;-b:x,y"
    assert floors_from_node_config({k: str(v) for k, v in printed.items()}).newton == pins
    assert floors_from_node_config({}).newton == NewtonPins(TrainConfig().l2, TrainConfig().tol, ())
    assert "newton-l2" not in node_config_floors(ExperimentConfig())
