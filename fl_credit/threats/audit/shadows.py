"""Shadow federations for membership inference, and the attack on a run's released model.

The candidate pool is the target's members (every bank's training rows) plus as many
non-members (test and validation rows, at most as many as there are members). Each shadow
federation trains, with the run's settings
(:func:`fl_credit.threats.audit.replay.train_federation`),
on a random subset of the pool as large as the target's training set, split between banks by
the run's partition scheme; so every candidate is IN some shadows and OUT of others. Shadows
are independent: ``jobs > 1`` trains them in parallel processes.

The positive control (:func:`positive_control`) runs the same attack where it must work: a
federation of a few hundred rows of the same data, 69 mostly one-hot features, no L2 and many
local epochs (an overfit, unregularised model); its target is one more such federation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fl_credit.config.errors import DataError
from fl_credit.config.schema import (
    DPConfig,
    ExperimentConfig,
    ImbalanceConfig,
    PartitionConfig,
    StrategyConfig,
    TrainConfig,
)
from fl_credit.data.partition import bank_shares, split_banks
from fl_credit.threats.audit.ground_truth import FinalModel, RunData
from fl_credit.threats.audit.membership import attack_metrics, label_logit, lira_scores, loss_scores
from fl_credit.threats.audit.replay import ReplayBank, train_federation


@dataclass(frozen=True)
class Pool:
    """Candidate rows of the attack and which of them the target trained on."""

    x: np.ndarray
    y: np.ndarray
    member: np.ndarray


def candidate_pool(run: RunData, seed: int) -> Pool:
    """The target's members plus at most as many non-members (see the module docstring)."""
    xm, ym = run.members
    xn, yn = run.non_members
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(yn), size=min(len(yn), len(ym)), replace=False))
    return Pool(
        x=np.vstack([xm, xn[keep]]),
        y=np.concatenate([ym, yn[keep]]),
        member=np.r_[np.ones(len(ym), bool), np.zeros(len(keep), bool)],
    )


