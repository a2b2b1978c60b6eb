"""``validation.md`` of a run folder: a one-screen traffic-light summary, the tables and the
figures, from ``validation_counts.json`` (and ``model.pt`` for the monotone check) alone.

Also writes ``validation.json`` (every statistic, and under DP each one's noise spread).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from fl_credit.credit.plotting import save_png, write_text
from fl_credit.credit.psi import stability
from fl_credit.validation import figures
from fl_credit.validation.analysis import analyse
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.monotone import DEFAULT_ORDINAL, parse_specs, violations
from fl_credit.validation.noise import noise_effects, uninformative
from fl_credit.validation.query import COUNTS_FILE

REPORT = "validation.md"
RESULTS = "validation.json"
CSI_ROWS = 10


def _f(value, digits: int = 3) -> str:
    if isinstance(value, float | int) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "–"


def _pm(value, effects: dict, path: str, digits: int = 3) -> str:
    """``value`` with its noise spread under DP (``0.123 ± 0.010``)."""
    text = _f(value, digits)
    sd = (effects.get("std") or {}).get(path) if effects else None
    return f"{text} ± {_f(sd, digits)}" if sd is not None and text != "–" else text


def _light(light: str, effects: dict, path: str) -> str:
    text = {"green": "🟢 green", "yellow": "🟡 yellow", "red": "🔴 red"}.get(light, light)
    if not uninformative(effects, path):
        return text
    if path in effects["noise_dominated"]:
        return f"{text} (uninformative: noise above the counts' sampling variation)"
    return f"{text} (uninformative: noise flips it in {effects['flips'][path]:.0%} of draws)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*out, *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def miscalibrated(results: dict, effects: dict) -> tuple[list[str], list[str], list[str]]:
    """Grades whose PD is too low (yellow or red), grades whose PD is too high, and grades
    whose verdict the DP noise decides (left out of the first two)."""
    grades = results["grades"]
    noisy = {k for k in range(len(grades)) if uninformative(effects, f"grades/{k}/light")}
    rest = [g for k, g in enumerate(grades) if k not in noisy]
    low = [f"G{g['grade']} ({g['light']})" for g in rest if g["light"] in ("yellow", "red")]
    high = [f"G{g['grade']}" for g in rest if g["pd_too_high"]]
    return low, high, [f"G{k + 1}" for k in sorted(noisy)]


def worst_groups(results: dict) -> list[str]:
    """Per grouping, the group with the lowest adverse impact ratio and the one with the
    largest false positive rate gap (good borrowers declined most often)."""
    lines = []
    for grouping, rates in results["fairness"].items():
        usable = {k: r for k, r in rates.items() if r["rows"] > 0}
        if len(usable) < 2:
            continue
        air = min(usable, key=lambda k: _key(usable[k]["adverse_impact_ratio"], 1.0))
        fpr = max(usable, key=lambda k: _key(usable[k]["fpr_gap"], -1.0))
        oe = min(usable, key=lambda k: _key(usable[k]["observed_over_expected"], 1e9))
        r = usable[air]
        flag = " (below the four-fifths rule)" if r["adverse_impact_ratio"] < 0.8 else ""
        lines.append(
            f"- **{grouping}**: lowest approval `{air}` (adverse impact ratio "
            f"{_f(r['adverse_impact_ratio'])}{flag}); most good borrowers declined `{fpr}` "
            f"(false positive rate {_f(usable[fpr]['fpr'])}, {_f(usable[fpr]['fpr_gap'], 3)} "
            f"above all rows); PDs most overstated for `{oe}` (observed / expected "
            f"{_f(usable[oe]['observed_over_expected'])})."
        )
    return lines


def _key(value: float, missing: float) -> float:
    return value if isinstance(value, float) and math.isfinite(value) else missing


def summary_section(results: dict, effects: dict, stored: dict) -> list[str]:
    """The one-screen traffic-light summary."""
    rows = []
    for g in results["grades"]:
        path = f"grades/{g['grade'] - 1}/light"
        rows.append(
            [
                f"Jeffreys, grade G{g['grade']}",
                _pm(g["jeffreys_p"], effects, f"grades/{g['grade'] - 1}/jeffreys_p"),
                _light(g["light"], effects, path),
            ]
        )
    for name, key, stat in (
        ("Hosmer-Lemeshow (all grades)", "hosmer_lemeshow", "p"),
        ("Spiegelhalter (all grades)", "spiegelhalter", "p"),
        ("Herfindahl concentration vs development", "herfindahl", "p"),
        ("AUC vs initial (ECB)", "auc", "p"),
    ):
        rows.append(
            [
                name,
                _pm(results[key][stat], effects, f"{key}/{stat}"),
                _light(results[key]["light"], effects, f"{key}/light"),
            ]
        )
    low, high, noisy = miscalibrated(results, effects)
    psi = results["psi_grades"]
    worst_csi = sorted(results["csi"].items(), key=lambda kv: -kv[1])[:3] or [
        ("(none)", float("nan"))
    ]
    lines = [
        "## Summary",
        "",
        *_table(["test", "p-value", "light"], rows),
        f"- **Miscalibrated grades**: PD too low in {', '.join(low) or 'none'}; PD too high "
        f"(observed rate significantly below) in {', '.join(high) or 'none'}"
        + (f"; undecided under DP noise: {', '.join(noisy)}." if noisy else "."),
        f"- **AUC**: {_pm(results['auc']['current'], effects, 'auc/current')} on the test rows "
        f"against {_pm(results['auc']['initial'], effects, 'auc/initial')} on the development "
        "(validation) rows, on the master scale.",
        f"- **Stability**: grade PSI {_pm(psi, effects, 'psi_grades')} ({stability(psi)}); "
        "largest CSI " + ", ".join(f"{k} {_f(v)}" for k, v in worst_csi) + ".",
    ]
    if "migration" in results:
        m = results["migration"]
        lines.append(
            f"- **Migration** against {stored.get('second_model_name', 'the second model')}: "
            f"{m['same_grade']:.1%} in the same grade, {m['within_one']:.1%} within one notch."
        )
    groups = worst_groups(results)
    if groups:
        caveat = " (DP: read each rate with its noise in the tables below)" if effects else ""
        lines += [f"- **Groups treated worse**{caveat}:", *("  " + g for g in groups)]
    return [*lines, ""]


def grades_section(results: dict, effects: dict, scale: MasterScale) -> list[str]:
    """Per-grade table on the test rows."""
    labels = scale.labels()
    rows = []
    for k, g in enumerate(results["grades"]):
        p = f"grades/{k}/"
        rows.append(
            [
                labels[k],
                _pm(g["rows"], effects, p + "rows", 0),
                _pm(g["defaults"], effects, p + "defaults", 0),
                _pm(g["pd"], effects, p + "pd", 4),
                _pm(g["default_rate"], effects, p + "default_rate", 4),
                f"[{_f(g['jeffreys_low'], 4)}, {_f(g['jeffreys_high'], 4)}]",
                _pm(g["binomial_p"], effects, p + "binomial_p"),
                _pm(g["jeffreys_p"], effects, p + "jeffreys_p"),
                _light(g["light"], effects, p + "light"),
            ]
        )
    header = [
        "grade (PD band)",
        "rows",
        "defaults",
        "mean PD",
        "default rate",
        "Jeffreys 95%",
        "binomial p",
        "Jeffreys p",
        "light",
    ]
    intro = (
        "Test rows of all banks, graded by each bank on its own rows; counts summed through "
        "secure aggregation. One-sided tests of H0 'the PD is not too low' (ECB 2019, "
        "2.5.3.1): binomial `P(X >= d)`, Jeffreys `Beta(d + 1/2, n - d + 1/2).cdf(PD)`. Light: "
        "red below the red level, yellow below alpha."
    )
    return [
        "## Master scale and per-grade tests",
        "",
        intro,
        "",
        *_table(header, rows),
        "![Grade PDs against observed default rates](validation_grades.png)",
        "",
    ]


def overall_section(results: dict, effects: dict) -> list[str]:
    """Hosmer-Lemeshow, Spiegelhalter, Herfindahl and AUC."""
    hl, sp, hf, auc = (
        results[k] for k in ("hosmer_lemeshow", "spiegelhalter", "herfindahl", "auc")
    )
    rows = [
        [
            "Hosmer-Lemeshow",
            f"chi2 {_pm(hl['statistic'], effects, 'hosmer_lemeshow/statistic', 2)}, "
            f"{hl['dof']} dof",
            _pm(hl["p"], effects, "hosmer_lemeshow/p"),
            _light(hl["light"], effects, "hosmer_lemeshow/light"),
        ],
        [
            "Spiegelhalter",
            f"z {_pm(sp['z'], effects, 'spiegelhalter/z', 2)}",
            _pm(sp["p"], effects, "spiegelhalter/p"),
            _light(sp["light"], effects, "spiegelhalter/light"),
        ],
        [
            "Herfindahl (ECB)",
            f"HI {_pm(hf['index'], effects, 'herfindahl/index')} (development "
            f"{_f(hf['index_development'])}), z {_pm(hf['z'], effects, 'herfindahl/z', 2)}",
            _pm(hf["p"], effects, "herfindahl/p"),
            _light(hf["light"], effects, "herfindahl/light"),
        ],
        [
            "AUC current vs initial (ECB)",
            f"{_f(auc['current'])} (se {_f(auc['current_se'])}) vs {_f(auc['initial'])}, "
            f"S {_pm(auc['s'], effects, 'auc/s', 2)}",
            _pm(auc["p"], effects, "auc/p"),
            _light(auc["light"], effects, "auc/light"),
        ],
    ]
    intro = (
        "Hosmer-Lemeshow with one degree of freedom per grade; Spiegelhalter with every row "
        "at its grade's PD; Herfindahl and AUC compare the test rows (current) with the "
        "validation rows (development sample, initial); the AUC is on the master scale with "
        "DeLong's standard error from the per-grade counts."
    )
    return [
        "## Overall calibration, concentration and discrimination",
        "",
        intro,
        "",
        *_table(["test", "statistic", "p-value", "light"], rows),
    ]


def stability_section(results: dict, effects: dict, stored: dict) -> list[str]:
    """Grade PSI and the largest feature CSIs."""
    csi = sorted(results["csi"].items(), key=lambda kv: -kv[1])[:CSI_ROWS]
    rows = [[name, _pm(v, effects, f"csi/{name}", 4), stability(v)] for name, v in csi]
    if not rows:
        return [
            "## Stability (PSI, validation rows against test rows)",
            "",
            f"Grade PSI {_pm(results['psi_grades'], effects, 'psi_grades', 4)} "
            f"({stability(results['psi_grades'])}). No CSI under DP: the feature counts are "
            "not released (they would more than double the noise on every count).",
            "",
        ]
    return [
        "## Stability (PSI and CSI, validation rows against test rows)",
        "",
        f"Grade PSI {_pm(results['psi_grades'], effects, 'psi_grades', 4)} "
        f"({stability(results['psi_grades'])}). Largest {len(rows)} characteristic stability "
        f"indices ({stored['psi_bins']} bins at deciles of the validation rows):",
        "",
        *_table(["feature", "CSI", "reading"], rows),
    ]


def migration_section(results: dict, stored: dict) -> list[str]:
    """The migration matrix (absent under DP)."""
    if "migration" not in results:
        return [
            "## Migration",
            "",
            "No migration matrix: under DP the second model (each "
            "bank's own model) is left out, since its counts would not have a bounded "
            "sensitivity.",
            "",
        ]
    m = results["migration"]
    g = len(m["matrix"])
    rows = [[f"G{i + 1}", *(f"{v:.0f}" for v in row)] for i, row in enumerate(m["matrix"])]
    other = stored.get("second_model_name", "the second model")
    auc = results.get("second_model_auc", {})
    return [
        "## Migration",
        "",
        f"Rows: federated grade; columns: grade by {other}, on the test rows. Same grade "
        f"{m['same_grade']:.1%}, within one notch {m['within_one']:.1%}, mean |notches| "
        f"{m['mean_abs_notches']:.2f}; the federated model grades {m['federated_worse']:.1%} "
        f"worse and {m['federated_better']:.1%} better. AUC of {other} on the master scale: "
        f"{_f(auc.get('auc'))} (se {_f(auc.get('se'))}).",
        "",
        *_table(["federated \\ other", *(f"G{j + 1}" for j in range(g))], rows),
        "![Migration heat map](validation_migration.png)",
        "",
    ]


def fairness_section(results: dict, effects: dict, threshold: float) -> list[str]:
    """Approval, adverse impact, TPR/FPR gaps and calibration per group."""
    lines = [
        "## Fairness and harm by group (test rows)",
        "",
        f"Approved: PD below the decision threshold {threshold:.4f}. Adverse impact ratio: the "
        "group's approval rate over the best group's (below 0.8 fails the four-fifths rule). "
        "TPR: defaults declined; FPR: repaid loans declined (good borrowers refused); gaps "
        "against all rows. O/E: observed over expected defaults (below 1: the group's PDs are "
        "too high, it is charged for risk it does not carry); HL p: Hosmer-Lemeshow within "
        "the group.",
        "",
    ]
    header = [
        "group",
        "rows",
        "approval",
        "AIR",
        "TPR (gap)",
        "FPR (gap)",
        "default rate",
        "mean PD",
        "O/E",
        "HL p",
    ]
    for grouping, rates in results["fairness"].items():
        rows = []
        for name, r in rates.items():
            p = f"fairness/{grouping}/{name}/"
            rows.append(
                [
                    name,
                    _pm(r["rows"], effects, p + "rows", 0),
                    _pm(r["approval_rate"], effects, p + "approval_rate"),
                    _pm(r["adverse_impact_ratio"], effects, p + "adverse_impact_ratio"),
                    f"{_f(r['tpr'])} ({_f(r['tpr_gap'])})",
                    f"{_f(r['fpr'])} ({_f(r['fpr_gap'])})",
                    _pm(r["default_rate"], effects, p + "default_rate", 4),
                    _f(r["mean_pd"], 4),
                    _pm(r["observed_over_expected"], effects, p + "observed_over_expected"),
                    _pm(r["hl_p"], effects, p + "hl_p"),
                ]
            )
        lines += [f"### {grouping}", "", *_table(header, rows)]
    return [*lines, "![Group gaps](validation_groups.png)", ""]


def monotone_section(run_dir: Path, stored: dict) -> list[str]:
    """Every adjacent pair of ordered levels out of order in the federated model."""
    model = run_dir / "model.pt"
    if not model.is_file():
        return []
    import torch

    state = torch.load(model, weights_only=True)
    names = list(stored["feature_names"])
    specs = monotone_specs(run_dir, names)
    if "woe_edges" in state or "linear.weight" not in state or not specs:
        return []  # WoE and tree models order their effects by construction
    weights = state["linear.weight"].numpy().ravel().astype(np.float64)
    std = state["scaler_std"].numpy().astype(np.float64)
    found = violations(weights, parse_specs(specs, names), std, names)
    intro = (
        f"Ordered characteristics checked: {', '.join(specs)} (effect of a level = its "
        "weight over the column's standard deviation, on the log-odds). "
    )
    if not found:
        return ["## Monotone effects", "", intro + "No violation.", ""]
    rows = [
        [
            v["characteristic"],
            f"{v['lower']} → {v['higher']}",
            _f(v["effect_lower"]),
            _f(v["effect_higher"]),
            v["expected"],
        ]
        for v in found
    ]
    return [
        "## Monotone effects",
        "",
        intro + f"{len(found)} violation(s):",
        "",
        *_table(["characteristic", "levels", "effect", "next effect", "expected"], rows),
    ]


def monotone_specs(run_dir: Path, names: list[str]) -> list[str]:
    """The run's ``train.monotone`` or, without it, the ordinal characteristics present."""
    config = run_dir / "config_resolved.yaml"
    specs = []
    if config.is_file():
        specs = list(
            ((yaml.safe_load(config.read_text()) or {}).get("train") or {}).get("monotone") or []
        )
    if specs:
        return specs
    return [c for c in DEFAULT_ORDINAL if any(n.startswith(f"{c}=") for n in names)]


