"""Typed experiment configuration, built from the Hydra config and checked once.

The ServerApp, the baselines and the data pipeline all take an :class:`ExperimentConfig`;
nothing reads the raw Hydra tree after :func:`from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from fl_credit.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "rmsprop")
IMBALANCE_METHODS = ("smote", "class_weight", "none")
DP_MODES = ("off", "opacus", "central")
PARTITION_SCHEMES = ("shares", "two_banks", "power", "dirichlet", "region")
DATA_KINDS = ("embedded", "lending_club_csv", "csv", "synthetic")


@dataclass(frozen=True)
class DataConfig:
    """Where the loans come from."""

    kind: str = "embedded"
    path: str | None = None
    target: str | None = None
    positive: str | None = None
    categorical: tuple[str, ...] | None = None
    region: str | None = None
    rows: int = 20_000


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
    optimizer: str = "sgd"
    l2: float = 0.01


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


@dataclass(frozen=True)
class DPConfig:
    """Differential privacy settings."""

    mode: str = "off"
    epsilon: float | None = None
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    batch_size: int = 256
    clip_norm: float = 1.0


@dataclass(frozen=True)
class ImbalanceConfig:
    """Class-imbalance handling on each bank's own training rows."""

    method: str = "class_weight"
    k_neighbors: int = 5


@dataclass(frozen=True)
class EngineConfig:
    """Simulation engine settings."""

    backend: str = "ray"
    cpus_per_bank: float = 1.0
    timeout: float = 600.0
    keep_warm: bool = True
    ray_address: str | None = None


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
    engine: EngineConfig = field(default_factory=EngineConfig)
    bootstrap: int = 1000
    histogram_bins: int = 200
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
    for key in known & set(raw):
        value = raw[key]
        if isinstance(value, list):
            value = tuple(value)
        values[key] = value
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"bad '{name}' settings: {err}") from None


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
    raw = {**raw, "dp": _no_privacy_at_infinite_epsilon(dict(raw.get("dp") or {}))}
    metrics = dict(raw.get("metrics") or {})
    faults = dict(raw.get("faults") or {})
    cfg = ExperimentConfig(
        seed=_as_int(raw.get("seed", 0), "seed"),
        test_size=float(raw.get("test_size", 0.2)),
        val_size=float(raw.get("val_size", 0.2)),
        data=_section(DataConfig, raw.get("data"), "data"),
        partition=_section(PartitionConfig, raw.get("partition"), "partition"),
        train=_section(TrainConfig, raw.get("train"), "train"),
        strategy=_section(StrategyConfig, raw.get("strategy"), "strategy"),
        dp=_section(DPConfig, raw.get("dp"), "dp"),
        imbalance=_section(ImbalanceConfig, raw.get("imbalance"), "imbalance"),
        engine=_section(EngineConfig, raw.get("engine"), "engine"),
        bootstrap=_as_int(metrics.get("bootstrap", 1000), "metrics.bootstrap"),
        histogram_bins=_as_int(metrics.get("histogram_bins", 200), "metrics.histogram_bins"),
        drop_after_keys=tuple(int(i) for i in faults.get("drop_after_keys") or ()),
    )
    validate(cfg)
    return cfg


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
    t = cfg.train
    _check(t.rounds >= 1, f"train.rounds must be at least 1, got {t.rounds}")
    _check(t.local_epochs >= 1, f"train.local_epochs must be at least 1, got {t.local_epochs}")
    _check(t.lr > 0, f"train.lr must be positive, got {t.lr}")
    _check(t.batch_size >= 0 or t.batch_size == -1, "train.batch_size must be >= 0 (0 = full)")
    _check(t.optimizer in OPTIMIZERS, f"train.optimizer must be one of {OPTIMIZERS}")
    _check(t.l2 >= 0, f"train.l2 must be >= 0, got {t.l2}")
    _check(
        cfg.imbalance.method in IMBALANCE_METHODS,
        f"imbalance must be one of {IMBALANCE_METHODS}, got {cfg.imbalance.method!r}",
    )
    _check_dp(cfg)
    _check(
        cfg.engine.backend in ("ray", "inprocess"),
        f"engine.backend must be ray or inprocess, got {cfg.engine.backend!r}",
    )
    _check(
        not cfg.engine.ray_address or cfg.engine.backend == "ray",
        "engine.ray_address needs engine.backend=ray",
    )
    _check(cfg.bootstrap >= 0, "metrics.bootstrap must be >= 0")
    _check(cfg.histogram_bins >= 10, "metrics.histogram_bins must be at least 10")


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
        _check(dp.batch_size >= 1, "dp.batch_size must be at least 1")
