"""The tree format of ``model=gbm``: a boosted ensemble that scores new rows on its own.

One tree is a set of flat arrays indexed by node (root 0, children appended breadth-first):

- ``feature``: the column a node splits on, ``-1`` for a leaf (or a node still open while
  the tree grows);
- ``bin``: the split's bin on the agreed grid; a row goes left when its bin index is at most
  ``bin``, i.e. when its raw value is below ``threshold``;
- ``threshold``: the split's raw value (the grid edge above ``bin``);
- ``left``, ``right``: child node indices (``-1`` for a leaf);
- ``value``: the learning rate times the node's weight ``-G / (H + lambda)`` (clipped to the
  node's monotone bounds); a leaf's value is what the tree adds to the log-odds, an inner
  node's value serves the per-tree path contributions (reason codes);
- ``hessian``, ``count``: the node's summed Hessian and row count (the federation's totals).

An ensemble is a base log-odds plus the sum of its trees' leaf values; ``base`` already holds
the prior correction, so ``sigmoid(margin)`` is a calibrated PD. :meth:`TreeEnsemble.to_json`
writes the documented file format (``model.json``), :func:`load_json` reads it back, and
:meth:`TreeEnsemble.predict_proba` scores unscaled rows with nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord

PREFIX = "gbm."
BASE_KEY = "gbm.base"
NODE_ARRAYS = ("feature", "bin", "threshold", "left", "right", "value", "hessian", "count")
INT_ARRAYS = ("feature", "bin", "left", "right")
FORMAT = "fl-credit-gbm/1"


@dataclass
class Tree:
    """One regression tree on the agreed bins (see the module docstring)."""

    feature: list[int] = field(default_factory=list)
    bin: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    hessian: list[float] = field(default_factory=list)
    count: list[float] = field(default_factory=list)

    def add_node(self, value: float, hessian: float, count: float) -> int:
        """Append an open node (a leaf until it is split); return its index."""
        for name, item in (("feature", -1), ("bin", -1), ("threshold", np.inf)):
            getattr(self, name).append(item)
        self.left.append(-1)
        self.right.append(-1)
        self.value.append(float(value))
        self.hessian.append(float(hessian))
        self.count.append(float(count))
        return len(self.value) - 1

    def split(self, node: int, feature: int, bin_: int, threshold: float) -> None:
        """Make ``node`` an inner node; its two children are the next two nodes added."""
        self.feature[node], self.bin[node], self.threshold[node] = feature, bin_, threshold
        self.left[node] = len(self.value)
        self.right[node] = len(self.value) + 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The node arrays (integers as int64, the rest float64)."""
        return {
            name: np.asarray(getattr(self, name), np.int64 if name in INT_ARRAYS else np.float64)
            for name in NODE_ARRAYS
        }

    def depth(self) -> int:
        """Levels of splits (0 for a single leaf)."""
        depth = np.zeros(len(self.value), dtype=int)
        for node, (lo, hi) in enumerate(zip(self.left, self.right, strict=True)):
            if lo >= 0:
                depth[lo] = depth[hi] = depth[node] + 1
        return int(depth.max()) if len(depth) else 0

    def leaves(self) -> list[int]:
        """Indices of the leaves."""
        return [n for n, f in enumerate(self.feature) if f < 0]

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Tree:
        """Inverse of :meth:`arrays`."""
        return cls(**{name: np.asarray(arrays[name]).tolist() for name in NODE_ARRAYS})


def route(tree: Tree, goes_left) -> np.ndarray:
    """The node each row ends in: ``goes_left(feature, bin, threshold)`` gives one boolean
    per row for a split, rows walk down until they reach a leaf (or an open node)."""
    feature = np.asarray(tree.feature)
    node = np.zeros(goes_left.rows, dtype=np.int64)
    for _ in range(len(feature)):
        inner = feature[node] >= 0
        if not inner.any():
            break
        for split in np.unique(node[inner]):
            at = node == split
            left = goes_left(tree.feature[split], tree.bin[split], tree.threshold[split], at)
            node[at] = np.where(left, tree.left[split], tree.right[split])
    return node


class _OnBins:
    """Split test on bin indices (training: exact, on the agreed grid)."""

    def __init__(self, bins: np.ndarray) -> None:
        self.bins, self.rows = bins, len(bins)

    def __call__(self, feature: int, bin_: int, threshold: float, at: np.ndarray) -> np.ndarray:
        return self.bins[at, feature] <= bin_


