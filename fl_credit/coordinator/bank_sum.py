"""How every federated query sums one vector per bank: in the clear or through the strategy's
secure aggregation."""

from __future__ import annotations

import logging

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fl_credit.config.errors import FlCreditError

log = logging.getLogger(__name__)


class BankSum:
    """Sums one vector per bank, in the clear or through the strategy's secure aggregation.

    Every summed query's reply holds one ArrayRecord ``"arrays"`` with the bank's vector.
    """

    def __init__(self, strategy: FedAvg, timeout: float) -> None:
        self.strategy = strategy
        self.timeout = timeout

    @property
    def secure(self) -> bool:
        """True when the server only ever sees the sum."""
        return hasattr(self.strategy, "secure_sum")

    def sum(
        self,
        grid: Grid,
        nodes: list[int],
        action: str,
        config: ConfigRecord,
        arrays: ArrayRecord | None = None,
        *,
        value_range: float,
        require_all: bool = True,
    ) -> np.ndarray:
        """Send ``query.<action>`` to ``nodes``; return the sum of their vectors.

        Under secure aggregation, values beyond ``value_range`` are clipped (and counted) and
        the fixed-point encoding gets as many fractional bits as the 64-bit ring allows for
        this many banks. With ``require_all``, a bank that fails makes the query fail with
        that bank's one-line reason.
        """
        from strategies.secagg import plain_sum

        records: dict = {"config": config}
        if arrays is not None:
            records["arrays"] = arrays
        content = RecordDict(records)
        kwargs = dict(node_ids=nodes, min_nodes=len(nodes), timeout=self.timeout)
        if self.secure:
            result = self.strategy.secure_sum(
                grid,
                content,
                f"query.{action}",
                value_range=value_range,
                quantization_bits=fractional_bits(len(nodes), value_range),
                label=action,
                **kwargs,
            )
        else:
            result = plain_sum(grid, content, f"query.{action}", **kwargs)
        report = result.report
        if report.dropped and (require_all or result.records is None):
            reasons = [last_line(r) for r in report.rejected.values()] or [report.reason]
            raise FlCreditError(f"query '{action}' failed at a bank: {reasons[0]}")
        if result.records is None:
            raise FlCreditError(f"query '{action}' failed: {report.reason}")
        if report.clipped:
            log.warning(
                "query '%s': %d values beyond +-%g were clipped",
                action,
                report.clipped,
                value_range,
            )
        return result.records["arrays"].to_numpy_ndarrays()[0]


def fractional_bits(num_banks: int, value_range: float) -> int:
    """Most fractional bits such that ``num_banks`` values of ``value_range`` cannot overflow
    the signed 64-bit ring (one bit of headroom), capped at 30."""
    return max(0, min(30, int(np.floor(np.log2(2.0**62 / (num_banks * value_range))))))


def last_line(text: str) -> str:
    """The last non-empty line of a (possibly multi-line) error text."""
    lines = [line.strip(" '>") for line in str(text).splitlines() if line.strip(" '>")]
    return lines[-1] if lines else str(text)
