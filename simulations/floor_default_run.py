"""The floor for the default run: the same math in plain torch/numpy, without Flower.

``python -m fl_credit.simulate [overrides]`` composes the Hydra config, prepares the data,
runs the federation through Flower's simulation runtime with secure aggregation (federated
standardisation from summed per-bank statistics, then ``train.rounds`` rounds in which every
bank trains the global model on its own rows and the server takes the example-weighted
average, scoring the test rows after every round; then the validation threshold from summed
score histograms), trains the baselines (pooled rows, scikit-learn, each bank alone) and
scores all six models with bootstrap intervals.

This script does exactly that math with the same library functions for data preparation,
local training, imbalance handling and metrics, and replaces only the federation (Flower's
runtime, messages, secure aggregation, Hydra's app machinery, run files) by a loop over the
banks in one process. It reads the same config (same ``conf/`` folder, same overrides), so
the floor follows whatever optimizer and round count the default run uses; it refuses
configurations whose math it does not reproduce (DP). It never imports Flower or Ray.

Usage::

    python -m simulations.floor_default_run [hydra overrides] [--out metrics.json]
        [--federated-only]

Prints one JSON line with each model's metrics and the phase times; ``--out`` also writes it.
``simulations/bench_overhead.py`` checks that its numbers equal the default run's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from torch import nn

from fl_credit.config import ExperimentConfig
from fl_credit.data.prepare import Prepared, prepare
from fl_credit.data.scaling import (
    Standardizer,
    centered_squares,
    first_moments,
    mean_from_sums,
    pooled_standardizer,
    standardizer_from_sums,
)
from fl_credit.errors import FlCreditError
from fl_credit.hydra_compose import compose_experiment
from fl_credit.imbalance import balance
from fl_credit.metrics import evaluate_scores, round_metrics
from fl_credit.thresholds import score_histograms, threshold_from_histograms
from fl_credit.training import LocalTraining, train

SUPPORTED_OPTIMIZERS = ("sgd", "adam", "rmsprop", "newton")


class LogisticRegression(nn.Module):
    """Same parameterisation as ``fl_credit.model.LogisticRegression`` (``linear``)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.linear(x).squeeze(-1)


def zero_model(n_features: int) -> LogisticRegression:
    """Zero weights, as ``fl_credit.model.new_model``."""
    model = LogisticRegression(n_features)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    return model


def scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Default probabilities (float64), as ``fl_credit.model.predict_proba``."""
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    return torch.sigmoid(logits).numpy().astype(np.float64)


def theta(model: nn.Module) -> np.ndarray:
    """``[weights..., bias]`` as float64."""
    return np.r_[model.linear.weight.detach().numpy()[0], model.linear.bias.detach().numpy()]


def set_theta(model: nn.Module, values: np.ndarray) -> None:
    """Load ``[weights..., bias]`` into ``model`` (float32, as Flower's arrays)."""
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(values[:-1], dtype=torch.float32)[None, :])
        model.linear.bias.copy_(torch.as_tensor(values[-1:], dtype=torch.float32))


def newton_terms(x: np.ndarray, y: np.ndarray, th: np.ndarray, pos_weight: float):
    """Sums over rows of the class-weighted BCE gradient and Hessian wrt ``[w, b]``."""
    xb = np.c_[x.astype(np.float64), np.ones(len(x))]
    p = 1.0 / (1.0 + np.exp(-(xb @ th)))
    weight = np.where(y == 1, pos_weight, 1.0)
    grad = xb.T @ (weight * (p - y))
    hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb
    return grad, hess


def newton_step(th: np.ndarray, grad: np.ndarray, hess: np.ndarray, l2: float, n: float):
    """One Newton step on ``sum weighted BCE + 0.5 l2 N |w|^2`` (bias not penalised)."""
    penalty = np.r_[np.full(len(th) - 1, l2 * n), 0.0]
    return th - np.linalg.solve(hess + np.diag(penalty), grad + penalty * th)


