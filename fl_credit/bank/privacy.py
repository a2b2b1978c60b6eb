"""A bank's side of record-level DP for everything it releases besides training.

Under ``dp=opacus`` every statistic a bank sends (feature sums and class counts, validation
and evaluation histograms) is a release of its rows: the bank adds its share of distributed
Gaussian noise (:mod:`strategies.dp.noise`) and counts the release in the same privacy plan
as its DP-SGD steps (:mod:`strategies.dp.plan`), so one accountant composes them. A release
asked for more often than planned is refused, which also stops a coordinator from averaging
repeated answers.

How many banks share the noise. The secure-aggregation mod tells the app, through a record
only it can set, the threshold of the instance the reply is masked in: every sum the
coordinator can unmask holds at least that many replies, so each bank adds
``1 / (threshold - colluders)`` of the variance. A reply that is not masked (plain FedAvg) is
released alone and carries the whole noise.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

import numpy as np
from flwr.app import Context, Message

from fl_credit.protocol.settings import BankSettings

log = logging.getLogger(__name__)

SECAGG_CONTEXT = "secagg-context"  # set by strategies.secagg.client_mod for masked replies only


def noise_contributors(message: Message) -> int:
    """The fewest replies any released sum of this reply holds (1 when not masked)."""
    record = message.content.config_records.get(SECAGG_CONTEXT) if message.has_content() else None
    if record is None:
        return 1
    return max(1, int(record["threshold"]))


def noise_rng(settings: BankSettings, release: str, bank_key: str) -> np.random.Generator:
    """From the OS's randomness, unless the bank itself opted into reproducible noise.

    ``dp-secret-noise`` is set by the bank's floors (:mod:`fl_credit.bank.floors`), never
    taken from the coordinator: seeded noise (seed, release, bank name: all public) can be
    regenerated and removed by the coordinator, so it is for studies only.
    """
    if settings.dp_secret_noise:
        return np.random.default_rng(secrets.randbits(64))
    digest = hashlib.sha256(f"release|{settings.seed}|{release}|{bank_key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def private_release(
    values: np.ndarray,
    *,
    release: str,
    sensitivity: float,
    message: Message,
    context: Context,
    settings: BankSettings,
    n_rows: int,
    bank_key: str,
) -> np.ndarray:
    """``values`` with this bank's noise share under ``dp=opacus`` (unchanged otherwise).

    Parameters
    ----------
    values : numpy.ndarray
        The bank's contribution to a sum.
    release : str
        Which planned release this is (``statistics``, ``validation``, ``evaluation``).
    sensitivity : float
        L2 sensitivity of ``values`` to one borrower.
    message, context : Message, Context
        The request (for the secure-aggregation threshold) and the bank's context (plan).
    settings : BankSettings
        The run's settings.
    n_rows : int
        The bank's training rows (for its plan; never sent).
    bank_key : str
        Tells banks apart in the noise seed.

    Raises
    ------
    BudgetExhausted
        When the release was already made as often as planned.
    """
    if settings.dp_mode != "opacus":
        return values
    from strategies.dp.plan import plan_for_round, take_release

    plan_for_round(context.state, settings.dp_settings(), n_rows)
    planned = take_release(context.state, release)
    contributors = noise_contributors(message)
    log.info(
        "%s: %s released with noise multiplier %.2f (share for %d contributors)",
        bank_key,
        release,
        planned.noise_multiplier,
        contributors,
    )
    return _with_share(
        values, planned.noise_multiplier, sensitivity, message, settings, release, bank_key
    )


def private_step(
    values: np.ndarray,
    *,
    sensitivity: float,
    message: Message,
    context: Context,
    settings: BankSettings,
    n_rows: int,
    bank_key: str,
) -> np.ndarray:
    """``values`` with this bank's noise share as one step of its plan's training budget.

    For a model trained by full-batch releases rather than DP-SGD (the tree levels of
    ``model=gbm``): the plan's training steps are Gaussian releases at sample rate 1, each
    counted as a round in the same accountant history as DP-SGD's, so the privacy report and
    the coordinator's account treat both alike.

    Raises
    ------
    BudgetExhausted
        When every planned step was already released.
    PrivacyConfigError
        When the plan's sample rate is not 1 (a full-batch release is not subsampled).
    """
    from strategies.dp.errors import BudgetExhausted, PrivacyConfigError
    from strategies.dp.plan import plan_for_round, record_round, rounds_done

    plan = plan_for_round(context.state, settings.dp_settings(), n_rows)
    if plan.sample_rate != 1.0 or plan.steps_per_round != 1:
        raise PrivacyConfigError("a full-batch release needs a plan of one step at rate 1")
    done = rounds_done(context.state)
    if done >= plan.total_rounds:
        raise BudgetExhausted(f"privacy budget spent: {done} of {plan.total_rounds} releases")
    noised = _with_share(
        values, plan.noise_multiplier, sensitivity, message, settings, f"step-{done}", bank_key
    )
    record_round(context.state, [(plan.noise_multiplier, 1.0, done + 1)], done + 1)
    return noised


def _with_share(
    values: np.ndarray,
    noise_multiplier: float,
    sensitivity: float,
    message: Message,
    settings: BankSettings,
    release: str,
    bank_key: str,
) -> np.ndarray:
    from strategies.dp.noise import add_noise_share

    return add_noise_share(
        values,
        noise_multiplier=noise_multiplier,
        sensitivity=sensitivity,
        contributors=noise_contributors(message),
        colluders=settings.dp_colluders,
        rng=noise_rng(settings, release, bank_key),
    )
