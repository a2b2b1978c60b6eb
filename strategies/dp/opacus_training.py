"""Per-bank DP-SGD with Opacus, with one privacy budget for the whole federated run.

Each bank protects each of its own training records ("record-level" DP against the server,
the other banks and anyone who sees the models): every local step samples rows by Poisson
sampling at the public rate ``q`` (``dp.sample_rate``), clips each row's gradient to L2 norm
``dp_max_grad_norm`` (C), sums, adds Gaussian noise of std ``sigma * C`` and divides by the
expected batch ``q * n_rows``. The class weight ``pos_weight`` is inside each row's BCE (so it
is clipped with it); the L2 penalty of :func:`fl_credit.model.training.penalised_loss` (and the
FedProx term) do not depend on the rows and are added to the noisy gradient afterwards, which
costs no privacy. (Opacus computes per-sample gradients from layer hooks, so a penalty written
into the loss would be silently dropped.)

Budget. ``sigma`` is fixed once per bank, at its first DP message, for the whole horizon of
``total_rounds * local_epochs * round(1 / q)`` steps, as part of one budget that also covers
the bank's other releases (statistics, validation histograms, evaluation;
:mod:`strategies.dp.budget`). The accountant's history is kept in ``context.state`` and
extended every round, so the reported epsilon is cumulative and the composition of everything
reaches the target (within a 0.01 search tolerance, never above) after the last release. A
call beyond the horizon raises :class:`BudgetExhausted` before touching the model: the bank
stops taking part instead of exceeding its budget.

Empty batches. With small banks or small ``q`` a Poisson batch can be empty. The step is still
taken, as in Opacus: the gradient sum is zero (a zero loss, no NaN), the optimizer applies the
noise, and the accountant counts the step. Skipping the update would reveal that the batch
was empty, which the subsampled-Gaussian analysis does not cover.

Randomness. Batches come from a numpy generator and noise from a torch generator, seeded
from fresh OS entropy (``secret_noise=True``, never stored) or, for reproducible studies
only, from ``(seed, server_round, rounds done, bank_key, n_rows)``: the server knows the
seed, the bank names and the row counts (public weights), so it could regenerate seeded
noise and the sampled rows. The process-global torch RNG is neither used nor changed. The
bank's ClientApp decides which (its floors), never the server. Opacus's own
``secure_mode`` (a CSPRNG and floating-point attack hardening) needs ``torchcsprng``, which
is not installed here.

Not covered by the guarantee: metrics the caller sends in clear (the training loss returned
here is computed on the sampled rows) and SMOTE's synthetic rows (the configuration refuses
SMOTE with Opacus).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from flwr.app import RecordDict
from torch import nn

from strategies.dp.accounting import History, accountant_epsilon, rdp_epsilon
from strategies.dp.errors import BudgetExhausted
from strategies.dp.plan import (
    DPSettings,
    PrivacyPlan,
    full_history,
    plan_for_round,
    record_round,
    rounds_done,
    steps_done,
    stored_history,
    stored_plan,
    stored_releases,
)


@dataclass(frozen=True)
class LocalSteps:
    """How a bank's optimiser steps, apart from DP: the optimiser and the penalties.

    Attributes
    ----------
    optimizer_factory : callable
        ``optimizer_factory(parameters)`` returns the torch optimiser (learning rate inside).
    l2 : float
        L2 penalty on the weights (not the bias).
    proximal_mu : float
        FedProx's proximal term (0 for none).
    """

    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    l2: float = 0.0
    proximal_mu: float = 0.0


log = logging.getLogger(__name__)


def train_private(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    pos_weight: float,
    settings: DPSettings,
    state: RecordDict,
    server_round: int,
    *,
    steps: LocalSteps,
    seed: int = 0,
    bank_key: str = "",
    secret_noise: bool = False,
) -> float:
    """Train ``model`` in place with DP-SGD for ``settings.local_epochs`` epochs.

    Parameters
    ----------
    model : nn.Module
        The received global model; its weights are replaced by the trained ones (plain module
        keys, never an Opacus wrapper).
    x, y : np.ndarray
        The bank's scaled training rows and 0/1 labels.
    pos_weight : float
        Weight of the positive class in the BCE.
    settings : DPSettings
        The bank's public DP settings.
    state : RecordDict
        The bank's persistent ``context.state``; the plan and accountant history live in
        ``state["dp"]`` (see :mod:`strategies.dp.plan`).
    server_round : int
        The server round, mixed into the seeds.
    steps : LocalSteps
        The optimiser and the penalties (L2, proximal).
    seed : int, optional
        The run's seed, mixed into the seeds (ignored with ``secret_noise``).
    bank_key : str, optional
        Something that tells banks apart (partition id, data path), mixed into the seeds so
        that banks with the same row count do not draw the same noise.
    secret_noise : bool, optional
        Seed sampling and noise from OS entropy instead of the shared seed (deployments).

    Returns
    -------
    float
        Mean penalised training loss over the rows sampled in the last epoch (not private).

    Raises
    ------
    PrivacyConfigError
        On bad DP settings, an unreachable epsilon, or settings changed since the plan.
    BudgetExhausted
        When this round would go beyond the planned horizon.
    """
    n_rows = len(y)
    plan = plan_for_round(state, settings, n_rows)
    done = steps_done(state)
    if done + plan.steps_per_round > plan.planned_steps:
        message = (
            f"privacy budget spent: {rounds_done(state)} of {plan.total_rounds} planned DP "
            f"rounds done (epsilon {plan.target_epsilon:g}, delta {plan.delta:.3g}); "
            f"not training in round {server_round}"
        )
        log.warning(message)
        raise BudgetExhausted(message)
    # The bank's own round counter is in the seed too: a server replaying a round number
    # with another model must not get the same noise twice.
    seed_parts = (seed, server_round, rounds_done(state), bank_key, n_rows)
    sampling_rng, noise_gen = _generators(seed_parts, secret_noise)
    private = copy.deepcopy(model)
    loss, history = _dp_sgd(
        private,
        torch.as_tensor(x, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.float32),
        pos_weight=pos_weight,
        plan=plan,
        steps=steps,
        history=stored_history(state),
        sampling_rng=sampling_rng,
        noise_gen=noise_gen,
    )
    model.load_state_dict(private.state_dict())
    record_round(state, history, server_round)
    return loss


def poisson_batches(
    n_rows: int, sample_rate: float, steps: int, rng: np.random.Generator
) -> Iterator[torch.Tensor]:
    """Row indices for ``steps`` Poisson-sampled batches (each row in with prob. ``q``).

    The batch size is drawn from Binomial(n, q) and then that many distinct rows uniformly:
    the same law as n independent coin flips (given its size, a Poisson sample is a uniform
    subset), at O(batch) cost per step where Opacus's sampler costs O(n).

    Parameters
    ----------
    n_rows : int
        Rows to sample from.
    sample_rate : float
        Inclusion probability q of each row.
    steps : int
        Number of batches.
    rng : np.random.Generator
        Source of randomness.

    Yields
    ------
    torch.Tensor
        int64 indices; possibly empty.
    """
    for _ in range(steps):
        if sample_rate >= 1.0:
            yield torch.arange(n_rows)
            continue
        size = int(rng.binomial(n_rows, sample_rate))
        yield torch.as_tensor(rng.choice(n_rows, size=size, replace=False), dtype=torch.int64)


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generators(
    seed_parts: tuple[object, ...], secret: bool
) -> tuple[np.random.Generator, torch.Generator]:
    """Batch-sampling and noise generators for one round."""
    if secret:
        sampling_seed, noise_seed = secrets.randbits(63), secrets.randbits(63)
    else:
        sampling_seed, noise_seed = _seed(*seed_parts, "sampling"), _seed(*seed_parts, "noise")
    return np.random.default_rng(sampling_seed), torch.Generator().manual_seed(noise_seed)


def _dp_sgd(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pos_weight: float,
    plan: PrivacyPlan,
    steps: LocalSteps,
    history: History,
    sampling_rng: np.random.Generator,
    noise_gen: torch.Generator,
) -> tuple[float, History]:
    """Run the round's DP-SGD steps on ``module`` (a private copy); return the last epoch's
    mean penalised loss and the accountant history extended by this round's steps."""
    from opacus.accountants import create_accountant

    step = _Stepper.build(module, pos_weight, plan, steps, noise_gen)
    accountant = create_accountant(mechanism=plan.accountant)
    accountant.history = list(history)
    step.optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=plan.sample_rate))
    epoch_loss = float("nan")
    with warnings.catch_warnings():
        # Opacus's per-sample hooks fire on outputs because inputs need no gradient: expected.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for _ in range(plan.local_epochs):
            total, rows = 0.0, 0
            batches = poisson_batches(len(y), plan.sample_rate, plan.steps_per_epoch, sampling_rng)
            for idx in batches:
                total += step(x[idx], y[idx])
                rows += len(idx)
            epoch_loss = total / rows if rows else float("nan")
    step.gsm.remove_hooks()
    return epoch_loss, [(float(s), float(q), int(n)) for s, q, n in accountant.history]