def train_party(x, y, pos_weight, cfg: ExperimentConfig, seed: int, epochs: int, model):
    """One party's local training for ``epochs`` epochs (the configured optimizer)."""
    if cfg.train.optimizer == "newton":
        th = theta(model)
        for _ in range(epochs):
            grad, hess = newton_terms(x, y, th, pos_weight)
            th = newton_step(th, grad, hess, cfg.train.l2, float(len(y)))
        set_theta(model, th)
        return
    local = LocalTraining.from_config(cfg.train, epochs=epochs, pos_weight=pos_weight, seed=seed)
    if cfg.strategy.name == "fedprox":
        local = LocalTraining(**{**local.__dict__, "proximal_mu": cfg.strategy.proximal_mu})
    train(model, x, y, local)


def federated(prep: Prepared, cfg: ExperimentConfig) -> tuple[np.ndarray, dict, list[dict]]:
    """The federated model's test scores, threshold and per-round history."""
    banks = list(prep.banks.values())
    # Federated standardisation: two summed passes, as fl_credit.federation does.
    first = sum(np.r_[b.y_train.sum(), first_moments(b.x_train)] for b in banks)
    defaults, sums = first[0], first[1:]
    count, mean = mean_from_sums(sums)
    squares = sum(centered_squares(b.x_train, mean) / count for b in banks)
    scaler = standardizer_from_sums(count, mean, squares * count)
    agreed_pos_weight = (count - defaults) / max(defaults, 1.0)

    parties = []
    for bank in banks:
        x, y, pos_weight = balance(
            scaler.transform(bank.x_train),
            bank.y_train,
            cfg.imbalance.method,
            k_neighbors=cfg.imbalance.k_neighbors,
            seed=cfg.seed,
        )
        if cfg.imbalance.method == "class_weight":
            pos_weight = agreed_pos_weight
        parties.append((x, y, pos_weight, len(bank.y_train), scaler.transform(bank.x_val)))

    x_test = scaler.transform(prep.x_test)
    model = zero_model(x_test.shape[1])
    history = [{"round": 0, **round_metrics(prep.y_test, scores(model, x_test))}]
    for server_round in range(1, cfg.train.rounds + 1):
        if cfg.train.optimizer == "newton":
            th = theta(model)
            grad = hess = 0.0
            for x, y, pos_weight, _, _ in parties:
                g, h = newton_terms(x, y, th, pos_weight)
                grad, hess = grad + g, hess + h
            set_theta(model, newton_step(th, grad, hess, cfg.train.l2, count))
        else:
            total, weighted = 0, 0.0
            for x, y, pos_weight, rows, _ in parties:
                local = zero_model(x.shape[1])
                local.load_state_dict(model.state_dict())
                seed = cfg.seed * 10_007 + server_round
                train_party(x, y, pos_weight, cfg, seed, cfg.train.local_epochs, local)
                weighted = weighted + rows * theta(local)
                total += rows
            set_theta(model, weighted / total)
        history.append({"round": server_round, **round_metrics(prep.y_test, scores(model, x_test))})

    hist = sum(
        score_histograms(bank.y_val, scores(model, x_val), cfg.histogram_bins)
        for bank, (*_, x_val) in zip(banks, parties, strict=True)
    )
    return scores(model, x_test), {"threshold": threshold_from_histograms(hist)}, history


def alone(bank, x_test: np.ndarray, cfg: ExperimentConfig, seed: int) -> tuple[np.ndarray, float]:
    """One party trained alone for the whole budget: test scores and validation threshold."""
    scaler: Standardizer = pooled_standardizer(bank.x_train)
    x, y, pos_weight = balance(
        scaler.transform(bank.x_train),
        bank.y_train,
        cfg.imbalance.method,
        k_neighbors=cfg.imbalance.k_neighbors,
        seed=seed,
    )
    torch.manual_seed(seed)
    model = zero_model(x.shape[1])
    epochs = cfg.train.rounds * cfg.train.local_epochs
    train_party(x, y, pos_weight, cfg, seed, epochs, model)
    val_scores = scores(model, scaler.transform(bank.x_val))
    val = score_histograms(bank.y_val, val_scores, cfg.histogram_bins)
    return scores(model, scaler.transform(x_test)), threshold_from_histograms(val)


