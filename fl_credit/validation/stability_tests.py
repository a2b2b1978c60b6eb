"""Stability: PSI of the grade distribution and CSI of every feature, validation against test.

The counts are the summed per-grade and per-fine-bin counts; the PSI is
:func:`fl_credit.credit.psi.psi` (``sum (a - e) ln(a / e)`` over smoothed shares) and the CSI of a
feature the same on its fine grid coarsened into deciles of the validation rows
(:func:`fl_credit.credit.psi.coarse_psi`).
"""

from __future__ import annotations

import numpy as np

from fl_credit.credit.psi import coarse_psi, psi


def grade_psi(reference: np.ndarray, actual: np.ndarray) -> float:
    """PSI of the grade distribution."""
    return psi(reference, actual)


def feature_csi(
    names: list[str], reference: list[np.ndarray], actual: list[np.ndarray], bins: int
) -> dict[str, float]:
    """CSI of every feature (fine-grid counts of the reference and actual rows)."""
    return {
        name: coarse_psi(r, a, bins)[0] for name, r, a in zip(names, reference, actual, strict=True)
    }
