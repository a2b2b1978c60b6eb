"""The comparison table printed at the end of a run."""

from __future__ import annotations

HEADER_TAIL = "   default recall / precision @ threshold"
UNRELIABLE_RECALL_SD = 0.1
MIN_LABEL = 28
GBM_LABELS = (
    "federated gbm",
    "pooled gbm (same bins)",
    "sklearn HistGB (pooled, same bins)",
)
LR_LABELS = {"pooled": "LR pooled (= federated Newton)", "reference": "LR sklearn (pooled)"}


def _row(name: str, m: dict | None, width: int) -> str:
    if m is None:
        return f"{name:<{width}} {'(could not train)':>20}"
    lo, hi = m["auc_ci"]
    ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else ""
    at = m.get("at_val_threshold", {})
    rec = at.get("default", {}).get("recall", float("nan"))
    prec = at.get("default", {}).get("precision", float("nan"))
    return (
        f"{name:<{width}} {m['auc']:.4f} {ci:<16} {m['ks']:.4f} {m['gini']:.4f} {m['brier']:.4f}"
        f" {m.get('mean_pd', float('nan')):.4f}  {m.get('ece', float('nan')):.4f}"
        f" {_rounds(m.get('training', {})):>6} {at.get('threshold', float('nan')):>9.4f}"
        f"   {rec:.3f} / {prec:.3f}"
    )


def _rounds(training: dict) -> str:
    rounds = training.get("rounds")
    if rounds is None:
        return "-"
    return f"{rounds}" if training.get("converged") else f"{rounds}*"


def is_dp_run(metrics: dict) -> bool:
    """True when the run's models trained with differential privacy."""
    mode = str((metrics.get("config") or {}).get("dp") or "off").lower()
    return mode not in ("off", "none", "false")


def comparison_table(metrics: dict) -> str:
    """Federated vs centralized vs sklearn reference vs each bank alone, on the test set.

    In a DP run the scikit-learn reference is the one model trained without DP, and its row
    says so; the federated row is the release at the run's epsilon, and the pooled and
    bank-alone rows say they are not private (counterfactuals kept in ``not_private/``).
    """
    dp = is_dp_run(metrics)
    reference = "sklearn reference (pooled" + (", not DP)" if dp else ")")
    federated, hidden = "federated", ""
    if dp and (metrics.get("config") or {}).get("private") is False:
        federated = "federated (DP-SGD without noise; not private)"
    elif dp:  # what each row spends: the release, or a counterfactual DP does not cover
        epsilon = (metrics.get("config") or {}).get("dp_epsilon")
        federated = f"federated (released, epsilon {epsilon:g} per bank)"
        hidden = "; not private"
    labels = (federated, f"centralized (pooled rows{hidden})", reference)
    if (metrics.get("config") or {}).get("model") == "gbm":
        labels = GBM_LABELS
    rows = [
        (labels[0], metrics["federated"]),
        (labels[1], metrics["centralized"]),
        (labels[2], metrics["reference"]),
    ]
    for name, m in metrics["local"].items():
        rows.append((f"{name} alone ({metrics['banks'][name]['rows']} rows{hidden})", m))
    if metrics.get("gbm_pooled_with_floors"):
        rows.append(("pooled gbm, banks' floors", metrics["gbm_pooled_with_floors"]))
    for name, m in (metrics.get("lr") or {}).items():
        rows.append((LR_LABELS.get(name, f"LR {name}"), m))
    width = max(MIN_LABEL, *(len(label) for label, _ in rows))
    header = (
        f"{'model':<{width}} {'AUC':<6} {'95% CI':<16} {'KS':<6} {'Gini':<6} {'Brier':<6}"
        f" {'mean PD':<7} {'ECE':<6} {'rounds':>6} {'threshold':>9}" + HEADER_TAIL
    )
    lines = [header, "-" * len(header)]
    lines.extend(_row(label, m, width) for label, m in rows)
    lines.append(_calibration_note(metrics["federated"]))
    note = threshold_note(metrics["federated"])
    if note:
        lines.append(note)
    lines.extend(_footer(metrics))
    return "\n".join(lines)


def threshold_note(fed: dict) -> str:
    """Under DP: how far the federated cut-off can be trusted, and a warning when it flags
    fewer than the stated share of validation defaults ("" without a DP cut-off report)."""
    from fl_credit.credit.thresholds import MIN_FLAGGED_SHARE

    report = fed.get("threshold_validation")
    if not report:
        return ""
    line = (
        f"DP cut-off {report['threshold']:.4f} from {report['bins']} noised logit bins over "
        f"[{report['span_logit'][0]:.2f}, {report['span_logit'][1]:.2f}] (count noise sd "
        f"{report['count_sd']:.1f}): estimated validation recall "
        f"{report['validation_recall']:.2f} +- {report['recall_sd']:.2f}"
    )
    if report["recall_sd"] > UNRELIABLE_RECALL_SD:
        line += "; the noise leaves this cut-off unreliable"
    if report["flags_too_few"]:
        line += (
            f"; WARNING: it flags fewer than {MIN_FLAGGED_SHARE:.0%} of validation defaults, "
            "choose a cut-off from the score distribution instead"
        )
    return line


