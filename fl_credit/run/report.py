"""``report.md`` of one run folder, with its PNG figures, built from the folder's files alone.

Reads ``metrics.json`` and ``scores.csv`` (``history.csv`` when present) and writes
``report.md`` plus ``roc.png``, ``ks.png``, ``calibration.png``, ``gains.png``,
``score_distribution.png`` and, when the run has per-bank PSI, ``psi.png``. A deployed run's
folder, which scores only the federated model, gets the same report with one model.

Usage::

    python -m fl_credit.run.report RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from fl_credit.credit import plots as credit_plots
from fl_credit.credit.plotting import save_png, write_text
from fl_credit.credit.psi import stability
from fl_credit.credit.scores_file import SCORES, read_scores

log = logging.getLogger(__name__)

REPORT = "report.md"
NO_FIGURES = (
    "No figures: the coordinator holds no test rows, and the metrics above come from the "
    "banks' federated evaluation on their own test rows. Give the ServerApp held-out rows "
    "(run config `test-path`) for figures and per-borrower scores."
)
FIGURES = ("roc.png", "ks.png", "calibration.png", "gains.png", "score_distribution.png")
PSI_FIGURE = "psi.png"
ODDS_ROWS = 15


def model_metrics(metrics: dict) -> dict[str, dict]:
    """Each scored model's metrics under its ``scores.csv`` column name."""
    out = {name: metrics.get(name) for name in ("federated", "centralized", "reference")}
    out = {name: m for name, m in out.items() if isinstance(m, dict)}
    for bank, m in (metrics.get("local") or {}).items():
        if isinstance(m, dict):
            out[f"local.{bank}"] = m
    for name, m in (metrics.get("lr") or {}).items():  # model=gbm: the logistic rows
        out[f"lr.{name}"] = m
    return out


def is_dp(metrics: dict) -> bool:
    """True when the run trained with differential privacy."""
    return str((metrics.get("config") or {}).get("dp", "off")).lower() not in ("off", "none")


def row_label(name: str, metrics: dict) -> str:
    """Table label of a model; the scikit-learn reference says it is not DP in a DP run."""
    label = credit_plots.model_label(name)
    if (metrics.get("config") or {}).get("model") == "gbm":
        from fl_credit.run.console import GBM_LABELS, LR_LABELS

        gbm = dict(zip(("federated", "centralized", "reference"), GBM_LABELS, strict=True))
        label = gbm.get(name, LR_LABELS.get(name.removeprefix("lr."), label))
    if name == "reference" and is_dp(metrics):
        return label + ", not DP"
    if name.startswith("local."):
        rows = ((metrics.get("banks") or {}).get(name.removeprefix("local.")) or {}).get("rows")
        return f"{label} ({rows} rows)" if rows is not None else label
    return label


