"""A bank's DP-SGD privacy plan and spent budget, kept in ``context.state``.

The plan is fixed at the bank's first DP-relevant message from public settings only
(:class:`DPSettings`: target epsilon and delta, the Poisson sample rate, clipping norm, rounds,
epochs and the budget shares of the other releases), so the coordinator can compute the same
noise levels and report each bank's composed epsilon without learning its row count. The row
count is used locally only: for the expected batch size (the divisor of the noisy gradient
sum) and to check that delta is well below ``1 / rows``.

Under the Deployment Engine every message starts a fresh ClientApp process, so the plan and
the accountant's history round-trip through one :class:`~flwr.app.ConfigRecord` of scalars
and flat lists. Layout of ``state["dp"]``:

======================== ========= ====================================================
key                      type      meaning
======================== ========= ====================================================
target-epsilon           float     epsilon budget for the whole horizon (all releases)
delta                    float     delta
accountant               str       ``"prv"`` or ``"rdp"``
noise-multiplier         float     sigma of DP-SGD, fixed once for the horizon
sample-rate              float     Poisson rate q (public)
expected-batch-size      int       q * n_rows, the divisor of the noisy gradient sum
steps-per-epoch          int       max(1, round(1 / q))
local-epochs             int       epochs per round
total-rounds             int       rounds planned
max-grad-norm            float     per-sample clipping norm C
n-rows                   int       training rows the plan was made for (never sent)
release-names            [str]     the other releases (statistics, validation, ...)
release-noise            [float]   their noise multipliers
release-planned          [int]     how many times each is planned
release-done             [int]     how many times each was made
history-noise            [float]   DP-SGD accountant history: noise multiplier of each run
history-rate             [float]   DP-SGD accountant history: sample rate of each run
history-steps            [int]     DP-SGD accountant history: steps in each run
rounds-done              int       training calls completed
last-server-round        int       server round of the last completed call
======================== ========= ====================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from flwr.app import ConfigRecord, RecordDict

from strategies.dp.accounting import History, check_accountant
from strategies.dp.budget import TRAINING, BudgetPlan, Release, plan_budget
from strategies.dp.errors import PrivacyConfigError

STATE_KEY = "dp"
_HISTORY_KEYS = ("history-noise", "history-rate", "history-steps")
_RELEASE_KEYS = ("release-names", "release-noise", "release-planned", "release-done")
DEFAULT_DELTA = 1e-7
"""Default delta of record-level DP: well below 1 / rows for banks of up to 10^5 rows
(n * delta <= 0.01); a larger bank refuses it and must be given a smaller ``dp.delta``."""
MAX_N_DELTA = 0.01


@dataclass(frozen=True)
class DPSettings:
    """Public DP-SGD settings of a bank (nothing here depends on its rows).

    Attributes
    ----------
    epsilon, delta : float
        The bank's budget for the whole run; ``delta`` 0 means :data:`DEFAULT_DELTA`.
    accountant : str
        ``"prv"`` or ``"rdp"``.
    sample_rate : float
        Poisson sampling rate q of each DP-SGD step.
    max_grad_norm : float
        Per-sample clipping norm C.
    local_epochs, total_rounds : int
        Epochs per round and rounds planned.
    releases : tuple of (str, float, int)
        The other releases of the bank's rows: ``(name, share of epsilon, count)``.
    """

    epsilon: float
    delta: float = 0.0
    accountant: str = "prv"
    sample_rate: float = 0.1
    max_grad_norm: float = 1.0
    local_epochs: int = 1
    total_rounds: int = 1
    releases: tuple[tuple[str, float, int], ...] = ()

    @property
    def effective_delta(self) -> float:
        """The delta in force."""
        return float(self.delta) if self.delta > 0 else DEFAULT_DELTA

    @property
    def steps_per_epoch(self) -> int:
        """Noisy steps per epoch: about one pass over the rows."""
        return max(1, round(1.0 / self.sample_rate))

    @property
    def planned_steps(self) -> int:
        """DP-SGD steps over the whole horizon."""
        return self.steps_per_epoch * self.local_epochs * self.total_rounds

    def check(self) -> None:
        """Raise :class:`PrivacyConfigError` on a setting out of range."""
        if not 0 < self.sample_rate <= 1:
            raise PrivacyConfigError(f"dp.sample_rate must be in (0, 1], got {self.sample_rate}")
        if not self.max_grad_norm > 0:
            raise PrivacyConfigError(f"dp.max_grad_norm must be positive, got {self.max_grad_norm}")
        if self.total_rounds < 1 or self.local_epochs < 1:
            raise PrivacyConfigError("train.rounds and train.local_epochs must be at least 1")
        check_accountant(self.accountant)

    def budget(self) -> BudgetPlan:
        """Noise of every release (computed from public settings; cached per process)."""
        self.check()
        return plan_budget(
            epsilon=self.epsilon,
            delta=self.effective_delta,
            accountant=self.accountant,
            fixed={name: (share, count) for name, share, count in self.releases},
            training=(self.sample_rate, self.planned_steps),
        )


@dataclass(frozen=True)
class PrivacyPlan:
    """DP-SGD parameters a bank fixes at its first round and keeps for the whole run."""

    target_epsilon: float
    delta: float
    accountant: str
    noise_multiplier: float
    sample_rate: float
    expected_batch_size: int
    steps_per_epoch: int
    local_epochs: int
    total_rounds: int
    max_grad_norm: float
    n_rows: int

    @property
    def steps_per_round(self) -> int:
        """Noisy steps in one training call."""
        return self.steps_per_epoch * self.local_epochs

    @property
    def planned_steps(self) -> int:
        """Noisy steps over the whole horizon."""
        return self.steps_per_round * self.total_rounds

    def to_values(self) -> dict[str, int | float | str]:
        """The plan as ConfigRecord values (dashed keys)."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @classmethod
    def from_record(cls, record: ConfigRecord) -> PrivacyPlan:
        """Read a plan written by :meth:`to_values`."""
        return cls(**{f.name: record[f.name.replace("_", "-")] for f in fields(cls)})


