"""The floor for the default run: the same math in plain torch/numpy, without Flower.

``python -m fl_credit.simulate [overrides]`` composes the Hydra config, prepares the data,
runs the federation through Flower's simulation runtime with secure aggregation (federated
standardisation from summed per-bank statistics, then ``train.rounds`` rounds in which every
bank trains the global model on its own rows and the server takes the example-weighted
average, scoring the test rows after every round; then the validation threshold from summed
score histograms), trains the baselines (pooled rows, scikit-learn, each bank alone) and
scores all six models with bootstrap intervals.

This script does exactly that math with the same library functions for data preparation,
local training (SGD, or Newton's bank-side sums and the same line-searched Newton iteration
the strategy runs, ``strategies.newton.NewtonSearch``), the baselines
(``fl_credit.run.baselines``), imbalance handling, prior correction and metrics, and replaces only
the federation (Flower's runtime, messages, secure aggregation, Hydra's app machinery, the
credit report and plots, run files) by a loop over the banks in one process. It reads the
same config (same ``conf/`` folder, same overrides, ``train.optimizer=auto`` resolved the same
way), so the floor follows whatever optimizer and round count the default run uses; it
refuses configurations whose math it does not reproduce (DP). It never imports Flower's
simulation runtime or Ray (the shared baseline and Newton modules import ``flwr.app``'s
record types).

Usage::

    python -m simulations.studies.floor_default_run [hydra overrides] [--out metrics.json]
        [--federated-only]

Prints one JSON line with each model's metrics and the phase times; ``--out`` also writes it.
``simulations/bench/overhead.py`` checks that its numbers equal the default run's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fl_credit.config.compose import compose_experiment
from fl_credit.config.errors import FlCreditError
from fl_credit.config.parsing import resolve_optimizer
from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.calibration import prior_correction
from fl_credit.credit.metrics import evaluate_scores, round_metrics
from fl_credit.credit.thresholds import score_histograms, threshold_from_histograms
from fl_credit.data.prepare import Prepared, prepare
from fl_credit.data.scaling import (
    centered_squares,
    first_moments,
    mean_from_sums,
    standardizer_from_sums,
)
from fl_credit.model.imbalance import balance
from fl_credit.model.training import LocalTraining, newton_terms, train
from fl_credit.runtime.threads import single_threaded_math

SUPPORTED_OPTIMIZERS = ("sgd", "adam", "rmsprop", "newton")


class LogisticRegression(nn.Module):
    """Same parameterisation as ``fl_credit.model.logistic.LogisticRegression`` (``linear``)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.linear(x).squeeze(-1)


def zero_model(n_features: int) -> LogisticRegression:
    """Zero weights, as ``fl_credit.model.logistic.new_model``."""
    model = LogisticRegression(n_features)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    return model


def scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Default probabilities (float64), as ``fl_credit.model.logistic.predict_proba``."""
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


def train_party(x, y, pos_weight, cfg: ExperimentConfig, seed: int, model) -> None:
    """One bank's local epochs of SGD (or another torch optimizer) in a round."""
    local = LocalTraining.from_config(
        cfg.train, epochs=cfg.train.local_epochs, pos_weight=pos_weight, seed=seed
    )
    if cfg.strategy.name == "fedprox":
        local = LocalTraining(**{**local.__dict__, "proximal_mu": cfg.strategy.proximal_mu})
    train(model, x, y, local)


def federated(prep: Prepared, cfg: ExperimentConfig) -> tuple[np.ndarray, dict, list[dict]]:
    """The federated model's test scores, threshold and per-round history."""
    banks = list(prep.banks.values())
    # Federated standardisation: two summed passes, as fl_credit.coordinator.federation does.
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
    search = None
    if cfg.train.optimizer == "newton":
        from strategies.newton import NewtonSearch

        search = NewtonSearch(
            np.zeros(x_test.shape[1] + 1), l2=cfg.train.l2, total_rows=count, tol=cfg.train.tol
        )
    for server_round in range(1, cfg.train.rounds + 1):
        if search is not None:
            if search.converged:
                break
            # Every bank's sums at the candidate; the server's safeguarded Newton step.
            terms = [newton_terms(x, y, w, search.candidate) for x, y, w, _, _ in parties]
            search.observe(*(sum(t[i] for t in terms) for i in range(3)))
            set_theta(model, search.theta)
        else:
            total, weighted = 0, 0.0
            for x, y, pos_weight, rows, _ in parties:
                local = zero_model(x.shape[1])
                local.load_state_dict(model.state_dict())
                train_party(x, y, pos_weight, cfg, cfg.seed * 10_007 + server_round, local)
                weighted = weighted + rows * theta(local)
                total += rows
            set_theta(model, weighted / total)
        history.append({"round": server_round, **round_metrics(prep.y_test, scores(model, x_test))})
    # Calibrated PDs: the same prior correction the federation applies to the final model.
    correction = prior_correction(cfg.imbalance.method, agreed_pos_weight)
    set_theta(model, theta(model) - np.r_[np.zeros(x_test.shape[1]), correction])

    hist = sum(
        score_histograms(bank.y_val, scores(model, x_val), cfg.histogram_bins)
        for bank, (*_, x_val) in zip(banks, parties, strict=True)
    )
    return scores(model, x_test), {"threshold": threshold_from_histograms(hist)}, history


def run_floor(overrides: list[str], federated_only: bool = False) -> dict:
    """Everything the default run computes, timed by phase."""
    times = {}
    started = time.perf_counter()
    single_threaded_math()  # as fl_credit.simulate: the same numbers
    cfg, _ = compose_experiment(overrides)
    cfg = resolve_optimizer(cfg)
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
        from fl_credit.run import baselines

        for name, fitted in (
            ("centralized", baselines.centralized(prep, cfg)),
            ("reference", baselines.reference(prep, cfg)),
        ):
            metrics[name] = score(fitted.test_scores, fitted.threshold)
        metrics["local"] = {
            name: None if fitted is None else score(fitted.test_scores, fitted.threshold)
            for name, fitted in baselines.local_only(prep, cfg).items()
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