def _calibration_note(fed: dict) -> str:
    """Base rate, the base-rate predictor's Brier and how the PDs were calibrated."""
    training, check = fed.get("training", {}), fed.get("calibration_validation") or {}
    correction = training.get("intercept_correction", 0.0)
    how = f"prior-corrected (intercept - {correction:.4f})" if correction else "not corrected"
    lines = [
        f"base rate (test): {fed.get('base_rate', float('nan')):.4f}, Brier of always "
        f"predicting it {fed.get('brier_base_rate', float('nan')):.4f}; PDs {how}; ECE on "
        "test rows",
        "threshold: the PD cut-off maximising TPR - FPR on validation rows; rounds: federated "
        "rounds, optimiser iterations for the others; * = train.tol not reached",
    ]
    if check:
        lines.append(
            f"federated calibration on the banks' validation rows (summed bins): "
            f"ECE {check['ece']:.4f}, mean PD {check['mean_pd']:.4f}, "
            f"default rate {check['base_rate']:.4f}"
        )
    return "\n".join(lines)


def _footer(metrics: dict) -> list[str]:
    """Notes under the table: how the rounds went, and a failure if the model did not train."""
    rounds = metrics.get("rounds")
    if not rounds:
        return []
    lines = [""]
    if metrics.get("protection"):
        lines.append(metrics["protection"])
    lines.extend(_privacy_lines(metrics.get("privacy_summary") or {}))
    lines.append(f"federated rounds: {rounds['applied']} applied")
    if rounds.get("skipped"):
        lines[-1] += f", {len(rounds['skipped'])} skipped (rounds {rounds['skipped']})"
    if rounds.get("converged_round"):
        lines[-1] += f", converged in round {rounds['converged_round']}"
    lines.extend(_boosting_lines(metrics.get("boosting"), metrics.get("gbm_versus_pooled") or {}))
    if rounds.get("failure"):
        lines.append(f"RUN FAILED: {rounds['failure']}")
    return lines


def dropped_columns(dropped: dict[str, str]) -> str:
    """Columns removed while loading the data, with the reason for each."""
    if not dropped:
        return "columns dropped while loading: none"
    width = max(len(c) for c in dropped)
    lines = [f"columns dropped while loading ({len(dropped)}):"]
    lines.extend(f"  {col:<{width}}  {reason}" for col, reason in dropped.items())
    return "\n".join(lines)


def _privacy_lines(summary: dict) -> list[str]:
    """The composed epsilon the released model cost each bank, and what it covers."""
    if summary.get("mode", "off") == "off" or summary.get("epsilon_per_bank") is None:
        return []
    if summary.get("level") == "none":
        return [summary["released"]]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in summary["epsilon_alone_by_release"].items())
    delta = summary.get("delta")
    delta_text = f", delta {delta:.0e}" if delta else ""
    return [
        f"DP ({summary['level']}-level): the released federated model cost each bank epsilon "
        f"{summary['epsilon_per_bank']:.2f} of {summary['target_epsilon']:g}{delta_text}, "
        f"composed over: {parts} (each alone)",
        "centralized and bank-alone rows are counterfactual references (the same borrowers "
        "trained on again; not released)",
    ]


def _boosting_lines(boosting: dict | None, pooled: dict) -> list[str]:
    """``model=gbm``: trees kept, cost, and how the federated trees compare with the pooled
    (``pooled``: the run's ``gbm_versus_pooled``)."""
    if not boosting:
        return []
    versus = pooled.get("versus_pooled") or {}
    diff = versus.get("max_value_difference")
    floors = pooled.get("versus_pooled_with_floors") or {}
    floors_diff = floors.get("max_value_difference")
    why = (
        "DP: no validation loss released, every tree kept"
        if boosting.get("noised")
        else "federated validation loss"
    )
    noise = " (DP-noised sums: not expected to equal)" if boosting.get("noised") else ""
    return [
        f"boosting: {boosting['trees_kept']} of {boosting['trees_grown']} trees kept "
        f"({why}), {boosting['exchanges']} exchanges "
        f"({boosting['exchanges_per_tree']:.1f} per tree), {boosting['seconds_per_tree']:.2f} s "
        "per tree",
        f"federated vs pooled trees on the same bins: splits equal {versus.get('splits_equal')}"
        + (f", largest node-value difference {diff:.1e}" if diff is not None else "")
        + (
            f" ({boosting['withheld_nodes']} nodes withheld by the banks' own floors)"
            if boosting.get("withheld_nodes")
            else ""
        )
        + noise,
        f"federated vs pooled with the banks' floors: splits equal {floors.get('splits_equal')}"
        + (f", largest node-value difference {floors_diff:.1e}" if floors_diff is not None else ""),
    ]
