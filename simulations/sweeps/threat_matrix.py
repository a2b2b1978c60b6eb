"""The threat matrix: every attack against every defence, read from one sweep.

``python -m fl_credit.simulate +experiment=threat_matrix`` runs the grid (bank split x
defence x attack x seed); this module turns its run folders into

- ``summary.csv``: one row per split, defence and attack, with seed means and spreads of the
  clean AUC (the same defence without attack, same seed), the AUC under attack, the AUC drop,
  each attack's own success measure and the cost of a round;
- ``summary.md``: the same as tables, plus the privacy attacks per defence (what the
  coordinator reconstructs from what it received, membership inference against the released
  model), read from the attack-free runs by :func:`simulations.studies.privacy_audit.audit_run`;
- ``paired.csv``: per attacked cell, the AUC drop with a paired bootstrap interval on the
  same test rows, the worst bank's drop, backdoor success counted only on the defaults the
  clean run rejects, approval-rate changes and the Holm-corrected claims
  (:mod:`fl_credit.threats.matrix_cells`);
- ``runs.csv``: one row per run (status and error of refused combinations included);
- ``heatmap_auc_drop.png`` and ``heatmap_success.png``.

``python -m simulations.sweeps.threat_matrix SWEEP_DIR`` rebuilds them; the experiment's Hydra
callback (:class:`ThreatMatrixReport`) does it when the sweep ends.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fl_credit.config.compose import conf_dir
from fl_credit.config.errors import FlCreditError
from fl_credit.config.store import defence_options
from fl_credit.credit.plotting import new_figure, save_png, write_text
from fl_credit.threats.matrix_cells import (
    BACKDOOR_KEPT_OUT,
    HOLDS_WITHIN,
    clean_costs,
    holm_jointly,
    paired_cells,
    trigger_of,
)
from simulations.sweeps.callback import sweep_dir_of
from simulations.sweeps.runs import collect_runs
from strategies.attacks import BACKDOORS, DEFAULT_TRIGGER, FREE_RIDERS, success_against_clean
from strategies.attacks.registry import attack_names

log = logging.getLogger(__name__)

SPLITS = {"ten_equal": "10 equal banks", "study": "3 banks 25/25/50"}
DEFENCES = defence_options(conf_dir())
"""The ``+defence=`` options: one per registered strategy, and the presets of ``conf/defence``."""
CLEAN = "none"
ATTACKS = tuple(a for a in attack_names() if a != CLEAN)
GROUPED = "grouped_secagg"
_BACKDOOR = (
    "backdoor success (of the test defaults the clean run rejects once triggered, the share "
    "the attacked model approves)"
)
_FREE_RIDE = "free-rider gain (federated AUC minus its AUC alone)"
SUCCESS = {
    **dict.fromkeys(BACKDOORS, _BACKDOOR),
    **dict.fromkeys(FREE_RIDERS, _FREE_RIDE),
}
KEYS = ("threat_split", "defence", "attack", "seed")


def p_value(p: float) -> str:
    """A p-value for the tables: three significant digits, or "< 1e-15" below that."""
    return "< 1e-15" if p < 1e-15 else f"{p:.3g}"


def run_table(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per run: the matrix keys, status, error and the figures the matrix needs."""
    df = collect_runs(sweep_dir)
    missing = [k for k in KEYS if k not in df.columns]
    if missing:
        raise ValueError(f"{sweep_dir} is not a threat-matrix sweep: no {missing} overrides")
    out = df[["run_dir", *KEYS, "status", "error"]].copy()
    root = Path(sweep_dir)
    out["run_dir"] = [str(p if Path(p).is_absolute() else root / p) for p in out["run_dir"]]
    out["auc"] = _column(df, "federated.auc")
    out["backdoor_success"] = _column(df, "attack.backdoor.success")
    out["approved_triggered"] = [_approved_triggered(p) for p in out["run_dir"]]
    out["test_defaults"] = _column(df, "attack.backdoor.test_defaults")
    gains = [c for c in df.columns if c.startswith("attack.free_rider.") and c.endswith(".gain")]
    out["free_rider_gain"] = df[gains].mean(axis=1) if gains else np.nan
    out["rounds"] = _column(df, "rounds.applied")
    out["server_s"] = _column(df, "timing.server_app_s")
    out["seconds_per_round"] = out["server_s"] / out["rounds"].where(out["rounds"] > 0)
    return out


