"""Per-grade and overall calibration tests from the secure per-grade sums equal the same
tests computed on the pooled rows (independent implementation), on both datasets."""

from __future__ import annotations

import numpy as np
import pytest

from tests.validation import pooled_reference as ref

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = dict(rtol=1e-9, atol=1e-9)


def test_grade_counts_and_tests_equal_the_pooled_rows(run) -> None:
    grades = len(run.stored["scale_edges"]) + 1
    table = ref.grade_frame(run.grade["test"], run.y["test"], run.pd["test"], grades)
    got = run.results["grades"]
    used = table.n.notna().to_numpy()
    assert used.sum() >= 4, "the master scale should spread the test rows over several grades"
    for name, column in (("rows", "n"), ("defaults", "d"), ("pd", "p")):
        np.testing.assert_allclose(
            np.array([g[name] for g in got])[used], table[column].to_numpy()[used], **TOL
        )
    np.testing.assert_allclose(
        np.array([g["binomial_p"] for g in got])[used], ref.binomial(table)[used], **TOL
    )
    np.testing.assert_allclose(
        np.array([g["jeffreys_p"] for g in got])[used], ref.jeffreys(table)[used], **TOL
    )


def test_hosmer_lemeshow_and_spiegelhalter_equal_the_pooled_rows(run) -> None:
    grades = len(run.stored["scale_edges"]) + 1
    table = ref.grade_frame(run.grade["test"], run.y["test"], run.pd["test"], grades)
    stat, p = ref.hosmer(table)
    np.testing.assert_allclose(run.results["hosmer_lemeshow"]["statistic"], stat, **TOL)
    np.testing.assert_allclose(run.results["hosmer_lemeshow"]["p"], p, **TOL)
    row_pd = table.p.to_numpy()[run.grade["test"]]  # every row at its grade's PD
    z = ref.spiegelhalter_rows(run.y["test"], row_pd)
    np.testing.assert_allclose(run.results["spiegelhalter"]["z"], z, **TOL)


def test_the_traffic_light_follows_the_jeffreys_p_value(run) -> None:
    alpha, red = run.stored["alpha"], run.stored["red"]
    for g in run.results["grades"]:
        p = g["jeffreys_p"]
        if np.isnan(p):
            continue
        expected = "red" if p < red else ("yellow" if p < alpha else "green")
        assert g["light"] == expected
