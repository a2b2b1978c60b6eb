"""Defences end to end on the real embedded loans, against one sign-flipping bank.

Fast tests: nine equal banks, three rounds, every ``strategy=`` defence through its Hydra
config. Slow tests: the issue's setting (10 equal banks, 10 rounds, seed 0).
"""

from __future__ import annotations

import re

import pytest

from fl_credit.config.compose import compose_experiment
from fl_credit.config.errors import ConfigError
from tests.e2e.test_attacks_e2e import TEN, Runs, auc_of

pytestmark = pytest.mark.filterwarnings("ignore")

NINE = "partition=power partition.banks=9 partition.skew=0 train.rounds=3 train.optimizer=sgd"
FLIP = "attack=sign_flip attack.banks=[0] attack.factor=10"
DEFENCES = [
    "strategy=fedmedian",
    "strategy=trimmed_mean",
    "strategy=krum",
    "strategy=multikrum",
    "strategy=bulyan",
    "strategy=norm_bound",
    "strategy=grouped_secagg",
]
# Each defence also has a fast test on a toy federation (test_robust_units.py); on the real
# data, one runs in the default suite and the others are marked slow.
DEFENCE_PARAMS = [
    pytest.param(d, marks=() if d == "strategy=fedmedian" else pytest.mark.slow) for d in DEFENCES
]


@pytest.fixture(scope="module")
def runs(embedded) -> Runs:
    return Runs(embedded)


@pytest.fixture(scope="module")
def nine(runs) -> dict:
    """FedAvg on nine banks: clean and under the sign flip."""
    return {
        "clean": runs.auc(f"{NINE} strategy=fedavg"),
        "attacked": runs.auc(f"{NINE} strategy=fedavg {FLIP}"),
    }


@pytest.mark.parametrize("defence", DEFENCE_PARAMS)
def test_defence_keeps_a_sign_flipper_out(runs, nine, defence):
    # Measured (seed 0): FedAvg 0.776 clean, 0.409 attacked; defences 0.727 (Krum) to 0.775.
    assert nine["attacked"] < nine["clean"] - 0.2  # the attack works without a defence
    assert runs.auc(f"{NINE} {defence} {FLIP}") > 0.7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("strategy=secagg +strategy.robust=median", "strategy=secagg cannot apply"),
        ("strategy=krum +strategy.threshold=3", "cannot be combined with secure aggregation"),
        ("strategy=fedmedian dp=central imbalance=none", "dp=central accounts for a released sum"),
        ("strategy=grouped_secagg strategy.robust=mean", "strategy.robust must be one of"),
        ("strategy=grouped_secagg strategy.group_size=2", "a bank whose group mean"),
        ("strategy=trimmed_mean strategy.beta=0.5", "strategy.beta must be in [0, 0.5)"),
        ("attack=colluding attack.banks=[3]", "attack=colluding needs at least 2 attack.banks"),
        ("attack=sign_flip attack.start_round=30", "attack.start_round must be in [1"),
        ("attack=label_flip attack.flip=some", "attack.flip must be all or defaults"),
        ("attack=min_max attack.perturbation=bogus", "attack.perturbation must be one of"),
    ],
)
def test_bad_combinations_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        compose_experiment(f"{NINE} {overrides}".split())
    assert "\n" not in str(err.value)


def test_too_few_banks_are_refused_when_the_strategy_is_built(runs):
    with pytest.raises(ConfigError, match="9 banks in groups of 4 make 2"):
        runs.run(f"{NINE} strategy=grouped_secagg strategy.group_size=4")
    with pytest.raises(ConfigError, match="needs at least 3 groups"):
        runs.run("partition=region strategy=grouped_secagg strategy.group_size=5")
    with pytest.raises(ConfigError, match="bulyan with num_malicious=2 needs at least 11 banks"):
        runs.run(f"{NINE} strategy=bulyan strategy.num_malicious=2")
    with pytest.raises(ConfigError, match="attack.banks \\[9\\] names bank 9"):
        runs.run(f"{NINE} strategy=fedavg attack=noise attack.banks=[9]")


