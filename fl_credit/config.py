"""Typed experiment configuration, built from the Hydra config and checked once.

The ServerApp, the baselines and the data pipeline all take an :class:`ExperimentConfig`;
nothing reads the raw Hydra tree after :func:`from_dict`.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from fl_credit.errors import ConfigError
from strategies.attacks import ATTACK_NAMES as ATTACKS
from strategies.attacks import DATA_POISONING
from strategies.robust import GROUP_RULES
from strategies.robust import PLAINTEXT_ROBUST as ROBUST_STRATEGIES

OPTIMIZERS = ("auto", "newton", "sgd", "adam", "rmsprop")
# Strategies whose aggregate is a sum of the banks' replies: the ones Newton can use.
SUM_STRATEGIES = ("fedavg", "secagg")
IMBALANCE_METHODS = ("smote", "class_weight", "none")
DP_MODES = ("off", "opacus", "central")
PARTITION_SCHEMES = ("shares", "two_banks", "power", "dirichlet", "region")
DATA_KINDS = ("embedded", "lending_club_csv", "csv", "synthetic")
FEATURE_KINDS = ("standard", "woe")


@dataclass(frozen=True)
class DataConfig:
    """Where the loans come from."""

    kind: str = "embedded"
    path: str | None = None
    target: str | None = None
    positive: str | tuple[str, ...] | None = None
    negative: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None
    region: str | None = None
    rows: int = 20_000
    bounds: str | None = None
    sep: str = ","


@dataclass(frozen=True)
class PartitionConfig:
    """How the training rows are split between banks."""

    scheme: str = "shares"
    shares: tuple[float, ...] = (0.25, 0.25, 0.5)
    share: float = 0.5
    banks: int = 5
    skew: float = 1.0
    alpha: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Local training settings shared by every model (federated and baselines)."""

    rounds: int = 20
    local_epochs: int = 1
    lr: float = 0.5
    batch_size: int = 0
    optimizer: str = "auto"
    l2: float = 0.01
    tol: float = 1e-6
    max_skipped_share: float = 0.5


@dataclass(frozen=True)
class StrategyConfig:
    """Aggregation strategy and its parameters."""

    name: str = "secagg"
    proximal_mu: float = 0.0
    threshold: int | None = None
    clipping_range: float = 4.0
    quantization_bits: int = 16
    metric_range: float = 1e3
    max_weight: float = 2.0**24
    beta: float = 0.2
    num_malicious: int = 1
    num_selected: int | None = None
    max_norm: float | None = None
    group_size: int = 3
    robust: str = "none"


@dataclass(frozen=True)
class DPConfig:
    """Differential privacy settings."""

    mode: str = "off"
    epsilon: float | None = None
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    sample_rate: float = 0.1
    clip_norm: float = 1.0
    colluders: int = 0
    budget: tuple[tuple[str, float], ...] = (
        ("statistics", 0.1),
        ("validation", 0.05),
        ("evaluation", 0.05),
        ("woe", 0.1),
    )

    def budget_share(self, release: str) -> float:
        """Share of epsilon a release of the banks' rows other than training may spend."""
        return dict(self.budget).get(release, 0.0)


