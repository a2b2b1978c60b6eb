"""Federated evaluation: the coordinator's test metrics without a single borrower row.

Each bank scores the global model on its own test rows and replies with a summable vector
(:mod:`fl_credit.credit.binned_metrics`); the coordinator gets the sum, through secure aggregation
by default, and computes AUC, KS, Brier and log loss from it. This is the deployment default:
the coordinator holds no rows. The simulation keeps its shared held-out set for research
comparisons and adds federated evaluation with ``eval.federated=true``; the banks' test rows
are then exactly that held-out set, dealt out, so both evaluations see the same loans.

Under ``dp=opacus`` only the final model is evaluated, as one release accounted in every
bank's budget: per-class score counts only, each metric with its noise, and a metric whose
noise exceeds :data:`~fl_credit.credit.binned_metrics.MAX_DP_ERROR` withheld with the reason.
Under ``dp=central`` nothing is (each bank's histogram would be a release of its whole test
set at bank level).
"""

from __future__ import annotations

import logging

from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum
from fl_credit.coordinator.statistics import with_values
from fl_credit.credit.binned_metrics import (
    DP_EVALUATION_BINS,
    dp_metrics_from_histograms,
    metrics_from_vector,
)
from fl_credit.credit.thresholds import LOGIT_RANGE

log = logging.getLogger(__name__)

EVALUATION_ENCODING = {"value_range": 1e9}


def evaluation_releases(cfg: ExperimentConfig) -> int:
    """How many federated evaluations of the banks' test rows the run makes under DP."""
    return 1 if cfg.eval.federated and cfg.dp.mode == "opacus" else 0


def federated_evaluation(
    banks: BankSum,
    grid: Grid,
    arrays: ArrayRecord,
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    span: list[float] | None = None,
) -> dict[str, float] | None:
    """Test metrics of ``arrays`` from the banks' summed evaluation vectors (under DP on the
    logit ``span`` where the scores lie, found by the validation release).

    Returns None (with a warning) when too few banks answer to form a sum.
    """
    nodes = sorted(grid.get_node_ids())
    private = cfg.dp.mode == "opacus"
    config = with_values(settings, {"bins": cfg.eval.bins})
    if private:  # a few bins over the scores' span (found by the validation release)
        span = span or LOGIT_RANGE
        config = with_values(
            settings, {"bins": DP_EVALUATION_BINS, "span-low": span[0], "span-high": span[1]}
        )
    try:
        summed = banks.sum(
            grid,
            nodes,
            "evaluate",
            config,
            arrays=arrays,
            require_all=False,
            **EVALUATION_ENCODING,
        )
    except FlCreditError as err:
        log.warning("no federated evaluation (%s)", err)
        return None
    if not private:
        return metrics_from_vector(summed, cfg.eval.bins)
    from fl_credit.protocol.settings import BankSettings

    budget = BankSettings.from_config(settings).dp_settings().budget()
    result = dp_metrics_from_histograms(summed, budget.noise_multiplier("evaluation"), cfg.seed)
    if result["withheld"]:
        log.warning("federated evaluation under DP: %s", result["note"])
    return result


def wants_round_evaluation(cfg: ExperimentConfig, server_round: int) -> bool:
    """Whether round ``server_round``'s model is evaluated federatedly (never under DP)."""
    return cfg.eval.federated and cfg.dp.mode == "off" and server_round % cfg.eval.every == 0
