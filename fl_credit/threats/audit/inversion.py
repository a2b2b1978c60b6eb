"""Update inversion for logistic regression: rows and class means from what the server sees.

The algebra (scaled rows ``x``, class weight ``c``, ``r_i`` = the derivative of row i's
weighted BCE in its logit: ``sigmoid(z_i)`` for a repaid loan, ``-c (1 - sigmoid(z_i))`` for a
default):

- one full-batch SGD step of ``n`` rows with learning rate ``lr`` and L2 ``l2`` from ``w``
  gives the data gradient sum ``G = sum_i r_i [x_i, 1] = n ((w - w') / lr - [l2 w, 0])``
  (:func:`data_gradient`);
- one record: ``G = r [x, 1]``, so ``x = G_w / G_b`` exactly (:func:`invert_one_record`);
- round 1 (``w = 0``): ``r = 1/2`` for repaid, ``-c/2`` for defaults, so
  ``G_b = (n_0 - c n_1) / 2`` gives the number of defaults and, with the bank's feature sum
  ``S = S_0 + S_1`` (its moments), ``G_w = (S_0 - c S_1) / 2`` gives both class sums
  (:func:`class_sums_round_one`); a lone default (``n_1 = 1``) is its row.

:func:`audit_inversion` applies this to a recorded run under plaintext FedAvg (every bank's
update and moments), under secure aggregation (only sums; also a masked reply read as if it
were plaintext) and with ``k`` banks colluding with the server (they subtract their own
contributions from the sums; ``k = n - 1`` leaves one bank's update). Estimates are scored
against the banks' own rows: errors in units of each feature's standard deviation, and the
share of features recovered to within :data:`TOLERANCE` of one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fl_credit.data.bank_file import BankData
from fl_credit.data.scaling import Standardizer, first_moments, pooled_standardizer
from fl_credit.protocol.settings import BankSettings
from fl_credit.threats.audit.ground_truth import RunData
from fl_credit.threats.audit.observed import RoundOne
from fl_credit.threats.audit.replay import Weights, local_update

TOLERANCE = 0.01  # a feature counts as recovered within 1% of its standard deviation


# -- the algebra --------------------------------------------------------------------------


def data_gradient(
    start: Weights, new: Weights, rows: float, lr: float, l2: float, steps: int = 1
) -> np.ndarray:
    """``G = sum_i r_i [x_i, 1]`` from one full-batch SGD step ``start -> new`` of ``rows`` rows.

    With ``steps`` > 1 (mini-batches, several epochs, DP-SGD) the move is read as ``steps``
    equal steps: an approximation an attacker who knows the settings would make.
    """
    step = (start.vector - new.vector) / (lr * steps)
    step[:-1] -= l2 * start.vector[:-1]
    return rows * step


def local_steps(settings: BankSettings, rows: float) -> int:
    """Optimizer steps one training call of a bank with ``rows`` rows takes."""
    rows = max(int(round(rows)), 1)
    if settings.dp_mode == "opacus":
        return settings.local_epochs * settings.dp_settings().steps_per_epoch
    if 0 < settings.batch_size < rows:
        return settings.local_epochs * math.ceil(rows / settings.batch_size)
    return settings.local_epochs


def invert_one_record(gradient: np.ndarray) -> np.ndarray:
    """The scaled row behind a one-record gradient ``r [x, 1]``: ``x = G_w / G_b``."""
    return gradient[:-1] / gradient[-1]


def class_sums_round_one(
    gradient: np.ndarray, scaled_sum: np.ndarray, rows: float, pos_weight: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Defaults and the scaled feature sums of each class from a round-1 gradient.

    Parameters
    ----------
    gradient : numpy.ndarray
        ``G`` of the rows at the all-zero model (:func:`data_gradient`).
    scaled_sum : numpy.ndarray
        The same rows' scaled feature sum ``S`` (from their moments).
    rows : float
        Number of rows.
    pos_weight : float
        The class weight ``c``.

    Returns
    -------
    tuple
        ``(defaults, S_repaid, S_default)``.
    """
    defaults = (rows - 2.0 * gradient[-1]) / (1.0 + pos_weight)
    sum_default = (scaled_sum - 2.0 * gradient[:-1]) / (1.0 + pos_weight)
    return float(defaults), scaled_sum - sum_default, sum_default


