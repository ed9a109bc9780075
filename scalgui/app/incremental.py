"""Keeping a document's edited magnitudes and whole-file pictures current span by span. No Qt.

An edit of :mod:`scalgui.dsp.edits` is pointwise: the new magnitude of a coefficient
depends on that coefficient alone, and only coefficients inside the edit's time span
(:meth:`Edit.span`) change. So after an edit, an undo or a redo of a long sound only that
span has to be recomputed — of the target magnitudes, and of the cached whole-file
pictures the zoomed-out view is cut from — and the cost follows the size of the edit,
not the length of the sound.

- :func:`crop` gives a time window of coefficients as views (no copy) in a layout that
  :func:`~scalgui.dsp.edits.apply_edits` and :func:`~scalgui.dsp.raster.scalogram_raster`
  read exactly as they read the whole;
- :func:`update_span` applies edits to a target in place over such a window;
- :func:`edited_window` edits just the window a picture needs;
- :func:`changed_spans` finds where a new render differs from the last, and
  :func:`reanalyse_span` brings the render's coefficients up to date there only;
- :class:`OverviewCache` keeps whole-file pictures and redraws only the columns of the
  spans logged since each was drawn.

Other kinds of edit (plugin edits, which read the whole sound) are not pointwise:
:func:`pointwise` tells the document when these shortcuts do not apply.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..dsp.edits import Edit, apply_edits
from ..dsp.frame import Coefficients
from ..dsp.raster import Raster

__all__ = ["EDITED_LAYERS", "OverviewCache", "changed_spans", "crop", "edited_window", "edits_reaching", "pointwise",
           "reach_s", "reanalyse_span", "update_span"]

#: Pictures that change with the edit list: the target, and the mask of where edits act
#: (the others change with the analysis or the render).
EDITED_LAYERS = ("target", "mask")

# Hops of margin on each side of a window: an edit reads one coefficient beyond its span
# in each band, a picture interpolates with one more (see the proof in `crop`).
_MARGIN_STEPS = 2


def pointwise(edits: Iterable) -> bool:
    """Whether every edit only changes coefficients inside its own span (dsp edits do;
    plugin edits read the whole sound, so undoing or redrawing them needs the whole)."""
    return all(isinstance(edit, Edit) for edit in edits)


def _hops(coeffs: Coefficients) -> list[int]:
    return [coeffs.padded_length // g.shape[-1] for g in coeffs.groups]


def reach_s(coeffs: Coefficients) -> float:
    """Seconds beyond a changed span that a coefficient change can show in a picture:
    two of the largest hop (the edit's own reach, then the picture's interpolation)."""
    return 2.0 * max(_hops(coeffs)) / coeffs.frame.sample_rate


def crop(coeffs: Coefficients, start_s: float, end_s: float) -> Coefficients:
    """The coefficients of a time window, as views of ``coeffs``'s tensors.

    The window covers ``start_s``..``end_s`` seconds (either may be infinite) plus two of
    the largest hop on each side, and starts on a multiple of the largest hop, so every
    group is cut at a whole coefficient and times stay those of the whole sound.

    Why that margin is enough: an edit of span ``[s0, s1]`` touches, in a band of hop
    ``h``, the coefficients from ``floor(s0 / h)`` to ``ceil(s1 / h)`` (in samples of the
    padded signal); a picture of ``[s0, s1]`` reads one more on each side to interpolate.
    Both lie within ``2 * max_hop`` of the span.

    Returns
    -------
    Coefficients
        The same frame and ``pad_left``; ``offset`` and ``padded_length`` place the window,
        so ``Coefficients.origin`` still maps coefficient indices to the sound's seconds.
        ``coeffs`` itself when the window is the whole.
    """
    hops = _hops(coeffs)
    step = max(hops)
    total = coeffs.padded_length
    if total % step or any(step % h for h in hops):  # not an aligned multi-rate layout
        return coeffs
    sr = coeffs.frame.sample_rate
    origin = coeffs.origin
    first = 0
    if math.isfinite(start_s):
        first = (math.floor((start_s * sr + origin) / step) - _MARGIN_STEPS) * step
    last = total
    if math.isfinite(end_s):
        last = (math.ceil((end_s * sr + origin) / step) + _MARGIN_STEPS) * step
    first, last = min(max(first, 0), total), min(max(last, 0), total)
    if last <= first:
        last = min(first + step, total)
        first = last - step
    if first == 0 and last == total:
        return coeffs
    groups = [g[..., first // h : last // h] for g, h in zip(coeffs.groups, hops)]
    return Coefficients(groups, coeffs.frame, coeffs.length, coeffs.pad_left, last - first, coeffs.offset + first)


def edits_reaching(window: Coefficients, edits: Sequence[Edit]) -> list[Edit]:
    """The edits that touch a coefficient of ``window`` (the others cost a loop over
    every band each, for nothing, in a long edit list)."""
    sr = window.frame.sample_rate
    reach = max(_hops(window)) / sr  # an edit touches coefficients up to a hop beyond its span
    lo = -window.origin / sr - reach
    hi = (window.padded_length - window.origin) / sr + reach
    return [edit for edit in edits if edit.span()[0] <= hi and edit.span()[1] >= lo]


def update_span(
    original: Coefficients,
    target: Coefficients,
    edits: Sequence[Edit],
    span: tuple[float, float],
    *,
    fresh: bool,
    widest: float = 0.25,
) -> bool:
    """Recompute ``target`` in place over the coefficients an edit of ``span`` reaches.

    Parameters
    ----------
    original : Coefficients
        The source's complex coefficients.
    target : Coefficients
        Magnitudes in the same layout, changed in place.
    edits : sequence of Edit
        Pointwise edits (see :func:`pointwise`).
    span : (float, float)
        Seconds; infinite ends reach the ends of the sound.
    fresh : bool
        False: apply ``edits`` on top of what ``target`` holds there (a new edit, a
        redo). True: start again from the source's magnitudes there and apply ``edits``
        (every edit left, after an undo).
    widest : float
        Largest share of the sound to recompute here. A wider span (a band edit covers
        all of it) changes nothing and returns False: the caller drops its target, to be
        rebuilt where a picture needs it, off the thread that edits.

    Returns
    -------
    bool
        Whether ``target`` was updated.

    Notes
    -----
    The window goes through the same :func:`~scalgui.dsp.edits.apply_edits` as a full
    recomputation, coefficient by coefficient in the same order, so the result equals
    it. A reader in another thread may see the window half written: the document logs
    the span, and pictures of it are drawn again.
    """
    window = crop(original, *span)
    if window.padded_length > widest * original.padded_length:
        return False
    here = crop(target, *span)
    result = apply_edits(window, edits_reaching(window, edits), onto=None if fresh else here)
    for destination, values in zip(here.groups, result.groups):
        destination.copy_(values)
    return True


def edited_window(original: Coefficients, edits: Sequence[Edit], start_s: float, end_s: float):
    """``(coefficients, target magnitudes)`` of a window around ``start_s``..``end_s``
    seconds, with ``edits`` applied there only: what a picture of that range needs."""
    window = crop(original, start_s, end_s)
    return window, apply_edits(window, edits_reaching(window, edits))


def changed_spans(old: np.ndarray, new: np.ndarray, sample_rate: float, *, join_s: float = 0.1) -> list:
    """Where ``new`` differs from ``old`` (``[channels, frames]`` each), as spans in
    seconds ``[(start, end), ...]``; differences closer than ``join_s`` make one span."""
    differs = np.flatnonzero(np.any(np.asarray(old) != np.asarray(new), axis=0))
    if differs.size == 0:
        return []
    gap = max(int(join_s * sample_rate), 1)
    breaks = np.flatnonzero(np.diff(differs) > gap)
    starts = np.concatenate([[differs[0]], differs[breaks + 1]])
    ends = np.concatenate([differs[breaks], [differs[-1]]]) + 1
    return [(float(a) / sample_rate, float(b) / sample_rate) for a, b in zip(starts, ends)]


def reanalyse_span(coeffs: Coefficients, signal: torch.Tensor, start_s: float, end_s: float) -> None:
    """Bring ``coeffs``, an analysis of an earlier ``signal`` that differed from this one
    only between ``start_s`` and ``end_s`` seconds, up to date in place.

    Only the coefficients whose atoms reach into the span change; they are taken from an
    analysis of a window around the span that reaches ``frame.context`` further on each
    side, where a window's circular transform equals the whole one's (as segmented
    analysis relies on).
    """
    frame = coeffs.frame
    step, pad = frame.max_hop, coeffs.pad_left
    sr = frame.sample_rate
    hops = _hops(coeffs)
    # The changed coefficients, in samples of the padded signal, on the max-hop grid.
    lo = max((math.floor(start_s * sr) + pad - frame.pad) // step * step, 0)
    hi = min(frame._round_up(math.ceil(end_s * sr) + pad + frame.pad, step), coeffs.padded_length)
    if hi <= lo:
        return
    first = lo - frame.context
    # A power of two of largest hops: few distinct lengths, so few cached FFT plans.
    window = step << max(math.ceil(math.log2(-(-(hi + frame.context - first) // step))), 0)
    # The padded signal's samples first..first + window (zeros beyond the signal).
    segment = frame._segment(signal, first - pad, window).to(device=frame.device, dtype=frame.dtype)
    fresh = frame.forward_block(segment)
    for group, part, h in zip(coeffs.groups, fresh, hops):
        group[..., lo // h : hi // h] = part[..., (lo - first) // h : (hi - first) // h].to(group.device)


@dataclass(frozen=True)
class _Entry:
    raster: Raster
    seen: int  # how many logged spans the picture already shows


class OverviewCache:
    """Whole-file pictures of a document's layers, kept current span by span.

    Parameters
    ----------
    width : int
        Columns of every picture (over the whole sound).

    Notes
    -----
    Keys are ``(layer, ...)``, e.g. ``(layer, channel, floor_db)``. The document logs
    the spans its edits, undos and redos touched (:meth:`touched`); a picture of one of
    :data:`EDITED_LAYERS` redraws just the columns of the spans logged since it was drawn (grown by
    ``margin_s``), the others never depend on the edits. Likewise a ``"render"`` picture
    redraws the spans where a render changed the previous one (logged with
    ``render=True``). Pictures are drawn outside the
    lock; the log position is read *before* drawing, so a change that lands while a
    picture is drawn is logged after that position and redrawn next time — a picture
    is never stored with a change it may have missed. :meth:`reset` (a new analysis)
    and :meth:`forget` (a new render) drop pictures; one being drawn then is not kept.
    """

    def __init__(self, width: int) -> None:
        self.width = int(width)
        self._lock = threading.Lock()
        self._entries: dict[tuple, _Entry] = {}
        self._log: list[tuple[float, float]] = []  # spans where the edited layers changed
        self._render_log: list[tuple[float, float]] = []  # spans where a render changed the last
        self._epochs: dict[str, int] = {}
        self._epoch = 0

    def reset(self, spans: Iterable[tuple[float, float]] = ()) -> None:
        """Drop every picture; ``spans``: where the target differs from the source now
        (the spans of the edits that are kept across a re-analysis)."""
        with self._lock:
            self._entries.clear()
            self._log = list(spans)
            self._render_log = []
            self._epoch += 1

    def forget(self, layer: str) -> None:
        """Drop the pictures of one layer (e.g. ``"render"`` after a new render)."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k[0] != layer}
            self._epochs[layer] = self._epochs.get(layer, 0) + 1

    def touched(self, spans: Iterable[tuple[float, float]], *, render: bool = False) -> None:
        """Log spans (seconds) where the edited layers changed, or with ``render=True``
        where a new render differs from the last (the ``"render"`` pictures)."""
        with self._lock:
            (self._render_log if render else self._log).extend(spans)

    def _log_of(self, layer: str) -> list | None:
        return self._log if layer in EDITED_LAYERS else self._render_log if layer == "render" else None

    def cached(self, key: tuple) -> Raster | None:
        """The stored picture for ``key`` as it is (maybe behind the log), or None."""
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry.raster

    def picture(
        self,
        key: tuple,
        duration: float,
        draw: Callable[[float, float, int], Raster],
        *,
        margin_s: float = 0.0,
        seed: Callable[[], Raster | None] | None = None,
    ) -> Raster:
        """The whole-file picture for ``key``, drawn or brought up to date.

        Parameters
        ----------
        key : tuple
            ``(layer, ...)``: the layer first, then whatever else sets the picture apart.
        duration : float
            Seconds of the sound (the picture spans ``0..duration``).
        draw : callable
            ``draw(start_s, end_s, width)``: a :class:`Raster` of that layer.
        margin_s : float
            Seconds around each logged span whose columns may change too
            (:func:`reach_s` of the coefficients).
        seed : callable, optional
            For a picture not drawn yet: ``seed()`` gives one that is already right
            outside the spans logged since the last :meth:`reset` (the source's picture
            for the target, a blank one for the mask), or None. Then only those spans
            are drawn.

        Returns
        -------
        Raster
            ``width`` columns; never modified later (a refresh makes a new one).
        """
        layer = key[0]
        with self._lock:
            stored = self._entries.get(key)
            entry = stored
            log = self._log_of(layer)
            logged = len(log) if log is not None else 0
            spans = log[entry.seen : logged] if entry is not None and log is not None else []
            epoch, layer_epoch = self._epoch, self._epochs.get(layer, 0)
        if entry is None and seed is not None:
            start = seed()
            if start is not None:
                entry = _Entry(start, 0)
                with self._lock:
                    spans = log[:logged] if log is not None else []
        if entry is not None and not spans:
            raster = entry.raster
            if stored is not None:
                return raster
        elif entry is None:
            raster = draw(0.0, duration, self.width)
        else:
            raster = self._patched(entry.raster, spans, duration, draw, margin_s)
        with self._lock:
            if (self._epoch, self._epochs.get(layer, 0)) == (epoch, layer_epoch) and self._entries.get(key) is stored:
                self._entries[key] = _Entry(raster, logged)
        return raster

    def columns(self, spans: Iterable[tuple[float, float]], duration: float, margin_s: float) -> list[tuple[int, int]]:
        """Merged runs ``[j0, j1)`` of the columns that ``spans`` (seconds) grown by
        ``margin_s`` and one column reach."""
        width = self.width
        dt = duration / width
        runs = []
        for lo, hi in spans:
            lo = 0.0 if not math.isfinite(lo) else lo
            hi = duration if not math.isfinite(hi) else hi
            j0 = max(math.floor((lo - margin_s) / dt) - 1, 0)
            j1 = min(math.ceil((hi + margin_s) / dt) + 1, width)
            if j1 > j0:
                runs.append((j0, j1))
        runs.sort()
        merged: list[tuple[int, int]] = []
        for j0, j1 in runs:
            if merged and j0 <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], j1))
            else:
                merged.append((j0, j1))
        return merged

    def _patched(self, raster: Raster, spans, duration: float, draw, margin_s: float) -> Raster:
        width = self.width
        runs = self.columns(spans, duration, margin_s)
        if sum(j1 - j0 for j0, j1 in runs) > width // 2:
            return draw(0.0, duration, width)  # most of it changed: one whole drawing is cheaper
        db = raster.db.copy()  # readers of the old picture keep a consistent one
        dt = duration / width
        for j0, j1 in runs:
            # One guard column each side: a strip clamps what lies exactly on its outer
            # edges into its end columns, which the whole picture puts next door.
            g0, g1 = max(j0 - 1, 0), min(j1 + 1, width)
            start = 0.0 if g0 == 0 else g0 * dt
            end = duration if g1 == width else g1 * dt
            part = draw(start, end, g1 - g0)
            db[:, j0:j1] = part.db[:, j0 - g0 : j1 - g0]
        return Raster(db, raster.centre_hz, raster.start_s, raster.end_s)
