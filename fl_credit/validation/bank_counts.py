"""A bank's side of the validation query: its own rows graded and counted.

The request names the master scale, the decision threshold and the groupings; the bank
resolves the populations itself from its feature names and the standardiser the federation
agreed earlier (:func:`fl_credit.validation.settings.populations`). What it checks itself,
against a coordinator that would make it count a slice of its rows small enough to give a
borrower's label away: the scale is a master scale (:func:`check_scale`), every band of a
numeric grouping holds none or at least :data:`MIN_POPULATION_ROWS` of its rows of a split
(:func:`check_populations`), and it answers once per run.
"""

from __future__ import annotations

import json

import numpy as np

from fl_credit.config.errors import DataError
from fl_credit.data.bank_file import BankData
from fl_credit.validation.grade_counts import Layout, pd_scale, split_vector
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.settings import MAX_BANDS, populations

SCALE_EDGES = "validation-scale-edges"
THRESHOLD = "validation-threshold"
GROUPS = "validation-groups"
BANDS = "validation-bands"
MAX_GRADES = 25
MIN_BAND_RATIO = 1.25
"""Every inner grade is at least this wide in PD (upper edge over lower edge)."""
PD_RANGE = (1e-3, 0.5)
"""Edges of the master scale stay within this range."""
MIN_POPULATION_ROWS = 5
"""A numeric band holding between 1 and this many - 1 of the bank's rows of a split is
refused: its counts would come close to single borrowers' labels."""


def request_values(scale: MasterScale, threshold: float, groups: tuple, bands: dict | None) -> dict:
    """What the coordinator sends (ConfigRecord values)."""
    return {
        SCALE_EDGES: list(scale.edges),
        THRESHOLD: float(threshold),
        GROUPS: list(groups),
        BANDS: json.dumps(bands or {}),
    }


def checked_request(config) -> tuple[MasterScale, float, tuple[str, ...], dict]:
    """The request's scale, threshold, groupings and bands, refused when out of range.

    Raises
    ------
    DataError
        On a scale that is not increasing PDs in (0, 1) or has too many grades, a threshold
        outside (0, 1), or bands with too many cut points.
    """
    try:
        edges = [float(e) for e in config[SCALE_EDGES]]
        threshold = float(config[THRESHOLD])
        groups = tuple(str(g) for g in config[GROUPS])
        bands = json.loads(str(config[BANDS]))
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(f"validation counts refused: bad request ({err})") from None
    check_scale(edges)
    if not 0 < threshold < 1:
        raise DataError(f"validation counts refused: threshold {threshold} not in (0, 1)")
    if not isinstance(bands, dict) or any(len(v) > MAX_BANDS - 1 for v in bands.values()):
        raise DataError(f"validation counts refused: at most {MAX_BANDS - 1} cut points per band")
    return MasterScale(tuple(edges)), threshold, groups, bands


def check_scale(edges: list[float]) -> None:
    """A master scale the bank accepts: increasing PDs within :data:`PD_RANGE`, evenly
    spaced in log-PD, every grade at least :data:`MIN_BAND_RATIO` wide.

    Raises
    ------
    DataError
        Naming the rule broken.
    """
    low, high = PD_RANGE
    if not (2 <= len(edges) < MAX_GRADES and all(low <= e <= high for e in edges)):
        raise DataError(
            f"validation counts refused: a master scale has 3 to {MAX_GRADES} grades with "
            f"edges in [{low:g}, {high:g}]"
        )
    ratios = np.diff(np.log(edges))
    if np.any(ratios < np.log(MIN_BAND_RATIO)) or np.ptp(ratios) > 1e-9:
        raise DataError(
            "validation counts refused: the master scale must be evenly spaced in log-PD "
            f"with grades at least {MIN_BAND_RATIO:g}x wide"
        )


def check_populations(layout: Layout, splits: list[np.ndarray]) -> None:
    """Refuse when a band of a numeric column (its cut points come with the request) holds
    between 1 and :data:`MIN_POPULATION_ROWS` - 1 of the bank's rows of a split (``splits``:
    the unscaled rows of each split). Levels of one-hot characteristics are fixed by the data
    dictionary, not by the request, and are counted as they are (as in the WoE counts).

    Raises
    ------
    DataError
        Naming the level.
    """
    for population in (p for p in layout.populations if p.is_band):
        for x in splits:
            rows = int(population.members(x).sum())
            if 0 < rows < MIN_POPULATION_ROWS:
                raise DataError(
                    f"validation counts refused: group {population.name} holds {rows} of this "
                    f"bank's rows of a split (fewer than {MIN_POPULATION_ROWS})"
                )


def bank_layout(
    names: list[str],
    scale: MasterScale,
    groups: tuple,
    bands: dict,
    mean,
    std,
    edges,
    dp_mode: str,
) -> Layout:
    """The layout both sides derive from the same public values. Under DP the feature
    counts (CSI) are left out: one count per feature would more than double the L2
    sensitivity, and so the noise, of every count."""
    return Layout(
        scale.grades,
        tuple(populations(names, groups, np.asarray(mean), np.asarray(std), bands)),
        tuple(len(e) - 1 for e in edges) if dp_mode == "off" else (),
        pd_scale(dp_mode),
    )


def bank_vector(
    bank: BankData,
    layout: Layout,
    scale: MasterScale,
    threshold: float,
    edges: list[np.ndarray],
    score,
    other_score=None,
) -> np.ndarray:
    """The bank's validation then test counts (``score(x)``: the federated model's PDs on
    unscaled rows; ``other_score``: the second model's, or None)."""
    if bank.y_test is None or len(bank.y_test) == 0:
        raise DataError("this bank's file holds no test rows for the validation counts")
    check_populations(layout, [bank.x_val, bank.x_test])
    parts = []
    for x, y in ((bank.x_val, bank.y_val), (bank.x_test, bank.y_test)):
        other = None if other_score is None else other_score(x)
        parts.append(split_vector(layout, scale, x, y, score(x), threshold, edges, other))
    return np.concatenate(parts)
