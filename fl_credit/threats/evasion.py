"""Adversarial borrowers: the smallest change a rejected applicant can make to be approved.

A borrower controls a few inputs: stated income (up), revolving utilisation (down: pay
balances off, which lowers overall utilisation with it, at the slope fitted on the training
rows), debt-to-income (down; a lever the data may lack, then reported as missing), recent
credit inquiries (down: wait). The cut-off is a stated business approval rate
(:data:`APPROVAL_RATE` of applicants approved), not the model's validation KS point. Every
other input (grade, term, employment, the one-hot columns) is fixed. For a logistic model
``logit(x) = sum_j a_j x_j + b`` in raw units, a change ``d`` lowers the logit by
``-sum_j a_j d_j`` at a cost ``sum_j |d_j| / s_j`` (weighted L1, ``s_j`` = the feature's
standard deviation over the federation's training rows: a budget of 1 = one standard deviation
of change in total). The cheapest flip is a fractional knapsack, i.e. the linear program's
optimum in closed form: use levers in order of logit reduction per unit cost, each up to its
bound, until the logit is below the decision threshold's (:func:`cheapest_flip`). Count
features (inquiries) are treated as continuous by the linear program; the last lever used is
then rounded up to a whole inquiry, which keeps the flip and can only add cost. A model of a
DP run clips rows to public ranges before scoring: a row beyond a range is taken at its edge
(the move back into the range, which changes nothing, is not charged) and no lever moves past
a range.

``python -m fl_credit.evasion RUN_DIR`` reports, for the run's federated model and for each
bank's model alone (retrained deterministically from the run's configuration exactly as the
run's baseline was; the run does not store them), the share of rejected test applicants who
can flip within each budget (all rejected, and rejected true defaulters: the gaming that
costs money), and which levers are cheapest. Writes ``RUN_DIR/evasion.json`` and
``RUN_DIR/evasion.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.data.bank_file import BankData
from fl_credit.data.scaling import Standardizer, pooled_standardizer

BUDGETS = (0.1, 0.25, 0.5, 1.0, 2.0, math.inf)
APPROVAL_RATE = 0.8
"""The stated business approval rate the audit sets the cut-off at (share of applicants
approved), instead of the validation KS point."""


@dataclass(frozen=True)
class Lever:
    """A feature a borrower can move, in one direction, within a plausible range.

    Attributes
    ----------
    feature : str
        Encoded feature name.
    direction : int
        +1: may only go up; -1: may only go down.
    floor : float
        Lowest value after a decrease (ignored for increases).
    max_rise : float
        Largest relative increase (0.5 = up to 1.5 times the stated value).
    integer : bool
        A count (inquiries): the last fractional step is rounded up.
    coupled : tuple of (str, float)
        Features that move with this one, by the given ratio of its move (paying down
        revolving balances lowers overall utilisation too); the move is one action, costed
        on this feature.
    """

    feature: str
    direction: int
    floor: float = 0.0
    max_rise: float = 0.0
    integer: bool = False
    coupled: tuple[tuple[str, float], ...] = ()


DEFAULT_LEVERS = (
    Lever("annual_inc", +1, max_rise=0.5),
    Lever("revol_util", -1),
    Lever("dti", -1),
    Lever("inq_last_6mths", -1, integer=True),
    Lever("inq_last_12m", -1, integer=True),
    Lever("inq_fi", -1, integer=True),
)


@dataclass(frozen=True)
class LinearScore:
    """A logistic model in raw units: ``logit(x) = clip(x) @ coef + intercept``, approve
    below ``threshold`` (a probability); ``low``/``high`` are the public ranges rows are
    clipped to (DP runs), None otherwise."""

    coef: np.ndarray
    intercept: float
    threshold: float
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def from_scaled(
        cls, weight: np.ndarray, bias: float, scaler: Standardizer, threshold: float
    ) -> LinearScore:
        """From weights on standardised inputs ``(clip(x) - mean) / std``."""
        coef = np.asarray(weight, dtype=np.float64) / scaler.std
        return cls(
            coef, float(bias - coef @ scaler.mean), float(threshold), scaler.low, scaler.high
        )

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Rows as the model sees them (clipped to the public ranges, if any)."""
        x = np.asarray(x, dtype=np.float64)
        if self.low is None or self.high is None:
            return x
        return np.clip(x, self.low, self.high)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of raw rows."""
        return self.clip(x) @ self.coef + self.intercept

    @property
    def cutoff(self) -> float:
        """The logit of the threshold: rows at or above it are rejected."""
        t = min(max(self.threshold, 1e-12), 1 - 1e-12)
        return math.log(t / (1 - t))


@dataclass(frozen=True)
class Flips:
    """The cheapest flip of each rejected applicant.

    Attributes
    ----------
    rows : numpy.ndarray
        Indices (into the scored rows) of the rejected applicants.
    cost : numpy.ndarray
        Their cheapest flip's cost (``inf`` when no change within the bounds flips it).
    change : numpy.ndarray
        The change of each lever's feature, shape ``(rejected, levers)``, raw units.
    levers : list of Lever
        The levers available to this model's inputs, in column order of ``change``.
    efficiency : numpy.ndarray
        Logit reduction per unit of cost of each lever (<= 0: useless in its direction).
    missing : tuple of str
        Levers asked for whose feature the data lacks (reported, never silently skipped).
    """

    rows: np.ndarray
    cost: np.ndarray
    change: np.ndarray
    levers: list[Lever]
    efficiency: np.ndarray
    missing: tuple[str, ...] = ()


def approval_cutoff(score: LinearScore, x: np.ndarray, rate: float) -> float:
    """The logit cut-off that approves the share ``rate`` of the rows ``x`` (the lowest
    logits): a stated business approval rate instead of the model's own threshold."""
    return float(np.quantile(score.logits(x), rate))