def _approved_triggered(run_dir: str) -> tuple[int, ...] | None:
    """The run's approved triggered test defaults (positions), None without the block."""
    import json

    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    found = ((metrics.get("attack") or {}).get("backdoor") or {}).get("approved_triggered")
    if found is None or trigger_of(metrics) != DEFAULT_TRIGGER:
        return None  # measured with another trigger than the clean runs': not comparable
    return tuple(found)


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(df[name], errors="coerce") if name in df.columns else pd.Series(np.nan)


def with_clean(runs: pd.DataFrame) -> pd.DataFrame:
    """Attach each run's clean reference: the same split, defence and seed without attack."""
    clean = runs[runs["attack"] == CLEAN].set_index(["threat_split", "defence", "seed"])
    key = list(zip(runs["threat_split"], runs["defence"], runs["seed"], strict=True))
    runs = runs.copy()
    runs["clean_auc"] = [clean["auc"].get(k, np.nan) for k in key]
    runs["clean_backdoor_success"] = [clean["backdoor_success"].get(k, np.nan) for k in key]
    clean_approved = [clean["approved_triggered"].get(k) for k in key]
    runs["auc_drop"] = runs["clean_auc"] - runs["auc"]
    success = []
    for attack, mine, reference, defaults, gain in zip(
        runs["attack"],
        runs["approved_triggered"],
        clean_approved,
        runs["test_defaults"],
        runs["free_rider_gain"],
        strict=True,
    ):
        measured = mine is not None and reference is not None and pd.notna(defaults)
        if attack in BACKDOORS and measured:  # a failed run has no backdoor block
            success.append(success_against_clean(mine, reference, int(defaults)))
        else:
            success.append(gain if attack in FREE_RIDERS else np.nan)
    runs["success"] = success
    return runs


