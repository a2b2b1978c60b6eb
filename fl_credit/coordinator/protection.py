"""What protects a run's banks, said once and checked before anything starts.

Every run states what the coordinator can see (plain updates, or only sums of at least ``t``
banks, each over the banks of the bank's previous sum and of one request all received), what a
dropout gives away, and what bounds what the released model says about a borrower (nothing,
or DP at a stated budget). Secure aggregation with fewer than three banks is refused: with two, each
bank learns the other's input by subtracting its own from the sum.
"""

from __future__ import annotations

from fl_credit.config.schema import ExperimentConfig
from fl_credit.config.validation import MIN_SECAGG_BANKS, check_bank_count

__all__ = ["check_bank_count", "describe", "dropout_cost"]


def dropout_cost(dp_mode: str, optimizer: str = "newton") -> str:
    """What a bank that drops out between two training rounds (or is claimed to) gives away.

    The banks refuse every other way of summing over fewer banks (their ledger). On Newton's
    model chain the next model is the one every bank recomputes from the last sum, so the
    subtraction leaves the dropped bank's terms only up to the others' change over that one
    step; off the chain (SGD) the coordinator may choose a model a hair away from the last,
    which gives the dropped bank's last training reply exactly. Either happens once: the bank
    is never summed again.
    """
    if dp_mode != "off":
        return "a dropped bank's last training reply is protected by DP alone"
    if optimizer == "newton":
        return (
            "without DP, a dropped bank's last training terms are exposed up to the others' "
            "change over one Newton step, once"
        )
    return "without DP, a dropped bank's last training reply can be recovered, once"


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
            f"{num_banks} banks (threshold {t}), each of one request that every bank received "
            "and over the same banks as before; "
            + (
                f"tolerates {tolerance} bank(s) dropping out between training rounds "
                f"({dropout_cost(cfg.dp.mode, cfg.train.optimizer)})"
                if tolerance > 0
                else "cannot tolerate any bank dropping out"
            )
        )
    elif name == "grouped_secagg":
        seen = (
            "grouped secure aggregation: the coordinator sees sums of each group of banks; "
            "the banks consent to regrouping, so differencing across groups is bounded by DP "
            "alone"
        )
    else:
        seen = f"plain {name}: the coordinator sees each bank's update"
    not_private = (
        "; counterfactual models and exact counts go to not_private/ (not covered by DP, "
        "must not leave the consortium)"
    )
    if cfg.dp.no_noise:
        bound = (
            "NOT PRIVATE: DP-SGD without noise (dp.epsilon=no_noise, epsilon inf): clipping and "
            "Poisson sampling only, to measure what DP-SGD costs apart from its noise"
        )
    elif cfg.dp.mode == "opacus":
        releases = ["statistics", "validation"]
        releases += ["evaluation"] if cfg.eval.federated else []
        releases += ["woe"] if cfg.features.kind == "woe" else []
        releases += ["validation counts"] if cfg.validation.enabled else []
        trees = cfg.model.kind == "gbm"
        how = "Gaussian tree-level releases" if trees else "Opacus DP-SGD"
        training = "the tree levels" if trees else "training"
        bound = (
            f"record-level DP ({how}), epsilon {cfg.dp.epsilon:g} per bank over "
            f"{', '.join(releases)} and {training}; weights: public size bands" + not_private
        )
    elif cfg.dp.mode == "central":
        bound = f"bank-level DP, epsilon {cfg.dp.epsilon:g}; every bank weighs 1" + not_private
    else:
        bound = "no DP: nothing bounds what the released model reveals about a borrower"
    if cfg.dp.mode != "off" and cfg.dp.reproducible_noise:
        bound += (
            " -- NOT PRIVATE: dp.reproducible_noise seeds the noise from public values, so "
            "the coordinator can regenerate and remove it"
        )
    return f"protection: {seen}; {bound}"
