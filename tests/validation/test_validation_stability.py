"""Grade PSI and per-feature CSI from the summed counts equal the formula on the pooled
rows' counts (same public grids)."""

from __future__ import annotations

import numpy as np
import pytest

from fl_credit.credit.psi import coarsen
from tests.validation import pooled_reference as ref

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = dict(rtol=1e-9, atol=1e-9)


def test_grade_psi_equals_the_pooled_rows(run) -> None:
    grades = len(run.stored["scale_edges"]) + 1
    val = np.bincount(run.grade["validation"], minlength=grades).astype(float)
    test = np.bincount(run.grade["test"], minlength=grades).astype(float)
    np.testing.assert_allclose(run.results["psi_grades"], ref.psi_formula(val, test), **TOL)


def test_feature_csi_equals_the_pooled_rows(run) -> None:
    bins = run.stored["psi_bins"]
    for j, name in enumerate(run.stored["feature_names"]):
        edges = np.r_[-np.inf, run.stored["inner_edges"][j], np.inf]
        val = np.histogram(run.x["validation"][:, j], bins=edges)[0].astype(float)
        test = np.histogram(run.x["test"][:, j], bins=edges)[0].astype(float)
        groups = coarsen(val, bins)  # the deciles of the validation rows
        expected = ref.psi_formula(np.bincount(groups, val), np.bincount(groups, test))
        np.testing.assert_allclose(run.results["csi"][name], expected, **TOL, err_msg=name)