def _spread(values: pd.Series) -> tuple[float, float, int]:
    """Mean and half-width of a 95% t-interval (nan for one value)."""
    from scipy import stats

    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return math.nan, math.nan, 0
    if len(v) == 1:
        return float(v.iloc[0]), math.nan, 1
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half), int(len(v))


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per split, defence and attack: seed means and 95% half-widths."""
    rows = []
    for (split, defence, attack), group in runs.groupby(["threat_split", "defence", "attack"]):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {
            "threat_split": split,
            "defence": defence,
            "attack": attack,
            "runs": len(group),
            "ok": len(ok),
            "error": next((e for e in group["error"] if isinstance(e, str) and e), ""),
        }
        for name in ("clean_auc", "auc", "auc_drop", "success", "seconds_per_round"):
            mean, half, n = _spread(ok[name])
            row[name], row[f"{name}_pm"] = mean, half
        row["seeds"] = int(ok["seed"].nunique())
        rows.append(row)
    cells = pd.DataFrame(rows)
    order = {d: i for i, d in enumerate(DEFENCES)}
    attack_order = {a: i for i, a in enumerate((CLEAN, *ATTACKS))}
    cells["_d"] = cells["defence"].map(order).fillna(len(order))
    cells["_a"] = cells["attack"].map(attack_order).fillna(len(attack_order))
    return cells.sort_values(["threat_split", "_d", "_a"]).drop(columns=["_d", "_a"])


def privacy_table(runs: pd.DataFrame, *, shadows: int, jobs: int) -> pd.DataFrame:
    """Privacy attacks per split and defence, on the attack-free run of the first seed."""
    from simulations.studies.privacy_audit import audit_run

    rows = []
    clean = runs[(runs["attack"] == CLEAN) & (runs["status"] == "ok")]
    for (split, defence), group in clean.groupby(["threat_split", "defence"]):
        run_dir = group.sort_values("seed")["run_dir"].iloc[0]
        try:
            result = audit_run(run_dir, shadows=shadows, jobs=jobs, control=False)
        except FlCreditError as err:
            # Shadow federations replay only FedAvg-like training (not the robust rules):
            # the reconstruction attacks still apply.
            log.info("no membership inference for %s (%s)", defence, err)
            result = audit_run(run_dir, membership=False, control=False)
        rows.append({"threat_split": split, "defence": defence, **result["headline"]})
    return pd.DataFrame(rows)


def _fmt(mean: float, half: float = math.nan, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean:.{digits}f}"
    return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"


def _matrix_lines(cells: pd.DataFrame, split: str, value: str, title: str) -> list[str]:
    part = cells[cells["threat_split"] == split]
    attacks = [a for a in (CLEAN, *ATTACKS) if a in set(part["attack"])]
    defences = [d for d in DEFENCES if d in set(part["defence"])]
    lines = [f"#### {title}", "", "| defence | " + " | ".join(attacks) + " |"]
    lines.append("|---|" + "---|" * len(attacks))
    for defence in defences:
        cells_d = part[part["defence"] == defence].set_index("attack")
        row = []
        for attack in attacks:
            if attack not in cells_d.index:
                row.append("")
                continue
            cell = cells_d.loc[attack]
            if cell["ok"] == 0:
                row.append("refused" if cell["error"] else "failed")
            elif value == "auc" and attack == CLEAN:
                row.append(_fmt(cell["clean_auc"], cell["clean_auc_pm"]))
            else:
                row.append(_fmt(cell[value], cell[f"{value}_pm"]))
        lines.append(f"| {defence} | " + " | ".join(row) + " |")
    return [*lines, ""]


def _worst(row: pd.Series) -> str:
    """The worst bank's drop with its seed-bootstrap interval (older tables: the mean)."""
    if "worst_bank_low" not in row or math.isnan(row["worst_bank_low"]):
        return _fmt(row["worst_bank_drop"])
    return (
        f"{row['worst_bank_drop']:.3f} [{row['worst_bank_low']:.3f}, {row['worst_bank_high']:.3f}]"
    )


