"""Free riders are caught from what the coordinator sees: each bank's update per round."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.threats.free_riders import detect_free_riders

pytestmark = pytest.mark.filterwarnings("ignore")


def honest_rounds(rng, banks=6, d=30, rounds=5):
    """Updates that start aligned and settle towards each bank's own optimum."""
    common, own = rng.standard_normal(d), rng.standard_normal((banks, d))
    return [
        {b: common * 0.5**r + 0.3 * own[b] + 0.02 * rng.standard_normal(d) for b in range(banks)}
        for r in range(rounds)
    ]


@pytest.mark.parametrize("kind", ["zero", "stale", "fresh_noise", "fixed_noise"])
def test_each_kind_of_free_rider_is_flagged_and_no_honest_bank(kind):
    rng = np.random.default_rng(3)
    rounds = honest_rounds(rng)
    fixed = rng.standard_normal(30)
    changes = [None] + [np.mean(list(r.values()), axis=0) for r in rounds[:-1]]
    for r, (updates, change) in enumerate(zip(rounds, changes, strict=True)):
        if kind == "zero":
            updates["rider"] = np.zeros(30)
        elif kind == "stale":
            updates["rider"] = change if change is not None else rng.standard_normal(30)
        elif kind == "fresh_noise":
            updates["rider"] = rng.standard_normal(30) * (r + 1) ** -1.0
        else:
            updates["rider"] = fixed * (r + 1) ** -1.0
    verdicts = detect_free_riders(rounds, changes)
    assert verdicts["rider"].flagged
    assert not any(v.flagged for k, v in verdicts.items() if k != "rider")


@pytest.mark.parametrize("attack", ["free_rider", "disguised_free_rider"])
def test_free_riders_are_caught_on_the_real_loans(embedded, attack):
    # Before the detector there was nothing to catch them (the matrix reported "free riding
    # is never caught" with an update norm of exactly 0 in every round).
    from simulations.studies.free_rider_detection import measure

    row = measure(embedded, "fedavg", attack, seed=0, rounds=4)
    assert row["caught"] == row["free_riders"] == 1
    assert row["false_alarms"] == 0, row
