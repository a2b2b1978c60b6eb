"""The comparison table printed at the end of a run."""

from __future__ import annotations


def _row(name: str, m: dict | None) -> str:
    if m is None:
        return f"{name:<28} {'(could not train)':>20}"
    lo, hi = m["auc_ci"]
    ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else ""
    at = m.get("at_val_threshold", {})
    rec = at.get("default", {}).get("recall", float("nan"))
    prec = at.get("default", {}).get("precision", float("nan"))
    return (
        f"{name:<28} {m['auc']:.4f} {ci:<16} {m['ks']:.4f} {m['gini']:.4f} {m['brier']:.4f}"
        f" {m.get('mean_pd', float('nan')):.4f}  {m.get('ece', float('nan')):.4f}"
        f" {_rounds(m.get('training', {})):>6} {at.get('threshold', float('nan')):>9.4f}"
        f"   {rec:.3f} / {prec:.3f}"
    )


def _rounds(training: dict) -> str:
    rounds = training.get("rounds")
    if rounds is None:
        return "-"
    return f"{rounds}" if training.get("converged") else f"{rounds}*"


def comparison_table(metrics: dict) -> str:
    """Federated vs centralized vs sklearn reference vs each bank alone, on the test set."""
    header = (
        f"{'model':<28} {'AUC':<6} {'95% CI':<16} {'KS':<6} {'Gini':<6} {'Brier':<6}"
        f" {'mean PD':<7} {'ECE':<6} {'rounds':>6} {'threshold':>9}"
        "   default recall / precision @ threshold"
    )
    lines = [header, "-" * len(header)]
    lines.append(_row("federated", metrics["federated"]))
    lines.append(_row("centralized (pooled rows)", metrics["centralized"]))
    lines.append(_row("sklearn reference (pooled)", metrics["reference"]))
    for name, m in metrics["local"].items():
        info = metrics["banks"][name]
        label = f"{name} alone ({info['rows']} rows)"
        lines.append(_row(label, m))
    lines.append(_calibration_note(metrics["federated"]))
    lines.extend(_footer(metrics))
    return "\n".join(lines)


def _calibration_note(fed: dict) -> str:
    """Base rate, the base-rate predictor's Brier and how the PDs were calibrated."""
    training, check = fed.get("training", {}), fed.get("calibration_validation") or {}
    lines = [
        f"base rate (test): {fed.get('base_rate', float('nan')):.4f}, Brier of always "
        f"predicting it {fed.get('brier_base_rate', float('nan')):.4f}; PDs calibrated "
        f"(intercept - {training.get('intercept_correction', 0.0):.4f}); ECE on test rows",
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
    lines.append(f"federated rounds: {rounds['applied']} applied")
    if rounds.get("skipped"):
        lines[-1] += f", {len(rounds['skipped'])} skipped (rounds {rounds['skipped']})"
    if rounds.get("converged_round"):
        lines[-1] += f", converged in round {rounds['converged_round']}"
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