def _paired_lines(paired: pd.DataFrame) -> list[str]:
    """The paired-interval section of ``summary.md``."""
    lines = [
        "## Paired intervals and claims",
        "",
        "AUC drop against the clean run of the same seed on the same test rows: mean over "
        "seeds [95% interval] from a two-level paired bootstrap (seeds, then rows by class); "
        f"'holds within {HOLDS_WITHIN}' needs the 95% upper bound below {HOLDS_WITHIN}, "
        "'harms' the 95% lower bound above 0; p-values are Holm-corrected across every claim "
        "of the table and the clean-cost table below. Worst bank: the largest drop among the "
        "banks' shares of the test rows (mean over seeds [95% seed-bootstrap interval]). "
        "Backdoor: share of the defaults the clean run rejects once "
        "triggered that the attacked model approves [95% interval over seeds], with its claim "
        f"('kept below {BACKDOOR_KEPT_OUT}': 95% upper bound below it; 'succeeds': 95% lower "
        "bound above 0) in the same Holm family; clean trigger: "
        "the largest share any clean run of the cell approves by the trigger alone. Approval "
        "changes: attacked minus clean, all test rows / triggered rows. Evasion: share of "
        "rejected true defaulters who can flip within one standard deviation of change at an "
        "80% approval rate, attacked minus clean (needs audit.record_server_view).",
        "",
        "| split | defence | attack | seeds | AUC drop [95%] | claim | Holm p | supported | "
        "worst bank | backdoor [95%] | clean trigger | approval / targeted | evasion |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in paired.iterrows():
        backdoor = (
            ""
            if math.isnan(r["backdoor_mean"])
            else f"{r['backdoor_mean']:.2f} [{r['backdoor_low']:.2f}, {r['backdoor_high']:.2f}]"
        )
        if backdoor and isinstance(r.get("backdoor_claim"), str) and r["backdoor_claim"]:
            verdict = "yes" if r["backdoor_supported"] else "no"
            p_holm = p_value(r["p_backdoor_holm"])
            backdoor += f"; {r['backdoor_claim']}, Holm p {p_holm}: {verdict}"
        lines.append(
            f"| {SPLITS.get(r['threat_split'], r['threat_split'])} | {r['defence']} | "
            f"{r['attack']} | {r['paired_seeds']} | {r['drop_mean']:.3f} "
            f"[{r['drop_low']:.3f}, {r['drop_high']:.3f}] | {r['claim']} | "
            f"{p_value(r['p_holm'])} | "
            f"{'yes' if r['supported'] else 'no'} | {_worst(r)} | {backdoor} | "
            f"{_fmt(r['clean_trigger_max'], digits=2)} | {_fmt(r['approval_change'], digits=2)} / "
            f"{_fmt(r['targeted_approval_change'], digits=2)} | "
            f"{_fmt(r['evasion_change'], digits=2)} |"
        )
    return [*lines, ""]


def _cost_lines(costs: pd.DataFrame) -> list[str]:
    """The clean-cost and evasion section of ``summary.md``."""
    lines = [
        "## Clean cost and evasion per defence",
        "",
        "Clean cost: FedAvg's clean AUC minus the defence's, same seed and test rows, mean "
        "[95% interval] from the same paired bootstrap; 'costs within' / 'costs' read from the "
        "bounds like the claims above, and Holm-corrected together with them. Evasion: share of "
        "the clean model's rejected true defaulters who can flip within one sd of change at an "
        "80% approval rate, mean over seeds [95% seed-bootstrap interval].",
        "",
        "| split | defence | seeds | clean cost [95%] | claim | Holm p | supported | "
        "evasion [95%] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in costs.iterrows():
        cost = (
            "–"
            if math.isnan(r["cost_mean"])
            else f"{r['cost_mean']:.3f} [{r['cost_low']:.3f}, {r['cost_high']:.3f}]"
        )
        evasion = (
            "–"
            if math.isnan(r["evasion_mean"])
            else f"{r['evasion_mean']:.3f} [{r['evasion_low']:.3f}, {r['evasion_high']:.3f}]"
        )
        p_holm = "" if math.isnan(r["p_holm"]) else p_value(r["p_holm"])
        supported = "" if not r["claim"] else ("yes" if r["supported"] else "no")
        lines.append(
            f"| {SPLITS.get(r['threat_split'], r['threat_split'])} | {r['defence']} | "
            f"{r['paired_seeds']} | {cost} | {r['claim']} | {p_holm} | {supported} | "
            f"{evasion} |"
        )
    return [*lines, ""]


def render_markdown(
    cells: pd.DataFrame,
    runs: pd.DataFrame,
    privacy: pd.DataFrame,
    paired: pd.DataFrame | None = None,
    costs: pd.DataFrame | None = None,
) -> str:
    """``summary.md`` of the matrix."""
    seeds = sorted(int(s) for s in runs["seed"].unique())
    lines = [
        "# Threat matrix",
        "",
        f"{len(runs)} runs ({int((runs['status'] == 'ok').sum())} ok); seeds {seeds}. Cells are "
        "the mean over seeds and the half-width of a 95% t-interval (none with one seed). "
        "'refused' marks a combination the configuration refuses (e.g. Krum or Bulyan with "
        "too few banks); the reason is in runs.csv.",
        "",
    ]
    for split in [s for s in SPLITS if s in set(cells["threat_split"])]:
        lines += [f"## {SPLITS[split]}", ""]
        lines += _matrix_lines(cells, split, "auc", "Federated test AUC (none = clean)")
        lines += _matrix_lines(cells, split, "auc_drop", "AUC drop against the clean run")
        lines += _matrix_lines(
            cells[cells["attack"].isin(SUCCESS)], split, "success", "Attack success"
        )
        lines += _matrix_lines(
            cells[cells["attack"] == CLEAN], split, "seconds_per_round", "Seconds per round"
        )
    lines += ["Attack success: " + "; ".join(f"{k}: {v}" for k, v in SUCCESS.items()), ""]
    if paired is not None and not paired.empty:
        lines += _paired_lines(paired)
    if costs is not None and not costs.empty:
        lines += _cost_lines(costs)
    if not privacy.empty:
        lines += [
            "## Privacy attacks per defence (attack-free run, first seed)",
            "",
            "What the coordinator reconstructs from what it received: share of the features of "
            "a bank's defaulters' mean row recovered within 0.01 sd (alone, and with all other "
            "banks colluding; the baseline is the federation's mean as a guess), and "
            "membership inference (LiRA, online) against the released model.",
            "",
        ]
        columns = [
            ("inversion_features_recovered", "recovered, coordinator alone"),
            ("inversion_baseline_recovered", "baseline (no attack)"),
            ("inversion_colluders_features_recovered", "recovered, n-1 colluders"),
            ("property_abs_error", "default-rate error"),
            ("mia_auc", "MIA AUC"),
            ("mia_tpr_at_0.001_fpr", "MIA TPR at 0.1% FPR"),
            ("mia_tpr_at_0.01_fpr", "MIA TPR at 1% FPR"),
        ]
        present = [(c, t) for c, t in columns if c in privacy.columns]
        lines.append("| split | defence | " + " | ".join(t for _, t in present) + " |")
        lines.append("|---|---|" + "---|" * len(present))
        for _, row in privacy.iterrows():
            values = [_fmt(float(row[c])) for c, _ in present]
            lines.append(
                f"| {SPLITS.get(row['threat_split'], row['threat_split'])} | {row['defence']} | "
                + " | ".join(values)
                + " |"
            )
        lines += [
            "",
            f"{GROUPED}: the audit reads the coordinator's combined update, not the per-group "
            "sums it also holds (each the sum of 3-4 banks); its colluder column is left empty "
            "because colluders holding the rest of a bank's group read that bank exactly.",
            "",
        ]
    return "\n".join(lines)


AUC_DROP_TITLE = "AUC drop under attack (grey: harm measured by success, see the success map)"
HARM_COLOURS = "Reds"
"""Heat-map colours: white for no harm to dark red for the most (never green for 'fine')."""


def _label_colour(image, value: float) -> str:
    """Black on a light cell, white on a dark one."""
    red, green, blue, _ = image.cmap(image.norm(value))
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"


def heatmap(cells: pd.DataFrame, value: str, title: str):
    """One panel per split: defences down, attacks across, the cell's mean value.

    Colours go from white (no harm) to dark red on the scale of ``value``. On the AUC-drop map,
    attacks whose harm is measured by their own success (:data:`SUCCESS`: a backdoor keeps
    the AUC) are left uncoloured and labelled with their success, shown on its own map.
    """
    splits = [s for s in SPLITS if s in set(cells["threat_split"])]
    fig, axes = new_figure(len(splits), width=6.4, height=4.6)
    for ax, split in zip(axes, splits, strict=False):
        part = cells[cells["threat_split"] == split]
        attacks = [a for a in ATTACKS if a in set(part["attack"])]
        defences = [d for d in DEFENCES if d in set(part["defence"])]
        grid = np.full((len(defences), len(attacks)), np.nan)
        success = np.full_like(grid, np.nan)
        for i, d in enumerate(defences):
            for j, a in enumerate(attacks):
                cell = part[(part["defence"] == d) & (part["attack"] == a)]
                if not cell.empty:
                    grid[i, j] = cell[value].iloc[0]
                    if "success" in cell:
                        success[i, j] = cell["success"].iloc[0]
        other_scale = np.zeros_like(grid, dtype=bool)
        if value != "success":
            other_scale[:, [j for j, a in enumerate(attacks) if a in SUCCESS]] = True
        shown = np.ma.masked_array(grid, mask=np.isnan(grid) | other_scale)
        top = max(float(np.nanmax(shown.filled(np.nan))) if shown.count() else 0.0, 0.05)
        image = ax.imshow(shown, cmap=HARM_COLOURS, vmin=0.0, vmax=top, aspect="auto")
        ax.set_facecolor("0.88")  # uncoloured cells: grey
        ax.set_xticks(range(len(attacks)), attacks, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(defences)), defences, fontsize=8)
        for i in range(len(defences)):
            for j in range(len(attacks)):
                if other_scale[i, j] and not np.isnan(success[i, j]):
                    text, colour = f"success\n{success[i, j]:.2f}", "black"
                elif not np.isnan(grid[i, j]):
                    text, colour = f"{grid[i, j]:.2f}", _label_colour(image, grid[i, j])
                else:
                    continue
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_title(SPLITS[split], fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label=f"{value} (0 = no harm)")
    fig.suptitle(title, fontsize=10)
    return fig


def write_matrix(
    sweep_dir: str | Path,
    *,
    audit: bool = True,
    shadows: int = 8,
    jobs: int = 1,
    resamples: int = 500,
) -> list[Path]:
    """Write the matrix files into ``sweep_dir``; returns the paths written."""
    root = Path(sweep_dir)
    runs = with_clean(run_table(root))
    cells = cell_table(runs)
    paired = paired_cells(runs, resamples=resamples)
    costs = clean_costs(runs, resamples=resamples)
    if not paired.empty and not costs.empty:
        paired, costs = holm_jointly(paired, costs)
    privacy = privacy_table(runs, shadows=shadows, jobs=jobs) if audit else pd.DataFrame()
    if not privacy.empty:
        cells = cells.merge(privacy, on=["threat_split", "defence"], how="left")
    written = [
        write_text(root / "runs.csv", runs.to_csv(index=False)),
        write_text(root / "summary.csv", cells.to_csv(index=False)),
        write_text(root / "paired.csv", paired.to_csv(index=False)),
        write_text(root / "costs.csv", costs.to_csv(index=False)),
        write_text(root / "summary.md", render_markdown(cells, runs, privacy, paired, costs)),
        save_png(root / "heatmap_auc_drop.png", heatmap(cells, "auc_drop", AUC_DROP_TITLE)),
    ]
    success = cells[cells["attack"].isin(SUCCESS)]
    if not success.empty:
        written.append(
            save_png(root / "heatmap_success.png", heatmap(success, "success", "Attack success"))
        )
    return written


def root_summary(written: list[Path]) -> Path:
    """The ``summary.md`` among the files :func:`write_matrix` wrote."""
    return next(p for p in written if p.name == "summary.md")


class ThreatMatrixReport(Callback):
    """Hydra callback of ``+experiment=threat_matrix``: the matrix files after the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Build the matrix; a failure is logged, never raised (the runs are kept)."""
        try:
            written = write_matrix(sweep_dir_of(config))
        except Exception as exc:  # noqa: BLE001 - a report must never fail the sweep
            log.warning("threat matrix not written: %s", " ".join(str(exc).split()))
            return
        log.info("threat matrix: %s", root_summary(written))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild the matrix of a sweep and print ``summary.md``."""
    parser = argparse.ArgumentParser(prog="python -m simulations.sweeps.threat_matrix")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--no-audit", action="store_true", help="skip the privacy attacks")
    parser.add_argument("--shadows", type=int, default=8, help="LiRA shadow federations")
    parser.add_argument("--jobs", type=int, default=1, help="shadows trained in parallel")
    parser.add_argument("--resamples", type=int, default=500, help="paired bootstrap draws")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: not a folder: {args.sweep_dir}", file=sys.stderr)
        return 2
    try:
        written = write_matrix(
            args.sweep_dir,
            audit=not args.no_audit,
            shadows=args.shadows,
            jobs=args.jobs,
            resamples=args.resamples,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(root_summary(written).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
