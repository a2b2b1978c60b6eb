"""Differential privacy for fl-credit.

- ``dp=opacus`` (:mod:`strategies.dp.opacus_training`): each bank runs DP-SGD on its own rows,
  with one budget for the whole run (noise fixed once, cumulative accounting in
  ``context.state``): record-level privacy.
- ``dp=central`` (:mod:`strategies.dp.central`): each bank clips its model update and adds a
  share of the Gaussian noise, so that every sum the server can see (under secure
  aggregation) is private: bank-level privacy.

Names are re-exported lazily: importing the central-DP mod must not import Opacus (about a
second per message when every message starts a fresh process).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BudgetExhausted": "strategies.dp.errors",
    "PrivacyConfigError": "strategies.dp.errors",
    "DPSettings": "strategies.dp.plan",
    "LocalSteps": "strategies.dp.opacus_training",
    "BudgetPlan": "strategies.dp.budget",
    "plan_budget": "strategies.dp.budget",
    "add_noise_share": "strategies.dp.noise",
    "rdp_epsilon": "strategies.dp.accounting",
    "accountant_epsilon": "strategies.dp.accounting",
    "PrivacyPlan": "strategies.dp.plan",
    "train_private": "strategies.dp.opacus_training",
    "privacy_report": "strategies.dp.opacus_training",
    "epsilon_spent": "strategies.dp.opacus_training",
    "central_dp_mod": "strategies.dp.central",
    "CentralDPAccountant": "strategies.dp.central",
    "min_contributors": "strategies.dp.central",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'strategies.dp' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
