"""The statistics the coordinator learns from the banks' sums, and what it tells them back.

- the standardiser and the federation's class weight, before training;
- the validation threshold, from the final model's validation-score histograms;
- the calibration check (reliability bins and ECE) of the final model on validation rows
  (without DP only: it is not a noised release).

Every value comes from a sum over banks (through secure aggregation by default). What each
sum may contain depends on the privacy setting:

- no DP: exact sums (two passes for the standardiser);
- ``dp=opacus``: one pass over features clipped to the public ranges, and coarse score
  histograms for the threshold, each with distributed Gaussian noise accounted in every
  bank's budget;
- ``dp=central``: nothing computed from rows at all, since bank-level sensitivity would be a
  whole bank: the standardiser comes from the public ranges and the class weight from
  ``imbalance.pos_weight``.
"""

from __future__ import annotations

import logging

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fl_credit.config.errors import ConfigError, FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum, last_line
from fl_credit.credit.calibration import reliability_summary
from fl_credit.credit.thresholds import (
    DP_THRESHOLD_BINS,
    SPAN_BINS,
    dp_cutoff,
    span_from_counts,
    threshold_from_histograms,
)
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import (
    Standardizer,
    mean_from_sums,
    standardizer_from_bounds,
    standardizer_from_private_sums,
    standardizer_from_sums,
)
from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS, SCALER_MEAN

log = logging.getLogger(__name__)

# Clip ranges of summed statistics under secure aggregation (ignored in the clear): sums of
# raw feature values stay below 1e13, variance shares below 1e11, histogram counts below 1e8.
SUM_ENCODING = {"value_range": 1e13}
VARIANCE_ENCODING = {"value_range": 1e11}
HISTOGRAM_ENCODING = {"value_range": 1e8}


def with_values(base: ConfigRecord, extra: dict) -> ConfigRecord:
    """A copy of ``base`` with ``extra`` added."""
    merged = ConfigRecord(dict(base))
    for key, value in extra.items():
        merged[key] = value
    return merged


def query_messages(nodes: list[int], action: str, config: ConfigRecord) -> list[Message]:
    """One ``query.<action>`` message per node carrying ``config``."""
    return [
        Message(RecordDict({"config": config}), message_type=f"query.{action}", dst_node_id=n)
        for n in nodes
    ]


def federated_standardizer(
    banks: BankSum,
    grid: Grid,
    nodes: list[int],
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    bounds: FeatureBounds | None,
) -> tuple[Standardizer, float, float]:
    """The federation's standardiser and class weight, agreed with every bank, and the total
    training row count (noised under ``dp=opacus``, NaN under ``dp=central``).

    The class weight is repaid / defaulted rows over all banks: with
    ``imbalance=class_weight`` every bank weighs defaults alike, so the federated objective is
    the pooled one even when banks' default rates differ.

    Returns
    -------
    tuple of (Standardizer, float, float)
        The standardiser and the class weight every bank now holds, and the row count.
    """
    if cfg.dp.mode != "off" and bounds is None:
        raise ConfigError(f"dp={cfg.dp.mode} needs public feature ranges (data.bounds)")
    if cfg.dp.mode == "central":
        scaler, pos_weight = standardizer_from_bounds(bounds), public_pos_weight(cfg)
        count = float("nan")
    elif cfg.dp.mode == "opacus":
        query = with_values(settings, {"pass": "private", **bounds.to_lists()})
        sums = banks.sum(grid, nodes, "moments", query, **SUM_ENCODING)
        scaler, count, defaults = standardizer_from_private_sums(sums, bounds)
        pos_weight = (count - defaults) / defaults
    else:
        scaler, pos_weight, count = exact_standardizer(banks, grid, nodes, settings)
    share_standardizer(grid, nodes, scaler, pos_weight, settings, cfg.engine.timeout)
    return scaler, pos_weight, count


def exact_standardizer(
    banks: BankSum, grid: Grid, nodes: list[int], settings: ConfigRecord
) -> tuple[Standardizer, float, float]:
    """Two summed passes: ``[defaults, n, sum x]``, then squared deviations / total rows.
    Returns the standardiser, the class weight and the total row count.

    Dividing the second pass by the total row count keeps the summed values within
    fixed-point range under secure aggregation.
    """
    first = banks.sum(grid, nodes, "moments", with_values(settings, {"pass": 1}), **SUM_ENCODING)
    defaults, sums = first[0], first[1:]
    count, mean = mean_from_sums(sums)
    pass_two = with_values(settings, {"pass": 2, SCALER_MEAN: mean.tolist(), "count": count})
    variance = banks.sum(grid, nodes, "moments", pass_two, **VARIANCE_ENCODING)
    scaler = standardizer_from_sums(count, mean, variance * count)
    return scaler, (count - defaults) / max(defaults, 1.0), count


def public_pos_weight(cfg: ExperimentConfig) -> float:
    """The class weight when it may not be learnt from the banks' counts (bank-level DP)."""
    if cfg.imbalance.method != "class_weight":
        return 1.0
    if cfg.imbalance.pos_weight is None:
        raise ConfigError(
            "dp=central cannot learn the class weight from the banks' default counts (a "
            "bank-level release); set imbalance.pos_weight=<repaid loans per default, from "
            "public figures> or imbalance=none"
        )
    return float(cfg.imbalance.pos_weight)