def coupled_utilisation(
    x: np.ndarray, feature_names: list[str], base: str = "revol_util", other: str = "all_util"
) -> Lever:
    """The revolving-utilisation lever with overall utilisation moving along: the ratio is
    the least-squares slope of ``other`` on ``base`` over the rows ``x`` (at least 0)."""
    if base not in feature_names or other not in feature_names:
        return Lever(base, -1)
    a = x[:, feature_names.index(base)].astype(np.float64)
    b = x[:, feature_names.index(other)].astype(np.float64)
    spread = float(np.var(a))
    slope = float(np.cov(a, b, bias=True)[0, 1] / spread) if spread > 0 else 0.0
    return Lever(base, -1, coupled=((other, max(slope, 0.0)),))


def lever_bounds(
    x: np.ndarray, levers: list[Lever], columns: list[int], score: LinearScore | None = None
) -> np.ndarray:
    """Largest allowed move of each lever for each row (raw units, >= 0), within the
    model's clipping range when it has one (moves beyond it change nothing)."""
    room = np.zeros((len(x), len(levers)))
    clipped = score is not None and score.low is not None and score.high is not None
    for k, (lever, col) in enumerate(zip(levers, columns, strict=True)):
        v = x[:, col]
        if lever.direction > 0:
            top = v + np.maximum(v, 0.0) * lever.max_rise
            if clipped:
                top = np.minimum(top, score.high[col])
            room[:, k] = np.maximum(top - v, 0.0)
        else:
            bottom = max(lever.floor, score.low[col]) if clipped else lever.floor
            room[:, k] = np.maximum(v - bottom, 0.0)
    return room


def cheapest_flip(
    score: LinearScore,
    x: np.ndarray,
    feature_names: list[str],
    cost_scale: np.ndarray,
    levers: tuple[Lever, ...] = DEFAULT_LEVERS,
    margin: float = 1e-9,
    cutoff: float | None = None,
) -> Flips:
    """The minimal weighted-L1 change that brings each rejected row below the cut-off.

    Parameters
    ----------
    score : LinearScore
        The model.
    x : numpy.ndarray
        Raw applicant rows.
    feature_names : list of str
        Column names of ``x``.
    cost_scale : numpy.ndarray
        Per-feature unit of cost (standard deviation), one per column.
    levers : tuple of Lever
        What borrowers may change; levers whose feature the data lacks are listed in
        ``Flips.missing``.
    margin : float
        How far below the cut-off a flipped row must land (logit units).
    cutoff : float, optional
        The logit cut-off (default: the model's threshold; see :func:`approval_cutoff`).

    Returns
    -------
    Flips
        One entry per rejected row.
    """
    present = [lv for lv in levers if lv.feature in feature_names]
    missing = tuple(lv.feature for lv in levers if lv.feature not in feature_names)
    columns = [feature_names.index(lv.feature) for lv in present]
    x = score.clip(x)  # a row beyond a public range is taken at its edge (see the docstring)
    logits = score.logits(x)
    cut = score.cutoff if cutoff is None else float(cutoff)
    rejected = np.flatnonzero(logits >= cut)
    need = logits[rejected] - cut + margin
    scale = np.asarray(cost_scale, dtype=np.float64)[columns]
    coef = score.coef[columns].copy()
    room = lever_bounds(x[rejected], present, columns, score)  # raw units
    for k, lever in enumerate(present):
        for feature, ratio in lever.coupled:
            if feature in feature_names and ratio > 0:
                other = feature_names.index(feature)
                coef[k] += ratio * score.coef[other]
                room[:, k] = np.minimum(room[:, k], np.maximum(x[rejected, other], 0.0) / ratio)
    direction = np.array([lv.direction for lv in present], dtype=np.float64)
    # Logit drop per unit of cost when moving in the allowed direction.
    efficiency = -coef * direction * scale
    drop_cap = room / scale * np.maximum(efficiency, 0.0)  # logit drop if used fully
    order = np.argsort(-efficiency, kind="stable")
    change = np.zeros_like(room)
    left = need.copy()
    for k in order:
        if efficiency[k] <= 0:
            break
        use = np.minimum(np.maximum(left, 0.0), drop_cap[:, k])  # logit drop from lever k
        moved = use / efficiency[k] * scale[k]  # raw units
        if present[k].integer:
            moved = np.minimum(np.ceil(moved - 1e-9), room[:, k])
            use = moved / scale[k] * efficiency[k]
        change[:, k] = moved * direction[k]
        left = left - use
    cost = np.abs(change / scale).sum(axis=1)
    cost = np.where(left <= 1e-12, cost, np.inf)
    return Flips(rejected, cost, change, present, efficiency, missing)


