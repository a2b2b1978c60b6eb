"""The plaintext vector a bank masks, and its public layout.

Three modes, all ending with the number of values the bank had to clip (so only the
total over the survivors is ever learned):

``train``  ``[w * clip(new - global) for every array..., w * clip(metric) for every metric
           except the weight..., w, clipped]`` -> weighted-average update and metrics
``mean``   ``[w * clip(array)..., w * clip(metric)..., w, clipped]`` -> weighted averages
           (federated evaluation: metrics only)
``sum``    ``[clip(array)..., clip(metric)..., clipped]`` -> plain sums (e.g. the feature
           sums and counts used for federated scaling)

``w`` is the bank's weight (``weight_key`` in its MetricRecord, normally
``"num-examples"``), clipped to ``[0, max_weight]``. The layout (record keys, array names
and shapes, metric names and list lengths) is public: it describes the model and the
reply format, which are the same for every bank.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .masking import check_overflow, clip, dequantize, max_encoded, quantize

MODES = ("train", "mean", "sum")

ArrayKey = tuple[str, str]  # (record key, array name)
MetricValue = float | list[float]


@dataclass(frozen=True)
class Bounds:
    """Clipping bounds and fixed-point precision of one secure-aggregation instance.

    Parameters
    ----------
    value_range : float
        Arrays are clipped to ``[-value_range, value_range]`` per coordinate (in ``train``
        mode this applies to the update ``new - global``).
    metric_range : float
        Metrics are clipped to ``[-metric_range, metric_range]``.
    max_weight : float
        Weights are clipped to ``[0, max_weight]`` (weighted modes only).
    bits : int
        Fractional bits of the fixed-point encoding.
    """

    value_range: float
    metric_range: float
    max_weight: float
    bits: int

    def max_abs(self, mode: str, size: int) -> float:
        """Largest magnitude one bank can contribute to any coordinate in ``mode``."""
        scale = self.max_weight if mode != "sum" else 1.0
        return max(scale * self.value_range, scale * self.metric_range, scale, float(size))

    def check(self, mode: str, num_banks: int, size: int) -> None:
        """Raise ``ValueError`` if ``num_banks`` contributions could overflow the ring."""
        if not (self.value_range > 0 and self.metric_range > 0 and self.max_weight > 0):
            raise ValueError("clipping bounds must be positive")
        check_overflow(num_banks, self.max_abs(mode, size), self.bits)


@dataclass(frozen=True)
class Layout:
    """Public description of a plaintext vector.

    Parameters
    ----------
    mode : str
        One of ``"train"``, ``"mean"``, ``"sum"``.
    arrays : tuple
        ``(record_key, array_name, shape)`` for every array, in vector order.
    metrics : tuple
        ``(record_key, metric_name, length)`` for every metric, in vector order;
        ``length`` is ``-1`` for a scalar metric.
    """

    mode: str
    arrays: tuple[tuple[str, str, tuple[int, ...]], ...]
    metrics: tuple[tuple[str, str, int], ...]
    tagged: bool = False  # a last element carries the bank's tag (:mod:`.tag`)

    @property
    def weighted(self) -> bool:
        """Whether the vector carries a weight slot."""
        return self.mode != "sum"

    def size(self) -> int:
        """Number of ring elements in the vector (with the tag, if any)."""
        return self.values_size() + int(self.tagged)

    def values_size(self) -> int:
        """Number of ring elements that encode values (without the tag)."""
        n = sum(math.prod(shape) for _, _, shape in self.arrays)
        n += sum(max(length, 1) for _, _, length in self.metrics)
        return n + (2 if self.weighted else 1)

    def to_json(self) -> str:
        """Serialize (canonical form, so equal layouts give equal strings)."""
        obj: dict[str, object] = {
            "mode": self.mode,
            "arrays": [[r, k, list(s)] for r, k, s in self.arrays],
            "metrics": [[r, k, n] for r, k, n in self.metrics],
        }
        if self.tagged:
            obj["tagged"] = True
        return json.dumps(obj, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Layout:
        """Parse and validate a layout; raise ``ValueError`` if malformed."""
        try:
            obj = json.loads(text)
            layout = cls(
                mode=str(obj["mode"]),
                arrays=tuple(
                    (str(r), str(k), tuple(int(d) for d in s)) for r, k, s in obj["arrays"]
                ),
                metrics=tuple((str(r), str(k), int(n)) for r, k, n in obj["metrics"]),
                tagged=obj.get("tagged", False) is True,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed layout: {err}") from err
        if layout.mode not in MODES:
            raise ValueError(f"unknown mode {layout.mode!r}")
        if any(d < 0 for _, _, s in layout.arrays for d in s):
            raise ValueError("negative array dimension")
        if any(n < -1 or n == 0 for _, _, n in layout.metrics):
            raise ValueError("bad metric length")
        return layout


def make_layout(
    mode: str,
    arrays: Mapping[ArrayKey, np.ndarray],
    metrics: Mapping[ArrayKey, MetricValue],
) -> Layout:
    """Build the layout of a reply (insertion order of ``arrays`` and ``metrics``)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return Layout(
        mode=mode,
        arrays=tuple((r, k, tuple(np.shape(v))) for (r, k), v in arrays.items()),
        metrics=tuple(
            (r, k, len(v) if isinstance(v, list) else -1) for (r, k), v in metrics.items()
        ),
    )