def share_standardizer(
    grid: Grid,
    nodes: list[int],
    scaler: Standardizer,
    pos_weight: float,
    settings: ConfigRecord,
    timeout: float,
) -> None:
    """Send every bank the agreed standardiser and class weight; it keeps them in its
    ``context.state``."""
    agreed = {key: a.tolist() for key, a in zip(SCALER_KEYS, scaler.arrays(), strict=False)}
    agreed[POS_WEIGHT] = pos_weight
    hand_over(grid, nodes, "standardizer", with_values(settings, agreed), timeout, "standardiser")


def hand_over(
    grid: Grid, nodes: list[int], action: str, config: ConfigRecord, timeout: float, what: str
) -> None:
    """Send every bank ``query.<action>`` with ``config`` and require each to accept it.

    Raises
    ------
    FlCreditError
        When a bank replies with an error or does not reply before ``timeout``.
    """
    replies = list(grid.send_and_receive(query_messages(nodes, action, config), timeout=timeout))
    failed = [r for r in replies if r.has_error()]
    if failed or len(replies) < len(nodes):
        reason = failed[0].error.reason if failed else "no reply before the timeout"
        raise FlCreditError(f"a bank did not take the {what}: {last_line(reason)}")


def validation_threshold(
    banks: BankSum,
    grid: Grid,
    arrays: ArrayRecord,
    config: ConfigRecord,
    cfg: ExperimentConfig,
) -> tuple[float, dict | None]:
    """The KS-maximising cut-off from the banks' summed score histograms, and under DP its
    report (:func:`fl_credit.credit.thresholds.dp_cutoff`: estimated validation recall with its
    noise, whether it flags too few defaults, and the score span it used).

    Without DP, validation rows on a fine logit grid. Under ``dp=opacus``, two noised
    releases over all the banks' rows (5x the defaults of the validation rows alone), each
    half of the validation budget: first the count of scores in
    :data:`~fl_credit.credit.thresholds.SPAN_BINS` bins over the whole public logit range, which
    locates the span where the scores lie (:func:`~fl_credit.credit.thresholds.span_from_counts`);
    then per-class counts in :data:`~fl_credit.credit.thresholds.DP_THRESHOLD_BINS` bins over that
    span. A fixed grid over the whole public range left three or four cut-offs where a DP
    model's PDs lie, and the cut-off often flagged nobody. Under ``dp=central`` no histogram
    can be released (bank-level sensitivity is a whole bank): 0.5 on the class-weighted
    score, where the classes' likelihood ratio is 1 for a calibrated model. Falls back to
    0.5, with a warning, when too few banks are left to form a sum.
    """
    if cfg.dp.mode == "central":
        log.info("bank-level DP: decision threshold 0.5 on the class-weighted score")
        return 0.5, None
    nodes = sorted(grid.get_node_ids())

    def summed(query: ConfigRecord) -> np.ndarray:
        return banks.sum(
            grid, nodes, "histogram", query, arrays=arrays, require_all=False, **HISTOGRAM_ENCODING
        )

    try:
        if cfg.dp.mode != "opacus":
            return threshold_from_histograms(np.clip(summed(config), 0.0, None)), None
        from fl_credit.protocol.settings import BankSettings

        budget = BankSettings.from_config(config).dp_settings().budget()
        sigma = budget.noise_multiplier("validation")
        counts = summed(with_values(config, {"bins": SPAN_BINS, "stage": "span"}))
        span = span_from_counts(counts, sigma)
        hist = summed(
            with_values(
                config, {"bins": DP_THRESHOLD_BINS, "span-low": span[0], "span-high": span[1]}
            )
        )
    except FlCreditError as err:
        log.warning("no validation threshold (%s); using 0.5", err)
        return 0.5, None
    report = dp_cutoff(hist, span, count_sd=sigma)
    if report["flags_too_few"]:
        log.warning(
            "the DP cut-off %.4f flags an estimated %.2f +- %.2f of validation defaults",
            report["threshold"],
            report["validation_recall"],
            report["recall_sd"],
        )
    return report["threshold"], report


def calibration_check(
    banks: BankSum,
    grid: Grid,
    arrays: ArrayRecord,
    config: ConfigRecord,
    cfg: ExperimentConfig,
) -> dict:
    """ECE and reliability bins of the final model on the banks' validation rows, from their
    summed per-bin counts of rows and defaults and sums of PD.

    Empty under DP (the bins would be an un-noised release of the banks' rows) and, with a
    warning, when too few banks are left to form a sum.
    """
    if cfg.dp.mode != "off":
        log.info(
            "dp=%s: no calibration check on validation rows (not a noised release)", cfg.dp.mode
        )
        return {}
    nodes = sorted(grid.get_node_ids())
    try:
        summed = banks.sum(
            grid,
            nodes,
            "reliability",
            config,
            arrays=arrays,
            require_all=False,
            **HISTOGRAM_ENCODING,
        )
    except FlCreditError as err:
        log.warning("no calibration check (%s)", err)
        return {}
    return reliability_summary(summed)
