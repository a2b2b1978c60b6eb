"""Fairness by group from the secure per-group counts equals the pooled rows' rates."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.validation.settings import Population
from tests.validation import pooled_reference as ref

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = dict(rtol=1e-9, atol=1e-9)


def test_group_rates_equal_the_pooled_rows(run) -> None:
    fairness = run.results["fairness"]
    assert fairness, "both datasets have groupings (income bands, employment or home)"
    threshold = run.stored["threshold"]
    checked = 0
    for spec in run.stored["populations"][1:]:
        population = Population(**spec)
        members = population.members(run.x["test"])
        got = fairness[population.grouping][population.name]
        assert got["rows"] == members.sum()
        if members.sum() == 0 or run.y["test"][members].sum() == 0:
            continue
        expected = ref.fairness_rows(run.y["test"][members], run.pd["test"][members], threshold)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, **TOL, err_msg=f"{population.name} {key}")
        checked += 1
    assert checked >= 3


def test_adverse_impact_ratio_is_against_the_most_approved_group(run) -> None:
    for rates in run.results["fairness"].values():
        best = max(r["approval_rate"] for r in rates.values() if r["rows"] > 0)
        for r in rates.values():
            if r["rows"] > 0:
                np.testing.assert_allclose(r["adverse_impact_ratio"], r["approval_rate"] / best)
