"""``features=woe``: the federation's WoE table from securely summed per-bin counts.

The coordinator's side of :mod:`fl_credit.credit.woe`, run once after the standardiser is agreed:

1. it fixes every feature's fine grid without rows, from the federation's standardiser
   (:func:`fl_credit.credit.woe.woe_edges`; one-hot columns, known from the public data dictionary,
   get two bins);
2. ``query.woe``: every bank counts its training rows' defaults and repaid loans per fine bin
   of every feature (:func:`fl_credit.credit.woe.bank_counts`), one vector summed through secure
   aggregation (in the clear under ``strategy=fedavg``). Under ``dp=opacus`` the vector is a
   planned release (``dp.budget.woe``): one borrower adds 1 to one count per feature, an L2
   sensitivity of ``sqrt(features)``, and each bank adds its share of Gaussian noise. The
   server clips negative sums to 0;
3. the server merges fine bins and fits WoE and IV per feature
   (:meth:`fl_credit.credit.woe.WoeTable.from_summed`), and sends the table to every bank
   (``query.woe_table``), which from then on trains and scores on WoE features.

What the coordinator learns: the summed (noised under DP) counts per fine bin, nothing per
bank. ``dp=central`` is refused by the configuration (a per-bin count is a bank-level release).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.bank_sum import BankSum
from fl_credit.coordinator.statistics import HISTOGRAM_ENCODING, hand_over, with_values
from fl_credit.credit.woe import (
    WoeFeatures,
    WoeTable,
    agreed_grid,
    binary_flags,
    features_to_arrays,
    features_to_lists,
    grid_to_lists,
)
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.prepare import Prepared
from fl_credit.data.scaling import Standardizer

log = logging.getLogger(__name__)


def federated_woe(
    banks: BankSum,
    grid: Grid,
    nodes: list[int],
    settings: ConfigRecord,
    cfg: ExperimentConfig,
    scaler: Standardizer,
    bounds: FeatureBounds | None,
) -> WoeFeatures:
    """Sum the banks' per-bin counts, fit the WoE table and give it to every bank.

    Returns
    -------
    WoeFeatures
        The model's input map (stands in for the standardiser from now on), holding the
        summed count vector the server received (``counts``; noised under ``dp=opacus``).
    """
    f = cfg.features
    edges = agreed_grid(scaler, bounds, f.fine_bins)
    summed = banks.sum(
        grid, nodes, "woe", with_values(settings, grid_to_lists(edges)), **HISTOGRAM_ENCODING
    )
    # Exact integers without DP (the fixed-point decoding of a secure sum may be off by
    # 1e-9); noised sums under DP, whose negative counts mean 0.
    counts = np.round(summed) if cfg.dp.mode == "off" else np.clip(summed, 0.0, None)
    table = WoeTable.from_summed(
        counts,
        edges,
        [f"column {j}" for j in range(len(edges))],
        f.smoothing,
        binary=binary_flags(bounds, scaler),
        max_bins=f.max_bins,
        min_share=f.min_share,
    )
    if cfg.dp.mode == "off":
        features = WoeFeatures.fit(table, counts, edges, standardizer=scaler)
    else:  # moments from noised counts were off by 4x-12x: scale by the WoE range
        features = WoeFeatures.from_range(table, standardizer=scaler)
    features = dataclasses.replace(features, counts=summed)
    share_table(grid, nodes, features, settings, cfg.engine.timeout)
    ivs = table.information_values()
    log.info(
        "WoE table agreed: %d features, %d bins in all, largest IV (by column) %s",
        len(edges),
        sum(len(b.woe) for b in table.binnings),
        ", ".join(f"{k} {v:.3f}" for k, v in list(ivs.items())[:3]),
    )
    return features


def share_table(
    grid: Grid, nodes: list[int], features: WoeFeatures, settings: ConfigRecord, timeout: float
) -> None:
    """Send every bank the WoE table and moments; it keeps them in its ``context.state``."""
    config = with_values(settings, features_to_lists(features))
    hand_over(grid, nodes, "woe_table", config, timeout, "WoE table")


def on_woe_features(prepared: Prepared, features: WoeFeatures) -> Prepared:
    """The run's data with every row (banks' training and validation rows, test rows) mapped
    to WoE features by the federation's table, for the baselines: pooled, bank-alone and
    scikit-learn models then compare with the federated one on the same inputs."""

    def mapped(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else features.transform(x).astype(np.float64)

    banks = {
        name: dataclasses.replace(
            bank,
            x_train=mapped(bank.x_train),
            x_val=mapped(bank.x_val),
            x_test=mapped(bank.x_test),
        )
        for name, bank in prepared.banks.items()
    }
    return dataclasses.replace(prepared, banks=banks, x_test=mapped(prepared.x_test))


def model_state(features: WoeFeatures) -> dict[str, np.ndarray]:
    """What ``model.pt`` needs to map new rows to WoE features (``woe_<array>``)."""
    return {key.replace("-", "_"): value for key, value in features_to_arrays(features).items()}
