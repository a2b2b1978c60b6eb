"""A bank's local training step and whole federations, replayed in-process.

:func:`local_update` is what one bank does with a ``train`` message (the same steps as
:func:`fl_credit.bank.client_app.train_round`: the federation's standardiser and class weight, the
same seeds, DP-SGD through :func:`strategies.dp.opacus_training.train_private`), without
Flower around it. Colluding banks use it to compute their own contribution to a secure sum;
:func:`train_federation` chains it into FedAvg rounds (as the strategies aggregate) to train
the shadow federations of membership inference. A test checks that the replay of a run
reproduces the run's federated model.

Supported: ``train.optimizer`` newton (the same safeguarded search on the summed terms) /
sgd / adam / rmsprop, ``strategy`` fedavg / fedprox / secagg
(secure aggregation's per-coordinate clipping is replayed, its fixed-point rounding of at most
``2^-17`` per coordinate is not), ``dp`` off / opacus / central (bank-level noise is drawn from
the replay's own seed, so it is not the run's noise draw).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch
from flwr.app import RecordDict

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.data.scaling import Standardizer, pooled_standardizer
from fl_credit.model.imbalance import balance, positive_weight
from fl_credit.model.logistic import LogisticRegression
from fl_credit.model.training import train
from fl_credit.protocol.settings import BankSettings


@dataclass(frozen=True)
class Weights:
    """Logistic-regression parameters: ``logit = weight . x_scaled + bias`` (float32 as sent)."""

    weight: np.ndarray
    bias: float

    @classmethod
    def zeros(cls, n_features: int) -> Weights:
        """The federation's initial model (:func:`fl_credit.model.logistic.new_model` is all
        zeros)."""
        return cls(np.zeros(n_features, dtype=np.float32), 0.0)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Weights:
        """From a recorded ArrayRecord (``linear.weight``, ``linear.bias``)."""
        weight = np.asarray(arrays["linear.weight"], dtype=np.float32).reshape(-1)
        return cls(weight, float(np.asarray(arrays["linear.bias"]).reshape(-1)[0]))

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> Weights:
        """From ``[weight..., bias]`` (kept in float64: an estimate, not a sent model)."""
        vector = np.asarray(vector, dtype=np.float64)
        return cls(vector[:-1], float(vector[-1]))

    @property
    def vector(self) -> np.ndarray:
        """``[weight..., bias]`` in float64."""
        return np.r_[np.asarray(self.weight, dtype=np.float64), self.bias]

    def model(self) -> LogisticRegression:
        """A torch model holding these weights."""
        model = LogisticRegression(len(self.weight))
        with torch.no_grad():
            model.linear.weight.copy_(torch.as_tensor(self.weight, dtype=torch.float32)[None])
            model.linear.bias.fill_(float(self.bias))
        return model

    @classmethod
    def of(cls, model: LogisticRegression) -> Weights:
        """The weights of a torch model (float32, as a bank's reply carries them)."""
        weight = model.linear.weight.detach().numpy().reshape(-1).astype(np.float32)
        return cls(weight, float(model.linear.bias.detach().numpy()[0]))


@dataclass(frozen=True)
class ReplayBank:
    """One bank's unscaled training rows under its name (``bank_0``: the DP seeds use it)."""

    name: str
    x: np.ndarray
    y: np.ndarray


def federation_pos_weight(y: np.ndarray, imbalance: str) -> float:
    """The class weight every bank uses: repaid / defaulted over all banks (``class_weight``),
    else 1."""
    return positive_weight(y) if imbalance == "class_weight" else 1.0


def check_replayable(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` when the replay does not cover the run's settings."""
    if cfg.train.optimizer not in ("newton", "sgd", "adam", "rmsprop"):
        raise ConfigError(f"the replay does not cover train.optimizer={cfg.train.optimizer}")
    from strategies.robust.registry import strategy

    if strategy(cfg.strategy.name).robust:  # the replay averages every bank's update
        raise ConfigError(f"the replay does not cover strategy={cfg.strategy.name}")


def local_update(
    start: Weights,
    x_scaled: np.ndarray,
    y: np.ndarray,
    pos_weight: float,
    settings: BankSettings,
    server_round: int,
    *,
    bank_key: str = "",
    state: RecordDict | None = None,
) -> Weights:
    """The weights a bank replies with after training ``start`` on its rows for one round.

    Parameters
    ----------
    start : Weights
        The global model the bank received.
    x_scaled, y : numpy.ndarray
        The bank's training rows, scaled with the federation's standardiser, and labels.
    pos_weight : float
        The federation's class weight.
    settings : BankSettings
        What the server sent in the message's ConfigRecord.
    server_round : int
        The round (seeds depend on it).
    bank_key : str
        The bank's name (DP-SGD's seeds depend on it).
    state : RecordDict, optional
        The bank's persistent state (DP accountant); a fresh one when omitted.

    Returns
    -------
    Weights
        The trained weights (before any bank-level DP clipping and noise).
    """
    model = start.model()
    if settings.dp_mode == "opacus":
        from strategies.dp.opacus_training import train_private

        train_private(
            model,
            x_scaled,
            y,
            pos_weight,
            settings.dp_settings(),
            state if state is not None else fresh_state(settings, len(y)),
            server_round,
            steps=settings.local_steps(),
            seed=settings.seed,
            bank_key=bank_key,
        )
    else:
        train(model, x_scaled, y, settings.local_training(pos_weight, server_round))
    return Weights.of(model)


_PLANS: dict[tuple, RecordDict] = {}


def fresh_state(settings: BankSettings, n_rows: int) -> RecordDict:
    """A new bank's ``context.state``; under ``dp=opacus`` with its privacy plan already
    fixed (the noise calibration depends only on the settings and the row count, so it is
    done once per process and copied: shadow banks of equal size share it)."""
    if settings.dp_mode != "opacus":
        return RecordDict()
    from strategies.dp.plan import plan_for_round

    dp = settings.dp_settings()
    key = (repr(dp), n_rows)
    if key not in _PLANS:
        template = RecordDict()
        plan_for_round(template, dp, n_rows)
        _PLANS[key] = template
    return copy.deepcopy(_PLANS[key])


@dataclass(frozen=True)
class FederationReplay:
    """A replayed federation's final weights and the standardiser its banks used."""

    weights: Weights
    scaler: Standardizer

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of unscaled rows."""
        xs = self.scaler.transform(x).astype(np.float64)
        return xs @ self.weights.weight.astype(np.float64) + self.weights.bias


def train_federation(
    banks: list[ReplayBank], cfg: ExperimentConfig, *, seed: int | None = None
) -> FederationReplay:
    """FedAvg over ``banks`` with the run's settings, in-process.

    Parameters
    ----------
    banks : list of ReplayBank
        Each bank's unscaled training rows.
    cfg : ExperimentConfig
        The run's configuration (training, strategy, DP, class imbalance).
    seed : int, optional
        Replaces ``cfg.seed`` for training and DP noise (shadow federations each get one).

    Returns
    -------
    FederationReplay
        The final weights and the pooled standardiser (equal to the federated one).
    """
    check_replayable(cfg)
    settings = BankSettings.from_experiment(cfg)
    if seed is not None:
        settings = replace(settings, seed=seed)
    scaler = pooled_standardizer(np.vstack([b.x for b in banks]))
    pos_weight = federation_pos_weight(np.concatenate([b.y for b in banks]), cfg.imbalance.method)
    rows = []
    for bank in banks:
        x, y, own_weight = balance(
            scaler.transform(bank.x),
            bank.y,
            cfg.imbalance.method,
            k_neighbors=cfg.imbalance.k_neighbors,
            seed=settings.seed,
        )
        rows.append((x, y, pos_weight if cfg.imbalance.method == "class_weight" else own_weight))
    if cfg.train.optimizer == "newton":
        total_rows = float(sum(len(b.y) for b in banks))
        return _released(_newton(rows, cfg, total_rows), scaler, banks, cfg)
    central = _central_noise(cfg, len(banks))
    rng = np.random.default_rng([settings.seed, 7_919])
    states = [fresh_state(settings, len(y)) for _, y, _ in rows]
    current = Weights.zeros(scaler.mean.shape[0])
    for server_round in range(1, cfg.train.rounds + 1):
        updates, weights = [], []
        for bank, (x, y, pw), state in zip(banks, rows, states, strict=True):
            new = local_update(
                current, x, y, pw, settings, server_round, bank_key=bank.name, state=state
            )
            update = new.vector - current.vector
            if central is not None:
                from strategies.dp.central import add_noise_share, clip_update

                clipped, _ = clip_update([update], cfg.dp.clip_norm)
                update = add_noise_share(clipped, central, rng)[0]
            updates.append(update)
            weights.append(1.0 if central is not None else float(len(bank.y)))
        current = _aggregate(current, updates, weights, cfg, central)
    return _released(current, scaler, banks, cfg)


def _released(
    weights: Weights, scaler: Standardizer, banks: list[ReplayBank], cfg: ExperimentConfig
) -> FederationReplay:
    """The model as the run releases it: the prior correction subtracted from the intercept
    (:func:`fl_credit.credit.calibration.prior_correction`, with the federation's class ratio)."""
    from fl_credit.credit.calibration import prior_correction

    ratio = positive_weight(np.concatenate([b.y for b in banks]))
    correction = prior_correction(cfg.imbalance.method, ratio, private=cfg.dp.mode != "off")
    return FederationReplay(Weights(weights.weight, weights.bias - correction), scaler)


def _newton(rows: list[tuple], cfg: ExperimentConfig, total_rows: float) -> Weights:
    """Federated Newton as :class:`strategies.newton.FedNewton` runs it: one evaluation of
    the banks' summed terms (:func:`fl_credit.model.training.newton_terms`) per round, the same
    safeguarded search, ``N`` = all banks' rows."""
    from fl_credit.model.training import newton_terms
    from strategies.newton import fit

    def summed(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        terms = [newton_terms(x, y, pw, theta) for x, y, pw in rows]
        return (
            sum(t[0] for t in terms),
            sum(t[1] for t in terms),
            float(sum(t[2] for t in terms)),
        )

    d = rows[0][0].shape[1]
    search = fit(
        summed,
        np.zeros(d + 1),
        l2=cfg.train.l2,
        total_rows=total_rows,
        tol=cfg.train.tol,
        max_evaluations=cfg.train.rounds,
    )
    return Weights.from_vector(search.theta)


def _central_noise(cfg: ExperimentConfig, num_banks: int) -> float | None:
    """Per-bank noise std share under ``dp=central`` (None otherwise)."""
    if cfg.dp.mode != "central":
        return None
    from fl_credit.coordinator.privacy_accounting import central_dp_accountant
    from fl_credit.coordinator.strategy_factory import secagg_threshold

    threshold = secagg_threshold(cfg, num_banks)
    return float(central_dp_accountant(cfg, num_banks, threshold).noise_std_share)


def _aggregate(
    current: Weights,
    updates: list[np.ndarray],
    weights: list[float],
    cfg: ExperimentConfig,
    central: float | None,
) -> Weights:
    """The next global model as the run's strategy forms it."""
    total = sum(weights)
    if cfg.strategy.name == "secagg":
        from fl_credit.coordinator.strategy_factory import update_clip

        clip = update_clip(cfg, central or 0.0)
        delta = sum(w * np.clip(u, -clip, clip) for w, u in zip(weights, updates, strict=True))
        new = current.vector + delta / total
        return Weights(new[:-1].astype(np.float32), float(np.float32(new[-1])))
    # Flower's FedAvg: weighted average of the replied float32 arrays, accumulated in float32.
    models = [(current.vector + u).astype(np.float32) for u in updates]
    acc = models[0] * np.float32(weights[0] / total)
    for model, w in zip(models[1:], weights[1:], strict=True):
        acc += model * np.float32(w / total)
    return Weights(acc[:-1], float(acc[-1]))
