"""Models the federated one is compared with, trained on the same rows and budget.

- centralized: all banks' training rows pooled (what federation approximates);
- local: each bank alone on its own rows, scaled with its own statistics;
- reference: scikit-learn's LogisticRegression on the pooled rows, with the same objective
  (class weights as sample weights, ``C = 1 / (N * l2)``, intercept not penalised).

Each uses the same resolved optimizer (Newton, or SGD with the same learning rate and total
epochs, rounds x local epochs), the same L2, the same class-imbalance handling and (with
``dp=opacus``) the same DP-SGD; Newton on pooled rows reaches the pooled optimum itself.
Every model gets the same prior correction of its intercept, so all report calibrated PDs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from flwr.app import RecordDict
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.calibration import prior_correction
from fl_credit.credit.thresholds import score_histograms, threshold_from_histograms
from fl_credit.data.bank_file import BankData
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer, pooled_standardizer
from fl_credit.model.imbalance import balance, positive_weight
from fl_credit.model.logistic import load_arrays, new_model, predict_proba, to_arrays
from fl_credit.model.training import LocalTraining, fit_newton, train
from fl_credit.protocol.settings import BankSettings
from fl_credit.validation.monotone import chains_for, increments, project_arrays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """A trained model's test-set scores and its validation threshold."""

    test_scores: np.ndarray
    threshold: float
    privacy: dict | None = None
    rounds: int | None = None
    converged: bool | None = None


def pooled(banks: list[BankData]) -> BankData:
    """All banks' rows in one place."""
    return BankData(
        feature_names=banks[0].feature_names,
        x_train=np.vstack([b.x_train for b in banks]),
        y_train=np.concatenate([b.y_train for b in banks]),
        x_val=np.vstack([b.x_val for b in banks]),
        y_val=np.concatenate([b.y_val for b in banks]),
    )


@dataclass
class Alone:
    """One party's model trained alone, with its own scaler and validation threshold."""

    model: torch.nn.Module
    scaler: Standardizer
    threshold: float
    privacy: dict | None = None
    rounds: int | None = None
    converged: bool | None = None


def fit_alone(bank: BankData, cfg: ExperimentConfig, seed: int) -> Alone:
    """Train one party's model on ``bank`` for the whole federated budget: its own scaler,
    the run's class handling, optimiser and DP plan, the prior correction, and the cut-off
    from its validation rows."""
    scaler = pooled_standardizer(bank.x_train)
    x, y, pos_weight = balance(
        scaler.transform(bank.x_train),
        bank.y_train,
        cfg.imbalance.method,
        k_neighbors=cfg.imbalance.k_neighbors,
        seed=seed,
    )
    model = new_model(x.shape[1], seed)
    epochs = cfg.train.rounds * cfg.train.local_epochs
    privacy = rounds = converged = None
    chains = chains_for(cfg.train.monotone, list(bank.feature_names))
    if cfg.train.optimizer == "newton":
        model, rounds, converged = fit_newton(
            x,
            y,
            pos_weight=pos_weight,
            l2=cfg.train.l2,
            tol=cfg.train.tol,
            max_iterations=cfg.train.rounds,
            total_rows=len(bank.y_train),
            constraints=increments(chains, scaler.std, x.shape[1] + 1) if chains else None,
        )
    elif cfg.dp.mode == "opacus":
        from strategies.dp.opacus_training import privacy_report, train_private

        settings = replace(BankSettings.from_experiment(cfg), local_epochs=epochs, total_rounds=1)
        state = RecordDict()
        train_private(
            model,
            x,
            y,
            pos_weight,
            # The banks' plan: the same noise per step as the federated model's DP-SGD.
            settings.dp_settings(),
            state,
            1,
            steps=settings.local_steps(),
            seed=seed,
        )
        privacy = privacy_report(state)
    else:
        settings = LocalTraining.from_config(
            cfg.train, epochs=epochs, pos_weight=pos_weight, seed=seed
        )
        train_rounds(model, x, y, settings, cfg, chains, scaler.std)
    if chains:  # DP-SGD: once at the end (post-processing); SGD: already after every round
        load_arrays(model, project_arrays(to_arrays(model), chains, scaler.std))
    correction = prior_correction(
        cfg.imbalance.method, positive_weight(bank.y_train), private=cfg.dp.mode == "opacus"
    )
    correct_intercept(model, correction)
    threshold = validation_threshold(
        model_scores(model, scaler, bank.x_val), bank.y_val, cfg.histogram_bins
    )
    return Alone(model, scaler, threshold, privacy, rounds, converged)


def train_rounds(model, x, y, settings: LocalTraining, cfg: ExperimentConfig, chains, std) -> None:
    """All epochs at once, or, with monotone chains, round by round with the projection
    after each round as in the federation."""
    if not chains:
        train(model, x, y, settings)
        return
    per_round = replace(settings, epochs=cfg.train.local_epochs)
    for _ in range(cfg.train.rounds):
        train(model, x, y, per_round)
        load_arrays(model, project_arrays(to_arrays(model), chains, std))


