"""A bank's DP-SGD privacy plan and spent budget, kept in ``context.state``.

Under the Deployment Engine every message starts a fresh ClientApp process, so the plan (fixed
at the bank's first training call) and the accountant's history must round-trip through one
:class:`~flwr.app.ConfigRecord` of scalars and flat lists. Layout of ``state["dp"]``:

======================== ========= ====================================================
key                      type      meaning
======================== ========= ====================================================
target-epsilon           float     epsilon budget for the whole horizon
delta                    float     delta (configured, or :func:`default_delta`)
accountant               str       ``"prv"`` or ``"rdp"``
noise-multiplier         float     sigma, fixed once for the horizon
sample-rate              float     Poisson rate q = min(1, dp_batch_size / n_rows)
expected-batch-size      int       q * n_rows, the divisor of the noisy gradient sum
steps-per-epoch          int       max(1, round(1 / q))
local-epochs             int       epochs per round
total-rounds             int       rounds planned
max-grad-norm            float     per-sample clipping norm C
n-rows                   int       training rows the plan was made for
history-noise            [float]   accountant history: noise multiplier of each run
history-rate             [float]   accountant history: sample rate of each run
history-steps            [int]     accountant history: steps in each run
rounds-done              int       training calls completed
last-server-round        int       server round of the last completed call
======================== ========= ====================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from flwr.app import ConfigRecord, RecordDict

from fl_credit.bank_settings import BankSettings
from fl_credit.errors import ConfigError
from strategies.dp.accounting import (
    History,
    check_accountant,
    default_delta,
    noise_multiplier_for,
)

STATE_KEY = "dp"
_HISTORY_KEYS = ("history-noise", "history-rate", "history-steps")


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


def plan_inputs(settings: BankSettings, n_rows: int) -> dict[str, int | float | str]:
    """Every plan field except the noise multiplier, derived from the settings.

    Parameters
    ----------
    settings : BankSettings
        The bank's settings for this round.
    n_rows : int
        The bank's training rows.

    Returns
    -------
    dict
        Keyword arguments for :class:`PrivacyPlan` without ``noise_multiplier``.

    Raises
    ------
    ConfigError
        On a setting out of range.
    """
    if n_rows < 1:
        raise ConfigError("dp=opacus needs at least one training row on every bank")
    if settings.dp_batch_size < 1:
        raise ConfigError(f"dp.batch_size must be at least 1, got {settings.dp_batch_size}")
    if not settings.dp_max_grad_norm > 0:
        raise ConfigError(f"dp.max_grad_norm must be positive, got {settings.dp_max_grad_norm}")
    if settings.total_rounds < 1 or settings.local_epochs < 1:
        raise ConfigError("train.rounds and train.local_epochs must be at least 1")
    sample_rate = min(1.0, settings.dp_batch_size / n_rows)
    return {
        "target_epsilon": float(settings.dp_epsilon),
        "delta": float(settings.dp_delta) if settings.dp_delta > 0 else default_delta(n_rows),
        "accountant": check_accountant(settings.dp_accountant),
        "sample_rate": sample_rate,
        "expected_batch_size": max(1, round(sample_rate * n_rows)),
        "steps_per_epoch": max(1, round(1.0 / sample_rate)),
        "local_epochs": int(settings.local_epochs),
        "total_rounds": int(settings.total_rounds),
        "max_grad_norm": float(settings.dp_max_grad_norm),
        "n_rows": int(n_rows),
    }


def make_plan(settings: BankSettings, n_rows: int) -> PrivacyPlan:
    """Fix the noise multiplier for the whole horizon from the target epsilon and delta.

    Parameters
    ----------
    settings : BankSettings
        The bank's settings (target epsilon, delta, accountant, batch size, rounds, epochs).
    n_rows : int
        The bank's training rows.

    Returns
    -------
    PrivacyPlan
        The plan, with ``total_rounds * local_epochs * steps_per_epoch`` steps.

    Raises
    ------
    ConfigError
        On a setting out of range or an epsilon no usable noise level can meet.
    """
    inputs = plan_inputs(settings, n_rows)
    steps = int(inputs["steps_per_epoch"]) * int(inputs["local_epochs"])
    sigma = noise_multiplier_for(
        target_epsilon=float(inputs["target_epsilon"]),
        delta=float(inputs["delta"]),
        sample_rate=float(inputs["sample_rate"]),
        steps=steps * int(inputs["total_rounds"]),
        accountant=str(inputs["accountant"]),
    )
    return PrivacyPlan(noise_multiplier=sigma, **inputs)


def stored_plan(state: RecordDict) -> PrivacyPlan | None:
    """The plan kept in ``state``, or None before the bank's first DP round."""
    if STATE_KEY not in state:
        return None
    return PrivacyPlan.from_record(state[STATE_KEY])


def plan_for_round(state: RecordDict, settings: BankSettings, n_rows: int) -> PrivacyPlan:
    """The stored plan, checked against this round's settings; made and stored if absent.

    Raises
    ------
    ConfigError
        When the settings differ from those the plan was fixed with: changing the horizon,
        epsilon or sampling mid-run would silently break the budget.
    """
    plan = stored_plan(state)
    if plan is None:
        plan = make_plan(settings, n_rows)
        state[STATE_KEY] = ConfigRecord(
            {
                **plan.to_values(),
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
        raise ConfigError(
            "this bank's privacy plan was fixed at its first DP round and the settings changed: "
            + "; ".join(changed)
        )
    return plan


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
