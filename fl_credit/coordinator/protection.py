"""What protects a run's banks, said once and checked before anything starts.

Every run states what the coordinator can see (plain updates, or only sums of at least ``t``
banks) and what bounds what the released model says about a borrower (nothing, or DP at a
stated budget). Secure aggregation with fewer than three banks is refused: with two, each
bank learns the other's input by subtracting its own from the sum.
"""

from __future__ import annotations

from fl_credit.config.schema import ExperimentConfig
from fl_credit.config.validation import MIN_SECAGG_BANKS, check_bank_count

__all__ = ["check_bank_count", "describe"]


def describe(cfg: ExperimentConfig, num_banks: int, threshold: int | None = None) -> str:
    """One line: what the coordinator sees and what bounds the released model.

    Parameters
    ----------
    cfg : ExperimentConfig
        The run's configuration.
    num_banks : int
        Banks taking part.
    threshold : int, optional
        Secure aggregation's threshold, when known.
    """
    name = cfg.strategy.name
    if name == "secagg":
        t = threshold if threshold is not None else cfg.strategy.threshold
        survivors = max(t or 0, MIN_SECAGG_BANKS)
        tolerance = num_banks - survivors
        seen = (
            f"secure aggregation: the coordinator sees only sums of at least {survivors} of "
            f"{num_banks} banks (threshold {t}); "
            + (
                f"tolerates {tolerance} bank(s) dropping out"
                if tolerance > 0
                else "cannot tolerate any bank dropping out"
            )
        )
    elif name == "grouped_secagg":
        seen = "grouped secure aggregation: the coordinator sees sums of each group of banks"
    else:
        seen = f"plain {name}: the coordinator sees each bank's update"
    if cfg.dp.mode == "opacus":
        bound = f"record-level DP (Opacus DP-SGD), epsilon {cfg.dp.epsilon:g} per bank"
    elif cfg.dp.mode == "central":
        bound = f"bank-level DP, epsilon {cfg.dp.epsilon:g}"
    else:
        bound = "no DP: nothing bounds what the released model reveals about a borrower"
    return f"protection: {seen}; {bound}"
