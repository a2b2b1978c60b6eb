"""Free riders are caught from what the coordinator sees: each bank's update per round."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.threats.free_riders import detect_free_riders

pytestmark = pytest.mark.filterwarnings("ignore")


def federation(rng, rider, banks=6, d=30, rounds=5):
    """FedAvg rounds: honest banks train part of the way from the global model to their own
    optimum (``A_b (w_b - w)``, ``A_b`` diagonal in (0.3, 0.9), plus a little SGD noise);
    ``rider(round, last global change)`` is the free rider's update. Returns the per-round
    updates and global changes as the coordinator sees them."""
    optimum = rng.standard_normal(d) + 0.3 * rng.standard_normal((banks, d))
    pace = rng.uniform(0.3, 0.9, (banks, d))
    w, change, rounds_seen, changes = np.zeros(d), None, [], []
    for r in range(rounds):
        updates = {
            b: pace[b] * (optimum[b] - w) + 0.02 * rng.standard_normal(d) for b in range(banks)
        }
        updates["rider"] = rider(r, change)
        rounds_seen.append(updates)
        changes.append(change)
        change = np.mean(list(updates.values()), axis=0)
        w = w + change
    return rounds_seen, changes


@pytest.mark.parametrize("kind", ["zero", "stale", "fresh_noise", "fixed_noise"])
def test_each_kind_of_free_rider_is_flagged_and_no_honest_bank(kind):
    rng = np.random.default_rng(3)
    fixed = rng.standard_normal(30)
    riders = {
        "zero": lambda r, change: np.zeros(30),
        "stale": lambda r, change: change if change is not None else rng.standard_normal(30),
        "fresh_noise": lambda r, change: rng.standard_normal(30) * (r + 1) ** -1.0,
        "fixed_noise": lambda r, change: fixed * (r + 1) ** -1.0,
    }
    rounds, changes = federation(rng, riders[kind])
    verdicts = detect_free_riders(rounds, changes)
    assert verdicts["rider"].flagged
    assert not any(v.flagged for k, v in verdicts.items() if k != "rider")


def test_honest_banks_answer_the_global_move_when_krum_jumps_between_banks():
    # Before: persistence (cosine of consecutive updates) flagged 9 of 90 honest banks under
    # Krum with a zero-update rider: the global model jumps to one bank's model each round,
    # and the others' updates turn. Their updates still answer the jump.
    rng = np.random.default_rng(5)
    d, banks = 30, 8
    optimum = rng.standard_normal(d) + 0.8 * rng.standard_normal((banks, d))
    w, change, rounds, changes = np.zeros(d), None, [], []
    for r in range(6):
        updates = {b: 0.9 * (optimum[b] - w) + 0.02 * rng.standard_normal(d) for b in range(banks)}
        updates["rider"] = np.zeros(d)
        rounds.append(updates)
        changes.append(change)
        change = updates[r % banks]  # Krum keeps one bank's update
        w = w + change
    verdicts = detect_free_riders(rounds, changes)
    assert verdicts["rider"].flagged
    assert not any(v.flagged for k, v in verdicts.items() if k != "rider"), verdicts


@pytest.mark.parametrize(
    ("defence", "attack"),
    [("fedavg", "free_rider"), ("fedavg", "disguised_free_rider"), ("krum", "free_rider")],
)
def test_free_riders_are_caught_on_the_real_loans(embedded, defence, attack):
    # Before the detector there was nothing to catch them (the matrix reported "free riding
    # is never caught" with an update norm of exactly 0 in every round). Under Krum the
    # persistence check then flagged an honest bank on seed 0 (docs/results/threats).
    from simulations.studies.free_rider_detection import measure

    row = measure(embedded, defence, attack, seed=0, rounds=5)
    assert row["caught"] == row["free_riders"] == 1
    assert row["false_alarms"] == 0, row
