"""Plotting pieces shared by the per-run report and the sweep report.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot state, no display
needed) and written atomically as PNG.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110

# (colour, marker) per model, the same in every figure of both reports. The federated model is
# drawn as a large hollow circle on top of the others, so that where it coincides with the
# pooled model (a filled square) both stay visible.
MODEL_STYLES: dict[str, tuple[str, str]] = {
    "federated": ("C0", "o"),
    "centralized": ("C1", "s"),
    "reference": ("C7", "x"),
    "local.smallest": ("C2", "v"),
    "local.largest": ("C3", "^"),
}
FEDERATED_STYLE = {"markersize": 9, "fillstyle": "none", "markeredgewidth": 1.8, "zorder": 4}
OTHER_STYLE = {"markersize": 5, "zorder": 3}
COINCIDE_NOTE = "federated: hollow circles, drawn on top;\na square inside one: federated = pooled"

METRIC_RANGES: dict[str, tuple[float, float]] = {
    "auc": (0.0, 1.0),
    "ks": (0.0, 1.0),
    "gini": (-1.0, 1.0),
    "brier": (0.0, 1.0),
    "recall": (0.0, 1.0),
    "precision": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "ece": (0.0, 1.0),
}


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take (by its last dotted part); unbounded when unknown."""
    return METRIC_RANGES.get(metric.rsplit(".", 1)[-1], (-math.inf, math.inf))


def clip_interval(
    low: np.ndarray, high: np.ndarray, bounds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """An interval's ends clipped to the metric's range (a t-interval can overshoot it)."""
    return np.clip(low, *bounds), np.clip(high, *bounds)


def model_style(prefix: str) -> dict:
    """Matplotlib keyword arguments (colour, marker, size, layer) of one model's line."""
    color, marker = MODEL_STYLES.get(prefix, ("C4", "D"))
    extra = FEDERATED_STYLE if prefix == "federated" else OTHER_STYLE
    return {"color": color, "marker": marker, **extra}


def new_figure(panels: int = 1, width: float = 4.6, height: float = 3.6) -> tuple[Figure, list]:
    """A constrained-layout Agg figure with a grid of at most three panels per row.

    Returns
    -------
    tuple of (matplotlib.figure.Figure, list of matplotlib.axes.Axes)
        The figure and its ``panels`` axes (unused grid cells are hidden).
    """
    panels = max(panels, 1)
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols + 2.8, height * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    axes: list[Axes] = list(grid.ravel())
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def single_axes(width: float = 6.0, height: float = 4.4) -> tuple[Figure, Axes]:
    """A one-panel Agg figure."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temporary file in the same folder, then ``os.replace`` it into place."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def save_png(path: Path, fig: Figure) -> Path:
    """Atomically write a figure as PNG."""
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI))