def flip_report(flips: Flips, y: np.ndarray, budgets: tuple[float, ...] = BUDGETS) -> dict:
    """Flip rates against the budget, and how much each lever is used."""
    defaulters = y[flips.rows] == 1
    n = len(flips.rows)

    def rate(mask: np.ndarray, budget: float) -> float | None:
        cost = flips.cost[mask]
        return float(np.mean(np.isfinite(cost) & (cost <= budget))) if mask.any() else None

    everyone = np.ones(n, dtype=bool)
    flipped = np.isfinite(flips.cost)
    used = np.abs(flips.change) > 0
    moved = np.abs(flips.change)
    levers = []
    for k, lever in enumerate(flips.levers):
        levers.append(
            {
                "feature": lever.feature,
                "direction": "up" if lever.direction > 0 else "down",
                "logit_drop_per_sd": float(flips.efficiency[k]),
                "used_in_flips": float(used[flipped, k].mean()) if flipped.any() else 0.0,
                "median_change": float(np.median(moved[flipped & used[:, k], k]))
                if (flipped & used[:, k]).any()
                else 0.0,
            }
        )
    levers.sort(key=lambda r: -r["logit_drop_per_sd"])
    return {
        "rejected": n,
        "rejected_defaulters": int(defaulters.sum()),
        "flip_rate": {_key(b): rate(everyone, b) for b in budgets},
        "flip_rate_defaulters": {_key(b): rate(defaulters, b) for b in budgets},
        "median_cost": float(np.median(flips.cost)) if n else None,
        "levers": levers,
        "levers_missing": list(flips.missing),
    }


def _key(budget: float) -> str:
    return "unlimited" if math.isinf(budget) else f"{budget:g}"


# -- the run's models ------------------------------------------------------------------------


def bank_alone_score(
    bank: BankData, cfg: ExperimentConfig, seed: int
) -> tuple[LinearScore, Standardizer]:
    """A bank's model alone, retrained by :func:`fl_credit.run.baselines.fit_alone` (the code
    that trains the run's bank-alone baselines: same scaler, class handling, seed, budget and
    validation threshold)."""
    from fl_credit.run.baselines import fit_alone

    alone = fit_alone(bank, cfg, seed)
    weight = alone.model.linear.weight.detach().numpy().reshape(-1).astype(np.float64)
    bias = float(alone.model.linear.bias.detach().numpy()[0])
    scaler, threshold = alone.scaler, alone.threshold
    return LinearScore.from_scaled(weight, bias, scaler, threshold), scaler


def _levers(x_train: np.ndarray, feature_names: list[str]) -> tuple[Lever, ...]:
    """The default levers with revolving and overall utilisation coupled (fitted on
    ``x_train``)."""
    coupled = coupled_utilisation(x_train, feature_names)
    return tuple(coupled if lv.feature == coupled.feature else lv for lv in DEFAULT_LEVERS)


