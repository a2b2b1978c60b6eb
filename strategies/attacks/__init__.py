"""Malicious banks for simulations: data and model poisoning as Flower ClientApp mods.

Build one mod for a run with :func:`build_attack_mod` and put it first in the ClientApp's
mods; it acts only on ``train`` requests to the attacked partitions from ``start_round`` on
(see :mod:`.mod` for where it sits relative to secure aggregation and bank-level DP).

Attacks (``attack=`` name, the ``attack.*`` keys each reads):

=================  =====================  ==============================================
name               keys                   what the malicious bank sends
=================  =====================  ==============================================
label_flip         fraction, flip         model trained on flipped labels (all, or
                                          defaults turned repaid)
sign_flip          factor                 ``global - factor * update``
scale              factor                 ``global + factor * update`` (model replacement)
noise              norm                   ``global + Gaussian of L2 norm``
alie               z, samples             ``mu - z sigma sign(mu)``, spread bootstrapped
                                          from its own rows
backdoor           fraction, factor,      model trained with a trigger stamped on part of
                   trigger                its rows labelled repaid (update x ``factor``)
free_rider         norm                   the global model (plus small noise), own weight
weight_inflation   factor                 honest model, ``factor`` x its num-examples
colluding          base, factor, z        one common ALIE / sign-flip update from the
                                          colluders' pooled honest updates
model_replacement  fraction, factor,      backdoor boosted by gamma = n banks (Bagdasaryan)
                   trigger
backdoor_projected fraction, factor,      boosted backdoor scaled into the L2 bound
                   trigger, norm          (its own clean update's norm by default)
fang_krum          (none)                 -lambda sign(mu), lambda so Krum picks it (Fang)
fang_trim          factor                 local models just beyond the honest ones (Fang)
min_max, min_sum   perturbation           mu + gamma p, p = -mu/|mu|, -sign(mu) or -std,
                                          gamma searched (S&H)
ipm                factor                 -epsilon mu (Xie et al.)
alie_full          z                      ALIE on every bank's honest update
group_colluding    factor                 colluders' -factor mu, spread across groups
clip_edge          norm                   -norm sign(update): the clip box's edge
disguised_free_    norm, factor           global + noise of norm ``norm t^-factor``
rider                                     (Fraboni et al.)
=================  =====================  ==============================================

The full-knowledge attacks (``fang_*``, ``min_*``, ``ipm``, ``alie_full``) read every bank's
honest update of this round, which each attacker computes itself (:mod:`.full_knowledge`).

Data poisoning reaches the bank's rows through one hook: the mod leaves ``"attack-poison"``
(a JSON spec) in the bank's own state, and the bank's train handler passes its rows through
:func:`poison_rows`. This package imports only Flower, numpy and scipy (and the sibling
:mod:`strategies.secagg`, to mask a rewritten reply).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

from flwr.clientapp.typing import Mod

from .alie import ALIE, alie_z
from .alie_full import ALIEFull
from .backdoor import DEFAULT_TRIGGER, Backdoor
from .backdoor_projected import ProjectedBackdoor
from .base import Attack, BankTools
from .clip_edge import ClipEdge
from .colluding import COLLUDING_BASES, Colluding
from .disguised_free_rider import DisguisedFreeRider
from .exchange import POISON_KEY, AttackError, TrainExchange
from .fang_krum import FangKrum
from .fang_trim import FangTrim
from .free_rider import FreeRider
from .group_colluding import GroupColluding
from .ipm import IPM
from .label_flip import LabelFlip
from .min_max import MinMax
from .min_sum import MinSum
from .mod import attack_mod
from .model_replacement import ModelReplacement
from .noise import Noise
from .outcome import backdoor_success, free_rider_gain, success_against_clean
from .poisoning import FLIP_MODES, apply_trigger, has_trigger, poison_rows
from .registry import ATTACKS, NONE, attack_names, discover, register_attack
from .scale import Scale
from .sign_flip import SignFlip
from .weight_inflation import WeightInflation

discover()  # every attack module registers its classes

DATA_POISONING = tuple(sorted(n for n, cls in ATTACKS.items() if cls.poisons_rows))
"""Attacks that change the bank's rows (the others rewrite its model update only)."""
BACKDOORS = tuple(sorted(n for n, cls in ATTACKS.items() if cls.plants_trigger))
"""Attacks that plant the trigger (measured by :func:`backdoor_success`)."""
FREE_RIDERS = tuple(sorted(n for n, cls in ATTACKS.items() if cls.free_rides))
"""Attacks that contribute nothing (measured by :func:`free_rider_gain`)."""


def make_attack(name: str, banks: Iterable[int], **params: Any) -> Attack:
    """The attack ``name`` configured from ``params``.

    ``num_banks`` and the number of attackers go to the attacks that set
    ``needs_bank_count``, and ``channel`` (the attackers' shared folder; a temporary one by
    default) to those that set ``needs_channel``;
    other keys are the ``attack.*`` settings, and keys the attack does not read are ignored.
    """
    names = attack_names()  # imports every attack module first
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(names)}")
    cls = ATTACKS[name]
    kwargs = {k: params[k] for k in cls.params if params.get(k) is not None}
    banks = sorted(set(int(b) for b in banks))
    if cls.needs_bank_count:
        kwargs["num_banks"] = int(params["num_banks"])
        kwargs["num_attackers"] = len(banks)
    if cls.needs_channel:
        kwargs["channel"] = params.get("channel") or _temporary_channel()
    return cls(**kwargs)


def build_attack_mod(name: str, banks: Iterable[int], start_round: int = 1, **params: Any) -> Mod:
    """A ClientApp mod making partitions ``banks`` run attack ``name`` (simulation only).

    Parameters
    ----------
    name : str
        One of :func:`attack_names` but ``"none"``.
    banks : Iterable[int]
        Attacked partition ids.
    start_round : int
        First server round of the attack.
    **params
        ``attack.*`` settings (``factor``, ``fraction``, ``norm``, ``flip``, ``trigger``,
        ``z``, ``samples``, ``base``) plus ``num_banks`` and, optionally, ``channel``.

    Returns
    -------
    Mod
        Put it first in the ClientApp's mods.
    """
    banks = sorted(set(int(b) for b in banks))
    return attack_mod(make_attack(name, banks, **params), banks, start_round)


def _temporary_channel() -> str:
    folder = tempfile.mkdtemp(prefix="fl_credit_colluders_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


__all__ = [
    "ALIE",
    "IPM",
    "ALIEFull",
    "ClipEdge",
    "DisguisedFreeRider",
    "FangKrum",
    "FangTrim",
    "GroupColluding",
    "MinMax",
    "MinSum",
    "ModelReplacement",
    "ProjectedBackdoor",
    "ATTACKS",
    "BACKDOORS",
    "FREE_RIDERS",
    "NONE",
    "COLLUDING_BASES",
    "DATA_POISONING",
    "DEFAULT_TRIGGER",
    "FLIP_MODES",
    "POISON_KEY",
    "Attack",
    "AttackError",
    "Backdoor",
    "BankTools",
    "Colluding",
    "FreeRider",
    "LabelFlip",
    "Noise",
    "Scale",
    "SignFlip",
    "TrainExchange",
    "WeightInflation",
    "alie_z",
    "attack_names",
    "discover",
    "register_attack",
    "apply_trigger",
    "attack_mod",
    "backdoor_success",
    "build_attack_mod",
    "free_rider_gain",
    "has_trigger",
    "make_attack",
    "poison_rows",
    "success_against_clean",
]
