"""The experiment configuration's schema: option names and the frozen section dataclasses.

The ServerApp, the baselines and the data pipeline all take an :class:`ExperimentConfig`;
nothing reads the raw Hydra tree after :func:`fl_credit.config.parsing.from_dict`.

The defaults of the sections that are not config groups (the top-level values, ``train``,
``metrics``, ``eval``, ``engine``, ``validation``, ``audit``, ``faults``) are written here
only: Hydra reads them from the node :mod:`fl_credit.config.store` makes of these classes,
and ``conf/config.yaml`` holds the group choices alone. A group's options (``conf/<group>/``)
write their own settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

OPTIMIZERS = ("auto", "newton", "sgd", "adam", "rmsprop")
IMBALANCE_METHODS = ("smote", "class_weight", "none")
DP_MODES = ("off", "opacus", "central")
NO_NOISE = "no_noise"
"""``dp.epsilon`` value for DP-SGD without noise (epsilon inf, no privacy)."""
PARTITION_SCHEMES = ("shares", "two_banks", "power", "dirichlet", "region")
FEATURE_KINDS = ("standard", "woe")
MODEL_KINDS = ("lr", "gbm")


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
    exclude: tuple[str, ...] = ()
    max_levels: int = 100
    majority_default: bool = False


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
    """0: full batch (the study's ``batch_size=-1``)."""
    optimizer: str = "auto"
    """``auto`` (``newton`` without DP on a summing strategy, else ``sgd``), ``newton``,
    ``sgd``, ``adam`` or ``rmsprop``."""
    l2: float = 0.01
    """L2 penalty on the weights (not the bias)."""
    tol: float = 1e-6
    """Stop once a round changes no coefficient by more than this (0: never)."""
    max_skipped_share: float = 0.5
    """A run in which more rounds than this share aggregated nothing fails."""
    monotone: tuple[str, ...] = ()
    """Ordered characteristics whose one-hot effects must be monotone (``name``: rising in
    the listed or sorted level order, ``-name``: falling; ``name:level,level,...`` names the
    order), see :mod:`fl_credit.validation.monotone`."""


@dataclass(frozen=True)
class StrategyConfig:
    """Aggregation strategy and its parameters."""

    name: str = "secagg"
    proximal_mu: float = 0.0
    threshold: int | None = None
    clipping_range: float = 4.0
    quantization_bits: int = 16
    metric_range: float = 1e3
    max_weight: float = 2**24
    beta: float = 0.2
    num_malicious: int = 1
    num_selected: int | None = None
    max_norm: float | None = None
    group_size: int = 3
    robust: str = "none"
    root_rows: int = 100
    """FLTrust: rows of the root set the coordinator holds."""
    root_bank: int = -1
    """FLTrust: the bank whose consented rows form the root set (negative: from the last)."""


# The releases of the banks' rows, other than training, that ``dp.budget`` gives a share.
DP_RELEASES = ("statistics", "validation", "evaluation", "woe", "grades")


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
    reproducible_noise: bool = False
    budget: tuple[tuple[str, float], ...] = (
        ("statistics", 0.1),
        ("validation", 0.05),
        ("evaluation", 0.05),
        ("woe", 0.1),
        ("grades", 0.05),
    )

    @property
    def no_noise(self) -> bool:
        """DP-SGD without noise (``dp.epsilon=no_noise``): clipping and sampling, no privacy."""
        return self.mode == "opacus" and self.epsilon is not None and math.isinf(self.epsilon)

    @property
    def private(self) -> bool:
        """True when the run's releases carry DP noise."""
        return self.mode != "off" and not self.no_noise

    def budget_shares(self) -> dict[str, float]:
        """Share of epsilon each release of the banks' rows other than training may spend
        (0 for a release the budget does not name)."""
        return {release: dict(self.budget).get(release, 0.0) for release in DP_RELEASES}


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
    """Each bank also scores the model on its own test rows (the deployment default: the
    coordinator holds no rows)."""
    every: int = 1
    """Federated evaluation every this many rounds (only the final model under DP)."""
    bins: int = 400
    """Logit-scale score bins of the evaluation histograms."""


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
    perturbation: str | None = None


@dataclass(frozen=True)
class EngineConfig:
    """Simulation engine settings."""

    backend: str = "ray"
    """``ray``: Flower's simulation engine on Ray; ``inprocess``: the same engine, no Ray."""
    cpus_per_bank: float = 1
    timeout: float = 600
    keep_warm: bool = True
    """One Ray instance for a whole sweep instead of one per run."""
    ray_address: str | None = None
    """An existing Ray cluster (``ray start --head``; ``auto`` or ``host:port``)."""


@dataclass(frozen=True)
class FeaturesConfig:
    """What the model's inputs are (``features`` group): ``standard`` (standardised
    features) or ``woe`` (weight of evidence of federated bins, :mod:`fl_credit.credit.woe`)."""

    kind: str = "standard"
    max_bins: int = 6
    min_share: float = 0.05
    fine_bins: int = 50
    smoothing: float = 0.5


@dataclass(frozen=True)
class ModelConfig:
    """Which model the banks train (``model`` group): ``lr`` (logistic regression) or ``gbm``
    (federated histogram gradient boosting, :mod:`fl_credit.boosting`); the tree settings are
    used by ``gbm`` only."""

    kind: str = "lr"
    trees: int = 50
    depth: int = 3
    learning_rate: float = 0.3
    reg_lambda: float = 1.0
    gamma: float = 0.0
    min_child_weight: float = 1.0
    patience: int = 5
    min_delta: float = 1e-6
    bins: int = 50
    colsample: int = 0
    increasing: tuple[str, ...] = ("int_rate",)
    decreasing: tuple[str, ...] = ()
    bank_min_hessian: float = 1.0
    bank_min_rows: int = 10


@dataclass(frozen=True)
class AuditConfig:
    """Privacy-audit settings (``audit`` section)."""

    record_server_view: bool = False
    """Store what the coordinator receives under ``<run dir>/server_view/``."""


@dataclass(frozen=True)
class ValidationConfig:
    """The validation report (``validation`` section, :mod:`fl_credit.validation`): a master
    scale of ``grades`` PD bands, geometric between ``pd_low`` and ``pd_high``, and the
    per-grade counts summed over banks, overall and by each of ``groups`` present in the data
    (a one-hot characteristic, or a numeric column cut at ``bands[column]`` or, without
    bands, at the federation's mean +- half a standard deviation)."""

    enabled: bool = True
    """Sum the banks' per-grade counts once after training (``dp=central``: skipped)."""
    grades: int = 8
    pd_low: float = 0.01
    """The ``grades - 1`` PD band edges are evenly spaced in log-PD over ``[pd_low,
    pd_high]``."""
    pd_high: float = 0.4
    alpha: float = 0.05
    """Traffic light: yellow below ``alpha``, red below ``red``."""
    red: float = 0.01
    groups: tuple[str, ...] = (
        "addr_state",
        "home_ownership",
        "Home",
        "annual_inc",
        "Income",
        "emp_length",
    )
    """Groupings reported, those present in the data."""
    bands: dict | None = field(
        default_factory=lambda: {"annual_inc": [40000, 60000, 90000], "Income": [90, 125, 170]}
    )
    """Public cut points of numeric groupings (a grouping without them: mean +- 0.5 sd)."""
    psi_bins: int = 10
    """CSI: feature bins at deciles of the validation rows."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one experiment run decides."""

    seed: int = 0
    test_size: float = 0.2
    """Global held-out test set, stratified, taken before banks are formed."""
    val_size: float = 0.2
    """Each bank's local validation split."""
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
    model: ModelConfig = field(default_factory=ModelConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    bootstrap: int = 1000
    """``metrics.bootstrap``: resamples for the AUC confidence interval."""
    histogram_bins: int = 200
    """``metrics.histogram_bins``: score bins (logit scale) that pick the validation
    threshold."""
    calibration_bins: int = 15
    """``metrics.calibration_bins``: reliability bins (logit scale) of the validation
    calibration check."""
    drop_after_keys: tuple[int, ...] = ()
    """``faults.drop_after_keys``: simulated banks (partition ids) that crash after the key
    exchange."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for ``metrics.json`` and logs."""
        return asdict(self)
