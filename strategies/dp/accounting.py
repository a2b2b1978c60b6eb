"""Privacy accounting shared by per-bank DP-SGD and bank-level (central) DP.

Both modes fix one noise multiplier for the whole horizon from a target ``(epsilon, delta)``
and then report the epsilon spent so far from the history of noisy steps. Opacus is imported
inside the functions: a ClientApp that only installs the central-DP mod should not pay Opacus's
import (about a second) on every message under the Deployment Engine.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from strategies.dp.errors import BudgetExhausted, PrivacyConfigError

__all__ = [
    "ACCOUNTANTS",
    "BudgetExhausted",
    "accountant_epsilon",
    "check_accountant",
    "noise_multiplier_for",
    "rdp_epsilon",
]

ACCOUNTANTS = ("prv", "rdp")
BANK_LEVEL_DEFAULT_DELTA = 1e-5
# Above this noise multiplier the released model is noise: refuse rather than train.
MAX_NOISE_MULTIPLIER = 1_000.0

History = list[tuple[float, float, int]]


@contextmanager
def quiet_rdp_orders() -> Iterator[None]:
    """Silence Opacus's "optimal order is the largest/smallest alpha" warnings: the bound
    stays valid (only a little loose), and PRV's domain search triggers them routinely."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        yield


# Opacus's default RDP orders stop at 63, where the conversion to (epsilon, delta) alone costs
# log(1 / delta) / 62 = 0.26 at delta 1e-7: small releases (a 0.05 share of epsilon 2) need
# larger orders to be planned and reported.
EXTRA_ORDERS = (80, 100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1536, 2048)


def rdp_orders() -> list[float]:
    """The RDP orders every computation here uses: Opacus's defaults plus larger ones."""
    from opacus.accountants.rdp import RDPAccountant

    return [float(a) for a in (*RDPAccountant.DEFAULT_ALPHAS, *EXTRA_ORDERS)]


def check_accountant(accountant: str) -> str:
    """Return ``accountant`` if it is ``"prv"`` or ``"rdp"``, else raise PrivacyConfigError."""
    if accountant not in ACCOUNTANTS:
        raise PrivacyConfigError(f"dp.accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    return accountant


def noise_multiplier_for(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
) -> float:
    """The smallest noise multiplier (within Opacus's 0.01 epsilon tolerance) that keeps
    ``steps`` subsampled Gaussian steps within ``(target_epsilon, delta)``.

    Parameters
    ----------
    target_epsilon : float
        Total epsilon for the whole horizon.
    delta : float
        Target delta.
    sample_rate : float
        Poisson sampling rate of each step (1.0 when every record takes part).
    steps : int
        Number of noisy steps over the whole horizon.
    accountant : str
        ``"prv"`` or ``"rdp"``.

    Returns
    -------
    float
        The noise multiplier (noise std divided by the sensitivity).

    Raises
    ------
    PrivacyConfigError
        When the target is not a positive number or no usable noise level meets it.
    """
    from opacus.accountants.utils import get_noise_multiplier

    check_accountant(accountant)
    if not target_epsilon > 0:
        raise PrivacyConfigError(f"dp.epsilon must be a positive number, got {target_epsilon!r}")
    if not 0 < delta < 1:
        raise PrivacyConfigError(f"dp.delta must be in (0, 1), got {delta!r}")
    unreachable = PrivacyConfigError(
        f"dp.epsilon={target_epsilon:g} cannot be met over {steps} steps at sample rate "
        f"{sample_rate:.4g} and delta {delta:.3g} with a noise multiplier below "
        f"{MAX_NOISE_MULTIPLIER:g}; raise epsilon or the batch size, or plan fewer rounds"
    )
    try:
        with quiet_rdp_orders():
            sigma = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
            )
    except (ValueError, OverflowError, ArithmeticError):
        raise unreachable from None
    if not 0 < sigma <= MAX_NOISE_MULTIPLIER:
        raise unreachable
    return float(sigma)


def accountant_epsilon(
    history: Sequence[tuple[float, float, int]], delta: float, accountant: str
) -> float:
    """Epsilon spent by a history of ``(noise_multiplier, sample_rate, steps)`` entries.

    Parameters
    ----------
    history : sequence of (float, float, int)
        Opacus accountant history: each entry is a run of identical noisy steps.
    delta : float
        Target delta.
    accountant : str
        ``"prv"`` or ``"rdp"``.

    Returns
    -------
    float
        Epsilon spent; 0.0 for an empty history, ``inf`` when any entry added no noise.
    """
    from opacus.accountants import create_accountant

    entries = [(float(s), float(q), int(n)) for s, q, n in history if int(n) > 0]
    if not entries:
        return 0.0
    if any(not s > 0 for s, _, _ in entries):
        return math.inf
    acc = create_accountant(mechanism=check_accountant(accountant))
    acc.history = entries
    with quiet_rdp_orders():
        if accountant == "rdp":
            return float(acc.get_epsilon(delta=delta, alphas=rdp_orders()))
        return float(acc.get_epsilon(delta=delta))


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps by the RDP bound.

    Computed directly from Opacus's RDP analysis (not through an accountant object), as an
    independent cross-check of any accountant's report.

    Parameters
    ----------
    noise_multiplier : float
        Noise std divided by the sensitivity (clip norm).
    sample_rate : float
        Poisson sampling rate of each step.
    steps : int
        Number of steps.
    delta : float
        Target delta.

    Returns
    -------
    float
        Epsilon; 0.0 when ``steps`` is 0.
    """
    from opacus.accountants.analysis import rdp as analysis

    if steps <= 0:
        return 0.0
    orders = rdp_orders()
    rdp = analysis.compute_rdp(
        q=sample_rate, noise_multiplier=noise_multiplier, steps=steps, orders=orders
    )
    with quiet_rdp_orders():
        epsilon, _ = analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
    return float(epsilon)
