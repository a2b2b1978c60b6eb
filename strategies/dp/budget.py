"""One privacy budget per party, split between every release that depends on its rows.

A bank's rows reach the coordinator through several mechanisms, not only training: the
statistics that fix the standardiser and the class weight, the validation-score histograms
behind the decision threshold, and federated evaluation. Each is a Gaussian mechanism on a
sum with a known L2 sensitivity (a "release"), and DP-SGD is a run of Poisson-subsampled
Gaussian steps. All of them are entries ``(noise_multiplier, sample_rate, steps)`` of one
accountant history, so one accountant (Opacus's PRV or RDP) composes them into the epsilon a
bank actually spends.

How the budget is split. Each fixed release ``r`` gets the noise multiplier at which it would
spend ``share_r * epsilon`` on its own (``steps_r`` releases at sample rate 1); training then
gets the smallest noise multiplier for which the composition of everything stays within
``(epsilon, delta)``. Composition is tighter than adding epsilons, so training ends up with a
little more than ``1 - sum(shares)`` of the budget, and the total is exactly the target (to
the accountant's search tolerance), never above.

Everything here depends only on public settings (target, delta, shares, sample rate, planned
rounds), never on a bank's row count: the coordinator can compute the same plan and report
each bank's composed epsilon without being told anything about the bank.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from strategies.dp.accounting import (
    accountant_epsilon,
    check_accountant,
    quiet_rdp_orders,
    rdp_orders,
)
from strategies.dp.errors import PrivacyConfigError

log = logging.getLogger(__name__)

TRAINING = "training"
PRV_MIN_NOISE = 0.5
"""Below this noise multiplier a plan uses the RDP accountant (see :func:`plan_budget`)."""
SEARCH_STEPS = 40
TOLERANCE = 0.01  # epsilon tolerance of the noise search (Opacus uses the same)
MAX_NOISE = 1_000.0


@dataclass(frozen=True)
class Release:
    """One mechanism of the plan.

    Attributes
    ----------
    name : str
        What is released (``statistics``, ``validation``, ``evaluation``, ``training``).
    noise_multiplier : float
        Noise standard deviation divided by the release's L2 sensitivity.
    sample_rate : float
        Poisson sampling rate (1.0 for a release of a sum over all rows).
    steps : int
        Releases (or DP-SGD steps) planned.
    """

    name: str
    noise_multiplier: float
    sample_rate: float
    steps: int


@dataclass(frozen=True)
class BudgetPlan:
    """The noise of every release, fixed once for the whole run.

    Attributes
    ----------
    epsilon, delta : float
        The party's budget for the run.
    accountant : str
        ``"prv"`` or ``"rdp"``.
    releases : tuple of Release
        Every mechanism, training last.
    """

    epsilon: float
    delta: float
    accountant: str
    releases: tuple[Release, ...]

    def release(self, name: str) -> Release:
        """The release called ``name``."""
        for release in self.releases:
            if release.name == name:
                return release
        raise KeyError(f"no release {name!r} in the privacy plan")

    def noise_multiplier(self, name: str) -> float:
        """Noise multiplier of release ``name``."""
        return self.release(name).noise_multiplier

    def history(self, done: Mapping[str, int] | None = None) -> list[tuple[float, float, int]]:
        """Accountant history of the releases made (all planned ones when ``done`` is None)."""
        entries = []
        for r in self.releases:
            steps = r.steps if done is None else int(done.get(r.name, 0))
            if steps > 0:
                entries.append((r.noise_multiplier, r.sample_rate, steps))
        return entries

    def epsilon_spent(self, done: Mapping[str, int] | None = None, accountant: str = "") -> float:
        """Composed epsilon of the releases made (``done``: release name -> count)."""
        return accountant_epsilon(self.history(done), self.delta, accountant or self.accountant)

    def epsilon_alone(self, name: str) -> float:
        """Epsilon release ``name`` would spend by itself over all its planned steps."""
        r = self.release(name)
        return accountant_epsilon(
            [(r.noise_multiplier, r.sample_rate, r.steps)], self.delta, self.accountant
        )

    def report(self, done: Mapping[str, int] | None = None) -> dict:
        """JSON-ready summary: target, composed epsilon (planned and spent, with the RDP bound
        of the spent history as a cross-check), each release."""
        return {
            "target_epsilon": self.epsilon,
            "delta": self.delta,
            "accountant": self.accountant,
            "epsilon_planned": self.epsilon_spent(None),
            "epsilon_spent": self.epsilon_spent(done) if done is not None else None,
            # Independent cross-check: the RDP bound of the same history (looser than PRV).
            "epsilon_spent_rdp": self.epsilon_spent(done, "rdp") if done is not None else None,
            "releases": [
                {
                    "name": r.name,
                    "noise_multiplier": r.noise_multiplier,
                    "sample_rate": r.sample_rate,
                    "planned": r.steps,
                    "done": None if done is None else int(done.get(r.name, 0)),
                    "epsilon_alone": self.epsilon_alone(r.name),
                }
                for r in self.releases
            ],
        }


def plan_budget(
    *,
    epsilon: float,
    delta: float,
    accountant: str,
    fixed: Mapping[str, tuple[float, int]],
    training: tuple[float, int] | None,
) -> BudgetPlan:
    """Split ``(epsilon, delta)`` between fixed releases and training.

    Parameters
    ----------
    epsilon, delta : float
        The budget for the whole run.
    accountant : str
        ``"prv"`` or ``"rdp"``: the accountant that calibrates every noise level and reports.
    fixed : Mapping[str, tuple[float, int]]
        For each release other than training: ``(share of epsilon, number of releases)``.
        Releases planned zero times are left out.
    training : tuple[float, int] or None
        ``(sample rate, steps)`` of DP-SGD or of per-round releases; None for none.

    Returns
    -------
    BudgetPlan
        The noise multiplier of every release.

    Raises
    ------
    PrivacyConfigError
        When the shares are out of range or leave no usable noise level for training.

    Notes
    -----
    With ``accountant="prv"`` every noise level is first found with the RDP bound (fast),
    then refined with PRV. When any RDP level is below :data:`PRV_MIN_NOISE` (very large
    epsilon) the plan keeps the RDP levels and reports with RDP: PRV's discretised
    privacy-loss domain grows without bound as the noise vanishes, and a plan at epsilon
    1000 would take many minutes per evaluation of the accountant.
    """
    items = tuple(sorted((k, float(v[0]), int(v[1])) for k, v in fixed.items()))
    train = None if training is None else (float(training[0]), int(training[1]))
    return _plan(float(epsilon), float(delta), check_accountant(accountant), items, train)


@functools.lru_cache(maxsize=64)
def _plan(
    epsilon: float,
    delta: float,
    accountant: str,
    fixed: tuple[tuple[str, float, int], ...],
    training: tuple[float, int] | None,
) -> BudgetPlan:
    if not epsilon > 0:
        raise PrivacyConfigError(f"dp.epsilon must be a positive number, got {epsilon!r}")
    if not 0 < delta < 1:
        raise PrivacyConfigError(f"dp.delta must be in (0, 1), got {delta!r}")
    active = [(name, share, steps) for name, share, steps in fixed if steps > 0]
    shares = sum(share for _, share, _ in active)
    if any(not 0 < share < 1 for _, share, _ in active) or shares >= 1:
        raise PrivacyConfigError(
            "dp.budget shares must each be in (0, 1) and sum below 1, got "
            + ", ".join(f"{name}={share:g}" for name, share, _ in active)
        )
    if math.isinf(epsilon):
        return _noiseless_plan(epsilon, delta, accountant, active, training)
    started = time.perf_counter()
    log.info("planning the noise of every release (epsilon %g, %s accountant)", epsilon, accountant)
    rdp_fixed = [
        Release(name, _gaussian_noise(share * epsilon, delta, steps), 1.0, steps)
        for name, share, steps in active
    ]
    rdp_training = None
    if training is not None:
        rate, steps = training
        rdp_training = _training_noise(epsilon, delta, rdp_fixed, rate, steps)
    smallest = min([r.noise_multiplier for r in rdp_fixed] + [rdp_training or np.inf])
    if accountant == "prv" and smallest < PRV_MIN_NOISE:
        log.warning(
            "noise multiplier %.3f is below %.1f, where the PRV accountant's privacy-loss "
            "domain grows without bound (minutes per evaluation): this plan and its reports "
            "use the RDP bound instead, which is valid and slightly looser",
            smallest,
            PRV_MIN_NOISE,
        )
        accountant = "rdp"
    if accountant == "rdp":
        releases = rdp_fixed
    else:
        releases = [
            Release(r.name, _prv_gaussian_noise(r, share, epsilon, delta), 1.0, r.steps)
            for r, (_, share, _) in zip(rdp_fixed, active, strict=True)
        ]
    if training is not None:
        rate, steps = training
        sigma = rdp_training
        if accountant == "prv":
            sigma = _prv_training_noise(epsilon, delta, releases, rate, steps, rdp_training)
        releases.append(Release(TRAINING, sigma, rate, steps))
    log.info("noise planned in %.1f s", time.perf_counter() - started)
    return BudgetPlan(epsilon, delta, accountant, tuple(releases))


def _noiseless_plan(
    epsilon: float,
    delta: float,
    accountant: str,
    active: list[tuple[str, float, int]],
    training: tuple[float, int] | None,
) -> BudgetPlan:
    """Every release without noise: DP-SGD's clipping and sampling alone, no privacy.

    An infinite epsilon is met by noise multiplier 0; the accountant then reports
    ``epsilon_spent = inf``. Used to measure what the switch to DP-SGD costs apart from noise.
    """
    log.warning("epsilon inf: every release and DP-SGD step adds no noise (no privacy)")
    releases = [Release(name, 0.0, 1.0, steps) for name, _, steps in active]
    if training is not None:
        releases.append(Release(TRAINING, 0.0, *training))
    return BudgetPlan(epsilon, delta, accountant, tuple(releases))


def _orders() -> np.ndarray:
    return np.asarray(rdp_orders(), dtype=float)


def _rdp(history: list[tuple[float, float, int]]) -> np.ndarray:
    """RDP curve of a history at Opacus's default orders."""
    from opacus.accountants.analysis import rdp as analysis

    orders = _orders()
    total = np.zeros_like(orders)
    for sigma, rate, steps in history:
        if rate >= 1.0:  # the Gaussian mechanism: exact and instant
            total += steps * orders / (2.0 * sigma**2)
        else:
            total += analysis.compute_rdp(
                q=rate, noise_multiplier=sigma, steps=steps, orders=list(orders)
            )
    return total


