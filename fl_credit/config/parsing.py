"""Build the typed :class:`ExperimentConfig` from the resolved Hydra dict, checked once."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import (
    NO_NOISE,
    AttackConfig,
    AuditConfig,
    DataConfig,
    DPConfig,
    EngineConfig,
    EvalConfig,
    ExperimentConfig,
    FeaturesConfig,
    ImbalanceConfig,
    ModelConfig,
    PartitionConfig,
    StrategyConfig,
    TrainConfig,
    ValidationConfig,
)
from fl_credit.config.validation import attack_rewrites_model, validate
from strategies.robust.registry import summing_strategies


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
    default = ExperimentConfig()
    cfg = ExperimentConfig(
        seed=_as_int(raw.get("seed", default.seed), "seed"),
        test_size=_typed(raw.get("test_size", default.test_size), float, "test_size"),
        val_size=_typed(raw.get("val_size", default.val_size), float, "val_size"),
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
        model=_section(ModelConfig, raw.get("model"), "model"),
        validation=_section(ValidationConfig, raw.get("validation"), "validation"),
        bootstrap=_as_int(metrics.get("bootstrap", default.bootstrap), "metrics.bootstrap"),
        histogram_bins=_as_int(
            metrics.get("histogram_bins", default.histogram_bins), "metrics.histogram_bins"
        ),
        calibration_bins=_as_int(
            metrics.get("calibration_bins", default.calibration_bins), "metrics.calibration_bins"
        ),
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
    summing = summing_strategies()
    sums = cfg.strategy.name in summing and not attack_rewrites_model(cfg.attack)
    if optimizer == "auto":
        optimizer = "newton" if cfg.dp.mode == "off" and sums else "sgd"
    elif optimizer == "newton" and cfg.dp.mode != "off":
        raise ConfigError(f"train.optimizer=newton cannot run with dp={cfg.dp.mode}; use sgd")
    elif optimizer == "newton" and not sums:
        raise ConfigError(
            f"train.optimizer=newton needs a summing strategy ({', '.join(summing)}), "
            f"not strategy={cfg.strategy.name}; use sgd"
        )
    if optimizer == cfg.train.optimizer:
        return cfg
    return replace(cfg, train=replace(cfg.train, optimizer=optimizer))


def _no_privacy_at_infinite_epsilon(dp: dict[str, Any]) -> dict[str, Any]:
    """``dp.epsilon=inf`` means no privacy guarantee: the run trains without DP.

    It lets one sweep put the non-private reference next to finite budgets.

    ``dp.epsilon=no_noise`` keeps DP-SGD (same clipping and sampling) without noise, which
    the configuration holds as epsilon ``inf`` with ``dp=opacus``: no privacy either, but it
    separates what the switch to DP-SGD costs from what the noise costs.
    """
    epsilon = dp.get("epsilon")
    if isinstance(epsilon, int | float) and math.isinf(epsilon) and epsilon > 0:
        return {**dp, "mode": "off", "epsilon": None}
    if epsilon == NO_NOISE:
        if dp.get("mode") != "opacus":
            raise ConfigError(
                f"dp.epsilon={NO_NOISE} (DP-SGD without noise) needs dp=opacus, got "
                f"dp={dp.get('mode', 'off')}"
            )
        return {**dp, "epsilon": math.inf}
    return dp


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)
