"""The master scale: rating grades as PD bands, assigned to rows where the rows are.

Grade 1 is the safest. ``grades`` bands with ``grades - 1`` inner edges spaced evenly in
log-PD between ``pd_low`` and ``pd_high`` (public settings, fixed before any row is seen);
each bank assigns its own rows from the model's PDs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MasterScale:
    """PD bands ``[edges[g-1], edges[g])`` of grades ``1..len(edges) + 1``."""

    edges: tuple[float, ...]

    @classmethod
    def geometric(cls, grades: int, pd_low: float, pd_high: float) -> MasterScale:
        """``grades`` bands with inner edges evenly spaced in log-PD over [pd_low, pd_high]."""
        return cls(tuple(float(e) for e in np.geomspace(pd_low, pd_high, grades - 1)))

    @property
    def grades(self) -> int:
        """Number of grades."""
        return len(self.edges) + 1

    def grade(self, pd: np.ndarray) -> np.ndarray:
        """Grade index (0-based, 0 safest) of each PD."""
        return np.searchsorted(np.asarray(self.edges), np.asarray(pd, dtype=np.float64), "right")

    def labels(self) -> list[str]:
        """``G1 (<1.0%)``, ``G2 (1.0-1.7%)``, ..."""
        lows, highs = [0.0, *self.edges], [*self.edges, 1.0]
        out = []
        for g, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
            band = (
                f"<{hi:.1%}" if g == 0 else (f">={lo:.1%}" if hi >= 1.0 else f"{lo:.1%}-{hi:.1%}")
            )
            out.append(f"G{g + 1} ({band})")
        return out