def _rdp_epsilon(rdp: np.ndarray, delta: float) -> float:
    from opacus.accountants.analysis import rdp as analysis

    with quiet_rdp_orders():
        eps, _ = analysis.get_privacy_spent(orders=list(_orders()), rdp=rdp, delta=delta)
    return float(eps)


def _search(spent, epsilon: float, low: float, high: float) -> float:
    """Smallest noise in ``[low, high]`` (to ``TOLERANCE`` in epsilon) with spent <= epsilon."""
    spent_high = spent(high)
    while spent_high > epsilon:
        low, high = high, high * 2.0
        if high > MAX_NOISE:
            raise PrivacyConfigError(
                f"dp.epsilon={epsilon:g} cannot be met with a noise multiplier below "
                f"{MAX_NOISE:g}; raise dp.epsilon, lower the dp.budget shares or plan fewer rounds"
            )
        spent_high = spent(high)
    for _ in range(SEARCH_STEPS):
        if epsilon - spent_high < TOLERANCE or high - low < 1e-4:
            break
        mid = (low + high) / 2.0
        spent_mid = spent(mid)
        if spent_mid > epsilon:
            low = mid
        else:
            high, spent_high = mid, spent_mid
    return float(high)


def _gaussian_noise(epsilon: float, delta: float, steps: int) -> float:
    """Noise multiplier of ``steps`` Gaussian releases that together spend ``epsilon`` (RDP)."""
    return _search(lambda s: _rdp_epsilon(_rdp([(s, 1.0, steps)]), delta), epsilon, 0.05, 1.0)


