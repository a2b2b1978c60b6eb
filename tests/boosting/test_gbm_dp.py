"""Trees under ``dp=opacus``: the level release, its budget, and the bank's DP floor.

The attack: under DP a bank sends every asked node (its exact floor on small nodes would break
the sensitivity), so a coordinator that may ask for DP at a vanishing noise (epsilon 1e6)
reads a one-borrower node as without any floor. A bank drops its floor only under its own DP
floor, which bounds the epsilon a request may ask for.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, RecordDict

from fl_credit.boosting.bank import FINISHED, NODES
from fl_credit.boosting.binning import agreed_layout
from fl_credit.boosting.histogram import split_level
from fl_credit.boosting.privacy import level_sensitivity, planned_levels
from fl_credit.boosting.tree import TreeEnsemble
from fl_credit.config.schema import DPConfig, ExperimentConfig, ModelConfig
from fl_credit.credit.woe import grid_to_lists
from tests.boosting.test_gbm_bank import isolating_tree
from tests.conftest import bank_zero_app

BINS = 50


def dp_cfg(fast_cfg: ExperimentConfig) -> ExperimentConfig:
    return dataclasses.replace(
        fast_cfg,
        model=ModelConfig(kind="gbm", trees=2, depth=2, bins=BINS),
        dp=DPConfig(mode="opacus", epsilon=4.0, accountant="rdp"),
    )


@pytest.fixture
def bank(fast_cfg, embedded, tmp_path, monkeypatch):
    cfg = dp_cfg(fast_cfg)
    prepared, scaler, settings, context, _ = bank_zero_app(cfg, embedded, tmp_path, monkeypatch)
    layout = agreed_layout(scaler, prepared.bounds, BINS)
    return prepared.banks["bank_0"], layout, settings, context


def ask(app, context, settings, layout, tree, node: int, **asked) -> Message:
    config = ConfigRecord(
        {**settings.to_config(), **grid_to_lists(list(layout.edges)), FINISHED: 0, NODES: [node]}
        | asked
    )
    content = RecordDict({"config": config, "arrays": TreeEnsemble(0.0, [tree]).to_arrays()})
    message = Message(content, dst_node_id=5, message_type="query.gbm")
    message.metadata.__dict__["_message_id"] = "m"
    return app(message, context)


def node_gradient(reply: Message, layout) -> float:
    """The node's gradient sum, averaged over the features (each feature's bins sum to it)."""
    values = next(iter(reply.content["arrays"].values())).numpy()
    hist, _ = split_level(values, 1, layout)
    bounds = zip(layout.offsets[:-1], layout.offsets[1:], strict=True)
    sums = [hist[0][a:b, 0].sum() for a, b in bounds]
    return float(np.mean(sums))


def floors(**dp):
    from fl_credit.bank.floors import BankFloors
    from strategies.secagg.floors import Floors

    return BankFloors(secagg=Floors(secure_aggregation=False), **dp)


def test_dp_at_a_vanishing_noise_does_not_lift_the_bank_floor(bank):
    """Before the check: a bank that requires no DP answered a DP request at epsilon 1e6
    with the one-borrower node (its exact floor off under DP) and the label was read off."""
    from fl_credit.bank.client_app import make_client_app

    data, layout, settings, context = bank
    tree, node, row = isolating_tree(data, layout)
    for own in (floors(), floors(dp_mode="opacus")):  # no DP floor; DP without an epsilon bound
        reply = ask(make_client_app(floors=own), context, settings, layout, tree, node,
                    **{"dp-epsilon": 1e6})  # fmt: skip
        if not reply.has_error():
            g = node_gradient(reply, layout)  # 0.5 for a repaid loan, 18 (0.5 - 1) for a default
            label = int(g < (0.5 - 9.0) / 2)
            raise AssertionError(f"answered: label {label} (true {data.y_train[row]}), g {g:.3f}")
    capped = make_client_app(floors=floors(dp_mode="opacus", dp_max_epsilon=4.0))
    assert ask(capped, context, settings, layout, tree, node, **{"dp-epsilon": 1e6}).has_error()


def test_under_its_dp_floor_the_bank_noises_every_level(bank):
    """At the bank's own epsilon the node is sent with noise of the planned size, and the
    bank stops after the planned number of level releases."""
    from fl_credit.bank.client_app import make_client_app
    from strategies.dp.plan import stored_plan

    data, layout, settings, context = bank
    tree, node, _ = isolating_tree(data, layout)
    app = make_client_app(floors=floors(dp_mode="opacus", dp_max_epsilon=4.0))
    replies = [ask(app, context, settings, layout, tree, node) for _ in range(planned_levels(2, 2))]
    assert not any(r.has_error() for r in replies)
    plan = stored_plan(context.state)
    assert plan.sample_rate == 1.0 and plan.total_rounds == planned_levels(2, 2) == 4
    values = np.stack([next(iter(r.content["arrays"].values())).numpy() for r in replies])
    std = plan.noise_multiplier * level_sensitivity(data.x_train.shape[1], 18.0)
    hist = values[:, : layout.total * 3].reshape(len(replies), layout.total, 3)
    spread = np.std(hist[:, :, 2] - hist[:, :, 2].mean(axis=0), ddof=1) * math.sqrt(4 / 3)
    assert 0.8 * std < spread < 1.2 * std  # the planned noise on the counts
    assert np.abs(values[:, -2:]).max() < 6 * std  # loss terms: noise only (not released)
    assert ask(app, context, settings, layout, tree, node).has_error()  # budget spent


def test_one_borrower_changes_a_level_by_at_most_its_sensitivity(fast_cfg, embedded):
    """Remove one training borrower (a default at log-odds -30, where its gradient is
    largest) from a party's rows: the level vector moves by at most the bound (within 3% of
    it: |g| = s and h = s/4 cannot both be reached), and with a sample of features by the
    bound over the features sent."""
    from fl_credit.boosting.histogram import level_vector, party_rows
    from fl_credit.data.prepare import prepare
    from fl_credit.data.scaling import pooled_standardizer

    prepared = prepare(dp_cfg(fast_cfg), embedded)
    data = prepared.banks["bank_0"]
    layout = agreed_layout(pooled_standardizer(data.x_train), prepared.bounds, BINS)
    tree, node, row = isolating_tree(data, layout)
    s = 18.0
    ensemble = TreeEnsemble(-30.0, [])  # p ~ 0: a default's |g| = s, nearly the bound
    others = np.arange(len(data.y_train)) != row
    y = data.y_train.copy()
    y[row] = 1
    for features in (None, [0, 3, 5]):
        sent = layout.edges if features is None else features
        bound = level_sensitivity(len(sent), s)
        with_row, without = (
            level_vector(
                party_rows(data.x_train[keep], y[keep], data.x_val, data.y_val, layout, s),
                ensemble,
                tree,
                [3, node],
                layout,
                with_loss=False,
                features=features,
            )  # fmt: skip
            for keep in (np.ones_like(others), others)
        )
        change = float(np.linalg.norm(with_row - without))
        attained = math.sqrt(len(sent) * (s * s + 1))  # |g| = s with h ~ 0 at p ~ 0
        assert 0.999 * attained <= change <= bound


def gaussian_epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    """An accountant independent of Opacus: releases at sample rate 1 are Gaussian mechanisms,
    and ``k`` Gaussian releases of noise multipliers ``sigma_i`` compose exactly into one of
    ``mu = sqrt(sum 1 / sigma_i^2)`` (Dong, Roth and Su's mu-GDP), whose exact privacy profile
    is ``delta(eps) = Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu)`` (Balle and Wang 2018)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    assert all(rate == 1.0 for _, rate, _ in history)
    mu = math.sqrt(sum(steps / sigma**2 for sigma, _, steps in history))

    def excess(eps: float) -> float:
        return norm.cdf(mu / 2 - eps / mu) - math.exp(eps) * norm.cdf(-mu / 2 - eps / mu) - delta

    return float(brentq(excess, 0.0, 100.0))


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_the_epsilon_of_a_tree_run_is_checked_by_an_independent_accountant(fast_cfg, accountant):
    """Every release of a tree run is a full-batch Gaussian mechanism, so its exact epsilon
    is known in closed form: PRV (the default) matches it, RDP bounds it from above."""
    from fl_credit.protocol.settings import BankSettings
    from strategies.dp.budget import TRAINING

    cfg = dataclasses.replace(
        dp_cfg(fast_cfg), dp=DPConfig(mode="opacus", epsilon=2.0, accountant=accountant)
    )
    settings = BankSettings.from_experiment(cfg)
    budget = settings.dp_settings().budget()
    levels = budget.release(TRAINING)
    assert (levels.sample_rate, levels.steps) == (1.0, planned_levels(2, 2))
    done = {r.name: r.steps for r in budget.releases}
    done[TRAINING] = 3  # stopped early: 3 of 5 level releases made
    report = budget.report(done)
    exact = gaussian_epsilon(budget.history(done), budget.delta)
    planned = gaussian_epsilon(budget.history(), budget.delta)
    assert report["epsilon_spent_rdp"] >= exact
    assert report["epsilon_planned"] <= 2.0 + 1e-9 and planned <= 2.0 + 1e-9
    if accountant == "prv":
        assert report["epsilon_spent"] == pytest.approx(exact, abs=0.02)
        assert report["epsilon_planned"] == pytest.approx(planned, abs=0.02)
    else:
        assert exact <= report["epsilon_spent"] <= exact * 1.25


def test_a_dp_tree_run_releases_no_pooled_or_lr_counterfactual():
    # Before: a `model=gbm dp=opacus` run's top-level metrics.json held the pooled trees'
    # metrics (`gbm_pooled_with_floors`), the pooled and reference LR rows (`lr`) and how the
    # federated trees compare with the pooled ones, none of them covered by epsilon.
    from fl_credit.run.private_release import split_metrics

    metrics = {"config": {"dp": "opacus"}, "credit": {}, "boosting": {"trees_kept": 1}}
    metrics.update(
        {
            "gbm_pooled_with_floors": {"auc": 0.75},
            "lr": {"pooled": {"auc": 0.74}},
            "gbm_versus_pooled": {"versus_pooled": {"splits_equal": False}},
        }
    )
    release, left = split_metrics(metrics)
    for key in ("gbm_pooled_with_floors", "lr", "gbm_versus_pooled"):
        assert key not in release and key in left
    assert release["boosting"] == {"trees_kept": 1}