def evasion_audit(
    run_dir: str | Path,
    budgets: tuple[float, ...] = BUDGETS,
    approval_rate: float | None = APPROVAL_RATE,
    alone: bool = True,
) -> dict:
    """Flip rates of the run's federated model (and of each bank alone) on the test rows, at
    the cut-off that approves ``approval_rate`` of the test applicants (None: each model's own
    threshold)."""
    from fl_credit.threats.audit.ground_truth import load_model, load_run

    run = load_run(run_dir)
    fed = load_model(run_dir)
    x_all = np.vstack([b.x_train for b in run.banks.values()])
    cost_scale = pooled_standardizer(x_all).std
    levers = _levers(x_all, run.feature_names)
    models = {"federated": LinearScore.from_scaled(fed.weight, fed.bias, fed.scaler, fed.threshold)}
    if alone:
        for k, (name, bank) in enumerate(run.banks.items()):
            models[f"{name} alone"] = bank_alone_score(bank, run.cfg, run.cfg.seed + 1 + k)[0]
    results = {}
    for name, score in models.items():
        cut = None if approval_rate is None else approval_cutoff(score, run.x_test, approval_rate)
        flips = cheapest_flip(score, run.x_test, run.feature_names, cost_scale, levers, cutoff=cut)
        results[name] = {
            "threshold": score.threshold,
            "cutoff_logit": score.cutoff if cut is None else cut,
            **flip_report(flips, run.y_test, budgets),
        }
    return {
        "applicants": int(len(run.y_test)),
        "approval_rate": approval_rate,
        "cost_unit": "one standard deviation of the feature over the federation's training rows",
        "bank_alone_models": "retrained deterministically from the run's configuration "
        "(same code, seeds and budget as the run's baseline)",
        "data": run.source,
        "models": results,
    }


def to_markdown(result: dict) -> str:
    """The evasion report as markdown."""
    budgets = list(next(iter(result["models"].values()))["flip_rate"])
    lines = [
        "# Evasion: the cheapest flip of a rejected applicant",
        "",
        f"{result['applicants']} test applicants; cut-off: "
        + (
            "each model's own threshold"
            if result.get("approval_rate") is None
            else f"approve {result['approval_rate']:.0%} of applicants (stated business rate)"
        )
        + f"; cost unit: {result['cost_unit']}; bank-alone models {result['bank_alone_models']}.",
        "",
        "Share of rejected applicants who can flip within a budget (in brackets: rejected "
        "true defaulters):",
        "",
        "| model | rejected | " + " | ".join(f"budget {b}" for b in budgets) + " | median cost |",
        "|---" * (len(budgets) + 3) + "|",
    ]
    for name, r in result["models"].items():
        cells = [
            f"{_pct(r['flip_rate'][b])} ({_pct(r['flip_rate_defaulters'][b])})" for b in budgets
        ]
        lines.append(
            f"| {name} | {r['rejected']} | " + " | ".join(cells) + f" | {r['median_cost']:.3g} |"
        )
    lines += ["", "Levers by logit drop per standard deviation (share of flips using them):", ""]
    names = list(result["models"])
    lines.append("| lever | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    per_model = {n: {lv["feature"]: lv for lv in r["levers"]} for n, r in result["models"].items()}
    for lever in next(iter(result["models"].values()))["levers"]:
        feature = lever["feature"]
        cells = [
            f"{per_model[n][feature]['logit_drop_per_sd']:+.3f} "
            f"({_pct(per_model[n][feature]['used_in_flips'])})"
            for n in names
        ]
        lines.append(f"| {feature} ({lever['direction']}) | " + " | ".join(cells) + " |")
    missing = next(iter(result["models"].values())).get("levers_missing") or []
    if missing:
        lines += [
            "",
            f"Levers the data lacks (not available to borrowers here): {', '.join(missing)}.",
        ]
    lines += [
        "",
        "revol_util moves overall utilisation (all_util) with it, at the slope fitted on the "
        "training rows (paying revolving balances down lowers both).",
    ]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def main(argv: list[str] | None = None) -> int:
    """``python -m fl_credit.evasion RUN_DIR``: write ``evasion.json`` and ``evasion.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--approval-rate",
        type=float,
        default=APPROVAL_RATE,
        help="share of applicants approved (the cut-off); 0 = each model's own threshold",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.approval_rate < 1:
        print(
            f"error: --approval-rate must be in [0, 1), got {args.approval_rate}", file=sys.stderr
        )
        return 2
    try:
        result = evasion_audit(args.run_dir, approval_rate=args.approval_rate or None)
    except FlCreditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from fl_credit.run import files as run_files

    run_files.write_json(args.run_dir / "evasion.json", result)
    markdown = to_markdown(result)
    run_files.write_atomic(args.run_dir / "evasion.md", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
