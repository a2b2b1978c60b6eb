"""Models the federated one is compared with, trained on the same rows and budget.

- centralized: all banks' training rows pooled (what federation approximates);
- local: each bank alone on its own rows, scaled with its own statistics;
- reference: scikit-learn's LogisticRegression on the pooled rows.

Each uses the same optimizer, learning rate, L2 and total epochs (rounds x local epochs) as
the federated run, the same class-imbalance handling, and (with ``dp=opacus``) the same DP-SGD.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from flwr.app import RecordDict
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from fl_credit.bank_settings import BankSettings
from fl_credit.config import ExperimentConfig
from fl_credit.data.bank_file import BankData
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer, pooled_standardizer
from fl_credit.errors import FlCreditError
from fl_credit.imbalance import balance
from fl_credit.model import new_model, predict_proba
from fl_credit.thresholds import score_histograms, threshold_from_histograms
from fl_credit.training import LocalTraining, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """A trained model's test-set scores and its validation threshold."""

    test_scores: np.ndarray
    threshold: float
    privacy: dict | None = None


def pooled(banks: list[BankData]) -> BankData:
    """All banks' rows in one place."""
    return BankData(
        feature_names=banks[0].feature_names,
        x_train=np.vstack([b.x_train for b in banks]),
        y_train=np.concatenate([b.y_train for b in banks]),
        x_val=np.vstack([b.x_val for b in banks]),
        y_val=np.concatenate([b.y_val for b in banks]),
    )


def train_alone(bank: BankData, x_test: np.ndarray, cfg: ExperimentConfig, seed: int) -> Scored:
    """Train one party's model on ``bank`` for the whole federated budget."""
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
    privacy = None
    if cfg.dp.mode == "opacus":
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
        train(model, x, y, settings)
    return Scored(
        test_scores=predict_proba(model, scaler.transform(x_test)),
        threshold=validation_threshold(
            model_scores(model, scaler, bank.x_val), bank.y_val, cfg.histogram_bins
        ),
        privacy=privacy,
    )


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
    """scikit-learn LogisticRegression (L-BFGS, C=1) on the pooled, standardised rows."""
    data = pooled(list(prepared.banks.values()))
    scaler = pooled_standardizer(data.x_train)
    weight = None if cfg.imbalance.method == "none" else "balanced"
    model = SkLogisticRegression(class_weight=weight, max_iter=2000)
    model.fit(scaler.transform(data.x_train), data.y_train)
    val_scores = model.predict_proba(scaler.transform(data.x_val))[:, 1]
    return Scored(
        test_scores=model.predict_proba(scaler.transform(prepared.x_test))[:, 1],
        threshold=validation_threshold(val_scores, data.y_val, cfg.histogram_bins),
    )
