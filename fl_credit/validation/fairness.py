"""Fairness and harm by group, from the same summed per-population counts.

For every level of a grouping (a population), with ``n`` rows, ``D`` defaults, ``A`` rows
approved (PD below the decision threshold) and ``A_D`` defaults among them:

- approval rate ``A / n``; adverse impact ratio: that rate over the grouping's highest
  (the four-fifths rule flags a ratio below 0.8);
- true positive rate (defaults declined) ``(D - A_D) / D`` and false positive rate (repaid
  loans declined: good borrowers refused) ``(n - A - D + A_D) / (n - D)``, with their gaps
  to all rows;
- calibration: observed default rate over mean PD (O/E; above 1 means PDs too low, below 1
  too high, i.e. the group is charged for risk it does not have) and Hosmer-Lemeshow over
  the grades.
"""

from __future__ import annotations

import numpy as np

from fl_credit.validation.calibration_tests import grade_pd, hosmer_lemeshow
from fl_credit.validation.grade_counts import PopulationCounts

FOUR_FIFTHS = 0.8


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def group_rates(c: PopulationCounts) -> dict[str, float]:
    """Approval rate, TPR, FPR, default rate, mean PD, O/E and HL p-value of one population."""
    n, d = c.total, float(c.defaults.sum())
    declined_defaults = d - c.approved_defaults
    declined_repaid = n - c.approved - declined_defaults
    _, _, hl_p = hosmer_lemeshow(c.n, c.defaults, grade_pd(c.n, c.pd_sum))
    return {
        "rows": n,
        "defaults": d,
        "approval_rate": _ratio(c.approved, n),
        "tpr": _ratio(declined_defaults, d),
        "fpr": _ratio(declined_repaid, n - d),
        "default_rate": _ratio(d, n),
        "mean_pd": _ratio(float(c.pd_sum.sum()), n),
        "observed_over_expected": _ratio(d, float(c.pd_sum.sum())),
        "hl_p": hl_p,
    }


def fairness_table(
    counts: dict[str, PopulationCounts], groupings: dict[str, list[str]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Rates of every population by grouping, with the adverse impact ratio and the gaps."""
    overall = group_rates(counts["all"])
    out = {}
    for grouping, names in groupings.items():
        rates = {name: group_rates(counts[name]) for name in names}
        best = max(
            (r["approval_rate"] for r in rates.values() if np.isfinite(r["approval_rate"])),
            default=float("nan"),
        )
        for r in rates.values():
            r["adverse_impact_ratio"] = _ratio(r["approval_rate"], best)
            r["tpr_gap"] = r["tpr"] - overall["tpr"]
            r["fpr_gap"] = r["fpr"] - overall["fpr"]
        out[grouping] = rates
    return out
