"""The full-knowledge attacks follow their papers' formulations, checked on a pool of honest
updates (no federation): Min-Max / Min-Sum's gamma search and perturbations (Shejwalkar and
Houmansadr 2021), Fang et al.'s trimmed-mean attack on local models and Krum attack."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.attacks.exchange import AttackError
from strategies.attacks.fang_krum import fang_krum_lambda, krum_choice
from strategies.attacks.fang_trim import fang_trim_model
from strategies.attacks.min_max import (
    PERTURBATIONS,
    agnostic_update,
    largest_gamma,
    min_max_fits,
    min_sum_fits,
    pairwise_sq,
    perturbation_vector,
)


def pool(seed: int = 0, banks: int = 8, d: int = 70, common: float = 0.1) -> np.ndarray:
    """Honest updates: a common direction plus each bank's own spread."""
    rng = np.random.default_rng(seed)
    return common * rng.standard_normal(d) + 0.05 * rng.standard_normal((banks, d))


@pytest.mark.parametrize("limit", [0.3, 3.0, 7.2, 19.0])
def test_gamma_search_finds_the_largest_fitting_gamma_in_the_papers_range(limit):
    # Before: the search moved by 2.5, 1.25, ... around 10 and returned 0 for any limit
    # below 5 (on the loans gamma is below 1, so Min-Max and Min-Sum sent the honest mean).
    gamma = largest_gamma(lambda g: g <= limit)
    assert gamma == pytest.approx(limit, abs=1e-4)


@pytest.mark.parametrize("perturbation", PERTURBATIONS)
@pytest.mark.parametrize("fits", [min_max_fits, min_sum_fits])
def test_agnostic_update_sits_on_the_boundary_against_the_honest_direction(perturbation, fits):
    honest = pool()
    mu = honest.mean(axis=0)
    sent = agnostic_update(honest, fits, perturbation)
    p = perturbation_vector(honest, perturbation)
    gamma = float(np.linalg.norm(sent - mu) / np.linalg.norm(p))
    assert gamma > 1e-3
    assert fits(honest, sent)
    assert not fits(honest, mu + (gamma + 1e-3) * p)  # the largest gamma, to the tolerance
    if perturbation != "std":
        assert (sent - mu) @ mu < 0


def test_min_max_stays_within_the_honest_diameter():
    honest = pool(1)
    sent = agnostic_update(honest, min_max_fits, "unit_vec")
    diameter = np.sqrt(pairwise_sq(honest).max())
    assert np.linalg.norm(honest - sent, axis=1).max() <= diameter + 1e-9


def test_perturbations_are_the_papers_three():
    honest = pool(2)
    mu = honest.mean(axis=0)
    np.testing.assert_allclose(perturbation_vector(honest, "unit_vec"), -mu / np.linalg.norm(mu))
    np.testing.assert_array_equal(perturbation_vector(honest, "sign"), -np.sign(mu))
    np.testing.assert_allclose(perturbation_vector(honest, "std"), -honest.std(axis=0))
    with pytest.raises(AttackError, match="perturbation"):
        perturbation_vector(honest, "gauss")


def test_fang_trim_crafts_local_models_beyond_the_honest_range_against_the_direction():
    # Before: the values were drawn around the honest *updates* (a few hundredths here), not
    # around the local models the paper crafts, so the attacker moved the mean by a hair.
    rng = np.random.default_rng(3)
    global_model = rng.normal(0, 3, 70)
    models = global_model + pool(3)
    up = (models - global_model).mean(axis=0) > 0
    crafted = fang_trim_model(models, up, 2.0, np.random.default_rng(4))
    lo, hi = models.min(axis=0), models.max(axis=0)
    assert np.all(crafted[up] <= lo[up]) and np.all(crafted[~up] >= hi[~up])
    # at most (b - 1) times the parameter's own size beyond the range
    assert np.all(lo[up] - crafted[up] <= np.abs(lo[up]) + 1e-12)
    assert np.all(crafted[~up] - hi[~up] <= np.abs(hi[~up]) + 1e-12)
    # so on parameters of size 3 it moves them several times as far as an honest update does
    honest_step = np.abs(models - global_model).mean()
    assert np.abs(crafted - global_model).mean() > 3 * honest_step


def test_krum_selects_fang_krums_copies():
    # The banks' updates on the loans spread more than their mean (norms 0.27 against 0.1).
    honest = pool(5, common=0.01)
    direction = np.sign(honest.mean(axis=0))
    lam = fang_krum_lambda(honest, direction, copies=2)
    crafted = np.repeat((-lam * direction)[None, :], 2, axis=0)
    assert lam > 1e-5
    assert krum_choice(np.vstack([honest, crafted]), 2) >= len(honest)