@dataclass(frozen=True)
class ImbalanceConfig:
    """Class-imbalance handling on each bank's own training rows."""

    method: str = "class_weight"
    k_neighbors: int = 5
    pos_weight: float | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Federated evaluation: each bank scores the global model on its own test rows.

    The coordinator sees only the summed score histograms (and summed Brier / log-loss
    terms); under ``dp=opacus`` only the final model is evaluated, as one accounted release.
    """

    federated: bool = False
    every: int = 1
    bins: int = 400


@dataclass(frozen=True)
class AttackConfig:
    """Simulated malicious banks (``attack=none``: every bank is honest).

    ``None`` for a per-attack setting means the attack's own default (see
    :mod:`strategies.attacks`).
    """

    name: str = "none"
    banks: tuple[int, ...] = (0,)
    start_round: int = 1
    factor: float | None = None
    fraction: float | None = None
    norm: float | None = None
    flip: str | None = None
    trigger: dict | None = None
    z: float | None = None
    samples: int | None = None
    base: str | None = None


@dataclass(frozen=True)
class EngineConfig:
    """Simulation engine settings."""

    backend: str = "ray"
    cpus_per_bank: float = 1.0
    timeout: float = 600.0
    keep_warm: bool = True
    ray_address: str | None = None


@dataclass(frozen=True)
class FeaturesConfig:
    """What the model's inputs are (``features`` group): ``standard`` (standardised
    features) or ``woe`` (weight of evidence of federated bins, :mod:`fl_credit.woe`)."""

    kind: str = "standard"
    max_bins: int = 6
    min_share: float = 0.05
    fine_bins: int = 50
    smoothing: float = 0.5


@dataclass(frozen=True)
class AuditConfig:
    """Privacy-audit settings (``audit`` section)."""

    record_server_view: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one experiment run decides."""

    seed: int = 0
    test_size: float = 0.2
    val_size: float = 0.2
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    dp: DPConfig = field(default_factory=DPConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    bootstrap: int = 1000
    histogram_bins: int = 200
    calibration_bins: int = 15
    drop_after_keys: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for ``metrics.json`` and logs."""
        return asdict(self)


def _section(cls: type, raw: Any, name: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, rejecting unknown keys."""
    raw = dict(raw or {})
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(raw) - known - {"_target_"})
    if unknown:
        raise ConfigError(f"unknown key(s) in '{name}': {', '.join(unknown)}")
    values = {}
    hints = typing.get_type_hints(cls)
    for key in known & set(raw):
        value = raw[key]
        if isinstance(value, list):
            value = tuple(value)
        values[key] = _typed(value, hints[key], f"{name}.{key}")
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"bad '{name}' settings: {err}") from None


