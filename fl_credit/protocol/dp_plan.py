"""The DP plan both sides compute from the agreed configuration: bank-level DP's accountant.

The coordinator accounts with it; a simulated bank takes its planned noise share and clip norm
as floors (:mod:`fl_credit.bank.floors`).
"""

from __future__ import annotations

from fl_credit.config.schema import ExperimentConfig


def central_dp_accountant(cfg: ExperimentConfig, num_banks: int, threshold: int | None):
    """Bank-level DP accountant for ``dp=central`` (None otherwise).

    Under secure aggregation every released sum holds at least the threshold ``t`` of banks;
    the run never re-keys below it (rounds are skipped instead), so each bank's noise share
    ``sigma C / sqrt(t - colluders)`` always adds up to the planned noise. Summed in the clear
    (``strategy=fedavg``), the coordinator sees each bank's update: then ``t = 1`` and every
    bank adds the full noise, which is local DP for each bank's update.
    """
    if cfg.dp.mode != "central":
        return None
    from strategies.dp.central import CentralDPAccountant, min_contributors

    return CentralDPAccountant.from_target(
        target_epsilon=float(cfg.dp.epsilon),
        total_rounds=cfg.train.rounds,
        min_contributors=min_contributors(
            num_banks, secagg_threshold=threshold, protect_from_server=True
        ),
        clip_norm=cfg.dp.clip_norm,
        delta=float(cfg.dp.delta or 0.0),
        colluders=cfg.dp.colluders,
    )