def pooled_bank(prep: Prepared):
    """All banks' rows in one place (as ``fl_credit.baselines.pooled``)."""
    from fl_credit.data.bank_file import BankData

    banks = list(prep.banks.values())
    return BankData(
        feature_names=banks[0].feature_names,
        x_train=np.vstack([b.x_train for b in banks]),
        y_train=np.concatenate([b.y_train for b in banks]),
        x_val=np.vstack([b.x_val for b in banks]),
        y_val=np.concatenate([b.y_val for b in banks]),
    )


def reference(prep: Prepared, cfg: ExperimentConfig) -> tuple[np.ndarray, float]:
    """scikit-learn's LogisticRegression on the pooled rows (as ``fl_credit.baselines``)."""
    data = pooled_bank(prep)
    scaler = pooled_standardizer(data.x_train)
    weight = None if cfg.imbalance.method == "none" else "balanced"
    model = SkLogisticRegression(class_weight=weight, max_iter=2000)
    model.fit(scaler.transform(data.x_train), data.y_train)
    val = model.predict_proba(scaler.transform(data.x_val))[:, 1]
    threshold = threshold_from_histograms(score_histograms(data.y_val, val, cfg.histogram_bins))
    return model.predict_proba(scaler.transform(prep.x_test))[:, 1], threshold


def run_floor(overrides: list[str], federated_only: bool = False) -> dict:
    """Everything the default run computes, timed by phase."""
    times = {}
    started = time.perf_counter()
    cfg, _ = compose_experiment(overrides)
    if cfg.dp.mode != "off":
        raise FlCreditError("the floor reproduces runs without DP only (dp=off)")
    if cfg.train.optimizer not in SUPPORTED_OPTIMIZERS:
        raise FlCreditError(f"the floor does not implement train.optimizer={cfg.train.optimizer}")
    torch.manual_seed(cfg.seed)
    prep = prepare(cfg)
    times["prepare_s"] = time.perf_counter() - started

    t = time.perf_counter()
    fed_scores, fed_extra, history = federated(prep, cfg)
    times["federation_s"] = time.perf_counter() - t

    def score(p: np.ndarray, threshold: float) -> dict:
        return evaluate_scores(
            prep.y_test, p, val_threshold=threshold, resamples=cfg.bootstrap, seed=cfg.seed
        )

    t = time.perf_counter()
    metrics = {"federated": score(fed_scores, fed_extra["threshold"])}
    if not federated_only:
        metrics["centralized"] = score(*alone(pooled_bank(prep), prep.x_test, cfg, cfg.seed))
        metrics["reference"] = score(*reference(prep, cfg))
        metrics["local"] = {
            name: score(*alone(bank, prep.x_test, cfg, cfg.seed + 1 + k))
            for k, (name, bank) in enumerate(prep.banks.items())
        }
    times["baselines_and_metrics_s"] = time.perf_counter() - t
    times["total_in_process_s"] = time.perf_counter() - started
    return {
        "metrics": metrics,
        "history": history,
        "config": {"optimizer": cfg.train.optimizer, "rounds": cfg.train.rounds},
        "timing": times,
        "imports": sorted(m for m in ("flwr", "ray", "torch._dynamo") if m in sys.modules),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for fl_credit.simulate")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--federated-only", action="store_true", help="skip the baselines")
    args = parser.parse_args(argv)
    try:
        result = run_floor(args.overrides, federated_only=args.federated_only)
    except FlCreditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