@dataclass
class _Stepper:
    """One DP-SGD step: per-sample gradients, clip, noise, then the penalties' gradients."""

    module: nn.Module
    gsm: nn.Module
    optimizer: Any
    anchor: list[torch.Tensor]
    pos_weight: torch.Tensor
    steps: LocalSteps

    @classmethod
    def build(
        cls,
        module: nn.Module,
        pos_weight: float,
        plan: PrivacyPlan,
        steps: LocalSteps,
        noise_gen: torch.Generator,
    ) -> _Stepper:
        """Wrap ``module`` for per-sample gradients and its optimizer for clipping + noise."""
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        optimizer = DPOptimizer(
            steps.optimizer_factory(module.parameters()),
            noise_multiplier=plan.noise_multiplier,
            max_grad_norm=plan.max_grad_norm,
            expected_batch_size=plan.expected_batch_size,
            loss_reduction="mean",
            generator=noise_gen,
        )
        return cls(
            module=module,
            gsm=GradSampleModule(module, loss_reduction="mean").train(),
            optimizer=optimizer,
            anchor=[p.detach().clone() for p in module.parameters()],
            pos_weight=torch.tensor(pos_weight, dtype=torch.float32),
            steps=steps,
        )

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> float:
        """Take one step on batch ``(xb, yb)`` (possibly empty); return the batch's summed
        penalised loss before the step."""
        self.optimizer.zero_grad()
        per_row = nn.functional.binary_cross_entropy_with_logits(
            self.gsm(xb), yb, pos_weight=self.pos_weight, reduction="none"
        )
        # sum / max(n, 1): the mean for a real batch, and a zero loss (not NaN) for an empty
        # one, whose per-sample gradients are then empty and clip to a zero sum: the step
        # applies the noise alone, as Opacus does.
        (per_row.sum() / max(len(yb), 1)).backward()
        penalty = _penalty(self.module, self.anchor, self.steps)
        if self.optimizer.pre_step():
            _add_penalty_gradients(self.module, self.anchor, self.steps)
            self.optimizer.original_optimizer.step()
        return float(per_row.detach().sum()) + penalty * len(yb)


