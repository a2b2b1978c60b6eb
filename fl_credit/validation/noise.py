"""What DP noise does to each statistic: its spread over fresh noise draws, and which tests
it makes uninformative.

The summed counts carry Gaussian noise of a standard deviation the plan makes public
(``noise_std`` in the counts file). Adding fresh draws of the same noise to the released
counts and recomputing every statistic gives each one's noise spread (the standard
deviation over the draws) and, for every traffic light, how often the verdict changes. A
test whose verdict changes in at least :data:`UNINFORMATIVE_SHARE` of the draws, or whose
counts carry more noise than their own sampling variation (a grade's noise above the binomial
standard deviation of its default count; then also the overall calibration tests over the
grades), is reported as uninformative: the noise, not the data, decides it.
"""

from __future__ import annotations

import numpy as np

from fl_credit.validation.analysis import analyse

DRAWS = 100
UNINFORMATIVE_SHARE = 0.2


def leaves(value, path: tuple = ()) -> dict[tuple, object]:
    """Every scalar of a nested dict/list by its path."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(leaves(item, (*path, key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(leaves(item, (*path, i)))
        return out
    return {path: value}


def noise_effects(stored: dict, results: dict, seed: int = 0, draws: int = DRAWS) -> dict:
    """Noise spread of every number and the share of draws that change every verdict.

    Returns
    -------
    dict
        ``{"std": {path: sd}, "flips": {path: share}}`` with paths joined by ``/``; empty
        when the counts carry no noise.
    """
    std = float(stored.get("noise_std") or 0.0)
    if std <= 0:
        return {}
    rng = np.random.default_rng(seed)
    base = leaves(results)
    vector = np.asarray(stored["vector"], dtype=np.float64)
    samples: dict[tuple, list] = {path: [] for path in base}
    for _ in range(draws):
        with np.errstate(all="ignore"):
            drawn = leaves(analyse(stored, vector + rng.normal(0.0, std, vector.shape)))
        for path in base:
            samples[path].append(drawn.get(path))
    spread, flips = {}, {}
    for path, values in samples.items():
        key = "/".join(str(p) for p in path)
        if isinstance(base[path], str):
            flips[key] = float(np.mean([v != base[path] for v in values]))
        elif isinstance(base[path], float):
            numbers = np.asarray([v for v in values if isinstance(v, float)], dtype=np.float64)
            spread[key] = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else float("nan")
    return {
        "std": spread,
        "flips": flips,
        "draws": draws,
        "noise_dominated": noise_dominated(results, std),
    }


def noise_dominated(results: dict, std: float) -> list[str]:
    """Verdicts whose counts carry more noise than sampling variation: a grade whose
    default count's noise exceeds its binomial standard deviation ``sqrt(n p (1 - p))``,
    and the overall calibration tests when any grade with rows is so."""
    out = []
    for key in ("grades", "grades_development"):
        for k, g in enumerate(results[key]):
            n, p = g["rows"], g["pd"]
            sampling = np.sqrt(n * p * (1 - p)) if n > 0 and np.isfinite(p) else 0.0
            if std > sampling:
                out.append(f"{key}/{k}/light")
    if any(path.startswith("grades/") for path in out):
        out += ["hosmer_lemeshow/light", "spiegelhalter/light"]
    return out


def uninformative(effects: dict, path: str) -> bool:
    """Whether the verdict at ``path`` flips in at least :data:`UNINFORMATIVE_SHARE` of draws
    or its counts carry more noise than sampling variation (:func:`noise_dominated`)."""
    if not effects:
        return False
    return (
        effects["flips"].get(path, 0.0) >= UNINFORMATIVE_SHARE or path in effects["noise_dominated"]
    )
