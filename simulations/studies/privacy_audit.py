"""Privacy audit of finished runs.

``python -m simulations.studies.privacy_audit RUN_DIR [RUN_DIR ...]``

For each run folder it writes ``privacy_audit.json`` and ``privacy_audit.md``:

- update inversion and property inference from what the coordinator received (needs the run
  to have recorded it: ``audit.record_server_view=true``), alone and with colluding banks;
- membership inference (loss threshold, LiRA with shadow federations) against the released
  federated model, and the same attacks on a small overfit positive control (and, for a DP
  run, the control trained with the run's DP settings).

With several runs, ``--summary PATH`` also writes one comparison table (``PATH.md`` and
``PATH.csv``). Reconstructions are scored against the banks' own rows (the run's bank files,
or the same split prepared again from its configuration): this is a researcher's tool with
ground truth, not something the coordinator could run.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from fl_credit.config.errors import FlCreditError, one_line
from fl_credit.coordinator.view import SERVER_VIEW, ServerView
from fl_credit.run import files as run_files
from fl_credit.threats.audit.ground_truth import load_model, load_run
from fl_credit.threats.audit.inversion import TOLERANCE, audit_inversion
from fl_credit.threats.audit.observed import round_one
from fl_credit.threats.audit.properties import audit_properties
from fl_credit.threats.audit.shadows import audit_membership, positive_control

REPORT = "privacy_audit"


def audit_run(
    run_dir: str | Path,
    *,
    shadows: int = 16,
    jobs: int = 1,
    seed: int = 0,
    membership: bool = True,
    control: bool = True,
    control_rows: int = 30,
) -> dict:
    """Every attack on one run folder (see the module docstring); the result is what
    ``privacy_audit.json`` holds, with a ``headline`` of one number per attack."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    cfg = run.cfg
    if cfg.model.kind == "gbm":  # the attacks below model a logistic score: leaf sizes only
        from fl_credit.boosting.leaf_audit import leaf_sizes

        return {
            "run_dir": str(run_dir),
            "config": {"model": "gbm", "dp": cfg.dp.mode, "seed": cfg.seed},
            "data": run.source,
            "leaf_sizes": leaf_sizes(run_dir / "model.json", run.banks),
            "headline": {},
        }
    result: dict = {
        "run_dir": str(run_dir),
        "config": {
            "strategy": cfg.strategy.name,
            "dp": cfg.dp.mode,
            "dp_epsilon": cfg.dp.epsilon if cfg.dp.mode != "off" else None,
            "banks": len(run.banks),
            "rounds": cfg.train.rounds,
            "optimizer": cfg.train.optimizer,
            "seed": cfg.seed,
        },
        "data": run.source,
        "seconds": {},
    }
    view_dir = run_dir / SERVER_VIEW
    if (view_dir / "messages.jsonl").is_file():
        started = time.perf_counter()
        known = round_one(ServerView(view_dir))
        rows = 5 if cfg.dp.mode == "opacus" else 20
        result["inversion"] = audit_inversion(known, run, rows_tried=rows, seed=seed)
        result["properties"] = audit_properties(known, run)
        result["seconds"]["inversion_and_properties"] = time.perf_counter() - started
    else:
        result["inversion"] = result["properties"] = None
        result["note"] = "no server view recorded (run with audit.record_server_view=true)"
    if membership:
        started = time.perf_counter()
        result["membership"] = audit_membership(
            run, load_model(run_dir), shadows=shadows, seed=seed, jobs=jobs
        )
        result["seconds"]["membership"] = time.perf_counter() - started
    if control:
        started = time.perf_counter()
        controls = [
            positive_control(run, rows=control_rows, models=shadows + 1, seed=seed, jobs=jobs)
        ]
        if cfg.dp.mode != "off":
            controls.append(
                positive_control(
                    run, rows=control_rows, models=shadows + 1, seed=seed, jobs=jobs, dp=cfg.dp
                )
            )
        result["control"] = controls
        result["seconds"]["control"] = time.perf_counter() - started
    result["headline"] = headline(result)
    return result


