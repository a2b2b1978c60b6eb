"""Federated Newton / IRLS: bank-side terms, the pooled step, secure vs plain sums, the stop.

The end-to-end tests run the real Flower simulation runtime in-process and compare the
federated coefficients with scikit-learn's pooled fit of the same objective (defaults
weighted by the federation's class weight, ``C = 1 / (N * l2)``, intercept unpenalised).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict, resolve_optimizer
from fl_credit.config.schema import (
    DataConfig,
    DPConfig,
    EngineConfig,
    ExperimentConfig,
    ImbalanceConfig,
    StrategyConfig,
    TrainConfig,
)
from fl_credit.data.prepare import prepare
from fl_credit.model.imbalance import positive_weight
from fl_credit.model.logistic import theta_from_arrays
from fl_credit.model.training import fit_newton, newton_terms
from fl_credit.run.baselines import pooled, sklearn_fit
from fl_credit.run.experiment import federate
from strategies.newton import (
    NewtonSearch,
    fixed_point_bits,
    newton_direction,
    penalised_objective,
    penalised_terms,
)

pytestmark = pytest.mark.filterwarnings("ignore")

FAST = ExperimentConfig(engine=EngineConfig(backend="inprocess"), bootstrap=20)


def logistic_rows(n: int, d: int, seed: int, intercept: float = -2.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    beta = rng.normal(size=d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ beta + intercept)))).astype(np.int64)
    return x, y


# --- the math --------------------------------------------------------------------------------


def test_bank_terms_equal_torch_autograd():
    x, y = logistic_rows(60, 4, seed=1)
    pos_weight = 3.7
    theta = np.random.default_rng(2).normal(size=5)

    def loss(t: torch.Tensor) -> torch.Tensor:
        logits = torch.as_tensor(x) @ t[:-1] + t[-1]
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits,
            torch.as_tensor(y, dtype=torch.float64),
            pos_weight=torch.tensor(pos_weight, dtype=torch.float64),
            reduction="sum",
        )

    t = torch.tensor(theta, requires_grad=True)
    value = loss(t)
    (auto_grad,) = torch.autograd.grad(value, t)
    auto_hess = torch.autograd.functional.hessian(loss, torch.tensor(theta))
    grad, hess, total = newton_terms(x, y, pos_weight, theta)
    np.testing.assert_allclose(grad, auto_grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hess, auto_hess.numpy(), rtol=1e-10, atol=1e-10)
    assert total == pytest.approx(float(value), rel=1e-12)


def test_penalty_is_on_the_weights_only_like_the_sgd_objective():
    x, y = logistic_rows(200, 3, seed=3)
    theta = np.array([0.3, -0.2, 0.1, -1.5])
    grad, hess, loss = newton_terms(x, y, 2.0, theta)
    g, h = penalised_terms(grad, hess, theta, l2=0.1, total_rows=200)
    np.testing.assert_allclose(g - grad, [0.1 * 200 * 0.3, 0.1 * 200 * -0.2, 0.1 * 200 * 0.1, 0])
    np.testing.assert_allclose(np.diag(h - hess), [20, 20, 20, 0])
    # F equals the torch loss the banks minimise with SGD (mean weighted BCE + 0.5 l2 |w|^2).
    from fl_credit.model.logistic import model_from_theta
    from fl_credit.model.training import LocalTraining, penalised_loss

    model = model_from_theta(theta)
    settings = LocalTraining(
        epochs=1, lr=0.1, batch_size=0, optimizer="sgd", l2=0.1, pos_weight=2.0
    )
    sgd = penalised_loss(
        model, torch.as_tensor(x), torch.as_tensor(y, dtype=torch.float64), settings
    )
    assert penalised_objective(loss, theta, 0.1, 200) == pytest.approx(float(sgd), rel=1e-6)


@pytest.mark.parametrize("l2", [0.0, 0.01, 1.0])
def test_newton_reaches_sklearn_with_the_same_penalty_and_weights(l2):
    x, y = logistic_rows(3000, 6, seed=4)
    pos_weight = positive_weight(y)
    model, iterations, converged = fit_newton(
        x, y, pos_weight=pos_weight, l2=l2, tol=1e-10, max_iterations=30
    )
    reference = sklearn_fit(x, y, pos_weight, l2, total_rows=len(y))
    ours = np.r_[model.linear.weight.detach().numpy().ravel(), model.linear.bias.detach().numpy()]
    theirs = np.r_[reference.coef_.ravel(), reference.intercept_]
    assert converged and iterations <= 10
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_line_search_keeps_the_objective_falling_where_plain_newton_overshoots():
    x, y = logistic_rows(400, 2, seed=5, intercept=0.0)
    start = np.array([6.0, -6.0, 4.0])  # far from the optimum, logits saturated
    l2, n = 1e-4, len(y)

    def objective(theta):
        return penalised_objective(newton_terms(x, y, 1.0, theta)[2], theta, l2, n)

    grad, hess, _ = newton_terms(x, y, 1.0, start)
    full_step = start + newton_direction(*penalised_terms(grad, hess, start, l2, n))
    assert objective(full_step) > objective(start)  # the unguarded step would diverge

    search = NewtonSearch(start, l2=l2, total_rows=n, tol=1e-9)
    while not search.converged and search.evaluations < 60:
        search.observe(*newton_terms(x, y, 1.0, search.candidate))
    accepted = [h["objective"] for h in search.history if h["accepted"]]
    assert search.converged and not search.stalled
    assert any(not h["accepted"] for h in search.history)
    assert all(b <= a for a, b in zip(accepted, accepted[1:], strict=False))
    reference = sklearn_fit(x, y, 1.0, l2, total_rows=n)
    np.testing.assert_allclose(
        search.theta, np.r_[reference.coef_.ravel(), reference.intercept_], atol=1e-4
    )


def test_damping_gives_a_descent_direction_for_a_singular_hessian():
    x, y = logistic_rows(100, 2, seed=6)
    x = np.c_[x, x[:, 0]]  # duplicated column, no penalty: singular Hessian
    theta = np.zeros(4)
    grad, hess, _ = newton_terms(x, y, 1.0, theta)
    g, h = penalised_terms(grad, hess, theta, 0.0, len(y))
    assert np.linalg.matrix_rank(h) < 4
    d = newton_direction(g, h)
    assert np.all(np.isfinite(d)) and g @ d < 0


def test_secure_clip_range_and_bits_leave_no_overflow_for_100_banks():
    rows, weight = 1e6, 20.0
    value_range = 8 * weight * rows
    for banks in (3, 10, 100):
        bits = fixed_point_bits(banks, value_range)
        assert banks * value_range * 2.0**bits < 2.0**63
        assert bits >= 25
    assert fixed_point_bits(3, 8 * 18 * 6307) == 30


# --- configuration ---------------------------------------------------------------------------


def test_auto_resolves_to_newton_only_without_dp_on_summing_strategies():
    assert from_dict({}).train.optimizer == "newton"
    assert from_dict({"strategy": {"name": "fedavg"}}).train.optimizer == "newton"
    assert from_dict({"strategy": {"name": "fedprox"}}).train.optimizer == "sgd"
    assert from_dict({"dp": {"mode": "opacus", "epsilon": 2}}).train.optimizer == "sgd"
    central = {"dp": {"mode": "central", "epsilon": 2}, "imbalance": {"pos_weight": 18.0}}
    assert from_dict(central).train.optimizer == "sgd"
    assert from_dict({"train": {"optimizer": "sgd"}}).train.optimizer == "sgd"


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"dp": {"mode": "opacus", "epsilon": 2}}, "dp=opacus"),
        ({"strategy": {"name": "fedprox"}}, "strategy=fedprox"),
    ],
)
def test_explicit_newton_with_dp_or_a_non_summing_strategy_is_one_line(raw, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        from_dict({**raw, "train": {"optimizer": "newton"}})
    assert "\n" not in str(info.value)


# --- federated runs on the real Flower runtime ----------------------------------------------


def pooled_optimum(prepared, fed, cfg: ExperimentConfig) -> np.ndarray:
    """scikit-learn's fit of the federation's objective on the pooled training rows, scaled
    with the federation's standardiser (which equals the pooled one up to fixed point)."""
    data = pooled(list(prepared.banks.values()))
    x = fed.scaler.transform(data.x_train).astype(np.float64)
    model = sklearn_fit(
        x, data.y_train, positive_weight(data.y_train), cfg.train.l2, total_rows=len(x)
    )
    return np.r_[model.coef_.ravel(), model.intercept_]


