"""Range and consistency checks of an :class:`ExperimentConfig`: one line per problem."""

from __future__ import annotations

from dataclasses import asdict

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import (
    DP_MODES,
    DP_RELEASES,
    FEATURE_KINDS,
    IMBALANCE_METHODS,
    MODEL_KINDS,
    OPTIMIZERS,
    PARTITION_SCHEMES,
    AttackConfig,
    ExperimentConfig,
    PartitionConfig,
)
from fl_credit.data.registry import source_names, source_problem
from strategies.attacks import COLLUDING_BASES, DATA_POISONING, FLIP_MODES
from strategies.attacks.min_max import PERTURBATIONS
from strategies.attacks.registry import ATTACKS, attack_names, rewrites_model
from strategies.robust.grouped import GROUP_RULES
from strategies.robust.registry import plaintext_defences, strategy_names, summing_strategies


def attack_rewrites_model(a: AttackConfig) -> bool:
    """Whether the configured attack changes the model a bank sends (the attack's own
    :meth:`~strategies.attacks.Attack.rewrites`; data poisoning alone does not)."""
    return rewrites_model(a.name, asdict(a))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` on the first value that is out of range."""
    _check(0.0 < cfg.test_size < 1.0, f"test_size must be in (0, 1), got {cfg.test_size}")
    _check(0.0 < cfg.val_size < 1.0, f"val_size must be in (0, 1), got {cfg.val_size}")
    kinds = source_names()
    _check(cfg.data.kind in kinds, f"data.kind must be one of {kinds}")
    problem = source_problem(cfg.data)
    _check(problem is None, str(problem))
    _check_partition(cfg.partition)
    count = static_bank_count(cfg.partition)
    if count is not None:
        check_bank_count(cfg, count)
    t = cfg.train
    _check(t.rounds >= 1, f"train.rounds must be at least 1, got {t.rounds}")
    _check(t.local_epochs >= 1, f"train.local_epochs must be at least 1, got {t.local_epochs}")
    _check(t.lr > 0, f"train.lr must be positive, got {t.lr}")
    _check(t.batch_size >= 0 or t.batch_size == -1, "train.batch_size must be >= 0 (0 = full)")
    _check(t.optimizer in OPTIMIZERS, f"train.optimizer must be one of {OPTIMIZERS}")
    _check(t.l2 >= 0, f"train.l2 must be >= 0, got {t.l2}")
    _check(t.tol >= 0, f"train.tol must be >= 0, got {t.tol}")
    _check(
        0.0 <= t.max_skipped_share < 1.0,
        f"train.max_skipped_share must be in [0, 1), got {t.max_skipped_share}",
    )
    _check(
        cfg.imbalance.method in IMBALANCE_METHODS,
        f"imbalance must be one of {IMBALANCE_METHODS}, got {cfg.imbalance.method!r}",
    )
    _check_dp(cfg)
    _check_defence(cfg)
    _check_attack(cfg)
    _check_features(cfg)
    _check_model(cfg)
    from fl_credit.validation.settings import check_validation

    check_validation(cfg)
    _check(
        cfg.engine.backend in ("ray", "inprocess"),
        f"engine.backend must be ray or inprocess, got {cfg.engine.backend!r}",
    )
    _check(
        not cfg.engine.ray_address or cfg.engine.backend == "ray",
        "engine.ray_address needs engine.backend=ray",
    )
    _check(cfg.eval.every >= 1, f"eval.every must be at least 1, got {cfg.eval.every}")
    _check(cfg.eval.bins >= 10, f"eval.bins must be at least 10, got {cfg.eval.bins}")
    _check(cfg.bootstrap >= 0, "metrics.bootstrap must be >= 0")
    _check(cfg.histogram_bins >= 10, "metrics.histogram_bins must be at least 10")
    _check(cfg.calibration_bins >= 2, "metrics.calibration_bins must be at least 2")


MIN_SECAGG_BANKS = 3


def static_bank_count(p: PartitionConfig) -> int | None:
    """Number of banks the partition settings fix (None for ``region``: it depends on data)."""
    if p.scheme == "shares":
        return len(p.shares)
    if p.scheme == "two_banks":
        return 2
    if p.scheme in ("power", "dirichlet"):
        return int(p.banks)
    return None


def check_bank_count(cfg: ExperimentConfig, num_banks: int) -> None:
    """Refuse secure aggregation over fewer than three banks, with the reason.

    Raises
    ------
    ConfigError
        One line naming the problem and what to use instead.
    """
    if cfg.strategy.name == "secagg" and num_banks < MIN_SECAGG_BANKS:
        raise ConfigError(
            f"strategy=secagg needs at least {MIN_SECAGG_BANKS} banks, this run has {num_banks}: "
            "with two, each bank learns the other's update by subtracting its own from the sum; "
            "use strategy=fedavg (the coordinator then sees each update) and dp=opacus if the "
            "updates must be protected"
        )


def check_banks(cfg: ExperimentConfig, num_banks: int) -> None:
    """:func:`check_bank_count`, and for ``grouped_secagg`` :func:`check_group_count`.

    Raises
    ------
    ConfigError
        One line naming the problem.
    """
    check_bank_count(cfg, num_banks)
    if cfg.strategy.name == "grouped_secagg":
        check_group_count(num_banks, cfg.strategy.group_size)


def _check_partition(p: PartitionConfig) -> None:
    _check(p.scheme in PARTITION_SCHEMES, f"partition scheme must be one of {PARTITION_SCHEMES}")
    if p.scheme == "shares":
        shares = [float(s) for s in p.shares]
        _check(len(shares) >= 1, "partition.shares needs at least one bank")
        _check(all(s > 0 for s in shares), f"partition.shares must all be positive, got {shares}")
        _check(
            abs(sum(shares) - 1.0) < 1e-6,
            f"partition.shares must sum to 1, got {shares} (sum {sum(shares):.4g})",
        )
    if p.scheme == "two_banks":
        _check(0.0 < p.share <= 0.5, f"partition.share must be in (0, 0.5], got {p.share}")
    if p.scheme in ("power", "dirichlet"):
        _check(p.banks >= 1, f"partition.banks must be at least 1, got {p.banks}")
    if p.scheme == "power":
        _check(p.skew >= 0, f"partition.skew must be >= 0, got {p.skew}")
    if p.scheme == "dirichlet":
        _check(p.alpha > 0, f"partition.alpha must be positive, got {p.alpha}")


def _check_dp(cfg: ExperimentConfig) -> None:
    dp = cfg.dp
    _check(dp.mode in DP_MODES, f"dp must be one of {DP_MODES}, got {dp.mode!r}")
    if dp.mode == "off":
        return
    _check(dp.epsilon is not None and dp.epsilon > 0, "dp.epsilon must be a positive number")
    _check(dp.delta is None or 0 < dp.delta < 1, f"dp.delta must be in (0, 1), got {dp.delta}")
    if dp.mode == "opacus":
        _check(
            cfg.imbalance.method != "smote",
            "dp=opacus cannot be combined with imbalance=smote: SMOTE builds synthetic rows from "
            "real neighbours, which voids record-level accounting; use imbalance=class_weight",
        )
        _check(dp.max_grad_norm > 0, "dp.max_grad_norm must be positive")
        _check(dp.accountant in ("prv", "rdp"), "dp.accountant must be prv or rdp")
        _check(0 < dp.sample_rate <= 1, f"dp.sample_rate must be in (0, 1], got {dp.sample_rate}")
        known = set(DP_RELEASES)
        unknown = sorted({name for name, _ in dp.budget} - known)
        _check(not unknown, f"dp.budget has unknown releases {unknown}; known: {sorted(known)}")
        shares = [share for _, share in dp.budget]
        _check(
            all(0 < v < 1 for v in shares) and sum(shares) < 1,
            f"dp.budget shares must each be in (0, 1) and sum below 1, got {dict(dp.budget)}",
        )
    _check(dp.colluders >= 0, f"dp.colluders must be >= 0, got {dp.colluders}")
    if dp.mode == "central":
        _check(
            cfg.imbalance.method != "class_weight" or cfg.imbalance.pos_weight is not None,
            "dp=central cannot learn the class weight from the banks' default counts (a "
            "bank-level release); set imbalance.pos_weight=<repaid loans per default, from "
            "public figures> or imbalance=none",
        )
        _check(
            cfg.imbalance.method != "smote",
            "dp=central cannot be combined with imbalance=smote (synthetic rows are built from "
            "each bank's real neighbours); use imbalance=class_weight",
        )


def _check_defence(cfg: ExperimentConfig) -> None:
    s = cfg.strategy
    names = strategy_names()
    _check(s.name in names, f"strategy must be one of {names}, got {s.name!r}")
    plaintext_rules = plaintext_defences()
    plaintext = s.name in plaintext_rules
    if s.name == "secagg":
        _check(
            s.robust == "none",
            f"strategy=secagg cannot apply strategy.robust={s.robust}: the server sees only the "
            "sum of all banks and a robust rule needs each update; use strategy=grouped_secagg "
            f"or a plaintext robust strategy ({', '.join(plaintext_rules)})",
        )
    if plaintext:
        _check(
            s.threshold is None and s.robust == "none",
            f"strategy={s.name} needs each bank's update in plaintext and cannot be combined "
            "with secure aggregation (strategy.threshold / strategy.robust); use "
            "strategy=grouped_secagg for robustness over securely summed groups",
        )
    if plaintext or s.name == "grouped_secagg":
        _check(
            cfg.dp.mode != "central",
            f"dp=central accounts for a released sum of all banks' noised updates; "
            f"strategy={s.name} releases something else (a median, a chosen update or group "
            "sums), so its guarantee would not hold; use dp=opacus",
        )
        _check(
            cfg.train.optimizer != "newton",
            f"strategy={s.name} combines model updates; use train.optimizer=sgd",
        )
    _check(0.0 <= s.beta < 0.5, f"strategy.beta must be in [0, 0.5), got {s.beta}")
    _check(s.num_malicious >= 0, f"strategy.num_malicious must be >= 0, got {s.num_malicious}")
    _check(
        s.num_selected is None or s.num_selected >= 1,
        f"strategy.num_selected must be at least 1, got {s.num_selected}",
    )
    _check(
        s.max_norm is None or s.max_norm > 0,
        f"strategy.max_norm must be positive (or null: the round's median norm), got {s.max_norm}",
    )
    if s.name == "grouped_secagg":
        _check(
            s.group_size >= 3,
            f"strategy.group_size must be at least 3, got {s.group_size}: in a group of two, "
            "a bank whose group mean becomes the median learns the other's update",
        )
        count = static_bank_count(cfg.partition)
        if count is not None:
            check_group_count(count, s.group_size)
        _check(
            s.robust in GROUP_RULES,
            f"strategy.robust must be one of {GROUP_RULES} for grouped_secagg, got {s.robust!r}",
        )
    if s.name == "fltrust":
        _check_root_set(cfg)


def _check_root_set(cfg: ExperimentConfig) -> None:
    """FLTrust's root set: enough rows, a bank that exists and is not a simulated attacker
    (FLTrust assumes the root set is clean)."""
    s = cfg.strategy
    _check(
        cfg.dp.mode == "off",
        f"strategy=fltrust cannot run with dp={cfg.dp.mode}: the coordinator trains its root "
        "update on raw rows of the root bank, so the released model would not be private for "
        "those borrowers; use strategy=flame or another defence",
    )
    _check(s.root_rows >= 10, f"strategy.root_rows must be at least 10, got {s.root_rows}")
    count = static_bank_count(cfg.partition)
    if count is None:
        return
    _check(
        -count <= s.root_bank < count,
        f"strategy.root_bank must name one of the {count} banks, got {s.root_bank}",
    )
    _check(
        cfg.attack.name == "none" or s.root_bank % count not in cfg.attack.banks,
        f"strategy.root_bank={s.root_bank} is also an attacker (attack.banks="
        f"{list(cfg.attack.banks)}): FLTrust assumes the root set comes from an honest bank",
    )


def check_group_count(num_banks: int, group_size: int) -> None:
    """Refuse ``grouped_secagg`` with fewer than three groups (a median of two groups is
    their mean: no robustness)."""
    groups = num_banks // group_size
    _check(
        groups >= 3,
        f"strategy=grouped_secagg needs at least 3 groups for a robust rule: {num_banks} banks "
        f"in groups of {group_size} make {groups}",
    )


def _check_attack(cfg: ExperimentConfig) -> None:
    a = cfg.attack
    attacks = attack_names()
    _check(a.name in attacks, f"attack must be one of {attacks}, got {a.name!r}")
    if a.name == "none":
        return
    _check(len(a.banks) >= 1, "attack.banks must name at least one bank, e.g. attack.banks=[0]")
    _check(
        all(isinstance(b, int) and b >= 0 for b in a.banks),
        f"attack.banks must be bank numbers >= 0, got {list(a.banks)}",
    )
    _check(len(set(a.banks)) == len(a.banks), f"attack.banks repeats a bank: {list(a.banks)}")
    _check(
        1 <= a.start_round <= cfg.train.rounds,
        f"attack.start_round must be in [1, train.rounds={cfg.train.rounds}], got {a.start_round}",
    )
    _check(a.factor is None or a.factor > 0, f"attack.factor must be positive, got {a.factor}")
    _check(
        a.fraction is None or 0 < a.fraction <= 1,
        f"attack.fraction must be in (0, 1], got {a.fraction}",
    )
    _check(a.norm is None or a.norm >= 0, f"attack.norm must be >= 0, got {a.norm}")
    _check(a.z is None or a.z >= 0, f"attack.z must be >= 0, got {a.z}")
    _check(a.samples is None or a.samples >= 2, f"attack.samples must be >= 2, got {a.samples}")
    _check(
        a.perturbation is None or a.perturbation in PERTURBATIONS,
        f"attack.perturbation must be one of {PERTURBATIONS}, got {a.perturbation!r}",
    )
    _check(
        a.flip is None or a.flip in FLIP_MODES,
        f"attack.flip must be {' or '.join(FLIP_MODES)}, got {a.flip!r}",
    )
    _check(
        a.base is None or a.base in COLLUDING_BASES,
        f"attack.base must be {' or '.join(COLLUDING_BASES)}, got {a.base!r}",
    )
    _check(
        a.trigger is None or (isinstance(a.trigger, dict) and len(a.trigger) >= 1),
        "attack.trigger must map features to values, e.g. {inq_fi: 20}",
    )
    fewest = ATTACKS[a.name].min_banks
    _check(len(a.banks) >= fewest, f"attack={a.name} needs at least {fewest} attack.banks")
    _check(
        not (attack_rewrites_model(a) and cfg.train.optimizer == "newton"),
        f"attack={a.name} rewrites model updates, which Newton rounds do not send; use "
        "train.optimizer=sgd (or auto)",
    )


def _check_features(cfg: ExperimentConfig) -> None:
    f = cfg.features
    _check(f.kind in FEATURE_KINDS, f"features must be one of {FEATURE_KINDS}, got {f.kind!r}")
    if f.kind != "woe":
        return
    _check(f.max_bins >= 2, f"features.max_bins must be at least 2, got {f.max_bins}")
    _check(0 <= f.min_share < 0.5, f"features.min_share must be in [0, 0.5), got {f.min_share}")
    _check(
        f.max_bins <= f.fine_bins <= 1000,
        f"features.fine_bins must be in [features.max_bins, 1000], got {f.fine_bins}",
    )
    _check(f.smoothing > 0, f"features.smoothing must be positive, got {f.smoothing}")
    _check(
        cfg.dp.mode != "central",
        "features=woe needs per-bin counts of the banks' rows, which bank-level DP (dp=central) "
        "cannot release; use dp=opacus or features=standard",
    )
    _check(
        cfg.attack.name not in DATA_POISONING,
        f"attack={cfg.attack.name} poisons raw rows, which features=woe does not train on; "
        "use features=standard",
    )
    _check(
        not cfg.audit.record_server_view,
        "the privacy audit models a linear score of standardised features; use "
        "features=standard with audit.record_server_view=true",
    )


def _check_model(cfg: ExperimentConfig) -> None:
    m = cfg.model
    _check(m.kind in MODEL_KINDS, f"model must be one of {MODEL_KINDS}, got {m.kind!r}")
    if m.kind != "gbm":
        return
    _check(m.trees >= 1, f"model.trees must be at least 1, got {m.trees}")
    _check(1 <= m.depth <= 6, f"model.depth must be in [1, 6], got {m.depth}")
    lr = m.learning_rate
    _check(0 < lr <= 1, f"model.learning_rate must be in (0, 1], got {lr}")
    _check(m.reg_lambda >= 0, f"model.reg_lambda must be >= 0, got {m.reg_lambda}")
    _check(m.gamma >= 0, f"model.gamma must be >= 0, got {m.gamma}")
    mcw = m.min_child_weight
    _check(mcw >= 0, f"model.min_child_weight must be >= 0, got {mcw}")
    _check(m.patience >= 0, f"model.patience must be >= 0 (0 = never stop early), got {m.patience}")
    _check(2 <= m.bins <= 1000, f"model.bins must be in [2, 1000], got {m.bins}")
    _check(m.colsample >= 0, f"model.colsample must be >= 0 (0 = every feature), got {m.colsample}")
    both = sorted(set(m.increasing) & set(m.decreasing))
    _check(not both, f"model.increasing and model.decreasing both name {both}")
    _check(
        cfg.features.kind == "standard",
        "model=gbm splits the raw features on the agreed grid; use features=standard",
    )
    _check(
        cfg.imbalance.method in ("class_weight", "none"),
        f"model=gbm weighs classes itself; use imbalance=class_weight or none, not "
        f"{cfg.imbalance.method}",
    )
    _check(
        cfg.strategy.name in summing_strategies(),
        f"model=gbm needs summed histograms (strategy={' or '.join(summing_strategies())}), not "
        f"strategy={cfg.strategy.name}",
    )
    _check(
        cfg.dp.mode != "central",
        "model=gbm has no bank-level DP (dp=central noises model updates); use dp=opacus, "
        "whose tree levels are record-level releases",
    )
    _check(
        cfg.dp.mode == "off" or m.min_child_weight > 0,
        "model=gbm under dp=opacus needs model.min_child_weight > 0 (it is enforced on the "
        "noised Hessian sums)",
    )
    _check(cfg.attack.name == "none", "model=gbm has no simulated attacks; use attack=none")