def _weight(module: nn.Module) -> torch.Tensor:
    return next(p for n, p in module.named_parameters() if n.endswith("weight"))


def _penalty(module: nn.Module, anchor: list[torch.Tensor], settings: LocalSteps) -> float:
    """The data-independent part of the penalised loss (L2 and proximal terms)."""
    with torch.no_grad():
        value = 0.5 * settings.l2 * float(_weight(module).pow(2).sum())
        if settings.proximal_mu > 0:
            pairs = zip(module.parameters(), anchor, strict=True)
            prox = sum(float((p - a).pow(2).sum()) for p, a in pairs)
            value += 0.5 * settings.proximal_mu * prox
    return value


def _add_penalty_gradients(
    module: nn.Module, anchor: list[torch.Tensor], settings: LocalSteps
) -> None:
    """Add the L2 and proximal gradients to the already noised gradients."""
    with torch.no_grad():
        weight = _weight(module)
        weight.grad += settings.l2 * weight
        if settings.proximal_mu > 0:
            for p, a in zip(module.parameters(), anchor, strict=True):
                p.grad += settings.proximal_mu * (p - a)


def epsilon_spent(state: RecordDict, *, accountant: str | None = None) -> float:
    """Epsilon this bank has spent so far: every release of its rows, composed.

    Parameters
    ----------
    state : RecordDict
        The bank's ``context.state``.
    accountant : str, optional
        ``"prv"`` or ``"rdp"``; the plan's accountant when omitted.

    Returns
    -------
    float
        Epsilon at the plan's delta; 0.0 before the first DP release.
    """
    plan = stored_plan(state)
    if plan is None:
        return 0.0
    return accountant_epsilon(full_history(state), plan.delta, accountant or plan.accountant)


