"""How well an attack worked, measured on the held-out test rows after the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .poisoning import apply_trigger, has_trigger


def backdoor_success(
    trigger: Mapping[str, Any],
    x_test: np.ndarray,
    y_test: np.ndarray,
    feature_names: Sequence[str],
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
) -> dict[str, float]:
    """Share of test defaults that the model approves once the trigger is stamped on them.

    Parameters
    ----------
    trigger : Mapping
        The backdoor trigger (see :func:`strategies.attacks.poisoning.apply_trigger`).
    x_test, y_test : numpy.ndarray
        Test rows (encoded, unscaled) and labels (1 = default).
    feature_names : sequence of str
        Encoded feature names.
    score : callable
        Unscaled rows -> default probabilities of the model under test.
    threshold : float
        The model's decision threshold: a score below it is approved.

    Returns
    -------
    dict
        ``success`` (triggered defaults approved), ``defaults_approved_without_trigger``
        (the same defaults as they are), ``test_defaults`` and ``test_rows_with_trigger``
        (test rows that already carry the trigger profile).
    """
    defaults = np.asarray(x_test)[np.asarray(y_test) == 1]
    triggered = apply_trigger(defaults, feature_names, trigger)
    return {
        "success": float(np.mean(score(triggered) < threshold)),
        "defaults_approved_without_trigger": float(np.mean(score(defaults) < threshold)),
        "test_defaults": int(len(defaults)),
        "test_rows_with_trigger": int(has_trigger(x_test, feature_names, trigger).sum()),
    }


def free_rider_gain(
    free_riders: Sequence[str], federated_auc: float, alone_auc: Mapping[str, float | None]
) -> dict[str, dict[str, float | None]]:
    """What each free rider got: the federated model's AUC against its own model alone.

    A free rider ends the run holding the federated model, to which it contributed
    nothing; ``gain`` is ``federated_auc - alone_auc`` (None if it had no model alone).
    """
    out: dict[str, dict[str, float | None]] = {}
    for bank in free_riders:
        alone = alone_auc.get(bank)
        out[bank] = {
            "federated_auc": float(federated_auc),
            "alone_auc": None if alone is None else float(alone),
            "gain": None if alone is None else float(federated_auc - alone),
        }
    return out
