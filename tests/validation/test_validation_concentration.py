"""Herfindahl index and the ECB concentration test from the summed grade counts equal
meliora's formulas on the pooled rows' grades."""

from __future__ import annotations

import numpy as np
import pytest

from tests.validation import pooled_reference as ref

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = dict(rtol=1e-9, atol=1e-9)


def test_herfindahl_and_its_test_equal_the_pooled_rows(run) -> None:
    grades = len(run.stored["scale_edges"]) + 1
    hi, cv = ref.herfindahl_cv(run.grade["test"], grades)
    got = run.results["herfindahl"]
    np.testing.assert_allclose([got["index"], got["cv"]], [hi, cv], **TOL)
    z = ref.herfindahl_z(run.grade["validation"], run.grade["test"], grades)
    np.testing.assert_allclose(got["z"], z, **TOL)