def federated_theta(fed) -> np.ndarray:
    """The federated coefficients before the prior correction (the optimised objective's)."""
    theta = theta_from_arrays(fed.arrays)
    theta[-1] += fed.intercept_correction
    return theta


@pytest.fixture(scope="module")
def embedded_run(embedded):
    prepared = prepare(FAST, embedded)
    fed, _ = federate(FAST, prepared)
    return prepared, fed


def generic_csv(path: Path, rows: int = 3000) -> Path:
    rng = np.random.default_rng(7)
    income = rng.lognormal(10.5, 0.4, rows)
    debt = rng.uniform(0, 1, rows)
    home = rng.choice(["rent", "own", "mortgage"], rows)
    z = -3.0 + 2.0 * debt - 0.5 * (np.log(income) - 10.5) + (home == "rent") * 0.6
    bad = rng.random(rows) < 1 / (1 + np.exp(-z))
    frame = pd.DataFrame({"income": income, "debt_ratio": debt, "home": home})
    frame["status"] = np.where(bad, "default", "paid")
    frame.to_csv(path, index=False)
    return path


def test_federated_newton_matches_the_pooled_sklearn_fit_on_embedded_data(embedded_run):
    prepared, fed = embedded_run
    assert fed.converged_round is not None and fed.converged_round <= 10
    np.testing.assert_allclose(federated_theta(fed), pooled_optimum(prepared, fed, FAST), atol=1e-4)