def headline(result: dict) -> dict:
    """One number per attack, for tables and the threat matrix.

    - ``inversion_features_recovered``: the coordinator alone, best bank: share of the
      features of the bank's defaulters' mean row recovered within the tolerance;
      ``inversion_baseline_recovered``: the same share for the federation's mean as the guess
      (no attack); ``inversion_error_sd``: the attack's smallest mean error;
    - ``inversion_colluders_features_recovered``: with all banks but one colluding (the
      coordinator alone under plaintext FedAvg);
    - ``property_abs_error``: the coordinator alone, mean over banks of the best channel's
      error on the bank's default rate;
    - ``mia_*``: LiRA (online) against the released model; ``control_*``: the positive control.
    """
    out: dict = {}
    inversion = result.get("inversion")
    if inversion:
        rows = inversion["rows"]
        alone = [
            r
            for r in rows
            if r["setting"].startswith(("plaintext: its update", "secure aggregation, the server"))
        ]
        best = max(alone, key=lambda r: r["features_recovered"])
        baseline = {r["target"]: r for r in rows if r["setting"].startswith("no attack")}
        out["inversion_features_recovered"] = best["features_recovered"]
        out["inversion_baseline_recovered"] = baseline[best["target"]]["features_recovered"]
        out["inversion_error_sd"] = min(r["mean_error_sd"] for r in alone)
        last = result["config"]["banks"] - 1
        colluding = [r for r in rows if r.get("colluders") == last]
        if colluding:
            out["inversion_colluders_features_recovered"] = max(
                r["features_recovered"] for r in colluding
            )
        elif not inversion.get("secure"):  # plaintext: the coordinator alone sees every update
            out["inversion_colluders_features_recovered"] = best["features_recovered"]
    properties = result.get("properties")
    if properties:
        best_per_bank: dict[str, float] = {}
        for r in properties["rows"]:
            if "colluding" in r["channel"] or "validation" in r["channel"]:
                continue
            error = r["abs_error"] if np.isfinite(r["abs_error"]) else np.inf
            best_per_bank[r["bank"]] = min(best_per_bank.get(r["bank"], np.inf), error)
        if best_per_bank:  # none when no statistics left the banks (dp=central)
            out["property_abs_error"] = float(np.mean(list(best_per_bank.values())))
    mia = result.get("membership")
    if mia:
        out["mia_auc"] = mia["lira_online"]["auc"]
        out["mia_tpr_at_0.001_fpr"] = mia["lira_online"]["tpr_at_0.001_fpr"]
        out["mia_tpr_at_0.01_fpr"] = mia["lira_online"]["tpr_at_0.01_fpr"]
        out["mia_loss_auc"] = mia["loss_threshold"]["auc"]
    for k, c in enumerate(result.get("control") or []):
        suffix = "" if k == 0 else "_dp"
        out[f"control{suffix}_auc"] = c["lira_online"]["auc"]
        out[f"control{suffix}_tpr_at_0.001_fpr"] = c["lira_online"]["tpr_at_0.001_fpr"]
    return out


# -- report ------------------------------------------------------------------------------------