class _OnValues:
    """Split test on raw values (scoring new rows)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.rows = np.asarray(x, dtype=np.float64), len(x)

    def __call__(self, feature: int, bin_: int, threshold: float, at: np.ndarray) -> np.ndarray:
        return self.x[at, feature] < threshold


def leaf_of_binned(tree: Tree, bins: np.ndarray) -> np.ndarray:
    """The node each binned row reaches."""
    return route(tree, _OnBins(bins))


def leaf_of_rows(tree: Tree, x: np.ndarray) -> np.ndarray:
    """The node each unscaled row reaches."""
    return route(tree, _OnValues(x))


@dataclass
class TreeEnsemble:
    """Base log-odds plus boosted trees; scores unscaled rows (see the module docstring)."""

    base: float
    trees: list[Tree] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of default for unscaled rows ``x``."""
        out = np.full(len(x), self.base, dtype=np.float64)
        for tree in self.trees:
            out += np.asarray(tree.value)[leaf_of_rows(tree, x)]
        return out

    def margin_binned(self, bins: np.ndarray) -> np.ndarray:
        """Log-odds of default for rows given as bin indices on the agreed grid."""
        out = np.full(len(bins), self.base, dtype=np.float64)
        for tree in self.trees:
            out += np.asarray(tree.value)[leaf_of_binned(tree, bins)]
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """PDs of unscaled rows."""
        return sigmoid(self.margin(x))

    def corrected(self, correction: float) -> TreeEnsemble:
        """The ensemble with ``correction`` subtracted from its base log-odds."""
        return TreeEnsemble(self.base - correction, list(self.trees), list(self.feature_names))

    def to_arrays(self) -> ArrayRecord:
        """Flower arrays: ``gbm.base``, ``gbm.sizes`` and every node array concatenated."""
        record = ArrayRecord()
        record[BASE_KEY] = Array(np.asarray([self.base], dtype=np.float64))
        record[PREFIX + "sizes"] = Array(np.asarray([len(t.value) for t in self.trees], np.int64))
        parts = [t.arrays() for t in self.trees]
        for name in NODE_ARRAYS:
            dtype = np.int64 if name in INT_ARRAYS else np.float64
            values = np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype)
            record[PREFIX + name] = Array(values.astype(dtype))
        return record

    @classmethod
    def from_arrays(cls, arrays: ArrayRecord | dict) -> TreeEnsemble:
        """Inverse of :meth:`to_arrays` (an ArrayRecord or a dict of numpy arrays)."""

        def get(name: str) -> np.ndarray:
            value = arrays[PREFIX + name]
            return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

        sizes, trees, start = get("sizes").astype(int), [], 0
        columns = {name: get(name) for name in NODE_ARRAYS}
        for size in sizes:
            part = {name: v[start : start + size] for name, v in columns.items()}
            trees.append(Tree.from_arrays(part))
            start += size
        return cls(float(get("base")[0]), trees)

    def to_json(self) -> dict:
        """The documented file format (``docs/boosting.md``)."""
        return {
            "format": FORMAT,
            "base_log_odds": self.base,
            "feature_names": list(self.feature_names),
            "rule": "a row goes left when x[feature] < threshold; PD = sigmoid(base + leaves)",
            "trees": [
                {name: getattr(t, name) for name in NODE_ARRAYS if name != "bin"}
                | {"bin": list(t.bin)}
                for t in self.trees
            ],
        }


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large ``|z|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def is_ensemble(arrays: ArrayRecord) -> bool:
    """True when Flower arrays hold a tree ensemble rather than logistic weights."""
    return BASE_KEY in arrays


def save_json(path: Path, ensemble: TreeEnsemble) -> Path:
    """Write ``model.json`` (:meth:`TreeEnsemble.to_json`)."""
    text = json.dumps(ensemble.to_json(), allow_nan=True)
    Path(path).write_text(text.replace("Infinity", "1e999"))
    return Path(path)


def load_json(path: Path) -> TreeEnsemble:
    """Read ``model.json`` back into an ensemble that scores unscaled rows."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} model file")
    trees = [Tree(**{name: t[name] for name in NODE_ARRAYS}) for t in data["trees"]]
    return TreeEnsemble(float(data["base_log_odds"]), trees, list(data["feature_names"]))
