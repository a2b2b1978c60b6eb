"""The inputs of a tree ensemble: unscaled rows, with the federation's standardiser kept.

Trees split raw values on the agreed grid, so under ``model=gbm`` the run's "scaler" (what
every scoring call site applies before the model) passes rows through unchanged, as float64
(the float32 of :meth:`Standardizer.transform` would move values across a split edge). Its
``mean`` and ``std`` stay the federation's: the PSI grids and ``model.pt`` use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.data.scaling import Standardizer


@dataclass(frozen=True)
class RawInputs(Standardizer):
    """A :class:`Standardizer` whose ``transform`` keeps rows unscaled (see the module)."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Rows as float64, clipped to the public ranges when the standardiser clips."""
        x = np.asarray(x, dtype=np.float64)
        if self.low is not None and self.high is not None:
            x = np.clip(x, self.low, self.high)
        return x

    @classmethod
    def of(cls, scaler: Standardizer) -> RawInputs:
        """The raw inputs of a run agreed on ``scaler``."""
        return cls(mean=scaler.mean, std=scaler.std, low=scaler.low, high=scaler.high)