def _f(value: object, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


def models_section(metrics: dict) -> list[str]:
    """One row per model: AUC with interval, KS, Gini, Brier, log loss, and the threshold."""
    rows = []
    for name, m in model_metrics(metrics).items():
        lo, hi = m.get("auc_ci") or (None, None)
        at = m.get("at_val_threshold") or {}
        default = at.get("default") or {}
        rows.append(
            [
                row_label(name, metrics),
                f"{_f(m['auc'])} [{_f(lo, 3)}, {_f(hi, 3)}]",
                _f(m.get("ks")),
                _f(m.get("gini")),
                _f(m.get("brier")),
                _f(m.get("log_loss")),
                _f(at.get("threshold"), 3),
                f"{_f(default.get('recall'), 3)} / {_f(default.get('precision'), 3)}",
            ]
        )
    header = ["model", "AUC [95% CI]", "KS", "Gini", "Brier", "log loss", "threshold"]
    header.append("default recall / precision @ threshold")
    lines = ["## Models on the test set", ""]
    if is_dp(metrics) and (metrics.get("config") or {}).get("private") is False:
        lines += [
            "NOT PRIVATE: DP-SGD without noise (noise multiplier 0, epsilon inf): every model "
            "but the scikit-learn reference clips and samples like DP-SGD; nothing is covered.",
            "",
        ]
    elif is_dp(metrics) and "reference" in metrics:
        lines += ["DP run: every model trained with DP except the scikit-learn reference.", ""]
    elif is_dp(metrics):
        lines += [
            "DP run, private release: the federated model only. The counterfactual models "
            "(pooled, each bank alone, scikit-learn) are in `not_private/`, which DP does not "
            "cover and which must not leave the consortium.",
            "",
        ]
    return [*lines, *_table(header, rows)]


def gains_section(metrics: dict) -> list[str]:
    """Lift and cumulative gains by decile of the federated model."""
    gains = (metrics.get("federated") or {}).get("gains")
    if not gains:
        return []
    rows = [
        [
            str(i + 1),
            f"{gains['depth'][i]:.0%}",
            _f(gains["default_rate"][i], 3),
            _f(gains["lift"][i], 2),
            f"{gains['cumulative_gains'][i]:.1%}",
            _f(gains["cumulative_lift"][i], 2),
        ]
        for i in range(len(gains["depth"]))
    ]
    header = ["decile", "depth", "default rate", "lift", "cumulative gains", "cumulative lift"]
    intro = "Highest scores first; tied scores are shared pro rata between deciles."
    return ["## Lift and gains (federated model)", "", intro, "", *_table(header, rows)]


def psi_section(psi: dict | None) -> list[str]:
    """Score PSI per bank and validation vs test, with the features that moved most."""
    if not psi:
        return []
    features = psi["features"]
    rows = []
    score = psi["score"]
    populations = {**score["banks"], "validation vs test": score["validation_vs_test"]}
    for name, value in populations.items():
        per_feature = features["banks"].get(name) or features["validation_vs_test"]
        worst = sorted(per_feature.items(), key=lambda item: -item[1])[:3]
        moved = ", ".join(f"{f} {v:.3f}" for f, v in worst)
        rows.append([name, _f(value), stability(value), moved])
    header = ["population vs reference", "score PSI", "reading", "features with largest PSI"]
    intro = (
        f"Each bank's training rows against the federation's (all banks), and the validation "
        f"rows against the test rows; {psi['bins']} bins at deciles of the reference. Below 0.1 "
        f"stable, 0.1-0.25 moderate shift, above 0.25 major shift. Counts: {psi['source']}."
    )
    return ["## Stability (PSI)", "", intro, "", *_table(header, rows)]


def odds_section(credit: dict | None) -> list[str]:
    """Odds ratios of the federated model on the original feature scale (largest effects)."""
    if not credit or "odds_ratios" not in credit:
        return []
    rows = sorted(credit["odds_ratios"]["features"], key=lambda r: -abs(r["coef_standardised"]))
    table = [
        [r["feature"], f"{r['coef']:.4g}", f"{r['odds_ratio']:.4g}", _f(r["odds_ratio_per_sd"], 3)]
        for r in rows[:ODDS_ROWS]
    ]
    header = ["feature", "coefficient per unit", "odds ratio per unit", "odds ratio per sd"]
    intro = (
        f"Largest {min(ODDS_ROWS, len(rows))} of {len(rows)} effects by size per standard "
        "deviation; odds of default, other features fixed (one-hot: the category vs none). "
        f"Intercept on the original scale: {credit['odds_ratios']['intercept']:.4g}."
    )
    return ["## Odds ratios (federated model)", "", intro, "", *_table(header, table)]


def woe_section(credit: dict | None) -> list[str]:
    """The federation's WoE bins (``features=woe``): information value and bins per feature."""
    woe = (credit or {}).get("woe")
    if not woe:
        return []
    items = list(woe["features"].items())
    rows = [
        [name, f"{v['iv']:.4f}", str(len(v["woe"])), ", ".join(f"{w:.3g}" for w in v["woe"])]
        for name, v in items[:ODDS_ROWS]
    ]
    intro = (
        f"Largest {len(rows)} of {len(items)} information values. Bins and WoE "
        "(`ln(share repaid / share defaults)`) fitted by the server from the banks' summed "
        "default and repaid counts per fine bin; the model's inputs are the standardised WoE, "
        "so the odds ratios below are per unit of WoE. Full table: `metrics.json` "
        "`credit.woe`; points per bin: `python -m fl_credit.scorecard RUN_DIR`."
    )
    header = ["feature", "IV", "bins", "WoE by bin (low to high values)"]
    return ["## Weight of evidence (federated bins)", "", intro, "", *_table(header, rows)]


def reasons_section(credit: dict | None) -> list[str]:
    """How often each characteristic is the first reason among flagged test borrowers."""
    codes = (credit or {}).get("reason_codes")
    if not codes:
        return []
    flagged = codes["flagged_rows"]
    rows = [
        [name, str(count), f"{count / flagged:.1%}" if flagged else "–"]
        for name, count in codes["first_reason_flagged"].items()
    ]
    intro = (
        f"Top {codes['k']} characteristics pushing each borrower's score towards default, as "
        f"log-odds contributions relative to the {codes['reference']}; one-hot columns of one "
        f"characteristic are summed. Per borrower: `reason_codes.csv`. Below: the first reason "
        f"of the {flagged} test borrowers at or above the threshold."
    )
    table = _table(["first reason", "borrowers", "share"], rows) if rows else []
    return ["## Reason codes (federated model)", "", intro, "", *table]


def figures(run_dir: Path, metrics: dict) -> dict[str, object]:
    """The report's figures by file name."""
    y, scores = read_scores(run_dir / SCORES)
    federated = scores["federated"]
    threshold = ((metrics.get("federated") or {}).get("at_val_threshold") or {}).get("threshold")
    out = {
        "roc.png": credit_plots.roc_figure(y, scores),
        "ks.png": credit_plots.ks_figure(y, federated),
        "calibration.png": credit_plots.calibration_figure(y, scores),
        "gains.png": credit_plots.gains_figure(y, scores),
        "score_distribution.png": credit_plots.score_distribution_figure(y, federated, threshold),
    }
    psi = (metrics.get("credit") or {}).get("psi")
    if psi and psi["score"]["banks"]:
        out[PSI_FIGURE] = credit_plots.psi_figure(psi)
    return out


def validation_section(run_dir: Path) -> list[str]:
    """The validation report's one-screen summary, when the run made one."""
    path = run_dir / "validation.md"
    if not path.is_file():
        return []
    text = path.read_text()
    start = text.find("## Summary")
    end = text.find("\n## ", start + 1)
    if start < 0:
        return []
    summary = text[start + len("## Summary") : end if end > 0 else None].strip()
    intro = (
        "Master scale, per-grade back-tests, concentration, AUC against the initial model, "
        "stability, migration and fairness by group, from the banks' per-grade counts summed "
        "through secure aggregation: [validation.md](validation.md)."
    )
    return ["## Validation (summary)", "", intro, "", summary, ""]


def render(run_dir: Path, metrics: dict, written: Sequence[str]) -> str:
    """The text of ``report.md``."""
    config = metrics.get("config") or {}
    settings = ", ".join(f"{k}={v}" for k, v in config.items() if v is not None)
    credit = metrics.get("credit")
    lines = [f"# Run report: {run_dir.resolve().name}", "", f"Settings: {settings}.", ""]
    lines += models_section(metrics)
    if "roc.png" not in written:
        lines += [NO_FIGURES, ""]
    else:
        lines += ["![ROC curve](roc.png) ![KS curve](ks.png)", ""]
    lines += gains_section(metrics)
    if "roc.png" in written:
        lines += ["![Cumulative gains](gains.png)", "", "## Calibration and score distribution", ""]
        lines += [
            "Reliability of the test-set scores (10 score-quantile bins); scores are PDs only "
            "if the points follow the diagonal.",
            "",
            "![Calibration](calibration.png) ![Score distribution](score_distribution.png)",
            "",
        ]
    lines += psi_section((credit or {}).get("psi"))
    if PSI_FIGURE in written:
        lines += [f"![PSI per bank]({PSI_FIGURE})", ""]
    lines += woe_section(credit) + odds_section(credit) + reasons_section(credit)
    lines += validation_section(run_dir)
    lines += [
        "## Files",
        "",
        "`metrics.json` (every number above), `scores.csv` (each model's test-set scores and the "
        "label: every metric can be recomputed from it), `history.csv`, `model.pt`, "
        "`schema.json`, `reason_codes.csv`. Rebuild this report: "
        "`python -m fl_credit.run.report <run folder>`; scorecard: "
        "`python -m fl_credit.scorecard <run folder> --pdo 20 --base-score 600 --base-odds 50`.",
        "",
    ]
    return "\n".join(lines)


def write_run_report(run_dir: str | Path) -> list[Path]:
    """Write ``report.md`` and its figures into ``run_dir``.

    Parameters
    ----------
    run_dir : str or pathlib.Path
        A run folder holding ``metrics.json`` and (for the figures) ``scores.csv``.

    Returns
    -------
    list of pathlib.Path
        The files written, ``report.md`` last.
    """
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    drawn = figures(run_dir, metrics) if (run_dir / SCORES).is_file() else {}
    written = [save_png(run_dir / name, fig) for name, fig in drawn.items()]
    text = render(run_dir, metrics, [path.name for path in written])
    return [*written, write_text(run_dir / REPORT, text)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild a run folder's report; one line and exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m fl_credit.run.report")
    parser.add_argument("run_dir", help="a finished run folder (metrics.json and scores.csv)")
    run_dir = Path(parser.parse_args(argv).run_dir)
    if not (run_dir / "metrics.json").is_file():
        message = f"error: {run_dir / 'metrics.json'} not found (not a finished run folder)"
        print(message, file=sys.stderr)
        return 2
    written = write_run_report(run_dir)
    print(written[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