def _typed(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against a numeric field type, naming ``key`` when it does not fit.

    Without this a string where a number belongs (``train.lr=abc``) fails later as a bare
    TypeError. Other types pass unchecked; a whole float is accepted for an int field.
    """
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return value
    if int in options or float in options:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if float in options and number:
            return value
        if int in options and number and float(value).is_integer():
            return int(value)
        kind = "a number" if float in options else "a whole number"
        raise ConfigError(f"{key} must be {kind}, got {value!r}")
    for option in options:
        if typing.get_origin(option) is tuple and typing.get_args(option)[0] is float:
            if isinstance(value, Sequence) and not isinstance(value, str):
                return tuple(_typed(v, float, key) for v in value)
            raise ConfigError(f"{key} must be a list of numbers, got {value!r}")
    return value


def from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Build and validate the experiment configuration from a resolved Hydra dict.

    Parameters
    ----------
    raw : dict
        The resolved Hydra config (``OmegaConf.to_container(cfg, resolve=True)``).

    Returns
    -------
    ExperimentConfig
        The checked configuration.

    Raises
    ------
    ConfigError
        On an unknown key or a value out of range, with one line naming it.
    """
    dp_raw = _no_privacy_at_infinite_epsilon(dict(raw.get("dp") or {}))
    if "batch_size" in dp_raw:
        raise ConfigError(
            "dp.batch_size was replaced by dp.sample_rate (the Poisson rate of each DP-SGD "
            "step): a batch size tied to a bank's row count would make the privacy plan reveal it"
        )
    if isinstance(dp_raw.get("budget"), dict):
        dp_raw["budget"] = tuple((str(k), float(v)) for k, v in dp_raw["budget"].items())
    raw = {**raw, "dp": dp_raw}
    metrics = dict(raw.get("metrics") or {})
    faults = dict(raw.get("faults") or {})
    cfg = ExperimentConfig(
        seed=_as_int(raw.get("seed", 0), "seed"),
        test_size=_typed(raw.get("test_size", 0.2), float, "test_size"),
        val_size=_typed(raw.get("val_size", 0.2), float, "val_size"),
        data=_section(DataConfig, raw.get("data"), "data"),
        partition=_section(PartitionConfig, raw.get("partition"), "partition"),
        train=_section(TrainConfig, raw.get("train"), "train"),
        strategy=_section(StrategyConfig, raw.get("strategy"), "strategy"),
        dp=_section(DPConfig, raw.get("dp"), "dp"),
        imbalance=_section(ImbalanceConfig, raw.get("imbalance"), "imbalance"),
        attack=_section(AttackConfig, raw.get("attack"), "attack"),
        engine=_section(EngineConfig, raw.get("engine"), "engine"),
        eval=_section(EvalConfig, raw.get("eval"), "eval"),
        audit=_section(AuditConfig, raw.get("audit"), "audit"),
        features=_section(FeaturesConfig, raw.get("features"), "features"),
        bootstrap=_as_int(metrics.get("bootstrap", 1000), "metrics.bootstrap"),
        histogram_bins=_as_int(metrics.get("histogram_bins", 200), "metrics.histogram_bins"),
        calibration_bins=_as_int(metrics.get("calibration_bins", 15), "metrics.calibration_bins"),
        drop_after_keys=tuple(int(i) for i in faults.get("drop_after_keys") or ()),
    )
    validate(cfg)
    return resolve_optimizer(cfg)


def resolve_optimizer(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with ``train.optimizer=auto`` resolved (idempotent).

    ``auto`` is ``newton`` when DP is off and the strategy aggregates sums (``fedavg``,
    ``secagg``), else ``sgd`` (DP-SGD, robust aggregators and simulated attacks that rewrite
    the model update need model-update rounds).

    Raises
    ------
    ConfigError
        For an explicit ``newton`` with DP or with a strategy that does not sum.
    """
    optimizer = cfg.train.optimizer
    # A simulated bank that rewrites its model update needs model-update rounds too.
    sums = cfg.strategy.name in SUM_STRATEGIES and not attack_rewrites_model(cfg.attack)
    if optimizer == "auto":
        optimizer = "newton" if cfg.dp.mode == "off" and sums else "sgd"
    elif optimizer == "newton" and cfg.dp.mode != "off":
        raise ConfigError(f"train.optimizer=newton cannot run with dp={cfg.dp.mode}; use sgd")
    elif optimizer == "newton" and not sums:
        raise ConfigError(
            f"train.optimizer=newton needs a summing strategy ({', '.join(SUM_STRATEGIES)}), "
            f"not strategy={cfg.strategy.name}; use sgd"
        )
    if optimizer == cfg.train.optimizer:
        return cfg
    return replace(cfg, train=replace(cfg.train, optimizer=optimizer))


def _no_privacy_at_infinite_epsilon(dp: dict[str, Any]) -> dict[str, Any]:
    """``dp.epsilon=inf`` means no privacy guarantee: the run trains without DP.

    It lets one sweep put the non-private reference next to finite budgets.
    """
    epsilon = dp.get("epsilon")
    if isinstance(epsilon, int | float) and math.isinf(epsilon) and epsilon > 0:
        return {**dp, "mode": "off", "epsilon": None}
    return dp


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` on the first value that is out of range."""
    _check(0.0 < cfg.test_size < 1.0, f"test_size must be in (0, 1), got {cfg.test_size}")
    _check(0.0 < cfg.val_size < 1.0, f"val_size must be in (0, 1), got {cfg.val_size}")
    _check(cfg.data.kind in DATA_KINDS, f"data.kind must be one of {DATA_KINDS}")
    if cfg.data.kind in ("lending_club_csv", "csv"):
        _check(bool(cfg.data.path), f"data={cfg.data.kind} needs data.path=<file>")
    if cfg.data.kind == "csv":
        _check(bool(cfg.data.target), "data=csv needs data.target=<column>")
        _check(cfg.data.positive is not None, "data=csv needs data.positive=<value>")
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
        known = {"statistics", "validation", "evaluation", "woe"}
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
    plaintext = s.name in ROBUST_STRATEGIES
    if s.name == "secagg":
        _check(
            s.robust == "none",
            f"strategy=secagg cannot apply strategy.robust={s.robust}: the server sees only the "
            "sum of all banks and a robust rule needs each update; use strategy=grouped_secagg "
            f"or a plaintext robust strategy ({', '.join(ROBUST_STRATEGIES)})",
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
    _check(a.name in ATTACKS, f"attack must be one of {ATTACKS}, got {a.name!r}")
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
        a.flip in (None, "all", "defaults"),
        f"attack.flip must be all or defaults, got {a.flip!r}",
    )
    _check(
        a.base in (None, "alie", "sign_flip"),
        f"attack.base must be alie or sign_flip, got {a.base!r}",
    )
    _check(
        a.trigger is None or (isinstance(a.trigger, dict) and len(a.trigger) >= 1),
        "attack.trigger must map features to values, e.g. {inq_fi: 20}",
    )
    if a.name == "colluding":
        _check(len(a.banks) >= 2, "attack=colluding needs at least two attack.banks")
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


def attack_rewrites_model(a: AttackConfig) -> bool:
    """Whether the attack changes the model a bank sends (data poisoning alone does not)."""
    if a.name in ("none", "label_flip"):
        return False
    return not (a.name == "backdoor" and (a.factor or 1.0) == 1.0)
