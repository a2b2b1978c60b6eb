"""Plots a reader can use: score charts zoomed to the scores, readable heat-map labels, attack
harm coloured on the scale it is measured on."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb

from fl_credit.credit.plots import ks_figure, score_distribution_figure
from simulations.sweeps.threat_matrix import heatmap


def low_scores(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.1).astype(int)
    p = np.clip(rng.beta(2, 30, n) + 0.1 * y, 0.0, 0.42)  # every score below 0.45
    return y, p


def test_ks_chart_is_zoomed_to_the_scores() -> None:
    y, p = low_scores()
    ax = ks_figure(y, p).axes[0]
    assert p.max() <= ax.get_xlim()[1] <= 0.5


def test_score_distribution_is_zoomed_to_the_scores_and_the_threshold() -> None:
    y, p = low_scores()
    ax = score_distribution_figure(y, p, 0.47).axes[0]
    assert 0.47 <= ax.get_xlim()[1] <= 0.55
    heights = sum(patch.get_height() * patch.get_width() for patch in ax.patches)
    assert heights > 1.9  # both classes' densities, every score inside the bins


def cells() -> pd.DataFrame:
    rows = []
    for defence, drop, success in (("fedavg", 0.30, 0.71), ("krum", 0.02, 0.05)):
        rows.append({"threat_split": "study", "defence": defence, "attack": "sign_flip",
                     "auc_drop": drop, "success": np.nan})  # fmt: skip
        rows.append({"threat_split": "study", "defence": defence, "attack": "backdoor",
                     "auc_drop": -0.001, "success": success})  # fmt: skip
    return pd.DataFrame(rows)


def _cell_text(ax, i: int, j: int):
    return next(t for t in ax.texts if t.get_position() == (j, i))


def test_a_successful_backdoor_is_not_shown_as_harmless_on_the_auc_map() -> None:
    fig = heatmap(cells(), "auc_drop", "AUC drop under attack")
    ax = fig.axes[0]
    attacks = [t.get_text() for t in ax.get_xticklabels()]
    j = attacks.index("backdoor")
    image = ax.images[0]
    assert np.ma.is_masked(image.get_array()[0, j])  # not coloured on the AUC-drop scale
    assert "success" in _cell_text(ax, 0, j).get_text()
    cmap = image.get_cmap()
    assert max(to_rgb(cmap(0.0))) > 0.95 and to_rgb(cmap(0.0))[1] > 0.9  # no harm: pale, not green
    assert to_rgb(cmap(1.0))[1] < 0.3  # most harm: red


def test_heat_map_labels_contrast_with_their_cell() -> None:
    fig = heatmap(cells(), "auc_drop", "AUC drop under attack")
    ax = fig.axes[0]
    attacks = [t.get_text() for t in ax.get_xticklabels()]
    j = attacks.index("sign_flip")
    dark = _cell_text(ax, 0, j)  # fedavg: the largest drop, the darkest cell
    light = _cell_text(ax, 1, j)
    assert to_rgb(dark.get_color()) == (1.0, 1.0, 1.0)
    assert to_rgb(light.get_color()) == (0.0, 0.0, 0.0)
    assert dark.get_fontsize() >= 8
