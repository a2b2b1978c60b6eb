"""Write a finished run's folder, keeping what DP does not cover apart from the release.

Without DP the folder holds everything (``metrics.json``, ``scores.csv`` with every model,
``report.md``). Under DP (``dp=opacus`` or ``dp=central``) the top of the folder is the
private release: every value in it is either covered by the banks' accounted budget or
public.

- ``model.pt``, ``history.csv``: the federated model (DP-SGD or bank-level DP), its
  standardiser and cut-off from noised releases, its test metrics per round (the
  coordinator's own held-out rows);
- ``metrics.json``: the federated model's metrics, the privacy accounting, the settings;
- ``scores.csv``, ``reason_codes.csv``: the federated model's scores only;
- ``report.md`` and its figures, drawn from those files only.

Everything else goes into ``not_private/``, with a README saying that it must not leave the
consortium: the counterfactual models trained again on the same borrowers (pooled, each bank
alone, the scikit-learn reference; they use exact standardisers and thresholds), the banks'
exact row and default counts, the exact summed feature histograms and each bank's PSI. A
borrower's presence changes those values exactly (two runs that differ by one borrower give
its bin of every numeric feature), so ``epsilon`` says nothing about them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fl_credit.run import files as run_files

NOT_PRIVATE = "not_private"
COUNTERFACTUAL = (
    "centralized",
    "reference",
    "local",
    "banks",
    "privacy_local",
    "gbm_pooled_with_floors",
    "gbm_versus_pooled",
    "lr",
)
"""Top-level ``metrics.json`` sections that DP does not cover."""
EXACT_CREDIT = ("feature_histograms", "psi")
"""``credit`` entries computed from the banks' exact counts."""
README = f"""# {NOT_PRIVATE}/: not covered by differential privacy

This folder must not leave the consortium. Nothing here is covered by the run's epsilon: it
holds counterfactual models trained again on the same borrowers (pooled rows, each bank
alone, the scikit-learn reference, all with exact standardisers and validation
thresholds), the banks' exact row and default counts, the exact summed feature histograms
and each bank's PSI. Two runs that differ by one borrower differ here by that borrower
exactly.

`metrics.json` and `scores.csv` here are the full ones (release plus counterfactuals);
`report.md` compares every model. The private release is the folder above.
"""


def is_private_run(metrics: dict) -> bool:
    """True when the run's releases carry DP noise (the folder is then split).

    DP-SGD without noise (``dp.epsilon=no_noise``, ``config.private`` false) is not private:
    its folder is written whole, as without DP, and says so.
    """
    config = metrics.get("config") or {}
    if config.get("private") is False:
        return False
    return str(config.get("dp", "off")) not in ("off", "None", "none")


def split_metrics(metrics: dict) -> tuple[dict, dict]:
    """``(release, not_private)``: the DP or public part, and the sections DP does not cover.

    Parameters
    ----------
    metrics : dict
        A run's full metrics.

    Returns
    -------
    tuple of dict
        The release (with a ``not_private`` pointer) and the left-out sections.
    """
    release = {k: v for k, v in metrics.items() if k not in COUNTERFACTUAL}
    left = {k: metrics[k] for k in COUNTERFACTUAL if k in metrics}
    credit = dict(metrics.get("credit") or {})
    exact = {k: credit.pop(k) for k in EXACT_CREDIT if k in credit}
    release["credit"] = credit
    release["not_private"] = {
        "folder": NOT_PRIVATE,
        "holds": [*left, *(f"credit.{k}" for k in exact)],
        "note": "not covered by epsilon; must not leave the consortium",
    }
    return release, {**left, "credit": exact}


def full_metrics_path(run_dir: Path) -> Path:
    """The run's full metrics: ``not_private/metrics.json`` of a DP run, else ``metrics.json``
    (for the consortium's own comparisons, such as sweep summaries)."""
    hidden = Path(run_dir) / NOT_PRIVATE / run_files.METRICS
    return hidden if hidden.is_file() else Path(run_dir) / run_files.METRICS


def write_release(run_dir: Path, outcome, prepared, overrides: list[str]) -> dict:
    """Write the run's files into ``run_dir`` (see the module docstring).

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    outcome : fl_credit.run.experiment.ExperimentOutcome
        The finished experiment.
    prepared : fl_credit.data.prepare.Prepared
        Its data.
    overrides : list of str
        The command line's overrides (kept in ``metrics.json``).

    Returns
    -------
    dict
        The full metrics (release plus counterfactuals), for the operator's terminal.
    """
    from fl_credit.coordinator.summary import save_model
    from fl_credit.run.outputs import write_run_outputs

    run_dir = Path(run_dir)
    run_files.write_history(run_dir / run_files.HISTORY, outcome.history)
    save_model(run_dir / run_files.MODEL, outcome.federation)
    metrics = {**outcome.metrics, "overrides": overrides}
    if not is_private_run(metrics):
        run_files.write_json(run_dir / run_files.METRICS, metrics)
        write_run_outputs(run_dir, outcome, prepared)
        return metrics
    release, _ = split_metrics(metrics)
    hidden = run_dir / NOT_PRIVATE
    run_files.write_atomic(hidden / "README.md", README)
    run_files.write_json(hidden / run_files.METRICS, metrics)
    write_run_outputs(hidden, outcome, prepared)
    run_files.write_json(run_dir / run_files.METRICS, release)
    federated_only = dataclasses.replace(outcome, scores={"federated": outcome.scores["federated"]})
    write_run_outputs(run_dir, federated_only, prepared)
    return metrics