def plan_inputs(settings: DPSettings, n_rows: int) -> dict[str, int | float | str]:
    """Every plan field except the noise multiplier.

    Raises
    ------
    PrivacyConfigError
        On a setting out of range, or a delta not well below ``1 / n_rows``.
    """
    settings.check()
    if n_rows < 1:
        raise PrivacyConfigError("dp=opacus needs at least one training row on every bank")
    delta = settings.effective_delta
    if delta * n_rows > MAX_N_DELTA:
        raise PrivacyConfigError(
            f"dp.delta={delta:.1e} is not well below 1/rows for a bank of {n_rows} rows "
            f"(rows x delta > {MAX_N_DELTA}); set dp.delta <= {MAX_N_DELTA / n_rows:.1e}"
        )
    return {
        "target_epsilon": float(settings.epsilon),
        "delta": delta,
        # The plan's own accountant: RDP when the noise is too small for PRV (budget.py).
        "accountant": settings.budget().accountant,
        "sample_rate": float(settings.sample_rate),
        "expected_batch_size": max(1, round(settings.sample_rate * n_rows)),
        "steps_per_epoch": settings.steps_per_epoch,
        "local_epochs": int(settings.local_epochs),
        "total_rounds": int(settings.total_rounds),
        "max_grad_norm": float(settings.max_grad_norm),
        "n_rows": int(n_rows),
    }


def make_plan(settings: DPSettings, n_rows: int) -> tuple[PrivacyPlan, BudgetPlan]:
    """Fix every noise level for the whole horizon from the public settings.

    Returns
    -------
    tuple of (PrivacyPlan, BudgetPlan)
        The DP-SGD plan (with the training noise of the composed budget) and the budget.
    """
    inputs = plan_inputs(settings, n_rows)
    budget = settings.budget()
    return PrivacyPlan(noise_multiplier=budget.noise_multiplier(TRAINING), **inputs), budget


def stored_plan(state: RecordDict) -> PrivacyPlan | None:
    """The plan kept in ``state``, or None before the bank's first DP round."""
    if STATE_KEY not in state:
        return None
    return PrivacyPlan.from_record(state[STATE_KEY])


