"""Cost of one bank's DP-SGD round (Opacus) against its non-DP round, timed in-process.

Two settings:

- ``default``: the embedded Lending Club data at the default split (three banks 25/25/50),
  the 50% bank, scaled with the pooled statistics (what federated standardisation computes),
  class weights for the imbalance;
- ``large``: synthetic rows at the full Lending Club scale, 887,379 x 0.8 = 709,903 training
  rows of 40 standard-normal features (about the width of the study's encoded data) with
  labels from a logistic model. The numbers time the arithmetic, not the data.

Times are medians (and minima, in the JSON) over repeated rounds after one warm-up call,
with one torch thread by default (``--threads``).
Each round is trained as the ClientApp does: ``fl_credit.model.training.train`` with the configured
settings (default: one full-batch step per epoch) for the non-DP round, ``train_private`` for
the DP round. A non-DP round with the DP batch size (same number of steps) is also timed,
which separates the cost of per-sample gradients and noise from the cost of taking more
steps. The first DP round also fixes the noise multiplier (a search over the accountant),
timed separately.

Usage::

    python -m simulations.bench.dp [--large-rows 709903] [--repeats 3] [--out PATH]

Writes JSON (default ``simulations/results/bench_dp.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from flwr.app import RecordDict

from fl_credit.config.schema import DPConfig, ExperimentConfig
from fl_credit.model.imbalance import positive_weight
from fl_credit.model.logistic import new_model
from fl_credit.model.training import LocalTraining, train
from fl_credit.protocol.settings import BankSettings
from strategies.dp.opacus_training import poisson_batches, privacy_report, train_private

FULL_ROWS = 887_379
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "bench_dp.json"


def experiment() -> ExperimentConfig:
    """Default experiment with ``dp=opacus`` at its configured defaults (epsilon 4)."""
    return ExperimentConfig(dp=DPConfig(mode="opacus", epsilon=4.0))


def default_bank(cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """The largest bank's scaled training rows at the default split of the embedded data."""
    from fl_credit.data.prepare import prepare
    from fl_credit.data.scaling import pooled_standardizer

    prepared = prepare(cfg)
    scaler = pooled_standardizer(np.vstack([b.x_train for b in prepared.banks.values()]))
    bank = max(prepared.banks.values(), key=lambda b: len(b.y_train))
    return scaler.transform(bank.x_train), bank.y_train.astype(np.float32)


