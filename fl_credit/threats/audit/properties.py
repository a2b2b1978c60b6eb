"""Property inference: each bank's default rate from what the server sees.

Channels (``c`` = the federation's class weight, ``n`` rows, ``n_1`` defaults):

- plaintext moments reply ``[defaults, rows, ...]``: the rate itself;
- plaintext round-1 update: the bias gradient ``G_b = (n_0 - c n_1) / 2`` at the zero model
  (:func:`fl_credit.threats.audit.inversion.class_sums_round_one`); Newton terms need no row count:
  ``H_bb = (n_0 + c n_1) / 4`` completes the pair;
- plaintext round-1 ``train_loss`` (sent without DP): at the zero model the weighted BCE is
  ``ln 2 (n_0 + c n_1) / n``, so ``rate = (loss / ln 2 - 1) / (c - 1)``; ``val_loss_before``
  gives the validation rows' rate the same way;
- secure aggregation: only the federation's rate (every bank estimated by it), unless ``k``
  banks collude: they subtract their own moments from the sum (exact for ``k = n - 1``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from fl_credit.data.bank_file import BankData
from fl_credit.threats.audit.ground_truth import RunData
from fl_credit.threats.audit.inversion import (
    class_sums_round_one,
    data_gradient,
    local_steps,
    match_nodes,
    moments_of,
)
from fl_credit.threats.audit.observed import RoundOne


def rate_from_zero_model_loss(loss: float, pos_weight: float) -> float:
    """Default rate of the rows behind a weighted BCE measured at the all-zero model."""
    if abs(pos_weight - 1.0) < 1e-9:
        return float("nan")  # without a class weight every row's loss is ln 2
    return (loss / math.log(2.0) - 1.0) / (pos_weight - 1.0)


def rate_from_newton_terms(grad_bias: float, hess_bias: float, pos_weight: float) -> float:
    """Default rate from the bias entries of Newton terms at the zero model: there
    ``G_b = (n_0 - c n_1) / 2`` and ``H_bb = (n_0 + c n_1) / 4``."""
    repaid = grad_bias + 2.0 * hess_bias
    defaults = (2.0 * hess_bias - grad_bias) / pos_weight
    return defaults / (repaid + defaults)


def _row(bank: str, channel: str, estimate: float, truth: float) -> dict:
    return {
        "bank": bank,
        "channel": channel,
        "estimate": float(estimate),
        "true_rate": float(truth),
        "abs_error": abs(float(estimate) - float(truth)),
    }


def plaintext_channels(known: RoundOne, run: RunData) -> list[dict]:
    """Every plaintext channel for every bank."""
    names = match_nodes(known, run.banks)
    rows = []
    for node, moments in sorted(known.moments.items(), key=lambda kv: names[kv[0]]):
        name = names[node]
        bank = run.banks[name]
        truth = float(bank.y_train.mean())
        channel = "moments reply" if known.moments_exact else "moments reply (noised)"
        rows.append(_row(name, channel, moments[0] / moments[1], truth))
        if known.newton and node in known.terms:
            grad, hess, _ = known.terms[node]
            rows.append(
                _row(
                    name,
                    "round-1 Newton terms (bias gradient and Hessian)",
                    rate_from_newton_terms(float(grad[-1]), float(hess[-1][-1]), known.pos_weight),
                    truth,
                )
            )
            continue
        if node not in known.updates:
            continue
        new, weight, metrics = known.updates[node]
        s = known.settings
        gradient = data_gradient(known.start, new, weight, s.lr, s.l2, local_steps(s, weight))
        defaults, _, _ = class_sums_round_one(
            gradient, np.zeros(len(gradient) - 1), weight, known.pos_weight
        )
        rows.append(_row(name, "round-1 update (bias)", defaults / weight, truth))
        if "train_loss" in metrics:
            rows.append(
                _row(
                    name,
                    "round-1 train_loss metric",
                    rate_from_zero_model_loss(float(metrics["train_loss"]), known.pos_weight),
                    truth,
                )
            )
        if "val_loss_before" in metrics and len(bank.y_val):
            rows.append(
                _row(
                    name,
                    "round-1 val_loss_before metric (validation rows' rate)",
                    rate_from_zero_model_loss(float(metrics["val_loss_before"]), known.pos_weight),
                    float(bank.y_val.mean()),
                )
            )
    return rows


class _Request:
    """What :func:`fl_credit.bank.privacy.private_release` reads of the request (its content:
    the secure-aggregation threshold); a Flower Message needs a running app to be built."""

    def __init__(self, content) -> None:
        self.content = content

    def has_content(self) -> bool:
        return True


def own_reply(known: RoundOne, bank: BankData, name: str, threshold: int | None) -> np.ndarray:
    """A bank's own moments reply, as it sent it: exact, or under ``dp=opacus`` its noised
    release (the bank's own code and seed: a colluding bank knows its noise share). The
    replay draws the seeded noise, so it matches only runs whose banks opted into
    reproducible noise (``dp.reproducible_noise``); with secret noise only the bank itself
    knows its share."""
    if known.moments_exact:
        return moments_of(bank.x_train, bank.y_train)
    from flwr.app import ConfigRecord, Context, RecordDict

    from fl_credit.bank.privacy import SECAGG_CONTEXT, private_release
    from fl_credit.data.dictionary import FeatureBounds
    from fl_credit.data.scaling import private_moments, private_moments_sensitivity
    from fl_credit.protocol.settings import BankSettings

    config = ConfigRecord(dict(known.moments_config))
    bounds = FeatureBounds.from_lists(dict(known.moments_config))
    content = RecordDict({"config": config})
    if threshold is not None:
        content[SECAGG_CONTEXT] = ConfigRecord({"threshold": int(threshold)})
    return private_release(
        private_moments(bank.x_train, bank.y_train, bounds),
        release="statistics",
        sensitivity=private_moments_sensitivity(bounds),
        message=_Request(content),
        context=Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        settings=replace(BankSettings.from_config(config), dp_secret_noise=False),
        n_rows=len(bank.y_train),
        bank_key=name,
    )


def secure_channels(known: RoundOne, run: RunData) -> list[dict]:
    """The federation's rate as every bank's estimate, then ``k`` colluders' subtraction."""
    from fl_credit.coordinator.strategy_factory import secagg_threshold

    if known.moments_sum is None:
        return []  # no statistics left the banks (dp=central): nothing to read a rate from
    names = list(run.banks)
    threshold = secagg_threshold(run.cfg, len(names))
    total = np.asarray(known.moments_sum, dtype=np.float64)
    noised = "" if known.moments_exact else ", noised"
    rows = [
        _row(
            name,
            f"secure sum (the federation's rate{noised})",
            total[0] / total[1],
            b.y_train.mean(),
        )
        for name, b in run.banks.items()
    ]
    for k in range(1, len(names)):
        rest = total.copy()
        for name in names[:k]:
            rest -= own_reply(known, run.banks[name], name, threshold)
        for name in names[k:]:
            rows.append(
                _row(
                    name,
                    f"secure sum - {k} colluding bank(s)' moments",
                    rest[0] / rest[1],
                    run.banks[name].y_train.mean(),
                )
            )
    return rows


def audit_properties(known: RoundOne, run: RunData) -> dict:
    """Default-rate estimates per bank and channel, with their errors."""
    rows = secure_channels(known, run) if known.secure else plaintext_channels(known, run)
    return {"secure": known.secure, "rows": rows}