def _f(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "inf"
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _mia_table(entries: list[dict]) -> list[str]:
    lines = [
        "| target | attack | AUC | TPR @ 0.1% FPR | TPR @ 1% FPR | members / non-members |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        for name in ("loss_threshold", "lira_online", "lira_offline"):
            m = entry[name]
            lines.append(
                f"| {entry['target']} | {name.replace('_', ' ')} | {m['auc']:.4f} | "
                f"{m['tpr_at_0.001_fpr']:.4f} | {m['tpr_at_0.01_fpr']:.4f} | "
                f"{m['members']} / {m['non_members']} |"
            )
    return lines


def to_markdown(result: dict) -> str:
    """One run's audit as markdown."""
    c = result["config"]
    if "leaf_sizes" in result:
        from fl_credit.boosting.leaf_audit import to_markdown as leaf_markdown

        head = [f"# Privacy audit of {result['run_dir']}", "", f"model=gbm, dp={c['dp']}"]
        return "\n".join([*head, "", *leaf_markdown(result["leaf_sizes"])])
    eps = f" epsilon {c['dp_epsilon']:g}" if c["dp_epsilon"] else ""
    lines = [
        f"# Privacy audit of {result['run_dir']}",
        "",
        f"strategy={c['strategy']}, dp={c['dp']}{eps}, {c['banks']} banks, {c['rounds']} rounds, "
        f"optimizer={c['optimizer']}, seed {c['seed']}; ground truth: {result['data']}.",
        "",
    ]
    inversion = result.get("inversion")
    if inversion:
        exact = "exact" if inversion["exact_case"] else "approximate (DP, or several SGD steps)"
        lines += [
            "## Update inversion (round 1)",
            "",
            f"The algebra is {exact} for this run. Scored on the mean row of the target bank's "
            "defaulters (for a lone default, its row; for a one-record bank, the row); errors in "
            f"feature standard deviations, a feature is recovered within {TOLERANCE:g} sd; "
            "`repaid`: the same share for the repaid loans' mean row.",
            "",
            "| setting | target | mean error (sd) | max error (sd) | features recovered | "
            "repaid | defaults error |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in inversion["rows"]:
            mean = r.get("mean_error_sd")
            extra = f"update error {r['update_error']:.3g}" if "update_error" in r else ""
            lines.append(
                f"| {r['setting']} | {r['target']} | {_f(mean) if mean is not None else extra} | "
                f"{_f(r.get('max_error_sd'))} | {100 * r['features_recovered']:.1f}% | "
                f"{_pct(r.get('repaid_features_recovered'))} | {_f(r.get('defaults_error'), 3)} |"
            )
        lines.append("")
    properties = result.get("properties")
    if properties:
        lines += [
            "## Property inference: each bank's default rate",
            "",
            "| bank | channel | estimate | true | abs error |",
            "|---|---|---|---|---|",
        ]
        for r in properties["rows"]:
            lines.append(
                f"| {r['bank']} | {r['channel']} | {_f(r['estimate'])} | {_f(r['true_rate'])} | "
                f"{_f(r['abs_error'], 3)} |"
            )
        lines.append("")
    if result.get("note"):
        lines += [f"Note: {result['note']}.", ""]
    entries = [e for e in [result.get("membership"), *(result.get("control") or [])] if e]
    if entries:
        lines += ["## Membership inference", ""]
        if result.get("membership"):
            lines += [
                f"Against the released model with {result['membership']['shadows']} shadow "
                "federations; the controls attack each of their models with the others as "
                "shadows.",
                "",
            ]
        lines += [*_mia_table(entries), ""]
    lines += ["## Headline", ""]
    lines += [f"- {k}: {_f(v)}" for k, v in result["headline"].items()]
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
    lines += ["", f"Time: {seconds}."]
    return "\n".join(lines) + "\n"


SUMMARY_COLUMNS = (
    "run_dir",
    "strategy",
    "dp",
    "dp_epsilon",
    "banks",
    "inversion_features_recovered",
    "inversion_baseline_recovered",
    "inversion_error_sd",
    "inversion_colluders_features_recovered",
    "property_abs_error",
    "mia_auc",
    "mia_tpr_at_0.001_fpr",
    "mia_tpr_at_0.01_fpr",
    "mia_loss_auc",
    "control_auc",
    "control_tpr_at_0.001_fpr",
    "control_dp_auc",
    "control_dp_tpr_at_0.001_fpr",
)


def summary_rows(results: list[dict]) -> list[dict]:
    """One flat row per audited run."""
    rows = []
    for r in results:
        c = r["config"]
        rows.append({"run_dir": r["run_dir"], **c, **r["headline"]})
    return [{k: row.get(k) for k in SUMMARY_COLUMNS} for row in rows]


def write_summary(results: list[dict], path: Path) -> None:
    """``path``.md and ``path``.csv with one row per run."""
    rows = summary_rows(results)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    run_files.write_atomic(path.with_suffix(".csv"), out.getvalue())
    lines = [
        "| " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|---" * len(SUMMARY_COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_f(row[k]) for k in SUMMARY_COLUMNS) + " |")
    run_files.write_atomic(path.with_suffix(".md"), "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Audit each run folder given; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--shadows", type=int, default=16, help="shadow federations (16)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes for shadows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-membership", action="store_true", help="skip membership inference")
    parser.add_argument("--no-control", action="store_true", help="skip the positive control")
    parser.add_argument("--control-rows", type=int, default=30)
    parser.add_argument("--summary", type=Path, help="also write PATH.md and PATH.csv")
    args = parser.parse_args(argv)
    if args.shadows < 2 or args.jobs < 1 or args.control_rows < 10:
        print("error: --shadows must be >= 2, --jobs >= 1, --control-rows >= 10", file=sys.stderr)
        return 2
    results = []
    for run_dir in args.run_dirs:
        try:
            result = audit_run(
                run_dir,
                shadows=args.shadows,
                jobs=args.jobs,
                seed=args.seed,
                membership=not args.no_membership,
                control=not args.no_control,
                control_rows=args.control_rows,
            )
        except (FlCreditError, FileNotFoundError, KeyError) as err:
            print(f"error: {run_dir}: {one_line(err)}", file=sys.stderr)
            return 2
        run_files.write_json(run_dir / f"{REPORT}.json", result)
        markdown = to_markdown(result)
        run_files.write_atomic(run_dir / f"{REPORT}.md", markdown)
        print(markdown)
        results.append(result)
    if args.summary:
        write_summary(results, args.summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