def synthetic_bank(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features and labels from a sparse logistic model (~15% positives)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    logit = x[:, :5] @ np.array([0.8, -0.5, 0.4, 0.3, -0.2], dtype=np.float32) - 2.0
    y = (rng.random(rows, dtype=np.float32) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return x, y


def _seconds(run: Callable[[], object], repeats: int) -> list[float]:
    run()  # warm-up: torch's first call of an op pays one-off set-up costs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def _stats(prefix: str, times: list[float]) -> dict[str, float]:
    return {f"{prefix}_s": statistics.median(times), f"{prefix}_min_s": min(times)}


def time_non_dp(
    x: np.ndarray, y: np.ndarray, settings: BankSettings, batch_size: int, repeats: int
) -> list[float]:
    """Seconds of ``repeats`` non-DP rounds (the client's ``train``) at ``batch_size``."""
    local = LocalTraining(
        epochs=settings.local_epochs,
        lr=settings.lr,
        batch_size=batch_size,
        optimizer=settings.optimizer,
        l2=settings.l2,
        pos_weight=positive_weight(y),
        seed=settings.seed,
    )
    return _seconds(lambda: train(new_model(x.shape[1], 0), x, y, local), repeats)


def time_dp(
    x: np.ndarray, y: np.ndarray, settings: BankSettings, repeats: int
) -> dict[str, float | int | str]:
    """Seconds of the first DP round (with planning), of up to ``repeats`` later rounds (no
    more than the planned horizon allows), and of the privacy report."""
    state, model, pos_weight = RecordDict(), new_model(x.shape[1], 0), positive_weight(y)
    start = time.perf_counter()
    train_private(model, x, y, pos_weight, settings, state, 1)
    first = time.perf_counter() - start
    later = []
    for server_round in range(2, min(repeats, settings.total_rounds - 1) + 2):
        start = time.perf_counter()
        train_private(model, x, y, pos_weight, settings, state, server_round)
        later.append(time.perf_counter() - start)
    start = time.perf_counter()
    report = privacy_report(state)
    report_s = time.perf_counter() - start
    return {
        "dp_first_round_s": first,
        **_stats("dp_round", later),
        "privacy_report_s": report_s,
        "steps_per_round": int(report["steps"]) // int(report["rounds_done"]),
        "noise_multiplier": float(report["noise_multiplier"]),
        "sample_rate": float(report["sample_rate"]),
        "epsilon_after_rounds": float(report["epsilon"]),
        "rounds_trained": int(report["rounds_done"]),
        "accountant": str(report["accountant"]),
    }


def time_samplers(n_rows: int, sample_rate: float, steps: int) -> dict[str, float]:
    """Seconds per epoch of Poisson sampling: ours (binomial size + uniform subset) and
    Opacus's ``UniformWithReplacementSampler`` (one coin per row per step), the latter
    extrapolated from at most 100 steps."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    start = time.perf_counter()
    for _ in poisson_batches(n_rows, sample_rate, steps, np.random.default_rng(0)):
        pass
    ours = time.perf_counter() - start
    probe = min(steps, 100)
    sampler = UniformWithReplacementSampler(
        num_samples=n_rows, sample_rate=sample_rate, steps=probe
    )
    start = time.perf_counter()
    for _ in sampler:
        pass
    opacus = (time.perf_counter() - start) * steps / probe
    return {"sampling_epoch_s": ours, "opacus_sampler_epoch_s_estimate": opacus}


def bench(
    name: str, x: np.ndarray, y: np.ndarray, settings: BankSettings, repeats: int
) -> dict[str, float | int | str]:
    """Time one setting; ratios are of medians, DP round over non-DP round."""
    result: dict[str, float | int | str] = {
        "setting": name,
        "rows": int(len(y)),
        "features": int(x.shape[1]),
        **_stats("non_dp_round", time_non_dp(x, y, settings, settings.batch_size, repeats)),
        **_stats(
            "non_dp_same_batch_round",
            time_non_dp(x, y, settings, settings.dp_batch_size, repeats),
        ),
        **time_dp(x, y, settings, repeats),
    }
    result.update(
        time_samplers(len(y), float(result["sample_rate"]), int(result["steps_per_round"]))
    )
    dp = float(result["dp_round_s"])
    result["ratio_dp_vs_non_dp"] = dp / float(result["non_dp_round_s"])
    result["ratio_dp_vs_same_batch"] = dp / float(result["non_dp_same_batch_round_s"])
    return result


def markdown(results: list[dict]) -> str:
    """One table row per setting."""
    head = (
        "| setting | rows x features | non-DP round | non-DP, batch 256 | DP round "
        "| DP first round (+plan) | DP / non-DP | DP / non-DP batch 256 | steps/round |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in results:
        lines.append(
            f"| {r['setting']} | {r['rows']:,} x {r['features']} | {r['non_dp_round_s']:.4f} s "
            f"| {r['non_dp_same_batch_round_s']:.3f} s | {r['dp_round_s']:.3f} s "
            f"| {r['dp_first_round_s']:.2f} s | {r['ratio_dp_vs_non_dp']:.0f}x "
            f"| {r['ratio_dp_vs_same_batch']:.1f}x | {r['steps_per_round']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    """Run both settings, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-rows", type=int, default=int(FULL_ROWS * 0.8))
    parser.add_argument("--large-features", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, large setting")
    parser.add_argument(
        "--repeats-default", type=int, default=30, help="timed rounds, default setting"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    # One thread by default: on a shared 2-core machine a second thread mostly measures
    # contention (small ops stall tens of milliseconds waiting for a busy core).
    torch.set_num_threads(args.threads)

    load_at_start = os.getloadavg()
    cfg = experiment()
    settings = replace(BankSettings.from_experiment(cfg), total_rounds=cfg.train.rounds)
    x, y = default_bank(cfg)
    results = [bench("default (embedded, 50% bank)", x, y, settings, args.repeats_default)]
    x, y = synthetic_bank(args.large_rows, args.large_features)
    results.append(bench("large (synthetic)", x, y, settings, args.repeats))
    meta = {
        "command": " ".join(["python -m simulations.bench.dp", *(argv or sys.argv[1:])]),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "settings": {
            k: getattr(settings, k)
            for k in ("lr", "local_epochs", "batch_size", "optimizer", "l2", "total_rounds")
        }
        | {k: getattr(settings, k) for k in ("dp_epsilon", "dp_batch_size", "dp_accountant")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwritten to {args.out}")
    return results


if __name__ == "__main__":
    main()
