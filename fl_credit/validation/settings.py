"""The validation settings both sides resolve the same way: populations (groups) and checks.

A population is ``all`` rows or one level of a grouping. A grouping is named in
``validation.groups`` and used when the data has it:

- a one-hot characteristic ``name`` (columns ``name=level``): one population per level;
- a numeric column ``name``: bands cut at ``validation.bands[name]`` (public edges in the
  column's units) or, without them, at the federation's mean -+ half a standard deviation.

Banks and coordinator resolve populations from the feature names and the agreed
standardiser alone, so neither needs the other's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.config.errors import ConfigError

MAX_BANDS = 12
DEFAULT_BAND_Z = (-0.5, 0.5)


@dataclass(frozen=True)
class Population:
    """One population: ``column`` index and the half-open value range ``[low, high)``
    (a one-hot level is ``[0.5, inf)`` of its column); ``column`` -1 means all rows."""

    name: str
    grouping: str
    column: int
    low: float
    high: float

    @property
    def is_band(self) -> bool:
        """A band of a numeric column (cut points chosen in the settings), not a level of a
        one-hot characteristic (fixed by the data dictionary) nor ``all``."""
        return self.column >= 0 and not self.name.startswith(f"{self.grouping}=")

    def members(self, x: np.ndarray) -> np.ndarray:
        """Which rows (unscaled) belong to the population."""
        if self.column < 0:
            return np.ones(len(x), dtype=bool)
        values = x[:, self.column]
        return (values >= self.low) & (values < self.high)


def band_edges(name: str, mean: float, std: float, bands: dict | None) -> list[float]:
    """Inner cut points of a numeric grouping (configured, or mean -+ half a deviation)."""
    if bands and name in bands:
        edges = sorted(float(v) for v in bands[name])
    else:
        edges = [mean + z * std for z in DEFAULT_BAND_Z]
    if not 1 <= len(edges) <= MAX_BANDS - 1:
        raise ConfigError(f"validation.bands.{name} needs 1 to {MAX_BANDS - 1} cut points")
    return edges


def populations(
    feature_names: list[str],
    groups: tuple[str, ...],
    mean: np.ndarray,
    std: np.ndarray,
    bands: dict | None = None,
) -> list[Population]:
    """``all`` then every level of every grouping the data has, in a fixed order."""
    out = [Population("all", "all", -1, -np.inf, np.inf)]
    names = list(feature_names)
    for group in groups:
        onehot = [j for j, n in enumerate(names) if n.startswith(f"{group}=")]
        if onehot:
            out += [Population(names[j], group, j, 0.5, np.inf) for j in onehot]
        elif group in names:
            j = names.index(group)
            cuts = band_edges(group, float(mean[j]), float(std[j]), bands)
            lows, highs = [-np.inf, *cuts], [*cuts, np.inf]
            out += [
                Population(band_label(group, lo, hi), group, j, lo, hi)
                for lo, hi in zip(lows, highs, strict=True)
            ]
    return out


def band_label(name: str, low: float, high: float) -> str:
    """``name<40000``, ``40000<=name<75000``, ``name>=120000``."""
    if not np.isfinite(low):
        return f"{name}<{high:.6g}"
    if not np.isfinite(high):
        return f"{name}>={low:.6g}"
    return f"{low:.6g}<={name}<{high:.6g}"


def band_map(bands) -> dict[str, list[float]]:
    """``validation.bands`` as plain ``{column: [cut points]}`` (from a dict or OmegaConf).

    Raises
    ------
    ConfigError
        When it is not a mapping of columns to lists of numbers.
    """
    if bands is None:
        return {}
    try:
        return {str(k): [float(x) for x in v] for k, v in dict(bands).items()}
    except (TypeError, ValueError):
        raise ConfigError("validation.bands must map columns to lists of cut points") from None


def check_validation(cfg) -> None:
    """Raise :class:`ConfigError` on a ``validation`` or ``train.monotone`` value out of range."""
    v = cfg.validation
    if not 3 <= v.grades <= 25:
        raise ConfigError(f"validation.grades must be in [3, 25], got {v.grades}")
    if not 0 < v.pd_low < v.pd_high < 1:
        raise ConfigError(
            f"validation.pd_low and pd_high must satisfy 0 < low < high < 1, got "
            f"{v.pd_low}, {v.pd_high}"
        )
    if not 0 < v.red < v.alpha < 0.5:
        raise ConfigError(f"validation.red < alpha < 0.5 needed, got {v.red}, {v.alpha}")
    if v.psi_bins < 2:
        raise ConfigError(f"validation.psi_bins must be at least 2, got {v.psi_bins}")
    band_map(v.bands)
    if cfg.train.monotone and cfg.features.kind == "woe":
        raise ConfigError("train.monotone constrains one-hot effects; use features=standard")
