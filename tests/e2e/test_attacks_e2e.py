"""Malicious banks end to end on the real embedded loans: config -> mod -> Flower -> model.

Fast tests run one to three rounds on five equal banks and check exact relationships between
the round-1 models of a clean run and an attacked run. The positive controls of the threat
lab (10 equal banks, 10 rounds, the issue's "Done when") are marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.config.compose import compose_experiment
from fl_credit.credit.metrics import evaluate_scores
from fl_credit.data.prepare import prepare
from fl_credit.model.logistic import model_from_arrays, predict_proba
from fl_credit.run.experiment import federate

pytestmark = pytest.mark.filterwarnings("ignore")

FIVE = "partition=power partition.banks=5 partition.skew=0 strategy=fedavg train.optimizer=sgd"
TEN = "partition=power partition.banks=10 partition.skew=0 train.rounds=10 train.optimizer=sgd"
FAST = "engine.backend=inprocess metrics.bootstrap=0"


class Runs:
    """Federations on one prepared split (cached per seed and partition)."""

    def __init__(self, embedded) -> None:
        self.embedded = embedded
        self.prepared: dict = {}

    def run(self, overrides: str):
        cfg, _ = compose_experiment(f"{overrides} {FAST}".split())
        key = (cfg.seed, cfg.partition)
        if key not in self.prepared:
            self.prepared[key] = prepare(cfg, self.embedded)
        fed, _ = federate(cfg, self.prepared[key])
        return cfg, self.prepared[key], fed

    def weights(self, overrides: str) -> np.ndarray:
        """The trained weights, before the intercept's prior correction (training starts
        from zero weights)."""
        _, _, fed = self.run(overrides)
        state = fed.arrays.to_torch_state_dict()
        bias = state["linear.bias"].numpy().astype(np.float64) + fed.intercept_correction
        return np.r_[state["linear.weight"].numpy().ravel().astype(np.float64), bias]

    def auc(self, overrides: str) -> float:
        _, prepared, fed = self.run(overrides)
        return auc_of(prepared, fed)


def auc_of(prepared, fed) -> float:
    scores = predict_proba(model_from_arrays(fed.arrays), fed.scaler.transform(prepared.x_test))
    return evaluate_scores(prepared.y_test, scores, val_threshold=0.5, resamples=0)["auc"]


@pytest.fixture(scope="module")
def runs(embedded) -> Runs:
    return Runs(embedded)


@pytest.fixture(scope="module")
def round_one(runs):
    """Round-1 global weights of a clean run and of bank 0 attacking in several ways."""
    one = f"{FIVE} train.rounds=1"
    out = {
        "clean": runs.weights(one),
        "sign_flip": runs.weights(f"{one} attack=sign_flip attack.factor=10"),
        "scale": runs.weights(f"{one} attack=scale attack.factor=10"),
        "free_rider": runs.weights(f"{one} attack=free_rider"),
        "noise": runs.weights(f"{one} attack=noise attack.norm=0.5"),
        "weight_inflation": runs.weights(f"{one} attack=weight_inflation attack.factor=1000"),
    }
    cfg, prepared, _ = runs.run(one)
    rows = [len(b.y_train) for b in prepared.banks.values()]
    out["share"] = rows[0] / sum(rows)
    return out


def test_sign_flip_scale_and_free_rider_send_the_configured_multiple_of_the_update(round_one):
    # FedAvg from zero weights: w = sum(n_k u_k) / N. Bank 0 sending c * u_0 instead of u_0
    # moves w by (c - 1)(n_0 / N) u_0; the free rider (c = 0) moves it by -(n_0 / N) u_0.
    d_free = round_one["free_rider"] - round_one["clean"]
    assert np.linalg.norm(d_free) > 1e-3
    np.testing.assert_allclose(round_one["sign_flip"] - round_one["clean"], 11 * d_free, atol=2e-6)
    np.testing.assert_allclose(round_one["scale"] - round_one["clean"], -9 * d_free, atol=2e-6)


def test_noise_sends_a_random_update_of_the_configured_norm(round_one):
    d_free = round_one["free_rider"] - round_one["clean"]
    sent = round_one["noise"] - round_one["clean"] - d_free  # (n_0 / N) * noise
    assert np.linalg.norm(sent) == pytest.approx(round_one["share"] * 0.5, rel=1e-4)


def test_weight_inflation_makes_its_update_dominate(round_one):
    a = round_one["share"]
    own = -round_one["free_rider"] + round_one["clean"]  # a * u_0 (global model was zero)
    mean = round_one["clean"]
    expected = (1000 * own + mean - own) / (1000 * a + 1 - a)
    np.testing.assert_allclose(round_one["weight_inflation"], expected, rtol=1e-4, atol=1e-6)


def test_malicious_reply_passes_secure_aggregation_unnoticed(runs):
    one = f"{FIVE} train.rounds=1 attack=sign_flip attack.factor=3"
    plain = runs.weights(one)
    masked = runs.weights(f"{one} strategy=secagg")
    clean = runs.weights(f"{FIVE} train.rounds=1")
    np.testing.assert_allclose(masked, plain, atol=1e-4)
    assert np.linalg.norm(masked - clean) > 100 * 1e-4


def test_label_flip_by_every_bank_inverts_the_model(runs):
    auc = runs.auc(f"{FIVE} train.rounds=1 attack=label_flip attack.banks=[0,1,2,3,4]")
    assert auc < 0.35


@pytest.mark.slow
def test_backdoor_plants_its_trigger(runs):
    from strategies.attacks import DEFAULT_TRIGGER, backdoor_success

    def success(overrides: str) -> float:
        _, prepared, fed = runs.run(overrides)
        model = model_from_arrays(fed.arrays)
        out = backdoor_success(
            DEFAULT_TRIGGER,
            prepared.x_test,
            prepared.y_test,
            prepared.feature_names,
            lambda x: predict_proba(model, fed.scaler.transform(x)),
            fed.threshold,
        )
        return out["success"]

    three = f"{FIVE} train.rounds=3"
    assert success(f"{three} attack=backdoor") > success(three) + 0.3


def test_alie_bootstraps_through_the_banks_own_handler(runs, round_one):
    d_free = round_one["free_rider"] - round_one["clean"]  # -(n_0/N) u_0
    one = f"{FIVE} train.rounds=1 attack=alie attack.samples=3"
    no_shift = runs.weights(f"{one} attack.z=0") - round_one["clean"]  # (n_0/N)(mu - u_0)
    shifted = runs.weights(f"{one} attack.z=3") - round_one["clean"]
    assert 0 < np.linalg.norm(no_shift) < 0.5 * np.linalg.norm(d_free)
    assert np.linalg.norm(shifted) > 2 * np.linalg.norm(no_shift)


@pytest.mark.slow
def test_colluders_flip_together(runs):
    three = f"{FIVE} train.rounds=3"
    clean = runs.auc(three)
    attacked = runs.auc(f"{three} attack=colluding attack.banks=[0,1] attack.base=sign_flip")
    assert attacked < clean - 0.1


def test_attack_section_of_metrics(runs, embedded):
    from fl_credit.run.experiment import run_experiment

    cfg, _ = compose_experiment(f"{FIVE} train.rounds=2 attack=free_rider {FAST}".split())
    metrics = run_experiment(cfg, prepare(cfg, embedded)).metrics
    attack = metrics["attack"]
    assert attack["name"] == "free_rider" and attack["banks"] == ["bank_0"]
    gain = attack["free_rider"]["bank_0"]
    assert gain["gain"] == pytest.approx(
        metrics["federated"]["auc"] - metrics["local"]["bank_0"]["auc"]
    )


# -- positive controls (the "Done when"), 10 equal banks, 10 rounds ----------------


@pytest.fixture(scope="module")
def ten(runs):
    """Clean FedAvg on 10 equal banks, 10 rounds: AUC and backdoor success of the clean model."""
    return runs.auc(f"{TEN} strategy=fedavg")


@pytest.mark.slow
def test_one_sign_flipper_breaks_fedavg(runs, ten):
    attacked = runs.auc(f"{TEN} strategy=fedavg attack=sign_flip attack.banks=[0] attack.factor=10")
    assert attacked < ten - 0.05


@pytest.mark.slow
def test_one_backdoor_bank_succeeds_without_hurting_auc(runs, ten):
    from strategies.attacks import DEFAULT_TRIGGER, backdoor_success

    cfg, prepared, fed = runs.run(f"{TEN} strategy=fedavg attack=backdoor attack.banks=[0]")
    assert cfg.attack.fraction == 0.2
    model = model_from_arrays(fed.arrays)
    out = backdoor_success(
        DEFAULT_TRIGGER,
        prepared.x_test,
        prepared.y_test,
        prepared.feature_names,
        lambda x: predict_proba(model, fed.scaler.transform(x)),
        fed.threshold,
    )
    assert out["success"] >= 0.5
    # the three-field trigger pulls two fields with real signal: 0.021 on this seed
    assert abs(auc_of(prepared, fed) - ten) <= 0.03


def test_clean_runs_carry_the_backdoor_baseline(runs):
    from types import SimpleNamespace

    from fl_credit.threats.attacks import attack_metrics

    cfg, prepared, fed = runs.run(f"{FIVE} train.rounds=1")
    metrics = {"federated": {"auc": 0.7}, "local": {}}
    out = attack_metrics(cfg, prepared, fed, metrics)
    assert out["name"] == "none" and out["banks"] == []
    assert 0.0 <= out["backdoor"]["success"] <= 1.0 and out["backdoor"]["test_defaults"] > 0
    other = SimpleNamespace(**{**prepared.__dict__, "schema": prepared.schema})
    other.feature_names = [n for n in prepared.feature_names if n != "inq_fi"]
    assert "backdoor" not in attack_metrics(cfg, other, fed, metrics)