def test_every_attack_and_defence_config_composes():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf"
    for path in sorted((conf / "attack").glob("*.yaml")):
        cfg, _ = compose_experiment([f"attack={path.stem}", "partition.shares=[0.2,0.3,0.5]"])
        assert cfg.attack.name == path.stem
    for name in ("fedmedian", "trimmed_mean", "krum", "multikrum", "bulyan", "norm_bound"):
        cfg, _ = compose_experiment([f"strategy={name}"])
        assert cfg.strategy.name == name


# -- the setting: 10 equal banks, 10 rounds ----------------------------------------


@pytest.mark.slow
def test_median_and_multikrum_hold_against_one_sign_flipper(runs):
    """Seed 0. Measured over seeds 0, 1, 2 (docs/results/threat_matrix/runs.csv): the median
    under attack is 0.010, 0.020 and 0.046 below its clean run, so "within 0.02" holds on two
    seeds of three; Multi-Krum stays within 0.007 of clean FedAvg on all three; Krum is not
    in this test because its clean run is already 0.05-0.14 below FedAvg (it keeps one
    bank's update per round)."""
    flip = "attack=sign_flip attack.banks=[0] attack.factor=10"
    fedavg = runs.auc(f"{TEN} strategy=fedavg")
    median_clean = runs.auc(f"{TEN} strategy=fedmedian")
    median = runs.auc(f"{TEN} strategy=fedmedian {flip}")
    multikrum = runs.auc(f"{TEN} strategy=multikrum {flip}")
    assert abs(median - median_clean) <= 0.02
    assert abs(multikrum - fedavg) <= 0.02


@pytest.mark.slow
def test_grouped_secagg_restores_robustness_that_secagg_lacks(runs):
    flip = "attack=sign_flip attack.banks=[0] attack.factor=10"
    clean = runs.auc(f"{TEN} strategy=secagg")
    secagg = runs.auc(f"{TEN} strategy=secagg {flip}")
    _, prepared, fed = runs.run(f"{TEN} strategy=grouped_secagg {flip}")
    grouped = auc_of(prepared, fed)
    # Measured over seeds 0-2 (docs/results/threat_matrix/runs.csv): grouped 0.692-0.731 under
    # attack, FedAvg and secagg 0.31-0.40, clean 0.735-0.781: robustness comes back, at a cost
    # of 0.03-0.05 AUC (a median of 3 groups).
    assert secagg < clean - 0.3
    assert grouped > secagg + 0.25 and grouped > clean - 0.06
    ranks = [row["grouped-membership-rank"] for row in fed.history[1:]]
    assert ranks[-1] == 10  # the privacy side: the groups seen span every bank
    assert all(row["grouped-smallest-group"] >= 3 for row in fed.history[1:])


@pytest.mark.slow
def test_grouped_secagg_leaks_every_banks_row_count_across_rounds(runs, monkeypatch):
    """The privacy side of grouping: a curious server solves the group totals it saw."""
    import numpy as np

    import fl_credit.coordinator.federation as federation
    from strategies.robust import solve_bank_totals

    built = []
    build = federation.build_strategy

    def keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(federation, "build_strategy", keep)
    nine = "partition=power partition.banks=9 partition.skew=1 train.optimizer=sgd"
    _, prepared, fed = runs.run(f"{nine} strategy=grouped_secagg train.rounds=6")
    strategy = built[0]
    nodes = sorted({n for groups in strategy.groupings for g in groups for n in g})
    recovered = solve_bank_totals(strategy.groupings, strategy.group_weights, nodes)
    assert fed.history[-1]["grouped-membership-rank"] == 9
    true_rows = sorted(len(b.y_train) for b in prepared.banks.values())
    assert len(set(true_rows)) == 9  # unequal banks, so each count identifies its bank
    np.testing.assert_allclose(sorted(recovered), true_rows, atol=1e-3)