@pytest.mark.parametrize("source", ["synthetic", "csv"])
def test_federated_newton_matches_the_pooled_sklearn_fit_on_other_data(source, tmp_path):
    if source == "synthetic":
        data = DataConfig(kind="synthetic", rows=6000, path=str(tmp_path / "loan.csv"))
        strategy = StrategyConfig()  # secure aggregation
    else:
        path = generic_csv(tmp_path / "credit.csv")
        data = DataConfig(kind="csv", path=str(path), target="status", positive="default")
        strategy = StrategyConfig(name="fedavg")
    cfg = dataclasses.replace(FAST, data=data, strategy=strategy)
    prepared = prepare(cfg)
    fed, _ = federate(cfg, prepared)
    assert fed.converged_round is not None and fed.converged_round <= 10
    np.testing.assert_allclose(federated_theta(fed), pooled_optimum(prepared, fed, cfg), atol=1e-4)


class CountingGrid:
    """A Grid that counts the messages of each type it sends (delegates everything)."""

    def __init__(self, grid) -> None:
        self._grid = grid
        self.sent: dict[str, int] = {}

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        for m in messages:
            kind = m.metadata.message_type
            self.sent[kind] = self.sent.get(kind, 0) + 1
        return self._grid.send_and_receive(messages, timeout=timeout)

    def __getattr__(self, name):
        return getattr(self._grid, name)


