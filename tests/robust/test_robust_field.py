"""The defences the field uses: centered clipping with bucketing, RFA (geometric median) and
DnC, on toy updates (end to end: tests/e2e/test_robust_field_e2e.py)."""

from __future__ import annotations

import numpy as np

from strategies.robust.centered_clip import buckets, centered_clip
from strategies.robust.dnc import dnc_keep
from strategies.robust.geomed import geometric_median


def honest_and_outlier(rng, n=9, d=20, far=100.0):
    honest = 1.0 + 0.1 * rng.standard_normal((n, d))
    return np.vstack([honest, np.full((1, d), -far)]), honest


def test_geometric_median_stays_with_the_honest_majority():
    points, honest = honest_and_outlier(np.random.default_rng(0))
    mean = points.mean(axis=0)
    median = geometric_median(points, iterations=50)
    assert np.linalg.norm(mean - honest.mean(axis=0)) > 5  # the outlier drags the mean
    assert np.linalg.norm(median - honest.mean(axis=0)) < 0.5


def test_centered_clipping_bounds_what_one_outlier_moves():
    rng = np.random.default_rng(1)
    points, honest = honest_and_outlier(rng)
    start = honest.mean(axis=0)
    v, tau = centered_clip(points, start, iterations=1)
    assert np.linalg.norm(v - start) <= tau * 2 / len(points) + 1e-9
    assert buckets(points, 2, rng).shape == (5, points.shape[1])


def test_dnc_finds_a_shifted_direction_inside_the_spread():
    rng = np.random.default_rng(2)
    honest = rng.standard_normal((8, 50))
    shift = -1.5 * honest.std(axis=0) * np.sign(honest.mean(axis=0))  # ALIE-like, z = 1.5
    malicious = np.repeat((honest.mean(axis=0) + shift)[None, :], 2, axis=0)
    keep = dnc_keep(np.vstack([honest, malicious]), 2, rng)
    assert not {8, 9} & set(keep.tolist())
