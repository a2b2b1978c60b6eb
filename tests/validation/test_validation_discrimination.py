"""AUC on the master scale from per-grade counts, DeLong's standard error and the ECB's AUC
test equal the pooled rows' (scikit-learn AUC, pairwise DeLong)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.validation import pooled_reference as ref

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = dict(rtol=1e-9, atol=1e-9)


def test_auc_and_its_standard_error_equal_the_pooled_rows(run) -> None:
    auc = run.results["auc"]
    current, se = ref.auc_delong(run.y["test"], run.grade["test"].astype(float))
    initial, se_initial = ref.auc_delong(run.y["validation"], run.grade["validation"].astype(float))
    np.testing.assert_allclose([auc["current"], auc["current_se"]], [current, se], **TOL)
    np.testing.assert_allclose([auc["initial"], auc["initial_se"]], [initial, se_initial], **TOL)
    np.testing.assert_allclose(auc["p"], ref.ecb_auc_p(initial, current, se), **TOL)
    assert 0.6 < auc["current"] < 0.95
