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
) -> dict[str, Any]:
    """What the model does with the test defaults once the trigger is stamped on them.

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
        ``success``: of the test defaults this model rejects as they are, the share it
        approves once triggered (a clean model's figure is the trigger's own effect, which a
        sound trigger keeps near 0); ``approved_triggered``: positions (among the test
        defaults, in test-row order) of the defaults approved once triggered, so that a
        comparison can count only the defaults a clean model rejects
        (:func:`success_against_clean`); ``defaults_approved_without_trigger``;
        ``approval_rate`` (all test rows as they are) and ``triggered_approval_rate`` (all
        test rows triggered: the targeted group); ``test_defaults`` and
        ``test_rows_with_trigger`` (test rows that already carry the trigger); ``trigger``
        (a comparison is valid only between runs measured with the same trigger).
    """
    x_test, y_test = np.asarray(x_test), np.asarray(y_test)
    defaults = x_test[y_test == 1]
    plain = score(defaults) < threshold
    triggered = score(apply_trigger(defaults, feature_names, trigger)) < threshold
    rejected = ~plain
    return {
        "trigger": {str(k): v for k, v in trigger.items()},
        "success": float(triggered[rejected].mean()) if rejected.any() else float("nan"),
        "approved_triggered": [int(i) for i in np.flatnonzero(triggered)],
        "defaults_approved_without_trigger": float(plain.mean()),
        "approval_rate": float(np.mean(score(x_test) < threshold)),
        "triggered_approval_rate": float(
            np.mean(score(apply_trigger(x_test, feature_names, trigger)) < threshold)
        ),
        "test_defaults": int(len(defaults)),
        "test_rows_with_trigger": int(has_trigger(x_test, feature_names, trigger).sum()),
    }


def success_against_clean(
    approved_attacked: Sequence[int], approved_clean: Sequence[int], test_defaults: int
) -> float:
    """Backdoor success counted only on the defaults the clean model rejects with the trigger:
    the share of those that the attacked model approves with the trigger (same test rows).
    """
    rejected_clean = set(range(int(test_defaults))) - set(int(i) for i in approved_clean)
    if not rejected_clean:
        return float("nan")
    return len(rejected_clean & set(int(i) for i in approved_attacked)) / len(rejected_clean)


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
