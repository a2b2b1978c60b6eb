"""The threat matrix's paired figures per cell, read from the run folders of a sweep.

For every cell (split, defence, attack) with clean runs of the same seeds:

- the AUC drop with a paired two-level bootstrap interval (:mod:`.matrix_stats`) on the
  same test rows (``scores.csv``);
- the worst bank's AUC drop: each bank's share of the held-out rows (the same deal as
  :func:`fl_credit.data.prepare.share_test_rows`), the largest drop among the banks, averaged
  over seeds;
- backdoor success counted only on the test defaults the clean run rejects once triggered
  (:func:`strategies.attacks.success_against_clean`), and the clean runs' own trigger effect
  (which a sound trigger keeps at or below 5%);
- the change in approval rate of all test rows and of the targeted group (the triggered
  rows), attacked minus clean;
- evasion at the stated business approval rate (:data:`fl_credit.threats.evasion.APPROVAL_RATE`):
  the share of rejected true defaulters who can flip within one standard deviation of
  change, attacked model minus clean model (runs with a recorded ground truth only);
- claims: "holds within ``x``" (95% upper bound of the drop below ``x``) and "harms" (95%
  lower bound above 0), each with its one-sided p-value, Holm-corrected across all claims.

:func:`clean_costs` gives, per defence, the clean cost against FedAvg (paired the same way,
claims "costs within ``x``" / "costs") and the evasion of the clean model at the stated
approval rate; :func:`holm_jointly` corrects the claims of both tables together.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from fl_credit.data.prepare import share_test_rows
from fl_credit.threats.matrix_stats import PairedSeed, auc, holm, paired_drop, seed_mean

HOLDS_WITHIN = 0.02
"""The drop below which a defence is said to hold (95% upper bound)."""


def _run_files(run_dir: str | Path) -> tuple[pd.DataFrame | None, dict]:
    folder = Path(run_dir)
    scores = folder / "scores.csv"
    metrics = folder / "metrics.json"
    frame = pd.read_csv(scores) if scores.is_file() else None
    return frame, json.loads(metrics.read_text()) if metrics.is_file() else {}


def _bank_rows(y: np.ndarray, metrics: dict, seed: int) -> list[np.ndarray]:
    banks = metrics.get("banks") or {}
    sizes = [int(b.get("rows", 0)) + int(b.get("val_rows", 0)) for b in banks.values()]
    return share_test_rows(y, sizes, seed) if sizes and sum(sizes) else []


@functools.lru_cache(maxsize=4096)
def _evasion(run_dir: str) -> float:
    """Share of the run's rejected true defaulters who flip within 1 sd at the stated
    approval rate (nan without a recorded ground truth)."""
    from fl_credit.config.errors import FlCreditError
    from fl_credit.threats.evasion import evasion_audit

    try:
        report = evasion_audit(run_dir, budgets=(1.0,), alone=False)
    except (FlCreditError, FileNotFoundError, OSError):
        return math.nan
    return _nan(report["models"]["federated"]["flip_rate_defaulters"]["1"])


def trigger_of(metrics: dict) -> dict:
    """The trigger a run's backdoor block was measured with (older runs: from the attack's
    settings, else the default trigger)."""
    from strategies.attacks import DEFAULT_TRIGGER

    attack = metrics.get("attack") or {}
    block = attack.get("backdoor") or {}
    return block.get("trigger") or (attack.get("settings") or {}).get("trigger") or DEFAULT_TRIGGER


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def paired_cells(runs: pd.DataFrame, resamples: int = 500, clean: str = "none") -> pd.DataFrame:
    """One row per attacked cell with the paired figures (see module doc).

    ``runs``: one row per run with ``threat_split``, ``defence``, ``attack``, ``seed``,
    ``status`` and ``run_dir``.
    """
    ok = runs[runs["status"] == "ok"]
    cache: dict[str, tuple[pd.DataFrame | None, dict]] = {}

    def files(run_dir: str) -> tuple[pd.DataFrame | None, dict]:
        if run_dir not in cache:
            cache[run_dir] = _run_files(run_dir)
        return cache[run_dir]

    references = {
        (r.threat_split, r.defence, int(r.seed)): r.run_dir
        for r in ok[ok["attack"] == clean].itertuples()
    }
    rows = []
    for (split, defence, attack), group in ok.groupby(["threat_split", "defence", "attack"]):
        if attack == clean:
            continue
        pairs, worst, success, approval, targeted, trigger_clean = [], [], [], [], [], []
        evasion = []
        for r in group.itertuples():
            ref = references.get((split, defence, int(r.seed)))
            if ref is None:
                continue
            (clean_scores, clean_metrics), (scores, metrics) = files(ref), files(r.run_dir)
            if clean_scores is None or scores is None:
                continue
            y = clean_scores["default"].to_numpy()
            if not np.array_equal(y, scores["default"].to_numpy()):
                continue  # not the same test rows: no paired comparison
            pairs.append(
                PairedSeed(y, clean_scores["federated"].to_numpy(), scores["federated"].to_numpy())
            )
            drops = [
                auc(y[i], pairs[-1].clean[i]) - auc(y[i], pairs[-1].attacked[i])
                for i in _bank_rows(y, metrics, int(r.seed))
            ]
            worst.append(max(drops) if drops else math.nan)
            evasion.append(_evasion(r.run_dir) - _evasion(ref))
            a, c = (
                (metrics.get("attack") or {}).get("backdoor"),
                (clean_metrics.get("attack") or {}).get("backdoor"),
            )
            if a and c:
                from strategies.attacks import BACKDOORS, success_against_clean

                trigger_clean.append(_nan(c.get("success")))
                if attack in BACKDOORS and trigger_of(metrics) == trigger_of(clean_metrics):
                    success.append(
                        success_against_clean(
                            a["approved_triggered"], c["approved_triggered"], c["test_defaults"]
                        )
                    )
                approval.append(_nan(a.get("approval_rate")) - _nan(c.get("approval_rate")))
                targeted.append(
                    _nan(a.get("triggered_approval_rate")) - _nan(c.get("triggered_approval_rate"))
                )
        drop = paired_drop(pairs, resamples=resamples)
        row = {
            "threat_split": split,
            "defence": defence,
            "attack": attack,
            "paired_seeds": len(pairs),
        }
        row.update(_interval_columns("drop", drop))
        row["worst_bank_drop"] = float(np.nanmean(worst)) if worst else math.nan
        row.update(_interval_columns("worst_bank", seed_mean(worst, resamples)))
        backdoor = seed_mean(success, resamples)
        row.update(_interval_columns("backdoor", backdoor))
        row.update(_backdoor_claim(backdoor))
        row["clean_trigger_max"] = max(trigger_clean) if trigger_clean else math.nan
        row["evasion_change"] = (
            float(np.nanmean(evasion)) if np.isfinite(evasion).any() else math.nan
        )
        row["approval_change"] = float(np.mean(approval)) if approval else math.nan
        row["targeted_approval_change"] = float(np.mean(targeted)) if targeted else math.nan
        row["p_holds"] = drop.p_above(HOLDS_WITHIN) if drop else math.nan
        row["p_harms"] = drop.p_below(0.0) if drop else math.nan
        rows.append(row)
    cells = pd.DataFrame(rows)
    return with_claims(cells) if not cells.empty else cells


def _interval_columns(name: str, interval) -> dict:
    if interval is None:
        return {f"{name}_{k}": math.nan for k in ("mean", "low", "high", "upper", "lower")}
    return {
        f"{name}_mean": interval.mean,
        f"{name}_low": interval.low,
        f"{name}_high": interval.high,
        f"{name}_upper": interval.upper,
        f"{name}_lower": interval.lower,
    }


def with_claims(cells: pd.DataFrame) -> pd.DataFrame:
    """Add the Holm-corrected claims: every cell claims either that the defence holds within
    :data:`HOLDS_WITHIN` or that the attack harms, whichever its point estimate points to."""
    cells = cells.copy()
    holds = cells["drop_mean"] < HOLDS_WITHIN
    cells["claim"] = np.where(holds, f"holds within {HOLDS_WITHIN}", "harms")
    cells["p_claim"] = np.where(holds, cells["p_holds"], cells["p_harms"]).astype(float)
    return holm_jointly(cells)[0]


BACKDOOR_KEPT_OUT = 0.05
"""Backdoor success below which a defence keeps the backdoor out (95% upper bound)."""

CLAIMS = (
    ("p_claim", "p_holm", "supported"),
    ("p_backdoor_claim", "p_backdoor_holm", "backdoor_supported"),
)
"""Raw p-value column, its Holm-adjusted column and the verdict column, per kind of claim."""


def _backdoor_claim(interval) -> dict:
    """'kept below' :data:`BACKDOOR_KEPT_OUT` (95% upper bound below it) or 'succeeds' (95%
    lower bound above 0), whichever the mean points to, with its one-sided p-value."""
    if interval is None:
        return {"backdoor_claim": "", "p_backdoor_claim": math.nan}
    if interval.mean < BACKDOOR_KEPT_OUT:
        return {
            "backdoor_claim": f"kept below {BACKDOOR_KEPT_OUT}",
            "p_backdoor_claim": interval.p_above(BACKDOOR_KEPT_OUT),
        }
    return {"backdoor_claim": "succeeds", "p_backdoor_claim": interval.p_below(0.0)}


def holm_jointly(*tables: pd.DataFrame) -> list[pd.DataFrame]:
    """Holm's correction across every claim of all ``tables`` together (the raw p-value
    columns of :data:`CLAIMS` each table has); sets the adjusted p-values and the verdicts
    (adjusted p below 0.05)."""
    found = [(i, kind) for i, t in enumerate(tables) for kind in CLAIMS if kind[0] in t]
    p = np.concatenate([tables[i][kind[0]].to_numpy(dtype=float) for i, kind in found] or [[]])
    adjusted = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    adjusted[finite] = holm(p[finite])
    out, start = [table.copy() for table in tables], 0
    for i, (_, column, verdict) in found:
        size = len(out[i])
        out[i][column] = adjusted[start : start + size]
        out[i][verdict] = out[i][column] < 0.05
        start += size
    return out


def clean_costs(
    runs: pd.DataFrame, resamples: int = 500, clean: str = "none", reference: str = "fedavg"
) -> pd.DataFrame:
    """Per split and defence, from the attack-free runs: the clean cost (FedAvg's clean AUC
    minus the defence's, paired on the same seed and test rows, bootstrapped like
    :func:`paired_cells`, with the claim "costs within" :data:`HOLDS_WITHIN` or "costs") and
    the evasion at the stated approval rate (share of rejected true defaulters who flip
    within one sd of change; mean over seeds with a seed-bootstrap interval)."""
    ok = runs[(runs["status"] == "ok") & (runs["attack"] == clean)]
    references = {
        (r.threat_split, int(r.seed)): r.run_dir
        for r in ok[ok["defence"] == reference].itertuples()
    }
    rows = []
    for (split, defence), group in ok.groupby(["threat_split", "defence"]):
        pairs = []
        for r in group.itertuples():
            ref = references.get((split, int(r.seed)))
            if defence == reference or ref is None:
                continue
            (ref_scores, _), (scores, _) = _run_files(ref), _run_files(r.run_dir)
            if ref_scores is None or scores is None:
                continue
            y = ref_scores["default"].to_numpy()
            if np.array_equal(y, scores["default"].to_numpy()):
                pairs.append(
                    PairedSeed(
                        y, ref_scores["federated"].to_numpy(), scores["federated"].to_numpy()
                    )
                )
        cost = paired_drop(pairs, resamples=resamples)
        row = {"threat_split": split, "defence": defence, "paired_seeds": len(pairs)}
        row.update(_interval_columns("cost", cost))
        evasion = [_evasion(d) for d in group["run_dir"]]
        row.update(_interval_columns("evasion", seed_mean(evasion, resamples)))
        row["evasion_seeds"] = int(np.isfinite(evasion).sum())
        if cost is None:
            row.update(claim="", p_claim=math.nan)
        elif cost.mean < HOLDS_WITHIN:
            row.update(claim=f"costs within {HOLDS_WITHIN}", p_claim=cost.p_above(HOLDS_WITHIN))
        else:
            row.update(claim="costs", p_claim=cost.p_below(0.0))
        rows.append(row)
    return pd.DataFrame(rows)
