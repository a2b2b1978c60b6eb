"""Bank-level ("central") differential privacy that composes with secure aggregation.

``dp=central`` protects a whole bank's contribution (all its rows at once) in every released
aggregate. Each round, every bank

1. trains as usual, then clips its model UPDATE (new minus global weights, L2 norm over all
   parameters) to ``C`` = ``dp-clip-norm``;
2. adds its share of the Gaussian noise, N(0, s^2) per coordinate with
   ``s = sigma * C / sqrt(t - k)`` (``dp-noise-std``, computed once by the server);
3. reports ``num-examples = 1``.

Why clip on the bank. Under secure aggregation the server only ever sees sums, so it cannot
clip individual updates; each bank must clip its own before masking.

Why the noise is split. Secure aggregation releases a sum only when at least ``t`` banks
(its threshold) contributed. Sums of independent Gaussians are Gaussian, so every released
sum carries variance at least ``t * s^2 = (sigma * C)^2`` (k = 0): the Gaussian mechanism
with noise multiplier ``sigma`` on a sum whose sensitivity to one bank is ``C``, with no bank
adding the full noise (a sum of all m > t banks carries m / t times more, the price of not
knowing in advance who will drop out). Without secure aggregation the server sees each
bank's noisy update, which carries only ``s^2``. Then choose the threat model with
:func:`min_contributors`:
``t = 1`` protects each bank from the server (every bank adds the full noise), ``t = number of
banks`` protects only the released model, and trusts the server not to look at individual
replies and to refuse to aggregate fewer than ``t`` replies (fewer replies mean less noise).

What a colluding bank can subtract. A bank that colludes with the server knows its own noise
draw (and its own update) and can remove them from the sum, leaving ``(t - 1) s^2``; k
colluders leave ``(t - k) s^2``. Planning with ``colluders=k`` scales each share to
``(sigma C)^2 / (t - k)`` so the honest banks alone still supply the full variance.

Why equal weights. FedAvg weights updates by row counts: the weight would reveal each bank's
size and make a bank's influence on the average data-dependent, so its sensitivity would no
longer be ``C``. With every weight 1 the aggregate is (sum of clipped updates + noise) / m with
m public, and replacing one bank's update by zero moves the sum by at most ``C``. Secure
aggregation ignores ``num-examples`` and weighs each bank by its registered roster weight, so
a bank-level DP consortium must register weight 1 for every bank (the application does); with
row counts as weights bank j's effective noise multiplier would drop to about
``sigma * sum(n) / (m * n_j)``, below ``sigma`` for any bank larger than the average.

Accounting. One release per round over a fixed set of banks (no sampling amplification): RDP
of the Gaussian mechanism with sample rate 1 and steps = rounds. ``sigma`` is fixed once for
the planned rounds; the epsilon after ``r`` rounds is reported and the horizon enforced.
With few banks the noise dominates: at t = 3, epsilon 4 over 20 rounds needs sigma = 5.2, so
the averaged update carries noise of norm about ``5.2 * C * sqrt(d) / 3`` against a signal of
norm at most ``C``. Bank-level DP pays off with many banks, not three.

Randomness. By default the noise is secret (fresh OS entropy). Only when ``dp-secret-noise``
is false is it seeded from ``seed``, ``server-round``, the bank's own count of noised rounds
and its identity (reproducible studies): a server that knows these can remove the noise, so a
bank decides this itself (``fl_credit.bank.floors`` overwrites the key with the bank's own
choice before this mod reads it).

The mod sends only ``num-examples`` in the reply's metrics: other metrics (losses) are
computed from the bank's data, are not covered by the noise and would bypass secure
aggregation. Whether the update was clipped is counted in the bank's own ``context.state``.

Message ConfigRecord (``"config"``) keys read by :func:`central_dp_mod`; ``dp-mode``,
``dp-clip-norm`` and ``seed`` are :class:`~fl_credit.protocol.settings.BankSettings` keys,
``server-round`` comes from the strategy:

- ``dp-mode`` (str): the mod acts only when it is ``"central"``;
- ``dp-clip-norm`` (float): C;
- ``seed`` (int), ``server-round`` (int): seed the noise when it is not secret;
- ``dp-noise-std`` (float): per-bank noise std share s, from
  :attr:`CentralDPAccountant.noise_std_share`;
- ``dp-secret-noise`` (bool, optional, default true).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode

from strategies.dp.accounting import (
    BANK_LEVEL_DEFAULT_DELTA,
    BudgetExhausted,
    noise_multiplier_for,
    rdp_epsilon,
)
from strategies.dp.errors import PrivacyConfigError

log = logging.getLogger(__name__)

KEY_MODE = "dp-mode"
KEY_CLIP_NORM = "dp-clip-norm"
KEY_NOISE_STD = "dp-noise-std"
KEY_SECRET_NOISE = "dp-secret-noise"
KEY_SEED = "seed"
KEY_ROUND = "server-round"
KEY_WEIGHT = "num-examples"
CENTRAL = "central"
STATE_KEY = "central-dp"


def clip_update(update: list[np.ndarray], clip_norm: float) -> tuple[list[np.ndarray], float]:
    """Scale ``update`` so that its L2 norm over all arrays is at most ``clip_norm``.

    Parameters
    ----------
    update : list of np.ndarray
        New minus global weights, one array per parameter.
    clip_norm : float
        Largest allowed L2 norm C.

    Returns
    -------
    clipped : list of np.ndarray
        The scaled update (float64).
    norm : float
        The L2 norm before clipping.
    """
    norm = math.sqrt(sum(float(np.sum(np.square(u, dtype=np.float64))) for u in update))
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return [np.asarray(u, dtype=np.float64) * scale for u in update], norm


def add_noise_share(
    update: list[np.ndarray], std: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """``update`` plus independent N(0, std^2) noise on every coordinate."""
    return [u + rng.normal(0.0, std, size=np.shape(u)) for u in update]


def _error_reply(message: Message, reason: str) -> Message:
    log.error(reason)
    return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=message)


def _is_central_train(message: Message) -> bool:
    if not message.has_content() or message.metadata.message_type.split(".")[0] != "train":
        return False
    config = message.content.config_records.get("config")
    return config is not None and config.get(KEY_MODE) == CENTRAL


def _noise_rng(config: ConfigRecord, context: Context) -> np.random.Generator:
    if bool(config.get(KEY_SECRET_NOISE, True)):
        return np.random.default_rng()
    bank = context.node_config.get("partition-id", context.node_config.get("data-path"))
    record = context.state.config_records.get(STATE_KEY)
    done = int(record["rounds"]) if record is not None else 0  # no noise reuse on a replay
    parts = (
        config.get(KEY_SEED, 0),
        config.get(KEY_ROUND, 0),
        done,
        context.node_id if bank is None else bank,
    )
    digest = hashlib.sha256(("central-dp|" + "|".join(map(str, parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _count_clipping(context: Context, norm: float, clip_norm: float, server_round: int) -> None:
    """Keep the bank's own clipping statistics in its state (never sent)."""
    record = context.state.config_records.get(STATE_KEY)
    if record is None:
        record = ConfigRecord({"rounds": 0, "clipped-rounds": 0})
        context.state[STATE_KEY] = record
    record["rounds"] = int(record["rounds"]) + 1
    record["clipped-rounds"] = int(record["clipped-rounds"]) + int(norm > clip_norm)
    record["last-update-norm"] = float(norm)
    record["last-server-round"] = int(server_round)