def dp_section(stored: dict, effects: dict) -> list[str]:
    """How the counts were protected and which verdicts noise decides."""
    where = "secure aggregation" if stored.get("secure") else "sums in the clear"
    lines = [
        "## Provenance",
        "",
        f"Counts summed over {stored['banks_summed']} banks by {where}; no row left a bank.",
    ]
    if stored.get("noise_std", 0) > 0:
        flipped = sorted(k for k in effects["flips"] if uninformative(effects, k))
        lines += [
            f"Under DP (`dp={stored['dp']}`) the summed counts carry Gaussian noise of standard "
            f"deviation {stored['noise_std']:.3g} per count (L2 sensitivity "
            f"{stored['sensitivity']:.3g}, budget share `dp.budget.grades`). Every figure "
            f"above shows `value ± noise spread` over {effects['draws']} fresh noise draws.",
            "Verdicts the noise decides (uninformative tests): "
            + (", ".join(f"`{k}`" for k in flipped) or "none")
            + ".",
        ]
    return [*lines, ""]


def write_validation_report(run_dir: str | Path) -> list[Path]:
    """Write ``validation.md``, ``validation.json`` and the figures into ``run_dir``."""
    run_dir = Path(run_dir)
    stored = json.loads((run_dir / COUNTS_FILE).read_text())
    results = analyse(stored)
    effects = noise_effects(stored, results)
    scale = MasterScale(tuple(stored["scale_edges"]))
    written = [
        save_png(run_dir / "validation_grades.png", figures.grades_figure(results["grades"]))
    ]
    if "migration" in results:
        fig = figures.migration_figure(results["migration"]["matrix"], "each bank's own model")
        written.append(save_png(run_dir / "validation_migration.png", fig))
    written.append(
        save_png(run_dir / "validation_groups.png", figures.groups_figure(results["fairness"]))
    )
    lines = [f"# Validation report: {run_dir.resolve().name}", ""]
    lines += summary_section(results, effects, stored)
    lines += grades_section(results, effects, scale) + overall_section(results, effects)
    lines += stability_section(results, effects, stored) + migration_section(results, stored)
    lines += fairness_section(results, effects, stored["threshold"])
    lines += monotone_section(run_dir, stored) + dp_section(stored, effects)
    payload = {"results": results, "noise": effects}
    written.append(write_text(run_dir / RESULTS, json.dumps(payload, indent=1, default=float)))
    written.append(write_text(run_dir / REPORT, "\n".join(lines)))
    return written