def plan_for_round(state: RecordDict, settings: DPSettings, n_rows: int) -> PrivacyPlan:
    """The stored plan, checked against this round's settings; made and stored if absent.

    Raises
    ------
    PrivacyConfigError
        When the settings differ from those the plan was fixed with: changing the horizon,
        epsilon or sampling mid-run would silently break the budget.
    """
    plan = stored_plan(state)
    if plan is None:
        plan, budget = make_plan(settings, n_rows)
        fixed = [r for r in budget.releases if r.name != TRAINING]
        state[STATE_KEY] = ConfigRecord(
            {
                **plan.to_values(),
                "release-names": [r.name for r in fixed],
                "release-noise": [float(r.noise_multiplier) for r in fixed],
                "release-planned": [int(r.steps) for r in fixed],
                "release-done": [0] * len(fixed),
                "history-noise": [],
                "history-rate": [],
                "history-steps": [],
                "rounds-done": 0,
                "last-server-round": 0,
            }
        )
        return plan
    fixed = asdict(plan)
    changed = [
        f"{name} {fixed[name]!r} -> {value!r}"
        for name, value in plan_inputs(settings, n_rows).items()
        if fixed[name] != value
    ]
    if changed:
        raise PrivacyConfigError(
            "this bank's privacy plan was fixed at its first DP message and the settings "
            "changed: " + "; ".join(changed)
        )
    return plan


def stored_releases(state: RecordDict) -> list[tuple[Release, int]]:
    """The plan's other releases and how many of each were made: ``[(release, done)]``."""
    if STATE_KEY not in state:
        return []
    names, noise, planned, done = (list(state[STATE_KEY][k]) for k in _RELEASE_KEYS)
    return [
        (Release(str(n), float(s), 1.0, int(p)), int(d))
        for n, s, p, d in zip(names, noise, planned, done, strict=True)
    ]


def take_release(state: RecordDict, name: str) -> Release:
    """Count one release of ``name`` and return it (its noise multiplier).

    Raises
    ------
    BudgetExhausted
        When ``name`` was already released as often as planned.
    """
    from strategies.dp.errors import BudgetExhausted

    record = state[STATE_KEY]
    names = [str(n) for n in record["release-names"]]
    if name not in names:
        raise PrivacyConfigError(f"the privacy plan has no release {name!r}")
    k = names.index(name)
    done, planned = list(record["release-done"]), list(record["release-planned"])
    if int(done[k]) >= int(planned[k]):
        raise BudgetExhausted(f"privacy budget for {name} spent ({planned[k]} planned)")
    done[k] = int(done[k]) + 1
    record["release-done"] = done
    return Release(name, float(record["release-noise"][k]), 1.0, int(planned[k]))


def full_history(state: RecordDict) -> History:
    """Accountant history of everything released so far: other releases and DP-SGD."""
    made = [(r.noise_multiplier, 1.0, done) for r, done in stored_releases(state) if done]
    return [*made, *stored_history(state)]


def stored_history(state: RecordDict) -> History:
    """The accountant history ``[(noise_multiplier, sample_rate, steps), ...]`` in ``state``."""
    if STATE_KEY not in state:
        return []
    record = state[STATE_KEY]
    noise, rate, steps = (list(record[k]) for k in _HISTORY_KEYS)
    return [(float(s), float(q), int(n)) for s, q, n in zip(noise, rate, steps, strict=True)]


def steps_done(state: RecordDict) -> int:
    """Noisy steps already spent by this bank."""
    return sum(n for _, _, n in stored_history(state))


def rounds_done(state: RecordDict) -> int:
    """Training calls this bank has completed with DP."""
    return int(state[STATE_KEY]["rounds-done"]) if STATE_KEY in state else 0


def record_round(state: RecordDict, history: History, server_round: int) -> None:
    """Store the accountant history after a completed round and count the round."""
    record = state[STATE_KEY]
    record["history-noise"] = [float(s) for s, _, _ in history]
    record["history-rate"] = [float(q) for _, q, _ in history]
    record["history-steps"] = [int(n) for _, _, n in history]
    record["rounds-done"] = int(record["rounds-done"]) + 1
    record["last-server-round"] = int(server_round)