def shadow_banks(
    x: np.ndarray, y: np.ndarray, partition: PartitionConfig, seed: int, tries: int = 20
) -> list[ReplayBank]:
    """Split rows between banks like the run's scheme.

    Size-based schemes (``shares``, ``two_banks``, ``power``) get the run's bank shares,
    stratified by class so that small shadow banks keep their defaults; ``dirichlet`` draws
    label skew as the run did (again, up to ``tries`` times, when a bank would get a single
    class).
    """
    rng = np.random.default_rng(seed)
    if partition.scheme == "region":
        raise DataError("shadow federations need a size-based partition, not partition=region")
    if partition.scheme != "dirichlet":
        shares = np.asarray(bank_shares(partition), dtype=np.float64)
        parts: list[list[int]] = [[] for _ in shares]
        for label in (0, 1):
            rows = rng.permutation(np.flatnonzero(y == label))
            cuts = np.round(np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for k, chunk in enumerate(np.split(rows, cuts)):
                parts[k].extend(chunk.tolist())
        return [ReplayBank(f"bank_{k}", x[np.sort(p)], y[np.sort(p)]) for k, p in enumerate(parts)]
    last = None
    for attempt in range(tries):
        try:
            splits = split_banks(partition, y, None, seed + 7_777 * attempt)
        except DataError as err:
            last = err
            continue
        return [ReplayBank(s.name, x[s.rows], y[s.rows]) for s in splits]
    raise DataError(f"no shadow split with both classes in every bank: {last}")


def _one_shadow(
    pool: Pool, cfg: ExperimentConfig, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train one shadow federation; return ``(phi of every candidate, IN mask)``."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(pool.y), size=size, replace=False))
    banks = shadow_banks(pool.x[chosen], pool.y[chosen], cfg.partition, seed)
    shadow = train_federation(banks, cfg, seed=seed)
    inside = np.zeros(len(pool.y), dtype=bool)
    inside[chosen] = True
    return label_logit(shadow.logits(pool.x), pool.y), inside


def train_shadows(
    pool: Pool, cfg: ExperimentConfig, *, shadows: int, size: int, seed: int, jobs: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(phi, IN)`` of every candidate under each of ``shadows`` shadow federations."""
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(shadows)]
    if jobs > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs)(
            delayed(_one_shadow)(pool, cfg, size, s % 2**31) for s in seeds
        )
    else:
        results = [_one_shadow(pool, cfg, size, s % 2**31) for s in seeds]
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


def attack(target_logits: np.ndarray, pool: Pool, phi: np.ndarray, inside: np.ndarray) -> dict:
    """Loss-threshold and LiRA (online and offline) metrics against one target."""
    target_phi = label_logit(target_logits, pool.y)
    return {
        "loss_threshold": attack_metrics(loss_scores(target_logits, pool.y), pool.member),
        "lira_online": attack_metrics(lira_scores(target_phi, phi, inside), pool.member),
        "lira_offline": attack_metrics(
            lira_scores(target_phi, phi, inside, online=False), pool.member
        ),
    }


def audit_membership(
    run: RunData, model: FinalModel, *, shadows: int, seed: int = 0, jobs: int = 1
) -> dict:
    """Membership inference against the run's released federated model."""
    pool = candidate_pool(run, seed)
    phi, inside = train_shadows(
        pool, run.cfg, shadows=shadows, size=int(pool.member.sum()), seed=seed, jobs=jobs
    )
    return {
        "target": "the run's final federated model",
        "shadows": shadows,
        **attack(model.logits(pool.x), pool, phi, inside),
    }


def control_config(cfg: ExperimentConfig, *, dp: DPConfig | None = None) -> ExperimentConfig:
    """The positive control's federation: the run's data and partition, plaintext FedAvg,
    no class weight, no L2, 50 rounds of one full-batch SGD epoch at learning rate 2 (``dp`` to
    train it with DP-SGD instead)."""
    return replace(
        cfg,
        train=TrainConfig(rounds=50, local_epochs=1, lr=2.0, batch_size=0, l2=0.0, optimizer="sgd"),
        strategy=StrategyConfig(name="fedavg"),
        imbalance=ImbalanceConfig(method="none"),
        dp=dp or DPConfig(),
    )


def leave_one_out(phi: np.ndarray, inside: np.ndarray) -> dict:
    """Carlini et al.'s evaluation: each model in turn is the target, the others its shadows;
    the scores of all targets are pooled (so low FPRs are resolved with few rows)."""
    scores: dict[str, list[np.ndarray]] = {
        "loss_threshold": [],
        "lira_online": [],
        "lira_offline": [],
    }
    member = []
    for t in range(len(phi)):
        others = np.arange(len(phi)) != t
        scores["loss_threshold"].append(-np.logaddexp(0.0, -phi[t]))
        scores["lira_online"].append(lira_scores(phi[t], phi[others], inside[others]))
        scores["lira_offline"].append(
            lira_scores(phi[t], phi[others], inside[others], online=False)
        )
        member.append(inside[t])
    members = np.concatenate(member)
    return {name: attack_metrics(np.concatenate(s), members) for name, s in scores.items()}


def positive_control(
    run: RunData,
    *,
    rows: int = 60,
    models: int = 17,
    seed: int = 0,
    jobs: int = 1,
    dp: DPConfig | None = None,
) -> dict:
    """The attacks against small overfit federations, where they must succeed.

    ``2 * rows`` candidates are drawn from the run's rows (69 features, mostly one-hot, for
    the embedded data); ``models`` federations (:func:`control_config`) each train on a random
    half; every one is attacked once with the others as its shadows (:func:`leave_one_out`).
    """
    x_all = np.vstack([run.members[0], run.non_members[0]])
    y_all = np.concatenate([run.members[1], run.non_members[1]])
    rng = np.random.default_rng(seed + 1)
    picked = rng.choice(len(y_all), size=2 * rows, replace=False)
    pool = Pool(x=x_all[picked], y=y_all[picked], member=np.zeros(2 * rows, dtype=bool))
    cfg = control_config(run.cfg, dp=dp)
    phi, inside = train_shadows(pool, cfg, shadows=models, size=rows, seed=seed + 4, jobs=jobs)
    label = f"control: {rows} of {2 * rows} rows per model, no L2, {cfg.train.rounds} rounds"
    if cfg.dp.mode != "off":
        label += f", dp={cfg.dp.mode} epsilon={cfg.dp.epsilon:g}"
    return {"target": label, "models": models, **leave_one_out(phi, inside)}
