"""Simulated malicious banks: the ClientApp mod built from ``cfg.attack``, and what the
attack achieved (the ``"attack"`` section of ``metrics.json``).

The attacks themselves live in :mod:`strategies.attacks`; this module only passes the
configuration and the experiment's data in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from flwr.clientapp.typing import Mod

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.data.prepare import Prepared
from fl_credit.model.logistic import model_from_arrays, predict_proba


def attack_mods(cfg: ExperimentConfig, num_banks: int) -> list[Mod]:
    """The malicious banks' mod for ``cfg.attack`` (none for ``attack=none``).

    Raises
    ------
    ConfigError
        If ``attack.banks`` names a bank the partition does not have.
    """
    a = cfg.attack
    if a.name == "none":
        return []
    missing = [b for b in a.banks if b >= num_banks]
    if missing:
        raise ConfigError(
            f"attack.banks {list(a.banks)} names bank {missing[0]}, but there are only "
            f"{num_banks} banks (0 to {num_banks - 1})"
        )
    from strategies.attacks import build_attack_mod

    params = {k: v for k, v in dataclasses.asdict(a).items() if k not in ("name", "banks")}
    start = params.pop("start_round")
    return [build_attack_mod(a.name, a.banks, start, num_banks=num_banks, **params)]


def attack_metrics(cfg: ExperimentConfig, prepared: Prepared, fed, metrics: dict) -> dict:
    """What the configured attack achieved on the test rows (``metrics.json["attack"]``).

    Always: the attack's name and settings, the attacked banks' names and the model's AUC on
    the clean test rows; when the data has the trigger's features, the backdoor block (see
    :func:`strategies.attacks.backdoor_success`) for the configured trigger (the default
    trigger for attacks without one): for a clean run it is the trigger's own effect and the
    reference that a backdoor's success is counted against (only defaults the clean model
    rejects once triggered), and for every run the approval rates of all test rows and of
    the targeted group (triggered rows). Free riders: each one's gain, federated AUC minus
    its AUC alone. The AUC drop under attack needs a clean run and is left to the comparison.
    """
    from strategies.attacks import (
        DEFAULT_TRIGGER,
        FREE_RIDERS,
        alie_z,
        backdoor_success,
        free_rider_gain,
    )

    a = cfg.attack
    settings = {
        k: v
        for k, v in dataclasses.asdict(a).items()
        if k not in ("name", "banks", "start_round") and v is not None
    }
    if a.name in ("alie", "colluding", "alie_full") and a.z is None:
        settings["z"] = alie_z(len(prepared.banks), len(a.banks))
    out: dict = {
        "name": a.name,
        "banks": [] if a.name == "none" else [f"bank_{b}" for b in a.banks],
        "start_round": a.start_round,
        "settings": settings,
        "test_auc": metrics["federated"]["auc"],
    }
    trigger = a.trigger or DEFAULT_TRIGGER
    if _has_features(prepared, trigger):
        model = model_from_arrays(fed.arrays)

        def score(x: np.ndarray) -> np.ndarray:
            return predict_proba(model, fed.scaler.transform(x))

        out["backdoor"] = backdoor_success(
            trigger, prepared.x_test, prepared.y_test, prepared.feature_names, score, fed.threshold
        )
    if a.name in FREE_RIDERS:
        alone = {n: (m or {}).get("auc") for n, m in metrics["local"].items()}
        out["free_rider"] = free_rider_gain(out["banks"], metrics["federated"]["auc"], alone)
    return out


def _has_features(prepared: Prepared, trigger: dict) -> bool:
    """Whether the data has every feature the trigger names (other data sets may not)."""
    from strategies.attacks import AttackError
    from strategies.attacks.poisoning import trigger_columns

    try:
        trigger_columns(prepared.feature_names, trigger)
    except AttackError:
        return False
    return True
