"""The coordinator's validation query: per-grade counts summed over banks, stored for the
report.

``query.grades`` goes through the run's summing machinery (:class:`BankSum`: secure
aggregation by default), once, after the decision threshold is fixed. Under ``dp=opacus``
it is a planned release (``dp.budget.grades``) with its own noise share; the standard
deviation of the noise on the sum follows from the public plan and is stored with the
counts. The result, everything :mod:`fl_credit.validation.analysis` needs, is written to the
run folder as ``validation_counts.json``; ``python -m fl_credit.validate RUN_DIR`` builds the
report from it without banks or rows.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum
from fl_credit.coordinator.statistics import with_values
from fl_credit.credit.outputs import grids
from fl_credit.protocol.settings import BankSettings
from fl_credit.validation.bank_counts import bank_layout, request_values
from fl_credit.validation.grade_counts import sensitivity
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.settings import band_map

log = logging.getLogger(__name__)

COUNTS_FILE = "validation_counts.json"
VALIDATION_ENCODING = {"value_range": 1e10}
"""Counts stay far below; PD sums are sent times 1024 without DP (27 fractional bits for
three banks: 1e-11 on a PD sum)."""


def grades_releases(cfg: ExperimentConfig) -> int:
    """How many validation-count releases the run makes (0 or 1)."""
    return 1 if cfg.validation.enabled and cfg.dp.mode != "central" else 0


def noise_std(
    cfg: ExperimentConfig, settings: BankSettings, sens: float, banks: int, contributors: int
) -> float:
    """Standard deviation of the DP noise on the summed counts (0 without DP)."""
    if cfg.dp.mode != "opacus":
        return 0.0
    multiplier = settings.dp_settings().budget().noise_multiplier("grades")
    return multiplier * sens * math.sqrt(banks / (contributors - cfg.dp.colluders))


def federated_validation(
    banks: BankSum,
    grid: Grid,
    arrays: ArrayRecord,
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    *,
    scaler,
    threshold: float,
    feature_names: list[str],
    bank_settings: BankSettings,
    secagg_threshold: int | None,
) -> dict:
    """Sum the banks' validation counts; return the counts file's content ({} on failure)."""
    v = cfg.validation
    scale = MasterScale.geometric(v.grades, v.pd_low, v.pd_high)
    base = getattr(scaler, "standardizer", scaler)  # under features=woe: the raw features'
    edges = grids(feature_names, scaler)
    bands = band_map(v.bands)
    layout = bank_layout(
        feature_names, scale, v.groups, bands, base.mean, base.std, edges, cfg.dp.mode
    )
    nodes = sorted(grid.get_node_ids())
    request = with_values(settings, request_values(scale, threshold, tuple(v.groups), bands))
    try:
        summed = banks.sum(grid, nodes, "grades", request, arrays=arrays, **VALIDATION_ENCODING)
    except FlCreditError as err:
        log.warning("no validation counts (%s)", err)
        return {}
    sens = sensitivity(layout)
    contributors = secagg_threshold if banks.secure and secagg_threshold else 1
    std = noise_std(cfg, bank_settings, sens, len(nodes), contributors)
    vector = np.round(summed) if cfg.dp.mode == "off" else summed
    if cfg.dp.mode == "off":  # fixed-point decoding leaves 1e-9 on counts; PD sums stay exact
        vector = restore_pd_sums(vector, summed, layout)
    log.info("validation counts summed over %d banks (%d values)", len(nodes), len(vector))
    return {
        "scale_edges": list(scale.edges),
        "threshold": float(threshold),
        "populations": [
            {
                "name": p.name,
                "grouping": p.grouping,
                "column": p.column,
                "low": p.low,
                "high": p.high,
            }
            for p in layout.populations
        ],
        "feature_names": list(feature_names),
        "inner_edges": [e[1:-1].tolist() for e in edges] if layout.feature_bins else [],
        "psi_bins": v.psi_bins,
        "pd_scale": layout.pd_scale,
        "alpha": v.alpha,
        "red": v.red,
        "second_model": cfg.dp.mode == "off",
        "second_model_name": "each bank's own model (fitted on its own training rows)",
        "dp": cfg.dp.mode,
        "sensitivity": sens,
        "noise_std": std,
        "banks_summed": len(nodes),
        "secure": banks.secure,
        "vector": vector.tolist(),
    }


def restore_pd_sums(rounded: np.ndarray, summed: np.ndarray, layout) -> np.ndarray:
    """Counts rounded to whole numbers, PD sums kept as summed (they are not whole)."""
    out = rounded.copy()
    g = layout.grades
    for k in range(2):
        start = k * layout.split_size
        for i in range(len(layout.populations)):
            block = start + i * layout.population_size
            out[block + 2 * g : block + 3 * g] = summed[block + 2 * g : block + 3 * g]
    return out
