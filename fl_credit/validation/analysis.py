"""Every validation statistic from the stored summed counts (``validation_counts.json``).

:func:`analyse` takes the counts file's content and returns a JSON-ready dict: per-grade
tests on the test rows, overall calibration, concentration, discrimination against the
development sample (the validation rows) and against the second model, stability,
migration and fairness. It reads nothing else: no row, no model.
"""

from __future__ import annotations

import numpy as np

from fl_credit.validation.calibration_tests import (
    binomial_p,
    grade_pd,
    hosmer_lemeshow,
    jeffreys_interval,
    jeffreys_p,
    spiegelhalter,
    traffic_light,
)
from fl_credit.validation.concentration_tests import herfindahl, herfindahl_test
from fl_credit.validation.discrimination_tests import auc_and_se, auc_test
from fl_credit.validation.fairness import fairness_table
from fl_credit.validation.grade_counts import Layout, PopulationCounts, SplitCounts, decode
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.migration import migration_summary
from fl_credit.validation.settings import Population
from fl_credit.validation.stability_tests import feature_csi, grade_psi


def layout_of(stored: dict) -> tuple[Layout, list[np.ndarray], MasterScale]:
    """The layout, feature grids and master scale recorded in the counts file."""
    populations = tuple(
        Population(p["name"], p["grouping"], int(p["column"]), float(p["low"]), float(p["high"]))
        for p in stored["populations"]
    )
    edges = [np.r_[-np.inf, np.asarray(e, dtype=np.float64), np.inf] for e in stored["inner_edges"]]
    scale = MasterScale(tuple(stored["scale_edges"]))
    layout = Layout(
        scale.grades,
        populations,
        tuple(len(e) - 1 for e in edges),
        float(stored.get("pd_scale", 1.0)),
    )
    return layout, edges, scale


def cleaned(counts: PopulationCounts) -> PopulationCounts:
    """Noised counts made consistent (post-processing): counts >= 0, defaults and PD sums
    at most the rows, approvals at most the rows and approved defaults at most both."""
    n = np.clip(counts.n, 0.0, None)
    d = np.clip(counts.defaults, 0.0, n)
    s = np.clip(counts.pd_sum, 0.0, n)
    total = float(n.sum())
    approved = float(np.clip(counts.approved, 0.0, total))
    approved_d = float(np.clip(counts.approved_defaults, 0.0, min(approved, float(d.sum()))))
    return PopulationCounts(n, d, s, approved, approved_d)


def grade_table(c: PopulationCounts, alpha: float, red: float) -> list[dict]:
    """Per-grade rows: counts, PD, default rate, binomial and Jeffreys tests, light."""
    pd = grade_pd(c.n, c.pd_sum)
    p_bin = binomial_p(c.n, c.defaults, pd)
    p_jef = jeffreys_p(c.n, c.defaults, pd)
    low, high = jeffreys_interval(c.n, c.defaults)
    rows = []
    for g in range(len(c.n)):
        n = float(c.n[g])
        rows.append(
            {
                "grade": g + 1,
                "rows": n,
                "defaults": float(c.defaults[g]),
                "pd": float(pd[g]),
                "default_rate": float(c.defaults[g] / n) if n > 0 else float("nan"),
                "jeffreys_low": float(low[g]),
                "jeffreys_high": float(high[g]),
                "binomial_p": float(p_bin[g]),
                "jeffreys_p": float(p_jef[g]),
                "light": traffic_light(float(p_jef[g]), alpha, red),
                "pd_too_high": bool(n > 0 and 1.0 - p_jef[g] < alpha),
            }
        )
    return rows


def groupings_of(layout: Layout) -> dict[str, list[str]]:
    """Population names by grouping (``all`` left out)."""
    out: dict[str, list[str]] = {}
    for p in layout.populations:
        if p.column >= 0:
            out.setdefault(p.grouping, []).append(p.name)
    return out


def analyse(stored: dict, vector: np.ndarray | None = None) -> dict:
    """Every statistic of the report from the counts file (``vector``: another draw of the
    summed counts, for the noise analysis; default the stored one)."""
    layout, edges, scale = layout_of(stored)
    vector = np.asarray(stored["vector"] if vector is None else vector, dtype=np.float64)
    splits = decode(vector, layout, edges)
    alpha, red = float(stored["alpha"]), float(stored["red"])
    test, development = splits["test"], splits["validation"]
    current = cleaned(test.populations["all"])
    initial = cleaned(development.populations["all"])
    pd = grade_pd(current.n, current.pd_sum)
    hl, dof, hl_p = hosmer_lemeshow(current.n, current.defaults, pd)
    z, sp_p = spiegelhalter(current.n, current.defaults, pd)
    hi, cv = herfindahl(current.n)
    hz, h_p = herfindahl_test(initial.n, current.n)
    auc_cur, se_cur = auc_and_se(current.defaults, current.n - current.defaults)
    auc_init, se_init = auc_and_se(initial.defaults, initial.n - initial.defaults)
    s, auc_p = auc_test(auc_init, auc_cur, se_cur)
    out = {
        "grades": grade_table(current, alpha, red),
        "grades_development": grade_table(initial, alpha, red),
        "hosmer_lemeshow": {
            "statistic": hl,
            "dof": dof,
            "p": hl_p,
            "light": traffic_light(hl_p, alpha, red),
        },
        "spiegelhalter": {"z": z, "p": sp_p, "light": traffic_light(sp_p, alpha, red)},
        "herfindahl": {
            "index": hi,
            "cv": cv,
            "index_development": herfindahl(initial.n)[0],
            "z": hz,
            "p": h_p,
            "light": traffic_light(h_p, alpha, red),
        },
        "auc": {
            "current": auc_cur,
            "current_se": se_cur,
            "initial": auc_init,
            "initial_se": se_init,
            "s": s,
            "p": auc_p,
            "light": traffic_light(auc_p, alpha, red),
        },
        "psi_grades": grade_psi(initial.n, current.n),
        "csi": feature_csi(
            list(stored["feature_names"]) if edges else [],
            development.features,
            test.features,
            int(stored["psi_bins"]),
        ),
        "fairness": fairness_table(
            {k: cleaned(v) for k, v in test.populations.items()}, groupings_of(layout)
        ),
    }
    out.update(second_model(test, stored))
    return out


def second_model(test: SplitCounts, stored: dict) -> dict:
    """The second model's AUC on the same rows and the migration matrix (empty when the
    run has none, e.g. under DP)."""
    if not stored.get("second_model"):
        return {}
    defaults = np.clip(test.other_defaults, 0.0, None)
    auc, se = auc_and_se(defaults, np.clip(test.other_n - defaults, 0.0, None))
    return {
        "second_model_auc": {"auc": auc, "se": se},
        "migration": {
            "matrix": np.clip(test.migration, 0.0, None).tolist(),
            **migration_summary(test.migration),
        },
    }
