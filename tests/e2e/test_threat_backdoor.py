"""The backdoor measure is sound, and the boosted backdoors work, on the real embedded loans.

A trigger must not approve anyone by itself: on every defence and seed, a clean model
approves at most 5% of the test defaults it rejects once the trigger is stamped on them.
Model replacement (the backdoor boosted by ``gamma = n``) must plant the trigger in FedAvg,
counted only on defaults the clean model rejects; the projected backdoor must pass
``norm_bound`` unclipped.
"""

from __future__ import annotations

import pytest

from fl_credit.threats.attacks import attack_metrics
from strategies.attacks import success_against_clean
from tests.e2e.test_attacks_e2e import Runs

pytestmark = pytest.mark.filterwarnings("ignore")

TEN = "partition=power partition.banks=10 partition.skew=0 train.optimizer=sgd train.rounds=4"


@pytest.fixture(scope="module")
def runs(embedded) -> Runs:
    return Runs(embedded)


def backdoor_block(runs: Runs, overrides: str) -> dict:
    cfg, prepared, fed = runs.run(overrides)
    from tests.e2e.test_attacks_e2e import auc_of

    metrics = {"federated": {"auc": auc_of(prepared, fed)}, "local": {}}
    return attack_metrics(cfg, prepared, fed, metrics)["backdoor"]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("defence", ["fedavg", "fedmedian", "krum"])
def test_clean_models_do_not_approve_triggered_defaults(runs, defence, seed):
    # Before the fix the trigger overwrote the sub-grade with G2: clean Krum and median models
    # approved nearly every triggered default (share of all defaults, 0.99-1.00 in the matrix).
    block = backdoor_block(runs, f"{TEN} strategy={defence} seed={seed}")
    assert block["success"] <= 0.05, block["success"]
    assert block["test_defaults"] > 50


@pytest.mark.parametrize(("defence", "seed"), [("krum", 6), ("fltrust", 6), ("krum", 4)])
def test_single_bank_like_clean_models_do_not_approve_triggered_defaults(runs, defence, seed):
    # Before: the one-field trigger inq_fi = 20 sits 13 sd out, so it multiplies whatever sign
    # a noisy model gives inq_fi; Krum (one bank's update a round) and FLTrust (steered by
    # 100 root rows) approved 0.34 and 0.42 of the defaults they rejected (5 rounds, seed 6).
    rounds = TEN.replace("train.rounds=4", "train.rounds=5")
    block = backdoor_block(runs, f"{rounds} strategy={defence} seed={seed}")
    assert block["success"] <= 0.05, block["success"]


def test_model_replacement_plants_the_trigger_in_fedavg(runs):
    clean = backdoor_block(runs, f"{TEN} strategy=fedavg")
    boosted = backdoor_block(runs, f"{TEN} strategy=fedavg attack=model_replacement")
    success = success_against_clean(
        boosted["approved_triggered"], clean["approved_triggered"], clean["test_defaults"]
    )
    assert success >= 0.5, success


def test_projected_backdoor_stays_inside_the_bound_in_the_boosted_direction():
    import numpy as np

    from strategies.attacks import BankTools, TrainExchange, make_attack

    glob = [np.zeros((1, 3)), np.zeros(1)]
    honest = [np.array([[0.3, -0.1, 0.2]]), np.array([0.1])]
    exchange = TrainExchange(["w", "b"], glob, honest, 100.0, 2, 0)
    clean = [np.array([[0.05, 0.0, 0.0]]), np.array([0.0])]  # own clean update, norm 0.05
    tools = BankTools(retrain=lambda spec: clean, rng=np.random.default_rng(0))
    attack = make_attack("backdoor_projected", [0], num_banks=10)
    sent, weight = attack.rewrite(exchange, tools)
    vector = np.concatenate([a.ravel() for a in sent])
    assert np.linalg.norm(vector) == pytest.approx(0.05)
    boosted = 10 * np.concatenate([a.ravel() for a in honest])
    assert vector @ boosted == pytest.approx(np.linalg.norm(vector) * np.linalg.norm(boosted))
    assert weight == 100.0
    replaced, _ = make_attack("model_replacement", [0], num_banks=10).rewrite(exchange, tools)
    assert np.concatenate([a.ravel() for a in replaced]) == pytest.approx(boosted)


@pytest.mark.parametrize("attack", ["backdoor", "label_flip"])
def test_a_data_poisoning_bank_under_secure_aggregation_is_summed(runs, attack):
    # Before: the poisoning order travelled in the train request's config, which the bank's
    # secure-aggregation mod binds into its masks; the poisoned bank's masks then matched no
    # other bank's, every round's sum failed its sanity check and was skipped, and the model
    # never trained (strategy=secagg attack=backdoor: 10 of 10 seeds "failed").
    import numpy as np

    weights = runs.weights(f"{TEN} strategy=secagg attack={attack}")
    assert np.abs(weights[:-1]).max() > 0  # training starts from zero weights
