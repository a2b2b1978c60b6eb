"""What the server tells every bank in each message's ConfigRecord, in one place.

The server builds it from the :class:`~fl_credit.config.schema.ExperimentConfig`; a bank reads it
back. Nothing else crosses from server to client, so simulation and deployment behave the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from flwr.app import ConfigRecord

from fl_credit.config.schema import ExperimentConfig
from fl_credit.credit.thresholds import DP_VALIDATION_RELEASES

if TYPE_CHECKING:
    from fl_credit.model.training import LocalTraining
    from strategies.dp.opacus_training import LocalSteps
    from strategies.dp.plan import DPSettings


@dataclass(frozen=True)
class BankSettings:
    """Training and privacy settings a bank applies to its own rows."""

    seed: int = 0
    lr: float = 0.5
    local_epochs: int = 1
    batch_size: int = 0
    optimizer: str = "sgd"
    l2: float = 0.01
    proximal_mu: float = 0.0
    imbalance: str = "class_weight"
    k_neighbors: int = 5
    dp_mode: str = "off"
    dp_epsilon: float = 0.0
    dp_delta: float = 0.0
    dp_max_grad_norm: float = 1.0
    dp_accountant: str = "prv"
    dp_sample_rate: float = 0.1
    dp_clip_norm: float = 1.0
    dp_colluders: int = 0
    dp_budget_statistics: float = 0.1
    dp_budget_validation: float = 0.05
    dp_budget_evaluation: float = 0.05
    dp_evaluation_releases: int = 0
    dp_budget_woe: float = 0.1
    dp_woe_releases: int = 0
    dp_budget_grades: float = 0.05
    dp_grades_releases: int = 0
    dp_noise_std: float = 0.0
    dp_secret_noise: bool = True
    total_rounds: int = 1
    gbm_levels: int = 0
    bank_dir: str = ""

    @classmethod
    def from_experiment(
        cls,
        cfg: ExperimentConfig,
        bank_dir: str = "",
        *,
        secret_noise: bool = True,
        evaluation_releases: int = 0,
    ) -> BankSettings:
        """The settings every bank gets for experiment ``cfg``.

        ``secret_noise`` draws DP noise from the OS's randomness instead of the run's seed
        (the server knows the seed and could remove seeded noise). A bank does not take this
        from the server: its own floors (:mod:`fl_credit.bank.floors`) overwrite it.
        ``evaluation_releases`` is how many federated evaluations of the banks' test rows the
        run makes (they are part of the privacy budget under ``dp=opacus``).
        """
        shares = cfg.dp.budget_shares()
        return cls(
            seed=cfg.seed,
            lr=cfg.train.lr,
            local_epochs=cfg.train.local_epochs,
            batch_size=cfg.train.batch_size,
            optimizer=cfg.train.optimizer,
            l2=cfg.train.l2,
            proximal_mu=cfg.strategy.proximal_mu if cfg.strategy.name == "fedprox" else 0.0,
            imbalance=cfg.imbalance.method,
            k_neighbors=cfg.imbalance.k_neighbors,
            dp_mode=cfg.dp.mode,
            dp_epsilon=float(cfg.dp.epsilon or 0.0),
            dp_delta=float(cfg.dp.delta or 0.0),
            dp_max_grad_norm=cfg.dp.max_grad_norm,
            dp_accountant=cfg.dp.accountant,
            dp_sample_rate=cfg.dp.sample_rate,
            dp_clip_norm=cfg.dp.clip_norm,
            dp_colluders=cfg.dp.colluders,
            dp_budget_statistics=shares["statistics"],
            dp_budget_validation=shares["validation"],
            dp_budget_evaluation=shares["evaluation"],
            dp_evaluation_releases=evaluation_releases,
            dp_budget_woe=shares["woe"],
            dp_woe_releases=1 if cfg.features.kind == "woe" else 0,
            dp_budget_grades=shares["grades"],
            dp_grades_releases=1 if cfg.validation.enabled else 0,
            dp_secret_noise=secret_noise,
            total_rounds=cfg.train.rounds,
            gbm_levels=gbm_levels(cfg),
            bank_dir=bank_dir,
        )

    def to_config(self) -> ConfigRecord:
        """Encode as a flat ConfigRecord (keys use dashes, Flower's convention)."""
        return ConfigRecord({k.replace("_", "-"): v for k, v in asdict(self).items()})

    def dp_settings(self) -> DPSettings:
        """The public DP-SGD settings (``dp=opacus``) of every bank in this run."""
        from strategies.dp.plan import DPSettings

        releases = (
            ("statistics", self.dp_budget_statistics, 1),
            ("validation", self.dp_budget_validation, DP_VALIDATION_RELEASES),
            ("evaluation", self.dp_budget_evaluation, self.dp_evaluation_releases),
            ("woe", self.dp_budget_woe, self.dp_woe_releases),
            ("grades", self.dp_budget_grades, self.dp_grades_releases),
        )
        # model=gbm trains by full-batch level releases: one step at rate 1 per level.
        trees = self.gbm_levels > 0
        return DPSettings(
            epsilon=self.dp_epsilon,
            delta=self.dp_delta,
            accountant=self.dp_accountant,
            sample_rate=1.0 if trees else self.dp_sample_rate,
            max_grad_norm=self.dp_max_grad_norm,
            local_epochs=1 if trees else self.local_epochs,
            total_rounds=self.gbm_levels if trees else self.total_rounds,
            # A share of 0 means the run makes no such release.
            releases=tuple(r for r in releases if r[1] > 0 and r[2] > 0),
        )

    def round_seed(self, server_round: int) -> int:
        """The seed of this bank's local training in ``server_round``."""
        return self.seed * 10_007 + server_round

    def local_training(self, pos_weight: float, server_round: int) -> LocalTraining:
        """The (non-DP) local training of ``server_round`` with the federation's class weight."""
        from fl_credit.model.training import LocalTraining

        return LocalTraining(
            epochs=self.local_epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            l2=self.l2,
            pos_weight=pos_weight,
            proximal_mu=self.proximal_mu,
            seed=self.round_seed(server_round),
        )

    def local_steps(self) -> LocalSteps:
        """The optimiser and penalties DP-SGD steps with."""
        from fl_credit.model.training import make_optimizer
        from strategies.dp.opacus_training import LocalSteps

        return LocalSteps(
            optimizer_factory=lambda params: make_optimizer(self.optimizer, params, self.lr),
            l2=self.l2,
            proximal_mu=self.proximal_mu,
        )

    @classmethod
    def from_config(cls, record: ConfigRecord) -> BankSettings:
        """Decode from a ConfigRecord built by :meth:`to_config` (extra keys ignored)."""
        values = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key in record:
                values[f.name] = record[key]
        return cls(**values)


def gbm_levels(cfg: ExperimentConfig) -> int:
    """``model=gbm``: the most tree-level releases of the run (0 for other models)."""
    if cfg.model.kind != "gbm":
        return 0
    from fl_credit.boosting.privacy import planned_levels

    return planned_levels(cfg.model.trees, cfg.model.depth)
