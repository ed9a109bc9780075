"""Display rasters: a scalogram resampled onto a uniform (band x pixel) grid.

Every band of the frame has its own coefficient rate, so a picture needs each band's
magnitudes brought onto one time grid. :func:`scalogram_raster` does that for any time
range and pixel width straight from the stored coefficients, so a view can show a whole
file or a zoomed-in part without recomputing the transform. Where a pixel spans several
coefficients it keeps their maximum (transients stay visible when zoomed out); where a
band has fewer coefficients than pixels it interpolates linearly (no blocky upscaling).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .frame import Coefficients

__all__ = ["ChannelView", "Raster", "resample_raster", "select_channel", "scalogram_raster", "to_db"]

#: Channel views of a stereo (or wider) signal: an index, or one of these names.
ChannelView = int | str
CHANNEL_VIEWS = ("left", "right", "mid", "side", "mean")


def _channel_view(tensor: torch.Tensor, view: ChannelView) -> torch.Tensor:
    """One channel view of a coefficient tensor ``[channels, bands, frames]`` (or
    ``[bands, frames]`` for mono), as ``[bands, frames]``."""
    if tensor.ndim == 2:
        if view not in (0, "left", "mid", "mean"):
            raise ValueError(f"a mono signal has no {view!r} channel")
        return tensor
    channels = tensor.shape[0]
    if isinstance(view, (int, np.integer)):
        if not -channels <= view < channels:
            raise ValueError(f"channel {view} does not exist: the signal has {channels}")
        return tensor[view]
    if view == "mean":
        if channels == 2:
            return (tensor[0] + tensor[1]) * 0.5  # a third of numpy's mean(0) on a picture
        return tensor.mean(0)  # works on numpy arrays too
    if view in ("left", "right"):
        return tensor[0 if view == "left" or channels == 1 else 1]
    if view in ("mid", "side"):
        if channels == 1:
            return tensor[0] if view == "mid" else tensor[0] * 0
        sign = 1.0 if view == "mid" else -1.0
        return (tensor[0] + sign * tensor[1]) / 2
    raise ValueError(f"unknown channel view {view!r}; use an index or one of {', '.join(CHANNEL_VIEWS)}")


def select_channel(coeffs: Coefficients, view: ChannelView = 0) -> Coefficients:
    """Coefficients of one channel view, without the channel dimension.

    The frame is linear, so mid ``(L + R) / 2`` and side ``(L - R) / 2`` are formed from
    the complex coefficients directly.

    Parameters
    ----------
    coeffs : Coefficients
        With batch shape ``[channels]`` (or no batch dimension for mono).
    view : int or str
        A channel index, or ``"left"``, ``"right"``, ``"mid"``, ``"side"``, ``"mean"``.
    """
    return coeffs.map(lambda g: _channel_view(g, view))


def to_db(magnitude: torch.Tensor, floor_db: float = -120.0) -> torch.Tensor:
    """``20 log10(magnitude)`` clamped below at ``floor_db`` dB (full scale = 0 dB)."""
    return 20.0 * torch.log10(magnitude.clamp_min(10.0 ** (floor_db / 20.0)))


@dataclass(frozen=True)
class Raster:
    """A scalogram picture.

    Attributes
    ----------
    db : np.ndarray [shape=(n_bands, width)], float32
        Magnitude in dB (full-scale sine = 0 dB), lowest band first.
    centre_hz : np.ndarray [shape=(n_bands,)]
        Centre frequency of each row, in Hz.
    start_s, end_s : float
        Time range covered, in seconds; pixel ``j`` spans
        ``start_s + j * (end_s - start_s) / width`` onwards.
    """

    db: np.ndarray
    centre_hz: np.ndarray
    start_s: float
    end_s: float

    @property
    def width(self) -> int:
        return self.db.shape[1]

    @property
    def pixel_times(self) -> np.ndarray:
        """Centre time of each pixel column, in seconds."""
        step = (self.end_s - self.start_s) / self.width
        return self.start_s + (np.arange(self.width) + 0.5) * step


def scalogram_raster(
    coeffs: Coefficients,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    width: int = 1024,
    channel: ChannelView = 0,
    floor_db: float = -120.0,
    magnitudes: Coefficients | None = None,
) -> Raster:
    """Magnitude in dB of the wavelet bands on a uniform time grid.

    Parameters
    ----------
    coeffs : Coefficients
        From :meth:`WaveletFrame.analyze`, mono or with a channel dimension.
    start_s, end_s : float
        Time range in seconds (``end_s=None``: the end of the signal). May reach outside
        the signal, where the picture shows silence.
    width : int
        Number of pixel columns.
    channel : int or str
        Channel view, see :func:`select_channel`.
    floor_db : float
        Lowest value in dB.
    magnitudes : Coefficients, optional
        Magnitudes to draw instead of ``|coeffs|`` (e.g. an edited target), in the same
        layout; ``coeffs`` then supplies only the phases for the channel view.

    Returns
    -------
    Raster
    """
    frame = coeffs.frame
    sr = frame.sample_rate
    if end_s is None:
        end_s = coeffs.length / sr
    if not end_s > start_s:
        raise ValueError(f"empty time range: {start_s} s to {end_s} s")
    if width < 1:
        raise ValueError(f"width must be at least one pixel, got {width}")
    if magnitudes is not None and len(magnitudes.groups) != len(coeffs.groups):
        raise ValueError("magnitudes must have the coefficients' layout")
    table = frame.bands
    wavelets = table.wavelet_indices
    # The per-pixel work is numpy on the CPU: these arrays are small enough that torch's
    # thread pool cost more than it gave (a zoomed-in redraw took 32 ms with two threads,
    # 20 ms with one).
    out = np.full((len(wavelets), width), float(floor_db), dtype=np.float32)
    pixel_s = (end_s - start_s) / width
    centres = start_s + (np.arange(width, dtype=np.float64) + 0.5) * pixel_s
    floor = np.float32(10.0 ** (floor_db / 20.0))
    for g, tensor in enumerate(coeffs.groups):
        rows_here = np.flatnonzero(table.group[wavelets] == g)
        if len(rows_here) == 0:
            continue
        hop = int(table.hop[wavelets[rows_here[0]]])
        n = tensor.shape[-1]
        # Only the coefficients the picture needs (one more on each side to interpolate)
        # are read, so a zoomed-in view of a long file costs what its width costs.
        lo = min(max(int(np.floor((start_s * sr + coeffs.origin) / hop)) - 1, 0), n - 1)
        hi = max(min(int(np.ceil((end_s * sr + coeffs.origin) / hop)) + 2, n), lo + 1)
        group_rows = table.row[wavelets[rows_here]]
        if np.array_equal(group_rows, np.arange(tensor.shape[-2])):
            def pick(t):  # every row of the group: a view, no copy
                return t[..., lo:hi]
        else:
            rows = torch.as_tensor(group_rows, device=tensor.device)

            def pick(t):
                return t[..., lo:hi].index_select(-2, rows)
        window = pick(tensor)
        if magnitudes is not None:
            # Edited magnitudes with these coefficients' phases, so that channel views
            # (mid, side) combine as they would in the signal.
            window = torch.sgn(window) * pick(magnitudes.groups[g])
        view = _channel_view(window.to("cpu").numpy(), channel)
        # Squared magnitudes: the square root is taken only of what the picture keeps
        # (two samples per pixel and the pooled maxima).
        power = (np.square(view.real) + np.square(view.imag)) if np.iscomplexobj(view) else np.square(view)
        power = power.astype(np.float32, copy=False)
        # Fractional coefficient index of every pixel centre, relative to `lo`.
        position = (centres * sr + coeffs.origin) / hop
        inside = (position >= 0) & (position <= n - 1)
        local = position - lo
        left = np.clip(np.floor(local), 0, hi - lo - 1).astype(np.int64)
        right = np.minimum(left + 1, hi - lo - 1)
        frac = np.clip(local - left, 0, 1).astype(np.float32)
        interpolated = (np.sqrt(power[:, left]) * (1 - frac) + np.sqrt(power[:, right]) * frac) * inside
        # Coefficients that fall inside the range, binned to pixels, keep their maximum.
        first = max(int(np.ceil((start_s * sr + coeffs.origin) / hop)), lo)
        last = min(int(np.floor((end_s * sr + coeffs.origin) / hop)), hi - 1)
        level = interpolated
        if last >= first:
            times = (np.arange(first, last + 1, dtype=np.float64) * hop - coeffs.origin) / sr
            pixel = np.clip(np.floor((times - start_s) / pixel_s).astype(np.int64), 0, width - 1)
            # Pixel indices grow with time: each pixel's coefficients are one run.
            starts = np.flatnonzero(np.concatenate([[True], pixel[1:] != pixel[:-1]]))
            pooled = np.maximum.reduceat(power[:, first - lo : last - lo + 1], starts, axis=1)
            level = level.copy()
            columns = pixel[starts]
            level[:, columns] = np.maximum(level[:, columns], np.sqrt(pooled))
        out[rows_here] = 20.0 * np.log10(np.maximum(level, floor))
    return Raster(
        db=out,
        centre_hz=table.centre_hz[wavelets].copy(),
        start_s=float(start_s),
        end_s=float(end_s),
    )


def resample_raster(raster: Raster, start_s: float, end_s: float, width: int) -> Raster:
    """A raster for a time range cut from a wider one (e.g. a cached whole-file overview).

    Columns that span several source columns keep their maximum; others interpolate
    linearly, as :func:`scalogram_raster` does with coefficients. Outside the source's
    range the picture is at its lowest level.
    """
    if not end_s > start_s or width < 1:
        raise ValueError(f"bad range or width: {start_s} s to {end_s} s, {width} px")
    source = np.asarray(raster.db, dtype=np.float32)
    floor = float(source.min()) if source.size else -120.0
    src_step = (raster.end_s - raster.start_s) / raster.width
    step = (end_s - start_s) / width
    centres = start_s + (np.arange(width, dtype=np.float64) + 0.5) * step
    position = (centres - raster.start_s) / src_step - 0.5
    left = np.clip(np.floor(position), 0, raster.width - 1).astype(np.int64)
    right = np.minimum(left + 1, raster.width - 1)
    frac = np.clip(position - left, 0, 1).astype(np.float32)
    out = source[:, left] * (1 - frac) + source[:, right] * frac
    src_centres = raster.start_s + (np.arange(raster.width, dtype=np.float64) + 0.5) * src_step
    kept = np.flatnonzero((src_centres >= start_s) & (src_centres < end_s))
    if kept.size:
        # Source columns map to output pixels in order: each pixel's columns are one run.
        pixel = np.clip(np.floor((src_centres[kept] - start_s) / step).astype(np.int64), 0, width - 1)
        starts = np.flatnonzero(np.concatenate([[True], pixel[1:] != pixel[:-1]]))
        pooled = np.maximum.reduceat(source[:, kept], starts, axis=1)
        columns = pixel[starts]
        out[:, columns] = np.maximum(out[:, columns], pooled)
    outside = (position < -0.5) | (position > raster.width - 0.5)
    out[:, outside] = floor
    return Raster(out, raster.centre_hz, float(start_s), float(end_s))
