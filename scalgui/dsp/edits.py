"""Edits as data: shapes in seconds and Hz, actions on magnitudes, rasterised per band.

An edit is a frozen description in physical coordinates, never pixels: a shape (where, in
time and frequency, with feathered edges) and an action (what happens to the magnitudes
there). Rasterising an ordered list of edits onto a frame's own grid — every band at its
own rate — turns the source's magnitudes into the target magnitudes. So edits are
resolution-independent, cheap to store and survive a change of analysis settings.

Distances in frequency are measured in octaves (log2 Hz), as the eye reads a
log-frequency axis. Feathers are raised-cosine ramps outside a shape's edge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from .frame import Coefficients, check_interrupt

__all__ = [
    "Rectangle",
    "TimeRange",
    "Band",
    "Lasso",
    "Harmonic",
    "Stroke",
    "Combined",
    "Shape",
    "Edit",
    "ACTIONS",
    "apply_edits",
    "SCALING_ACTIONS",
    "edit_weights",
    "paint_weights",
    "touched_spans",
]

ACTIONS = ("gain", "erase", "restore", "paint")
_ALL_TIME = (-math.inf, math.inf)


def _ramp(distance: np.ndarray, feather: float) -> np.ndarray:
    """1 at distance <= 0, falling to 0 at ``distance >= feather`` along a raised cosine."""
    distance = np.asarray(distance, dtype=np.float64)
    out = (distance <= 0).astype(np.float64)
    if feather <= 0 or out.ndim == 0:
        return out if feather <= 0 else 0.5 + 0.5 * np.cos(np.pi * np.clip(distance / feather, 0.0, 1.0))
    # The cosine only where the ramp is: a long time range's weights are mostly 1 or 0.
    edge = (distance > 0) & (distance < feather)
    out[edge] = 0.5 + 0.5 * np.cos(np.pi * (distance[edge] / feather))
    return out


def _interval_weight(values: np.ndarray | float, lo: float, hi: float, feather: float) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    outside = np.maximum(lo - values, values - hi)
    return _ramp(outside, feather)


def _octave(freq_hz: float | np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(np.asarray(freq_hz, dtype=np.float64), 1e-3))


def _check_positive(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class Rectangle:
    """A time x frequency rectangle: ``[t0, t1]`` seconds, ``[f0, f1]`` Hz."""

    t0: float
    t1: float
    f0: float
    f1: float
    feather_s: float = 0.01
    feather_oct: float = 1 / 24

    def __post_init__(self) -> None:
        if not (self.t1 > self.t0 and self.f1 > self.f0 > 0):
            raise ValueError(f"rectangle needs t0 < t1 and 0 < f0 < f1, got {self}")
        _check_positive("feather_s", self.feather_s)
        _check_positive("feather_oct", self.feather_oct)

    def span(self) -> tuple[float, float]:
        return self.t0 - self.feather_s, self.t1 + self.feather_s

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        wf = _interval_weight(_octave(freq_hz), _octave(self.f0), _octave(self.f1), self.feather_oct)
        if wf == 0:
            return np.zeros(len(times))
        return wf * _interval_weight(times, self.t0, self.t1, self.feather_s)


@dataclass(frozen=True)
class TimeRange:
    """All frequencies between ``t0`` and ``t1`` seconds."""

    t0: float
    t1: float
    feather_s: float = 0.01

    def __post_init__(self) -> None:
        if not self.t1 > self.t0:
            raise ValueError(f"time range needs t0 < t1, got {self}")
        _check_positive("feather_s", self.feather_s)

    def span(self) -> tuple[float, float]:
        return self.t0 - self.feather_s, self.t1 + self.feather_s

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        return _interval_weight(times, self.t0, self.t1, self.feather_s)


@dataclass(frozen=True)
class Band:
    """All times between ``f0`` and ``f1`` Hz."""

    f0: float
    f1: float
    feather_oct: float = 1 / 24

    def __post_init__(self) -> None:
        if not self.f1 > self.f0 > 0:
            raise ValueError(f"band needs 0 < f0 < f1, got {self}")
        _check_positive("feather_oct", self.feather_oct)

    def span(self) -> tuple[float, float]:
        return _ALL_TIME

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        wf = _interval_weight(_octave(freq_hz), _octave(self.f0), _octave(self.f1), self.feather_oct)
        return np.full(len(times), float(wf))


def _normalised(points: Sequence[tuple[float, float]], unit_s: float, unit_oct: float) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.stack([p[:, 0] / unit_s, _octave(p[:, 1]) / unit_oct], axis=1)


#: Point-segment pairs measured at once by :func:`_distance_to_segments`: bounds its
#: working memory (about 50 bytes a pair) whatever a stroke or lasso from a file holds.
_PAIRS_AT_ONCE = 1 << 20


def _distance_to_segments(x: np.ndarray, y: float, a: np.ndarray, b: np.ndarray, reach: float = math.inf) -> np.ndarray:
    """Distance from points ``(x[i], y)`` to the nearest of segments ``a[j] -> b[j]``,
    exact up to ``reach`` and ``inf`` beyond it.

    Only segments within ``reach`` of the line at ``y``, and points within ``reach`` of
    those segments along ``x``, are measured: a hand-drawn stroke has hundreds of
    segments, a band a few of them near it (rendering a 240-point stroke took 9 s, all
    pairs measured). The points are taken in runs along ``x``, each against the segments
    within reach of the run, at most :data:`_PAIRS_AT_ONCE` pairs at a time.
    """
    out = np.full(len(x), np.inf)
    near = (np.minimum(a[:, 1], b[:, 1]) - reach <= y) & (y <= np.maximum(a[:, 1], b[:, 1]) + reach)
    if not near.any() or len(x) == 0:
        return out
    a, b = a[near], b[near]
    left = np.minimum(a[:, 0], b[:, 0]) - reach
    right = np.maximum(a[:, 0], b[:, 0]) + reach
    d = b - a  # [E, 2]
    length_sq = np.maximum((d**2).sum(1), 1e-300)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    start, size = 0, max(1, _PAIRS_AT_ONCE // len(a))
    while start < len(xs):
        stop = min(start + size, len(xs))
        seg = (right >= xs[start]) & (left <= xs[stop - 1])
        count = int(np.count_nonzero(seg))
        if count and (stop - start) * count > _PAIRS_AT_ONCE and stop - start > 1:
            size = max(1, (stop - start) // 2)  # a run crowded with segments: shorter runs
            continue
        if count:
            sd, sa = d[seg], a[seg]
            px = xs[start:stop, None] - sa[None, :, 0]
            py = y - sa[None, :, 1]
            t = np.clip((px * sd[None, :, 0] + py * sd[None, :, 1]) / length_sq[seg][None, :], 0.0, 1.0)
            distance = np.hypot(px - t * sd[None, :, 0], py - t * sd[None, :, 1]).min(axis=1)
            out[order[start:stop]] = np.where(distance <= reach, distance, np.inf)
        start = stop
        if count * size * 2 <= _PAIRS_AT_ONCE:
            size *= 2  # sparse here: longer runs, fewer passes over the segments
    return out


@dataclass(frozen=True)
class Lasso:
    """A free polygon through ``points`` ((seconds, Hz), ...), closed automatically."""

    points: tuple[tuple[float, float], ...]
    feather_s: float = 0.01
    feather_oct: float = 1 / 24

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError("a lasso needs at least three points")
        if any(f <= 0 for _, f in self.points):
            raise ValueError("lasso frequencies must be above 0 Hz")
        object.__setattr__(self, "points", tuple((float(t), float(f)) for t, f in self.points))

    def span(self) -> tuple[float, float]:
        times = [t for t, _ in self.points]
        return min(times) - self.feather_s, max(times) + self.feather_s

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        # Work in units of the feathers, so the feather is a unit distance in both axes.
        unit_s = self.feather_s or 1e-3
        unit_oct = self.feather_oct or 1e-3
        poly = _normalised(self.points, unit_s, unit_oct)
        x = np.asarray(times, dtype=np.float64) / unit_s
        y = float(_octave(freq_hz)) / unit_oct
        a, b = poly, np.roll(poly, -1, axis=0)
        # Even-odd rule: count edge crossings of the horizontal line at y to the left of x.
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        inside = np.zeros(len(x), dtype=bool)
        if crosses.any():
            ac, bc = a[crosses], b[crosses]
            x_cross = np.sort(ac[:, 0] + (y - ac[:, 1]) * (bc[:, 0] - ac[:, 0]) / (bc[:, 1] - ac[:, 1]))
            inside = np.searchsorted(x_cross, x, side="left") % 2 == 1  # crossings left of x
        if self.feather_s <= 0 and self.feather_oct <= 0:
            return inside.astype(np.float64)
        distance = _distance_to_segments(x, y, a, b, reach=1.0)  # the feather ends at 1
        return np.where(inside, 1.0, _ramp(distance, 1.0))


@dataclass(frozen=True)
class Harmonic:
    """A harmonic series: ``f0`` and its multiples up to ``count``, between ``t0`` and ``t1``."""

    f0: float
    t0: float
    t1: float
    count: int = 10
    width_cents: float = 50.0
    feather_s: float = 0.01

    def __post_init__(self) -> None:
        if not (self.f0 > 0 and self.t1 > self.t0 and self.count >= 1 and self.width_cents > 0):
            raise ValueError(f"harmonic selection needs f0 > 0, t0 < t1, count >= 1, width > 0; got {self}")

    def span(self) -> tuple[float, float]:
        return self.t0 - self.feather_s, self.t1 + self.feather_s

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        harmonic = max(int(round(freq_hz / self.f0)), 1)
        if harmonic > self.count:
            return np.zeros(len(times))
        cents = abs(1200.0 * math.log2(freq_hz / (harmonic * self.f0)))
        wf = float(_ramp(np.array(cents - self.width_cents / 2), self.width_cents / 2))
        return wf * _interval_weight(times, self.t0, self.t1, self.feather_s)


@dataclass(frozen=True)
class Stroke:
    """A brush stroke through ``points`` ((seconds, Hz), ...) with an elliptical tip.

    The tip reaches ``radius_s`` seconds and ``radius_oct`` octaves from the path; inside
    ``hardness`` of the radius the weight is 1, then it falls off along a raised cosine.
    """

    points: tuple[tuple[float, float], ...]
    radius_s: float = 0.05
    radius_oct: float = 1 / 6
    hardness: float = 0.5

    def __post_init__(self) -> None:
        if len(self.points) < 1:
            raise ValueError("a stroke needs at least one point")
        if not (self.radius_s > 0 and self.radius_oct > 0 and 0 <= self.hardness <= 1):
            raise ValueError(f"stroke needs positive radii and hardness in [0, 1]; got {self}")
        if any(f <= 0 for _, f in self.points):
            raise ValueError("stroke frequencies must be above 0 Hz")
        object.__setattr__(self, "points", tuple((float(t), float(f)) for t, f in self.points))

    def span(self) -> tuple[float, float]:
        times = [t for t, _ in self.points]
        return min(times) - self.radius_s, max(times) + self.radius_s

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        path = _normalised(self.points, self.radius_s, self.radius_oct)
        x = np.asarray(times, dtype=np.float64) / self.radius_s
        y = float(_octave(freq_hz)) / self.radius_oct
        a = path[:-1] if len(path) > 1 else path
        b = path[1:] if len(path) > 1 else path
        distance = _distance_to_segments(x, y, a, b, reach=1.0)  # the tip ends at 1
        soft = 1.0 - self.hardness
        return _ramp(distance - self.hardness, soft) if soft > 0 else (distance <= 1.0).astype(np.float64)


@dataclass(frozen=True)
class Combined:
    """Shapes added and subtracted: ``max(added) * (1 - max(subtracted))``."""

    parts: tuple[tuple["Shape", str], ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a combined selection needs at least one part")
        for _, op in self.parts:
            if op not in ("add", "subtract"):
                raise ValueError(f"selection parts are 'add' or 'subtract', got {op!r}")
        if not any(op == "add" for _, op in self.parts):
            raise ValueError("a combined selection needs at least one added part")

    def span(self) -> tuple[float, float]:
        spans = [shape.span() for shape, op in self.parts if op == "add"]
        return min(s[0] for s in spans), max(s[1] for s in spans)

    def weights(self, times: np.ndarray, freq_hz: float) -> np.ndarray:
        added = np.zeros(len(times))
        removed = np.zeros(len(times))
        for shape, op in self.parts:
            w = shape.weights(times, freq_hz)
            if op == "add":
                added = np.maximum(added, w)
            else:
                removed = np.maximum(removed, w)
        return added * (1.0 - removed)


Shape = Union[Rectangle, TimeRange, Band, Lasso, Harmonic, Stroke, Combined]


@dataclass(frozen=True)
class Edit:
    """An action on the magnitudes inside a shape.

    Parameters
    ----------
    shape : Shape
        Where, in seconds and Hz, with feathered edges.
    action : str
        ``"gain"``: multiply by ``amount_db`` dB (negative attenuates) scaled by the shape's
        weight; ``"erase"``: fade to silence; ``"restore"``: fade back to the source's
        magnitudes; ``"paint"``: add magnitude at ``amount_db`` dBFS where there may be
        none (drawing new partials), combined in power with what is there.
    amount_db : float
        dB of gain (``"gain"``) or the painted level in dBFS (``"paint"``).
    """

    shape: Shape
    action: str = "gain"
    amount_db: float = -20.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; choose one of: {', '.join(ACTIONS)}")
        if not math.isfinite(self.amount_db):
            raise ValueError(f"amount must be a finite number of dB, got {self.amount_db}")

    def span(self) -> tuple[float, float]:
        """Time span in seconds the edit can change (may be infinite for a band)."""
        return self.shape.span()


def touched_spans(edits: Sequence[Edit], duration_s: float) -> list[tuple[float, float]]:
    """Time spans (seconds, clipped to the signal) that ``edits`` can change."""
    spans = []
    for edit in edits:
        lo, hi = edit.span()
        lo, hi = max(lo, 0.0), min(hi, duration_s)
        if hi > lo:
            spans.append((lo, hi))
    return spans


def _band_slice(coeffs: Coefficients, band: int, span: tuple[float, float]) -> tuple[slice, np.ndarray]:
    """Coefficient indices of ``band`` within ``span`` seconds, and their times."""
    frame = coeffs.frame
    hop = int(frame.bands.hop[band])
    sr = frame.sample_rate
    n = coeffs.padded_length // hop
    lo = 0 if not math.isfinite(span[0]) else max(int(math.floor((span[0] * sr + coeffs.origin) / hop)), 0)
    hi = n if not math.isfinite(span[1]) else min(int(math.ceil((span[1] * sr + coeffs.origin) / hop)) + 1, n)
    index = slice(lo, max(hi, lo))
    times = (np.arange(index.start, index.stop) * hop - coeffs.origin) / sr
    return index, times


def edit_weights(coeffs: Coefficients, edit: Edit):
    """Yield ``(group, row, index_slice, weights)`` for every band the edit reaches.

    ``weights`` is a float64 array over the coefficients ``index_slice`` of that band.
    """
    table = coeffs.frame.bands
    span = edit.span()
    for k in table.wavelet_indices:
        index, times = _band_slice(coeffs, int(k), span)
        if index.stop <= index.start:
            continue
        w = edit.shape.weights(times, float(table.centre_hz[k]))
        if np.any(w > 0):
            yield int(table.group[k]), int(table.row[k]), index, w


def _frequency_reach(shape) -> tuple[float, float]:
    """Hz between which ``shape``'s weight can be above 0 (feathers included): a paint
    stroke of an octave need not be weighed at the frequencies of the other nine."""
    def octaves(lo_hz: float, hi_hz: float, feather_oct: float) -> tuple[float, float]:
        return lo_hz * 2.0 ** -feather_oct, hi_hz * 2.0 ** feather_oct

    if isinstance(shape, (Rectangle, Band)):
        return octaves(shape.f0, shape.f1, shape.feather_oct)
    if isinstance(shape, (Lasso, Stroke)):
        freqs = [f for _, f in shape.points]
        return octaves(min(freqs), max(freqs), shape.feather_oct if isinstance(shape, Lasso) else shape.radius_oct)
    if isinstance(shape, Combined):
        reaches = [_frequency_reach(part) for part, op in shape.parts if op == "add"]
        return min(r[0] for r in reaches), max(r[1] for r in reaches)
    return 0.0, math.inf  # all frequencies (a time range), or a series across them (harmonics)


def paint_weights(coeffs: Coefficients, edit: Edit):
    """Like :func:`edit_weights`, for painting: what each band would see of the painted
    shape if it were sound.

    A band's weight is the largest, over frequencies within three widths of its centre,
    of the shape's weight there times the band's own response to a sinusoid at that
    frequency. A thin stroke between two band centres so reaches both at the level a real
    partial would, instead of a staircase of whole bands that no signal can produce.
    """
    frame = coeffs.frame
    table = frame.bands
    span = edit.span()
    steps = np.linspace(-3.0, 3.0, 25)
    lo_hz, hi_hz = _frequency_reach(edit.shape)
    for k in table.wavelet_indices:
        freqs = table.centre_hz[k] + steps * table.sigma_hz[k]
        freqs = freqs[(freqs > 0) & (freqs >= lo_hz) & (freqs <= hi_hz)]
        if freqs.size == 0:
            continue
        index, times = _band_slice(coeffs, int(k), span)
        if index.stop <= index.start:
            continue
        response = frame.atom_response(int(k), freqs)
        w = np.zeros(len(times))
        for f, a in zip(freqs, response):
            if a > 0:
                w = np.maximum(w, edit.shape.weights(times, float(f)) * a)
        if np.any(w > 0):
            yield int(table.group[k]), int(table.row[k]), index, w


#: Actions that only scale what is there (a gain of a few dB up to a cut): their target
#: keeps the source's phase wherever the source has sound.
SCALING_ACTIONS = ("gain", "erase", "restore")


def apply_edits(
    original: Coefficients, edits: Sequence[Edit], *, onto: Coefficients | None = None, keep_phase: bool = False,
    in_place: bool = False,
) -> Coefficients:
    """Target magnitudes: the edits applied in order to ``|original|``.

    Parameters
    ----------
    original : Coefficients
        Complex coefficients of the source (any batch shape; edits act on every channel).
    edits : sequence of Edit
    onto : Coefficients, optional
        Magnitudes that earlier edits already produced, to apply more edits on top
        (``"restore"`` still returns towards ``|original|``).
    keep_phase : bool
        Return complex coefficients instead: the target magnitudes on ``original``'s
        phase, computed by scaling ``original`` itself (no magnitudes or phases are
        formed). Only for :data:`SCALING_ACTIONS`, which keep the phase; not with ``onto``.
    in_place : bool
        With ``keep_phase``: scale ``original``'s own tensors (a long window's are
        gigabytes) unless a ``"restore"`` needs them as they were.

    Returns
    -------
    Coefficients
        Real, non-negative magnitudes in the same layout (complex with ``keep_phase``).
        Only wavelet bands are edited; the lowpass and highpass atoms keep the source's.
    """
    if keep_phase:
        if onto is not None or any(edit.action not in SCALING_ACTIONS for edit in edits):
            raise ValueError("keep_phase takes edits that only scale, applied to the source")
        source = list(original.groups)
    else:
        source = original.magnitudes()
        in_place = True  # the magnitudes are new tensors
    # A restore reads the source as it was.
    in_place = in_place and not any(edit.action == "restore" for edit in edits)
    start = onto.groups if onto is not None else source
    target = list(start) if in_place and onto is None else [m.clone() for m in start]
    for edit in edits:
        weights = paint_weights if edit.action == "paint" else edit_weights
        for g, r, index, w in weights(original, edit):
            check_interrupt()  # a band edit of a whole song touches every coefficient of its bands
            view = target[g][..., r, index]  # the actions below write through it
            for part, weight in _runs(view, w) if edit.action != "paint" else [(view, w)]:
                if not isinstance(weight, float):
                    weight = torch.as_tensor(weight, dtype=part.real.dtype, device=part.device)
                if edit.action == "gain":
                    _scale_in_place(part, 10.0 ** (edit.amount_db * weight / 20.0))
                elif edit.action == "erase":
                    _scale_in_place(part, 1.0 - weight)
                elif edit.action == "restore":
                    lo = index.start + (part.storage_offset() - view.storage_offset())
                    part.add_(weight * (source[g][..., r, lo : lo + part.shape[-1]] - part))
                else:  # paint
                    level = 10.0 ** (edit.amount_db / 20.0)
                    part.copy_(torch.sqrt(part**2 + (weight * level) ** 2))
    return original.with_groups(target)


def _runs(view: torch.Tensor, w: np.ndarray):
    """``(part of view, weight)`` pairs covering ``view``: the longest stretch where the
    weight is 1 with a float weight (a plain scale, cheap), the rest with arrays."""
    whole = np.flatnonzero(w == 1.0)
    if whole.size == 0 or whole[-1] - whole[0] + 1 != whole.size:
        return [(view, w)]
    lo, hi = int(whole[0]), int(whole[-1]) + 1
    parts = [(view[..., lo:hi], 1.0)]
    if lo:
        parts.append((view[..., :lo], w[:lo]))
    if hi < w.size:
        parts.append((view[..., hi:], w[hi:]))
    return parts


def _scale_in_place(values: torch.Tensor, factor) -> None:
    """``values *= factor`` (a float, or real weights along the last axis); complex
    values are scaled as (real, imaginary) pairs, which torch does several times faster
    on the CPU than a complex-by-real product."""
    if values.is_complex():
        values = torch.view_as_real(values)
        factor = factor if isinstance(factor, float) else factor[..., None]
    values.mul_(factor)
