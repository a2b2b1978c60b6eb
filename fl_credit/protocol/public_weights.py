"""The public weight each bank's update carries in the federated average.

Without DP a bank's weight is its training row count (FedAvg), registered in the roster at
enrolment. Under DP an exact row count is a statistic of the bank's rows that no noise
covers, so it is never sent:

- ``dp=central`` (bank-level DP): every bank weighs 1. The released average is then the mean
  of the banks' clipped, noised updates, and replacing one bank's update moves the sum by at
  most ``C``: every bank's effective noise multiplier is the planned ``sigma``. (Under row
  weights bank j's would be ``sigma * sum(n) / (m * n_j)``-like, below sigma for the largest.)
- ``dp=opacus`` (record-level DP): a size band, the power of two nearest the row count,
  declared at enrolment. Any data-independent weight keeps each bank's record-level
  guarantee (its update's signal and noise scale together); the band only says the bank's
  size to within a factor of about 1.4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def size_band(rows: int) -> float:
    """The power of two nearest ``rows`` on the log scale (at least 1)."""
    return float(2 ** max(0, round(math.log2(max(int(rows), 1)))))


def public_weight(dp_mode: str, rows: int) -> float:
    """The weight a bank with ``rows`` training rows registers and reports.

    Parameters
    ----------
    dp_mode : str
        ``"off"``, ``"opacus"`` or ``"central"``.
    rows : int
        The bank's training rows (known to the bank and, at enrolment, to itself only).

    Returns
    -------
    float
        ``rows`` without DP, :func:`size_band` under ``dp=opacus``, 1 under ``dp=central``.
    """
    if dp_mode == "central":
        return 1.0
    if dp_mode == "opacus":
        return size_band(rows)
    return float(rows)


def registered_weights(dp_mode: str, rows: Mapping[str, int]) -> dict[str, float]:
    """:func:`public_weight` of every bank, for the roster written at enrolment."""
    return {name: public_weight(dp_mode, n) for name, n in rows.items()}