def train_alone(bank: BankData, x_test: np.ndarray, cfg: ExperimentConfig, seed: int) -> Scored:
    """:func:`fit_alone`, scored on ``x_test``."""
    alone = fit_alone(bank, cfg, seed)
    return Scored(
        test_scores=predict_proba(alone.model, alone.scaler.transform(x_test)),
        threshold=alone.threshold,
        privacy=alone.privacy,
        rounds=alone.rounds,
        converged=alone.converged,
    )


def correct_intercept(model, correction: float) -> None:
    """Subtract the prior correction from the model's intercept, in place."""
    with torch.no_grad():
        model.linear.bias.sub_(correction)


def model_scores(model, scaler: Standardizer, x: np.ndarray) -> np.ndarray:
    """Default probabilities of ``model`` on unscaled rows ``x``."""
    return predict_proba(model, scaler.transform(x))


def validation_threshold(scores: np.ndarray, y: np.ndarray, bins: int) -> float:
    """The KS-maximising cut-off on validation rows (same rule as the federated model)."""
    return threshold_from_histograms(score_histograms(y, scores, bins))


def centralized(prepared: Prepared, cfg: ExperimentConfig) -> Scored:
    """The pooled-data model."""
    return train_alone(pooled(list(prepared.banks.values())), prepared.x_test, cfg, cfg.seed)


def local_only(prepared: Prepared, cfg: ExperimentConfig) -> dict[str, Scored | None]:
    """Each bank alone; ``None`` for a bank that cannot train by itself (logged)."""
    out: dict[str, Scored | None] = {}
    for k, (name, bank) in enumerate(prepared.banks.items()):
        try:
            out[name] = train_alone(bank, prepared.x_test, cfg, cfg.seed + 1 + k)
        except FlCreditError as err:
            log.warning("%s cannot train alone: %s", name, err)
            out[name] = None
    return out


def reference(prepared: Prepared, cfg: ExperimentConfig) -> Scored:
    """scikit-learn LogisticRegression (L-BFGS, tight tolerance) on the pooled, standardised
    rows, minimising the federation's objective: defaults weighted by the class weight
    (sample weights), ``C = 1 / (N * l2)`` over the ``N`` pooled training rows, the
    intercept not penalised; then the same prior correction. Without DP this is the optimum
    the federated Newton run must reach."""
    data = pooled(list(prepared.banks.values()))
    scaler = pooled_standardizer(data.x_train)
    x, y, pos_weight = balance(
        scaler.transform(data.x_train),
        data.y_train,
        cfg.imbalance.method,
        k_neighbors=cfg.imbalance.k_neighbors,
        seed=cfg.seed,
    )
    model = sklearn_fit(x, y, pos_weight, cfg.train.l2, total_rows=len(data.y_train))
    model.intercept_ -= prior_correction(cfg.imbalance.method, positive_weight(data.y_train))
    val_scores = model.predict_proba(scaler.transform(data.x_val))[:, 1]
    return Scored(
        test_scores=model.predict_proba(scaler.transform(prepared.x_test))[:, 1],
        threshold=validation_threshold(val_scores, data.y_val, cfg.histogram_bins),
        rounds=int(model.n_iter_[0]),
        converged=bool(model.n_iter_[0] < SKLEARN_MAX_ITER),
    )


SKLEARN_MAX_ITER = 10_000


@dataclass(frozen=True)
class Baselines:
    """The comparison models of a logistic-regression run, scored on the same test rows."""

    centralized: Scored
    reference: Scored
    local: dict[str, Scored | None]


def lr_baselines(prepared: Prepared, cfg: ExperimentConfig) -> Baselines:
    """Train every comparison model: the pooled model, the scikit-learn reference and each
    bank alone (:func:`fl_credit.boosting.comparison.gbm_baselines` is the boosting twin)."""
    return Baselines(
        centralized(prepared, cfg), reference(prepared, cfg), local_only(prepared, cfg)
    )


def sklearn_fit(
    x: np.ndarray, y: np.ndarray, pos_weight: float, l2: float, *, total_rows: int
) -> SkLogisticRegression:
    """scikit-learn's fit of ``sum_i s_i BCE_i / total_rows + 0.5 * l2 * |w|^2`` (L-BFGS,
    which leaves the intercept unpenalised), ``s_i = pos_weight`` for defaults, else 1."""
    c = 1.0 / (total_rows * l2) if l2 > 0 else np.inf
    model = SkLogisticRegression(C=c, tol=1e-10, max_iter=SKLEARN_MAX_ITER)
    return model.fit(np.asarray(x, np.float64), y, sample_weight=np.where(y == 1, pos_weight, 1.0))
