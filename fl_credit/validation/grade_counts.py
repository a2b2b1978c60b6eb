"""The per-grade counts a bank sends for validation, and their layout after summing.

For each split (``validation``, ``test``) a bank counts on its own rows:

- per population (``all`` and each group level) and grade of the federated model: rows,
  defaults and the sum of PDs, then the rows approved (PD below the decision threshold) and
  the defaults among them;
- per grade of a second model (the bank's own model, fitted on its own training rows): rows
  and defaults;
- the migration matrix: rows per (federated grade, second-model grade);
- every feature's counts on its agreed fine grid (:func:`fl_credit.credit.psi.feature_counts`;
  left out under DP).

The vectors are summed over banks through secure aggregation; no row leaves a bank. One
borrower is in one split and in ``1 + groupings`` populations, so the L2 sensitivity is
``sqrt(5 (1 + groupings) + 2 + 1 + features)`` (:func:`sensitivity`; PD sums are sent times
1 under DP). Under DP the second
model is left out (a bank's own model depends on all its rows, so its counts would not have
that sensitivity): its blocks are zero.

numpy only: banks import it in a fresh ClientApp process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_credit.credit.psi import feature_counts, split_counts
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.settings import Population

SPLITS = ("validation", "test")
EXACT_PD_SCALE = 2.0**10
"""PD sums are sent times this without DP: the fixed-point encoding of secure aggregation
then keeps them to about 1e-12 instead of 1e-9 (a power of two: scaling is exact)."""


def pd_scale(dp_mode: str) -> float:
    """The factor on the PD sums: :data:`EXACT_PD_SCALE` without DP, 1 under DP (where one
    borrower's PD must move a sum by at most 1)."""
    return EXACT_PD_SCALE if dp_mode == "off" else 1.0


@dataclass(frozen=True)
class Layout:
    """Where every count sits in the summed vector (same on both sides)."""

    grades: int
    populations: tuple[Population, ...]
    feature_bins: tuple[int, ...]
    pd_scale: float = 1.0

    @property
    def population_size(self) -> int:
        """Per population: 3 values per grade, then approved and approved defaults."""
        return 3 * self.grades + 2

    @property
    def split_size(self) -> int:
        """Values per split."""
        g = self.grades
        return len(self.populations) * self.population_size + 2 * g + g * g + sum(self.feature_bins)

    @property
    def size(self) -> int:
        """Length of the whole vector."""
        return len(SPLITS) * self.split_size

    @property
    def groupings(self) -> int:
        """How many groupings (each borrower is in one level of each)."""
        return len({p.grouping for p in self.populations if p.column >= 0})


def sensitivity(layout: Layout) -> float:
    """L2 sensitivity of the bank's vector to one borrower (see the module docstring; a PD
    sum sent times ``pd_scale`` moves by up to that much)."""
    per_population = 4 + layout.pd_scale**2
    return float(np.sqrt(per_population * (1 + layout.groupings) + 3 + len(layout.feature_bins)))


def population_block(
    grade: np.ndarray,
    y: np.ndarray,
    pd: np.ndarray,
    approved: np.ndarray,
    grades: int,
    scale: float = 1.0,
) -> np.ndarray:
    """``[n per grade, defaults per grade, PD sum per grade (times scale), approved,
    approved defaults]``."""
    n = np.bincount(grade, minlength=grades)
    d = np.bincount(grade, weights=y, minlength=grades)
    s = np.bincount(grade, weights=pd, minlength=grades) * scale
    return np.r_[n, d, s, approved.sum(), (approved * y).sum()].astype(np.float64)


def split_vector(
    layout: Layout,
    scale: MasterScale,
    x: np.ndarray,
    y: np.ndarray,
    pd: np.ndarray,
    threshold: float,
    edges: list[np.ndarray],
    other_pd: np.ndarray | None,
) -> np.ndarray:
    """One split's counts (``x`` unscaled rows, ``pd`` the federated model's PDs)."""
    g = layout.grades
    y = np.asarray(y, dtype=np.float64)
    grade = scale.grade(pd)
    approved = (pd < threshold).astype(np.float64)
    parts = []
    for population in layout.populations:
        m = population.members(x)
        parts.append(population_block(grade[m], y[m], pd[m], approved[m], g, layout.pd_scale))
    if other_pd is None:
        parts.append(np.zeros(2 * g + g * g))
    else:
        other = scale.grade(other_pd)
        parts.append(np.bincount(other, minlength=g).astype(np.float64))
        parts.append(np.bincount(other, weights=y, minlength=g))
        parts.append(np.bincount(grade * g + other, minlength=g * g).astype(np.float64))
    if layout.feature_bins:
        parts.append(feature_counts(x, edges))
    return np.concatenate(parts)


@dataclass(frozen=True)
class PopulationCounts:
    """Summed counts of one population on one split."""

    n: np.ndarray
    defaults: np.ndarray
    pd_sum: np.ndarray
    approved: float
    approved_defaults: float

    @property
    def total(self) -> float:
        """All rows of the population."""
        return float(self.n.sum())


@dataclass(frozen=True)
class SplitCounts:
    """Summed counts of one split."""

    populations: dict[str, PopulationCounts]
    other_n: np.ndarray
    other_defaults: np.ndarray
    migration: np.ndarray
    features: list[np.ndarray]


def decode(vector: np.ndarray, layout: Layout, edges: list[np.ndarray]) -> dict[str, SplitCounts]:
    """The summed vector split back into its counts, by split name."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (layout.size,):
        raise ValueError(f"validation counts of length {len(vector)}, expected {layout.size}")
    g = layout.grades
    out = {}
    for k, split in enumerate(SPLITS):
        part = vector[k * layout.split_size : (k + 1) * layout.split_size]
        pops = {}
        for i, population in enumerate(layout.populations):
            block = part[i * layout.population_size : (i + 1) * layout.population_size]
            pops[population.name] = PopulationCounts(
                block[:g],
                block[g : 2 * g],
                block[2 * g : 3 * g] / layout.pd_scale,
                block[3 * g],
                block[3 * g + 1],
            )
        rest = part[len(layout.populations) * layout.population_size :]
        out[split] = SplitCounts(
            populations=pops,
            other_n=rest[:g],
            other_defaults=rest[g : 2 * g],
            migration=rest[2 * g : 2 * g + g * g].reshape(g, g),
            features=split_counts(rest[2 * g + g * g :], edges) if layout.feature_bins else [],
        )
    return out