def scaled_sum_from_moments(
    moments: np.ndarray, scaler: Standardizer
) -> tuple[float, float, np.ndarray]:
    """``(defaults, rows, scaled feature sum)`` from a first-pass moments vector
    ``[defaults, rows, sum x...]``."""
    defaults, rows, raw = float(moments[0]), float(moments[1]), np.asarray(moments[2:])
    return defaults, rows, (raw - rows * scaler.mean) / scaler.std


def class_means(
    gradient: np.ndarray, moments: np.ndarray, scaler: Standardizer, pos_weight: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(defaults, repaid mean, default mean)`` in raw units from a round-1 gradient and the
    moments of the same rows; the default mean of a lone default is its row.

    The estimated number of defaults is clipped to ``[1, rows - 1]`` (never the case when the
    algebra is exact; it keeps approximate estimates, under DP, finite)."""
    _, rows, scaled = scaled_sum_from_moments(moments, scaler)
    defaults, s0, s1 = class_sums_round_one(gradient, scaled, rows, pos_weight)
    defaults = float(np.clip(defaults, 1.0, max(rows - 1.0, 1.0)))
    return (
        defaults,
        scaler.mean + scaler.std * s0 / max(rows - defaults, 1.0),
        scaler.mean + scaler.std * s1 / defaults,
    )


# -- scoring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """How close an estimate is to the truth, feature by feature."""

    max_error: float
    mean_error: float
    recovered: float

    @classmethod
    def of(cls, estimate: np.ndarray, truth: np.ndarray, std: np.ndarray) -> Score:
        """Errors in units of each feature's standard deviation (non-finite = not recovered)."""
        err = np.abs(np.asarray(estimate, dtype=np.float64) - truth) / std
        err = np.where(np.isfinite(err), err, np.inf)
        return cls(
            max_error=float(err.max()),
            mean_error=float(err.mean()),
            recovered=float(np.mean(err <= TOLERANCE)),
        )

    def row(self, **labels) -> dict:
        """One result row: the labels and the score."""
        return {
            **labels,
            "max_error_sd": self.max_error,
            "mean_error_sd": self.mean_error,
            "features_recovered": self.recovered,
        }


def feature_sd(run: RunData) -> np.ndarray:
    """The unit of every error: each feature's standard deviation over all banks' training
    rows (the same for every run on the same split, whatever its standardiser)."""
    return pooled_standardizer(run.members[0]).std


def true_class_means(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Both class means, repaid then default, concatenated."""
    return np.r_[x[y == 0].mean(axis=0), x[y == 1].mean(axis=0)]


def moments_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A bank's first-pass moments reply ``[defaults, rows, sum x...]``."""
    return np.r_[y.sum(), first_moments(x)]


def exact_moments(known: RoundOne, bank: BankData) -> np.ndarray:
    """A bank's exact moments as the model sees its rows (clipped to the public ranges when
    the standardiser clips, under DP). Under DP the server only holds a noised release of
    coarser statistics: giving the attacker these instead is generous to it."""
    x = bank.x_train
    if known.scaler.low is not None and known.scaler.high is not None:
        x = np.clip(x, known.scaler.low, known.scaler.high)
    return moments_of(x, bank.y_train)


def expected_reply(known: RoundOne, bank: BankData) -> np.ndarray:
    """The noise-free moments reply of a bank (the exact pass, or the DP pass's layout)."""
    if known.moments_exact:
        return moments_of(bank.x_train, bank.y_train)
    from fl_credit.data.dictionary import FeatureBounds
    from fl_credit.data.scaling import private_moments

    bounds = FeatureBounds.from_lists(dict(known.moments_config))
    return private_moments(bank.x_train, bank.y_train, bounds)


# -- the audit ----------------------------------------------------------------------------


def _gradient_from_update(known: RoundOne, new: Weights, rows: float, banks: int = 1) -> np.ndarray:
    """The data gradient behind a (mean) update of ``banks`` banks holding ``rows`` rows."""
    s = known.settings
    steps = local_steps(s, rows / banks)
    return data_gradient(known.start, new, rows, s.lr, s.l2, steps)


def _generous(known: RoundOne) -> str:
    return "" if known.moments_exact else " (exact moments given; DP noises or withholds them)"


def _mean_row(label: str, target: str, estimate, truth, std, **extra) -> dict:
    """Scored on the mean row of the bank's defaulters (the sensitive profile; for a lone
    default, its row); the repaid class's mean is reported beside it."""
    d = len(std)
    repaid = Score.of(estimate[:d], truth[:d], std)
    return Score.of(estimate[d:], truth[d:], std).row(
        setting=label, target=target, repaid_features_recovered=repaid.recovered, **extra
    )


def baseline_rows(known: RoundOne, run: RunData) -> list[dict]:
    """No attack: the federation's true class means (what any participant roughly knows) as
    the guess for each bank; the chance level the attacks are compared with."""
    x, y = run.members
    guess = true_class_means(x, y)
    return [
        _mean_row(
            "no attack: the federation's class means as the guess",
            name,
            guess,
            true_class_means(bank.x_train, bank.y_train),
            feature_sd(run),
        )
        for name, bank in run.banks.items()
    ]


def match_nodes(known: RoundOne, banks: dict[str, BankData]) -> dict[int, str]:
    """Plaintext only: which node is which bank (ground truth: the moments reply that equals
    the bank's own moments)."""
    names = {}
    for node, moments in known.moments.items():
        dist = {
            name: float(np.abs(expected_reply(known, b) - moments).max())
            for name, b in banks.items()
        }
        names[node] = min(dist, key=dist.get)
    return names


def plaintext_rows(known: RoundOne, run: RunData) -> list[dict]:
    """Each bank's class means from its own round-1 update and moments reply."""
    rows = []
    names = match_nodes(known, run.banks)
    for node in sorted(known.updates, key=lambda n: names.get(n, "")):
        bank = run.banks[names[node]]
        moments = known.moments[node] if known.moments_exact else exact_moments(known, bank)
        if known.newton:
            gradient = np.asarray(known.terms[node][0], dtype=np.float64)
        else:
            gradient = _gradient_from_update(known, known.updates[node][0], float(moments[1]))
        defaults, m0, m1 = class_means(gradient, moments, known.scaler, known.pos_weight)
        rows.append(
            _mean_row(
                "plaintext: its update + its moments" + _generous(known),
                names[node],
                np.r_[m0, m1],
                true_class_means(bank.x_train, bank.y_train),
                feature_sd(run),
                defaults_error=abs(defaults - float(bank.y_train.sum())),
            )
        )
    return rows


def newton_contribution(known: RoundOne, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A bank's round-1 Newton reply, ``[grad..., hess...]``, from its own code."""
    from fl_credit.model.training import newton_terms

    grad, hess, _ = newton_terms(known.scaler.transform(x), y, known.pos_weight, known.start.vector)
    return np.concatenate([grad, np.ravel(hess)])


def _colluder_contribution(known: RoundOne, bank: BankData, name: str) -> tuple[np.ndarray, float]:
    """A colluding bank's own weighted, clipped round-1 update, as it entered the sum (for
    Newton: its gradient and Hessian sums, weight 1)."""
    if known.newton:
        return newton_contribution(known, bank.x_train, bank.y_train), 1.0
    x = known.scaler.transform(bank.x_train)
    new = local_update(
        known.start,
        x,
        bank.y_train,
        known.pos_weight,
        known.settings,
        1,
        bank_key=name,
        state=None,
    )
    update = new.vector - known.start.vector
    if known.value_range is not None:
        update = np.clip(update, -known.value_range, known.value_range)
    weight = 1.0 if known.settings.dp_mode == "central" else float(len(bank.y_train))
    return weight * update, weight


def group_estimate(
    known: RoundOne, run: RunData, colluders: list[str]
) -> tuple[float, np.ndarray, np.ndarray]:
    """What the server and ``colluders`` learn about the other banks together: ``(defaults,
    repaid mean, default mean)`` of the honest banks' rows, from the round-1 aggregate and
    the summed moments minus the colluders' own."""
    if known.newton:
        return _newton_group_estimate(known, run, colluders)
    total = float(known.total_weight)
    weighted_sum = total * (known.aggregate.vector - known.start.vector)
    if known.moments_exact:
        moments = np.asarray(known.moments_sum, dtype=np.float64).copy()
    else:  # generous: the honest banks' exact moments
        moments = sum(exact_moments(known, run.banks[n]) for n in run.banks if n not in colluders)
    honest_weight = total
    for name in colluders:
        bank = run.banks[name]
        contribution, weight = _colluder_contribution(known, bank, name)
        weighted_sum -= contribution
        honest_weight -= weight
        if known.moments_exact:
            moments -= moments_of(bank.x_train, bank.y_train)
    rows = float(moments[1])
    mean_update = weighted_sum / honest_weight
    honest = len(run.banks) - len(colluders)
    gradient = _gradient_from_update(
        known, Weights.from_vector(known.start.vector + mean_update), rows, honest
    )
    return class_means(gradient, moments, known.scaler, known.pos_weight)


def _newton_group_estimate(
    known: RoundOne, run: RunData, colluders: list[str]
) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`group_estimate` for Newton rounds: the decoded gradient sum is ``G`` itself."""
    d = len(known.start.vector)
    gradient = np.asarray(known.sum_terms[0], dtype=np.float64).copy()
    moments = np.asarray(known.moments_sum, dtype=np.float64).copy()
    for name in colluders:
        bank = run.banks[name]
        gradient -= newton_contribution(known, bank.x_train, bank.y_train)[:d]
        moments -= moments_of(bank.x_train, bank.y_train)
    return class_means(gradient, moments, known.scaler, known.pos_weight)


def secure_rows(known: RoundOne, run: RunData) -> list[dict]:
    """Secure aggregation: the server alone, a masked reply read as plaintext, colluders."""
    names = list(run.banks)
    std = feature_sd(run)
    rows = []
    defaults, m0, m1 = group_estimate(known, run, [])
    for name in names:
        bank = run.banks[name]
        rows.append(
            _mean_row(
                "secure aggregation, the server alone: class means from the sums"
                + _generous(known),
                name,
                np.r_[m0, m1],
                true_class_means(bank.x_train, bank.y_train),
                std,
                defaults_error=abs(defaults - float(bank.y_train.sum())),
            )
        )
    rows.extend(masked_rows(known, run))
    if run.cfg.strategy.name == "grouped_secagg":
        # One secure sum per group and a robust mix of the group means is released: the
        # subtraction below does not model that (colluders holding the rest of a bank's
        # group read it exactly), so no colluder rows rather than misleading ones.
        return rows
    for k in range(1, len(names)):
        colluders = names[:k]
        honest = names[k:]
        defaults, m0, m1 = group_estimate(known, run, colluders)
        for name in honest:
            bank = run.banks[name]
            rows.append(
                _mean_row(
                    f"secure aggregation + {k} colluding bank(s) ({', '.join(colluders)})"
                    + _generous(known),
                    name,
                    np.r_[m0, m1],
                    true_class_means(bank.x_train, bank.y_train),
                    std,
                    defaults_error=abs(defaults - float(bank.y_train.sum())),
                    colluders=k,
                )
            )
    return rows


def masked_rows(known: RoundOne, run: RunData) -> list[dict]:
    """Each masked round-1 reply decoded as if it were one bank's plaintext input, compared
    with the update of the bank it fits best (generous to the attacker).

    ``features_recovered`` here is the share of update coordinates within 1% of the true
    value, ``update_error`` the relative L2 error of the whole update.
    """
    from strategies.secagg.vector import Layout, decode

    truth = {}
    for name, bank in run.banks.items():
        contribution, weight = _colluder_contribution(known, bank, name)
        truth[name] = contribution / weight
    rows = []
    for reply in known.masked:
        try:
            decoded = decode(Layout.from_json(reply.layout), reply.vector, reply.bits)
            update = np.concatenate([np.ravel(a) for a in decoded.arrays.values()])
        except (ValueError, ZeroDivisionError):
            update = np.full(len(next(iter(truth.values()))), np.nan)
        errors = {
            name: float(np.linalg.norm(update - true) / np.linalg.norm(true))
            for name, true in truth.items()
        }
        best = min(errors, key=errors.get)
        close = np.abs(update - truth[best]) <= TOLERANCE * np.abs(truth[best])
        rows.append(
            {
                "setting": "secure aggregation: one masked reply decoded as if plaintext",
                "target": f"node {reply.node} vs {best}",
                "update_error": errors[best],
                "features_recovered": float(np.mean(close)),
            }
        )
    return rows


def bank_gradient(known: RoundOne, x: np.ndarray, y: np.ndarray, key: str) -> np.ndarray:
    """``G`` as the server reads it from the round-1 reply of a bank holding rows ``x, y``
    (unscaled), trained or evaluated by the bank's own code with the run's settings."""
    if known.newton:
        return newton_contribution(known, x, y)[: len(known.start.vector)]
    new = local_update(
        known.start,
        known.scaler.transform(x),
        y,
        known.pos_weight,
        known.settings,
        1,
        bank_key=key,
        state=None,
    )
    return _gradient_from_update(known, new, float(len(y)))


def hypothetical_rows(known: RoundOne, run: RunData, rows_tried: int, seed: int) -> list[dict]:
    """What a plaintext reply gives for banks the run did not have, computed with the run's
    settings by the bank's own code: a one-record bank (one row each of ``rows_tried`` rows of
    the first bank) and a lone-default bank (the first bank's repaid rows plus one default)."""
    name, bank = next(iter(run.banks.items()))
    reach = "; under secure aggregation: n-1 colluders" if known.secure else ""
    rng = np.random.default_rng(seed)
    std = feature_sd(run)
    scores = []
    for i in rng.choice(len(bank.y_train), size=min(rows_tried, len(bank.y_train)), replace=False):
        x, y = bank.x_train[i : i + 1], bank.y_train[i : i + 1]
        gradient = bank_gradient(known, x, y, f"{name}-row{i}")
        estimate = known.scaler.mean + known.scaler.std * invert_one_record(gradient)
        scores.append(Score.of(estimate, x[0], std))
    out = [
        {
            "setting": "plaintext: a one-record bank's update (x = G_w / G_b)" + reach,
            "target": f"{len(scores)} rows of {name}",
            "max_error_sd": max(s.max_error for s in scores),
            "mean_error_sd": float(np.mean([s.mean_error for s in scores])),
            "features_recovered": float(np.mean([s.recovered for s in scores])),
        }
    ]
    defaults = np.flatnonzero(bank.y_train == 1)
    keep = np.r_[np.flatnonzero(bank.y_train == 0), defaults[rng.integers(len(defaults))]]
    x, y = bank.x_train[keep], bank.y_train[keep]
    gradient = bank_gradient(known, x, y, f"{name}-lone")
    _, _, lone = class_means(
        gradient,
        exact_moments(known, BankData((), x, y, x[:0], y[:0])),
        known.scaler,
        known.pos_weight,
    )
    out.append(
        Score.of(lone, x[-1], std).row(
            setting="plaintext: a lone default (its bank's update + moments)" + reach,
            target=f"{name}'s repaid rows + 1 default",
        )
    )
    return out


def audit_inversion(known: RoundOne, run: RunData, *, rows_tried: int = 20, seed: int = 0) -> dict:
    """All inversion results of a run (see the module docstring).

    Returns
    -------
    dict
        ``secure``, ``exact_case`` (one full-batch SGD step without DP: the formulas are
        exact, else approximate), ``tolerance`` and ``rows`` (one dict per setting and target).
    """
    rows = baseline_rows(known, run)
    rows.extend(secure_rows(known, run) if known.secure else plaintext_rows(known, run))
    rows.extend(hypothetical_rows(known, run, rows_tried, seed))
    return {
        "secure": known.secure,
        "exact_case": known.one_full_batch_step,
        "tolerance_sd": TOLERANCE,
        "rows": rows,
    }