def encode(
    layout: Layout,
    arrays: Mapping[ArrayKey, np.ndarray],
    metrics: Mapping[ArrayKey, MetricValue],
    bounds: Bounds,
    weight: float = 1.0,
    reference: Mapping[ArrayKey, np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """Clip, weight and quantize a bank's values into its plaintext ring vector.

    Parameters
    ----------
    layout : Layout
        The layout the values follow (see :func:`make_layout`).
    arrays, metrics : Mapping
        The bank's arrays and metrics keyed by ``(record_key, name)``; the weight metric
        must not be among ``metrics``.
    bounds : Bounds
        Clipping bounds and precision.
    weight : float
        The bank's weight (ignored in ``sum`` mode).
    reference : Mapping, optional
        The global arrays; required in ``train`` mode, where ``arrays - reference`` is
        what gets encoded.

    Returns
    -------
    tuple[numpy.ndarray, int]
        The ``uint64`` vector of length ``layout.size()`` and the number of clipped values.
    """
    parts: list[np.ndarray] = []
    clipped = 0
    w = 1.0
    if layout.weighted:
        w_raw = float(weight)
        w = min(max(w_raw, 0.0), bounds.max_weight) if math.isfinite(w_raw) else 0.0
        clipped += int(w != w_raw)
    for rec, name, shape in layout.arrays:
        value = np.asarray(arrays[(rec, name)], dtype=np.float64)
        if value.shape != shape:
            raise ValueError(f"array {rec}/{name} has shape {value.shape}, expected {shape}")
        if layout.mode == "train":
            if reference is None:
                raise ValueError("train mode needs the reference (global) arrays")
            value = value - np.asarray(reference[(rec, name)], dtype=np.float64)
        c, n = clip(value.ravel(), bounds.value_range)
        clipped += n
        parts.append(w * c)
    for rec, name, length in layout.metrics:
        raw = metrics[(rec, name)]
        value = np.atleast_1d(np.asarray(raw, dtype=np.float64))
        if value.size != max(length, 1) or isinstance(raw, list) != (length >= 0):
            raise ValueError(f"metric {rec}/{name} does not match the layout")
        c, n = clip(value, bounds.metric_range)
        clipped += n
        parts.append(w * c)
    if layout.weighted:
        parts.append(np.array([w]))
    parts.append(np.array([float(clipped)]))
    return quantize(np.concatenate(parts), bounds.bits), clipped


def check_sum(
    layout: Layout,
    summed: np.ndarray,
    bounds: Bounds,
    num_banks: int,
    public_weights: Sequence[float] | None = None,
) -> str:
    """Sanity checks on a summed ring vector before it is decoded; ``""`` if it passes.

    Masking hides each input, so a bank can send any ring value; these checks bound what
    such a value can do to the aggregate (exact integer arithmetic on the ring sum of
    ``num_banks`` contributions):

    - the clipped-value count is whole and lies in ``[0, num_banks * size]``;
    - weighted modes: the total weight equals the sum of ``public_weights`` exactly when
      weights are public, else ``0 < W <= num_banks * max_weight``; every averaged
      coordinate lies within its clipping range (``|sum| <= range * W``, plus rounding);
    - ``sum`` mode: every summed coordinate lies within ``num_banks * range``.

    Parameters
    ----------
    layout : Layout
        Layout of the vector.
    summed : numpy.ndarray
        The unmasked ring sum (``uint64``).
    bounds : Bounds
        Clipping bounds and precision of the instance.
    num_banks : int
        Number of contributions in the sum (the survivors).
    public_weights : Sequence[float], optional
        The survivors' public weights (public weights only).

    Returns
    -------
    str
        Why the sum is rejected, or ``""``.
    """
    values = np.asarray(summed, dtype=np.uint64)[: layout.values_size()]
    ring = [int(v) for v in values.view(np.int64)]
    one, n = 2**bounds.bits, num_banks
    clipped, size = ring[-1], layout.values_size()
    if clipped % one or not 0 <= clipped // one <= n * size:
        return f"clipped-value count {clipped / one:g} outside [0, {n * size}]"
    if layout.weighted:
        weight = ring[-2]
        if public_weights is not None:
            want = sum(int(np.rint(float(w) * one)) for w in public_weights)
            if weight != want:
                return f"total weight {weight / one:g} differs from the public {want / one:g}"
        elif not 0 < weight <= n * max_encoded(bounds.max_weight, bounds.bits):
            return f"total weight {weight / one:g} outside (0, {n} x {bounds.max_weight:g}]"
        # Each |w_i c_i| rounds up by at most 1/2 unit and W down by at most n/2.
        scale, unit = weight + n, weight
    else:
        scale, unit = n * one, one
    pos = 0
    for what, count, bound in (
        ("array", sum(math.prod(s) for _, _, s in layout.arrays), bounds.value_range),
        ("metric", sum(max(k, 1) for _, _, k in layout.metrics), bounds.metric_range),
    ):
        worst = max((abs(v) for v in ring[pos : pos + count]), default=0)
        if worst > math.floor(Fraction(bound) * scale) + n:
            where = "an averaged" if layout.weighted else "a summed"
            return (
                f"{where} {what} coordinate is {worst / unit:.4g}, beyond "
                f"{'' if layout.weighted else f'{n} x '}its clipping range {bound:g}"
            )
        pos += count
    return ""


@dataclass
class Decoded:
    """Result of decoding a summed ring vector.

    Attributes
    ----------
    arrays : dict
        ``(record_key, name) -> float64 array``: weighted averages (``train``: of the
        update; ``mean``) or sums (``sum``).
    metrics : dict
        ``(record_key, name) -> float or list[float]``, averaged or summed likewise.
    total_weight : float or None
        Sum of the survivors' weights (weighted modes).
    clipped : int
        Total number of clipped values over the survivors.
    ring : numpy.ndarray or None
        The unmasked ring sum itself (with the tag when the banks tag: what the server
        forwards for the banks to verify, :mod:`.tag`).
    """

    arrays: dict[ArrayKey, np.ndarray]
    metrics: dict[ArrayKey, MetricValue]
    total_weight: float | None
    clipped: int
    ring: np.ndarray | None = None  # the summed ring vector as unmasked (tag included)


def decode(layout: Layout, summed: np.ndarray, bits: int) -> Decoded:
    """Dequantize a summed ring vector and divide by the summed weight (weighted modes)."""
    if summed.shape != (layout.size(),):
        raise ValueError("summed vector does not match the layout")
    values = dequantize(summed[: layout.values_size()], bits)
    clipped = int(round(values[-1]))
    total_weight = float(values[-2]) if layout.weighted else None
    divisor = total_weight if layout.weighted else 1.0
    if layout.weighted and not total_weight:
        raise ZeroDivisionError("survivors' total weight is zero")
    assert divisor is not None
    pos = 0
    arrays: dict[ArrayKey, np.ndarray] = {}
    for rec, name, shape in layout.arrays:
        size = math.prod(shape)
        arrays[(rec, name)] = (values[pos : pos + size] / divisor).reshape(shape)
        pos += size
    metrics: dict[ArrayKey, MetricValue] = {}
    for rec, name, length in layout.metrics:
        size = max(length, 1)
        chunk = values[pos : pos + size] / divisor
        metrics[(rec, name)] = [float(v) for v in chunk] if length >= 0 else float(chunk[0])
        pos += size
    return Decoded(arrays, metrics, total_weight, clipped, np.array(summed, dtype=np.uint64))