def test_plain_newton_under_flower_start_stops_sending_and_equals_the_secure_run(
    embedded_run,
):
    """Flower's own ``Strategy.start`` (not the project's round loop) with sums in the clear:
    after the converged round no train message is sent, and, given the secure run's
    standardiser and class weight, the plain sums give the secure run's coefficients up to
    the fixed-point rounding of the secure sums (2^-31 per bank and value, i.e. about 1e-9 on
    gradient sums whose Hessian has eigenvalues of at least l2 * N = 63)."""
    from fl_credit.bank.client_app import make_client_app
    from fl_credit.bank.floors import BankFloors
    from fl_credit.coordinator.federation import wait_for_banks
    from fl_credit.coordinator.statistics import share_standardizer
    from fl_credit.coordinator.strategy_factory import build_strategy
    from fl_credit.data.prepare import write_bank_files
    from fl_credit.model.logistic import new_model, to_arrays
    from fl_credit.protocol.settings import BankSettings
    from fl_credit.runtime.engine import simulate

    prepared, secure = embedded_run
    cfg = resolve_optimizer(dataclasses.replace(FAST, strategy=StrategyConfig(name="fedavg")))
    rounds = 15
    pos_weight = float(np.exp(secure.intercept_correction))
    count = sum(len(b.y_train) for b in prepared.banks.values())

    def server_main(grid):
        counting = CountingGrid(grid)
        nodes = wait_for_banks(grid, len(prepared.banks), 60)
        settings = BankSettings.from_experiment(cfg, bank_dir=bank_dir).to_config()
        share_standardizer(grid, nodes, secure.scaler, pos_weight, settings, 60)
        strategy = build_strategy(cfg, num_banks=len(nodes))
        strategy.set_rows(count, pos_weight)
        result = strategy.start(
            grid=counting,
            initial_arrays=to_arrays(new_model(len(secure.scaler.mean), 0)),
            num_rounds=rounds,
            timeout=60,
            train_config=settings,
        )
        return strategy, result, counting.sent

    import tempfile

    with tempfile.TemporaryDirectory() as bank_dir:
        write_bank_files(prepared, Path(bank_dir), suffix=".npz")
        app = make_client_app(floors=BankFloors.from_experiment(cfg, None))  # plain fedavg
        run = simulate(server_main, app, len(prepared.banks), cfg.engine)
    strategy, result, sent = run.result
    assert type(strategy).__name__ == "FedNewton"
    assert strategy.converged_round is not None and strategy.converged_round < rounds
    assert sent.get("train", 0) == len(prepared.banks) * strategy.converged_round
    assert strategy.configure_train(rounds + 1, result.arrays, None, None) == []
    assert secure.converged_round == strategy.converged_round
    plain = theta_from_arrays(result.arrays)
    np.testing.assert_allclose(plain, federated_theta(secure), rtol=0, atol=1e-8)


def test_sgd_stops_on_tolerance_and_reports_the_epsilon_it_spent(embedded):
    """DP keeps SGD; a tolerance stop releases fewer aggregates and the privacy report
    charges only the rounds that ran (bank-level DP: its accountant is the server's)."""
    from strategies.dp.accounting import rdp_epsilon

    cfg = dataclasses.replace(
        FAST,
        train=TrainConfig(rounds=5, tol=1e6),  # any change stops after the first round
        dp=DPConfig(mode="central", epsilon=4.0, clip_norm=1.0),
        imbalance=ImbalanceConfig(pos_weight=18.0),  # public class weight under bank-level DP
    )
    cfg = resolve_optimizer(cfg)
    assert cfg.train.optimizer == "sgd"
    fed, _ = federate(cfg, prepare(cfg, embedded))
    assert fed.converged_round == 1
    assert [row["round"] for row in fed.history] == [0, 1]
    report = fed.privacy["all_banks"]
    assert report["target_epsilon"] == 4.0
    spent = [rdp_epsilon(report["noise_multiplier"], 1.0, k, report["delta"]) for k in (1, 5)]
    assert report["epsilon"] == pytest.approx(spent[0])
    assert report["epsilon"] < 0.8 * spent[1] <= 0.8 * 4.0 + 1e-6