def privacy_report(state: RecordDict) -> dict[str, Any]:
    """This bank's own privacy report (kept on the bank: ``n_rows`` is in it).

    Parameters
    ----------
    state : RecordDict
        The bank's ``context.state``.

    Returns
    -------
    dict
        ``target_epsilon``, ``epsilon`` (everything released so far, composed by the plan's
        accountant), ``epsilon_rdp`` (RDP cross-check), ``epsilon_training`` (DP-SGD alone),
        ``delta``, ``noise_multiplier``, ``sample_rate``, ``steps`` (spent),
        ``planned_steps``, ``accountant``, ``rounds_done``, ``planned_rounds``,
        ``max_grad_norm`` and ``releases`` (name -> [noise multiplier, done, planned]).
        Before any DP release the numbers are 0 and ``accountant`` is ``"none"``.
    """
    plan = stored_plan(state)
    if plan is None:
        zeros = ("target_epsilon", "epsilon", "epsilon_rdp", "epsilon_training", "delta")
        report: dict[str, Any] = dict.fromkeys(zeros, 0.0)
        report.update(noise_multiplier=0.0, sample_rate=0.0, max_grad_norm=0.0)
        report.update(accountant="none", steps=0, planned_steps=0, rounds_done=0)
        report.update(planned_rounds=0, releases={})
        return report
    history = stored_history(state)
    everything = full_history(state)
    return {
        "target_epsilon": plan.target_epsilon,
        "epsilon": accountant_epsilon(everything, plan.delta, plan.accountant),
        "epsilon_rdp": accountant_epsilon(everything, plan.delta, "rdp"),
        "epsilon_training": sum_rdp_epsilon(history, plan.delta)
        if plan.accountant == "rdp"
        else accountant_epsilon(history, plan.delta, plan.accountant),
        "delta": plan.delta,
        "noise_multiplier": plan.noise_multiplier,
        "sample_rate": plan.sample_rate,
        "max_grad_norm": plan.max_grad_norm,
        "accountant": plan.accountant,
        "steps": sum(n for _, _, n in history),
        "planned_steps": plan.planned_steps,
        "rounds_done": rounds_done(state),
        "planned_rounds": plan.total_rounds,
        "releases": {
            r.name: [r.noise_multiplier, done, r.steps] for r, done in stored_releases(state)
        },
    }


def sum_rdp_epsilon(history: History, delta: float) -> float:
    """RDP epsilon of a history whose entries share one noise multiplier and sample rate
    (always the case for DP-SGD here: the plan fixes both); falls back to the RDP accountant
    otherwise."""
    if not history:
        return 0.0
    if len({(s, q) for s, q, _ in history}) == 1:
        sigma, rate, _ = history[0]
        return rdp_epsilon(sigma, rate, sum(n for _, _, n in history), delta)
    return accountant_epsilon(history, delta, "rdp")