def central_dp_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Client mod: clip the train reply's update, add this bank's noise share, weight 1.

    Acts only on ``train`` messages whose ConfigRecord ``"config"`` has ``dp-mode`` =
    ``"central"``; every other message passes through unchanged. See the module docstring
    for the keys it reads and why.

    Parameters
    ----------
    message : Message
        The incoming message (global weights in its single ArrayRecord).
    context : Context
        The bank's context; clipping counts go to ``context.state["central-dp"]``.
    call_next : callable
        The rest of the ClientApp.

    Returns
    -------
    Message
        The reply with clipped, noised weights and metrics ``{"num-examples": 1}``, or an
        error reply when a key is missing or the records are not one ArrayRecord each way.
    """
    if not _is_central_train(message):
        return call_next(message, context)
    config = message.content.config_records["config"]
    missing = [k for k in (KEY_CLIP_NORM, KEY_NOISE_STD) if k not in config]
    if missing:
        return _error_reply(message, f"central_dp_mod: message config lacks {missing}")
    clip_norm, std = float(config[KEY_CLIP_NORM]), float(config[KEY_NOISE_STD])
    if not (clip_norm > 0 and std >= 0):
        return _error_reply(message, f"central_dp_mod: bad clip norm {clip_norm} or std {std}")
    if len(message.content.array_records) != 1:
        return _error_reply(message, "central_dp_mod: expects one ArrayRecord in the message")
    sent = next(iter(message.content.array_records.values()))
    reply = call_next(message, context)
    if reply.has_error():
        return reply
    if len(reply.content.array_records) != 1:
        return _error_reply(message, "central_dp_mod: expects one ArrayRecord in the reply")
    name, trained = next(iter(reply.content.array_records.items()))
    if list(trained.keys()) != list(sent.keys()):
        return _error_reply(message, "central_dp_mod: reply arrays differ from the sent ones")
    start, new = sent.to_numpy_ndarrays(), trained.to_numpy_ndarrays()
    clipped, norm = clip_update([b - a for a, b in zip(start, new, strict=True)], clip_norm)
    noisy = add_noise_share(clipped, std, _noise_rng(config, context))
    reply.content.array_records[name] = ArrayRecord(
        {
            key: Array(np.asarray(a + u, dtype=b.dtype))
            for key, a, u, b in zip(trained.keys(), start, noisy, new, strict=True)
        }
    )
    for key in list(reply.content.metric_records):
        del reply.content[key]
    reply.content["metrics"] = MetricRecord({KEY_WEIGHT: 1})
    _count_clipping(context, norm, clip_norm, int(config.get(KEY_ROUND, 0)))
    return reply


def min_contributors(
    num_banks: int, *, secagg_threshold: int | None = None, protect_from_server: bool = False
) -> int:
    """The smallest number of banks behind any sum the server can see.

    Parameters
    ----------
    num_banks : int
        Banks taking part.
    secagg_threshold : int, optional
        Secure aggregation's threshold: it reveals only sums of at least this many banks.
    protect_from_server : bool, optional
        Without secure aggregation: True to protect each bank from the server (it sees single
        updates, so 1); False to protect only the released model (``num_banks``).

    Returns
    -------
    int
        ``t`` for :meth:`CentralDPAccountant.from_target`.
    """
    if secagg_threshold is not None:
        return int(secagg_threshold)
    return 1 if protect_from_server else int(num_banks)


@dataclass(frozen=True)
class CentralDPAccountant:
    """Server-side plan and accountant for bank-level DP (build with :meth:`from_target`).

    Attributes
    ----------
    target_epsilon, delta : float
        Bank-level budget for the whole run.
    total_rounds : int
        Rounds planned; a later round raises :class:`BudgetExhausted`.
    min_contributors : int
        t, the fewest banks behind any released sum.
    clip_norm : float
        C, the bound on each bank's update norm.
    colluders : int
        k, banks that may collude with the server and subtract their own noise.
    noise_multiplier : float
        sigma, fixed for the horizon (RDP, sample rate 1, steps = rounds).
    """

    target_epsilon: float
    delta: float
    total_rounds: int
    min_contributors: int
    clip_norm: float
    colluders: int
    noise_multiplier: float

    @classmethod
    def from_target(
        cls,
        *,
        target_epsilon: float,
        total_rounds: int,
        min_contributors: int,
        clip_norm: float = 1.0,
        delta: float = 0.0,
        colluders: int = 0,
    ) -> CentralDPAccountant:
        """Fix sigma once so that ``total_rounds`` releases spend ``(target_epsilon, delta)``.

        Parameters
        ----------
        target_epsilon : float
            Bank-level epsilon for the whole run.
        total_rounds : int
            Rounds planned.
        min_contributors : int
            t (see :func:`min_contributors`).
        clip_norm : float, optional
            C.
        delta : float, optional
            Target delta; 0 means 1e-5.
        colluders : int, optional
            k < t banks that may collude with the server.

        Returns
        -------
        CentralDPAccountant
            The plan.

        Raises
        ------
        PrivacyConfigError
            On values out of range or an epsilon no usable noise level can meet.
        """
        if total_rounds < 1 or min_contributors < 1:
            raise PrivacyConfigError("central DP needs at least one round and one contributor")
        if not 0 <= colluders < min_contributors:
            raise PrivacyConfigError(
                f"central DP tolerates fewer colluders than contributors "
                f"(t={min_contributors}), got {colluders}"
            )
        if not clip_norm > 0:
            raise PrivacyConfigError(f"dp.clip_norm must be positive, got {clip_norm}")
        delta = delta if delta > 0 else BANK_LEVEL_DEFAULT_DELTA
        sigma = noise_multiplier_for(
            target_epsilon=target_epsilon,
            delta=delta,
            sample_rate=1.0,
            steps=total_rounds,
            accountant="rdp",
        )
        return cls(
            target_epsilon=float(target_epsilon),
            delta=float(delta),
            total_rounds=int(total_rounds),
            min_contributors=int(min_contributors),
            clip_norm=float(clip_norm),
            colluders=int(colluders),
            noise_multiplier=sigma,
        )

    @property
    def noise_std(self) -> float:
        """Std of the noise every released sum carries at least: sigma * C."""
        return self.noise_multiplier * self.clip_norm

    @property
    def noise_std_share(self) -> float:
        """Std each bank adds: sigma * C / sqrt(t - k)."""
        return self.noise_std / math.sqrt(self.min_contributors - self.colluders)

    def epsilon_after(self, rounds: int) -> float:
        """Bank-level epsilon spent after ``rounds`` released aggregates."""
        return rdp_epsilon(self.noise_multiplier, 1.0, int(rounds), self.delta)

    def check_round(self, server_round: int) -> None:
        """Raise :class:`BudgetExhausted` for a round beyond the planned horizon."""
        if server_round > self.total_rounds:
            message = (
                f"central DP budget spent: round {server_round} is beyond the "
                f"{self.total_rounds} planned rounds (epsilon {self.target_epsilon:g})"
            )
            log.warning(message)
            raise BudgetExhausted(message)

    def train_config(self) -> dict[str, str | float]:
        """The keys to merge into every train message's ConfigRecord."""
        return {
            KEY_MODE: CENTRAL,
            KEY_CLIP_NORM: self.clip_norm,
            KEY_NOISE_STD: self.noise_std_share,
        }

    def report(self, rounds_done: int) -> dict[str, int | float | str]:
        """The run's bank-level privacy report after ``rounds_done`` rounds."""
        return {
            "target_epsilon": self.target_epsilon,
            "epsilon": self.epsilon_after(rounds_done),
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "noise_std": self.noise_std,
            "noise_std_share": self.noise_std_share,
            "clip_norm": self.clip_norm,
            "min_contributors": self.min_contributors,
            "colluders": self.colluders,
            "sample_rate": 1.0,
            "steps": int(rounds_done),
            "accountant": "rdp",
            "rounds_done": int(rounds_done),
            "planned_rounds": self.total_rounds,
        }
