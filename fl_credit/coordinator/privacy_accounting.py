"""The coordinator's account of what each bank's privacy budget paid for.

Everything here is computed from public settings, so the coordinator can state each bank's
composed epsilon without being told anything about the bank's rows:

- ``dp=opacus``: every bank's plan (:meth:`fl_credit.protocol.settings.BankSettings.dp_settings`)
  covers its statistics, validation and evaluation releases and its DP-SGD steps; the banks
  report only how many rounds and releases they made, and the coordinator composes them;
- ``dp=central``: one release of the banks' clipped, noised updates per applied round,
  protected at bank level.

The centralized and bank-alone models of a simulation train on the same rows again; they are
counterfactual references that a real bank would not release, and their budgets are reported
apart from the released federated model's.
"""

from __future__ import annotations

import logging

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fl_credit.config.schema import ExperimentConfig
from fl_credit.protocol.dp_plan import central_dp_accountant  # noqa: F401 - re-exported
from fl_credit.protocol.settings import BankSettings

log = logging.getLogger(__name__)

COUNTERFACTUAL_NOTE = (
    "centralized, reference and bank-alone models are counterfactual research references: "
    "they train on the same borrowers again, a real bank would not release them (they are in "
    "not_private/), and under DP "
    "each would spend its own budget on top of the released federated model's"
)


def collect_privacy(
    grid: Grid, nodes: list[int], settings: BankSettings, timeout: float
) -> dict[str, dict]:
    """Each bank's composed epsilon under ``dp=opacus``, keyed by bank name.

    The banks say how many rounds and releases they made (nothing data-dependent); the
    epsilon comes from the public plan.
    """
    from strategies.dp.budget import TRAINING

    dp = settings.dp_settings()
    budget = dp.budget()
    messages = [
        Message(
            content=RecordDict({"config": settings.to_config()}),
            message_type="query.privacy",
            dst_node_id=node,
        )
        for node in nodes
    ]
    reports = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            log.warning("a bank sent no privacy report: %s", reply.error.reason)
            continue
        record: ConfigRecord = reply.content["privacy"]
        done = dict(zip(record["release-names"], record["release-done"], strict=True))
        steps_per_round = dp.steps_per_epoch * dp.local_epochs
        done[TRAINING] = int(record["rounds-done"]) * steps_per_round
        report = budget.report(done)
        report.update(
            rounds_done=int(record["rounds-done"]),
            bank_says_within_budget=bool(record["within-budget"]),
        )
        reports[str(record["bank"])] = report
    return dict(sorted(reports.items()))


def privacy_summary(cfg: ExperimentConfig, privacy: dict[str, dict]) -> dict:
    """What the released federated model cost each bank, and what the baselines are.

    Parameters
    ----------
    cfg : ExperimentConfig
        The run's configuration.
    privacy : dict
        ``FederationResult.privacy``: per-bank reports (``dp=opacus``) or the bank-level
        accountant's report (``dp=central``).
    """
    if cfg.dp.mode == "off":
        return {"mode": "off", "released": "federated model, without DP"}
    if cfg.dp.no_noise:
        return {
            "mode": cfg.dp.mode,
            "level": "none",
            "released": (
                "NOT PRIVATE: DP-SGD without noise (dp.epsilon=no_noise: clipping and Poisson "
                "sampling only, noise multiplier 0, epsilon inf); the folder is written as "
                "without DP"
            ),
            "target_epsilon": "inf",
            "epsilon_per_bank": "inf",
            "noise_multiplier": 0.0,
        }
    if cfg.dp.mode == "opacus":
        spent = [r["epsilon_spent"] for r in privacy.values() if r.get("epsilon_spent") is not None]
        first = next(iter(privacy.values()), {})
        alone = {r["name"]: r["epsilon_alone"] for r in first.get("releases", [])}
        level = "record"
    else:
        report = privacy.get("all_banks", {})
        spent = [report.get("epsilon", 0.0)]
        first, alone, level = report, {"training": report.get("epsilon", 0.0)}, "bank"
    return {
        "mode": cfg.dp.mode,
        "level": level,
        "released": (
            "the run folder's top level: the federated model (model.pt), its metrics, history, "
            "scores and report; not_private/ holds what DP does not cover"
        ),
        "target_epsilon": float(cfg.dp.epsilon),
        "epsilon_per_bank": max(spent) if spent else None,
        "delta": first.get("delta"),
        "epsilon_alone_by_release": alone,
        "counterfactual": COUNTERFACTUAL_NOTE,
    }