def _prv_gaussian_noise(rdp: Release, share: float, epsilon: float, delta: float) -> float:
    """:func:`_gaussian_noise` under PRV, refined below the RDP answer ``rdp``."""
    return _search(
        lambda s: accountant_epsilon([(s, 1.0, rdp.steps)], delta, "prv"),
        share * epsilon,
        rdp.noise_multiplier / 4,
        rdp.noise_multiplier,
    )


def _training_noise(
    epsilon: float, delta: float, fixed: list[Release], rate: float, steps: int
) -> float:
    """Smallest training noise multiplier keeping the whole composition within epsilon by
    the RDP bound (fast; PRV, tighter, is then searched below it)."""
    base_rdp = _rdp([(r.noise_multiplier, r.sample_rate, r.steps) for r in fixed])

    def rdp_spent(sigma: float) -> float:
        return _rdp_epsilon(base_rdp + _rdp([(sigma, rate, steps)]), delta)

    return _search(rdp_spent, epsilon, 0.05, 1.0)


def _prv_training_noise(
    epsilon: float, delta: float, fixed: list[Release], rate: float, steps: int, rdp: float
) -> float:
    """The PRV training noise, searched below the RDP answer ``rdp``."""
    base = [(r.noise_multiplier, r.sample_rate, r.steps) for r in fixed]

    def prv_spent(sigma: float) -> float:
        return accountant_epsilon([*base, (sigma, rate, steps)], delta, "prv")

    return _search(prv_spent, epsilon, rdp / 2.0, rdp)
