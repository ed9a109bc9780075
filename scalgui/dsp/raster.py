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
        return tensor.mean(0)
    if view in ("left", "right"):
        return tensor[0 if view == "left" or channels == 1 else 1]
    if view in ("mid", "side"):
        if channels == 1:
            return tensor[0] if view == "mid" else torch.zeros_like(tensor[0])
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
    out = torch.full((len(wavelets), width), float(floor_db), dtype=torch.float32)
    pixel_s = (end_s - start_s) / width
    centres = start_s + (torch.arange(width, dtype=torch.float64) + 0.5) * pixel_s
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
        rows = torch.as_tensor(table.row[wavelets[rows_here]], device=tensor.device)
        window = tensor[..., lo:hi].index_select(-2, rows)
        if magnitudes is not None:
            # Edited magnitudes with these coefficients' phases, so that channel views
            # (mid, side) combine as they would in the signal.
            window = torch.sgn(window) * magnitudes.groups[g][..., lo:hi].index_select(-2, rows)
        mag = _channel_view(window, channel).abs().to("cpu", torch.float32)
        # Fractional coefficient index of every pixel centre, relative to `lo`.
        position = (centres * sr + coeffs.origin) / hop
        inside = ((position >= 0) & (position <= n - 1)).to(torch.float32)
        local = position - lo
        left = local.floor().clamp(0, hi - lo - 1).long()
        right = (left + 1).clamp(max=hi - lo - 1)
        frac = (local - left).clamp(0, 1).to(torch.float32)
        interpolated = (mag[:, left] * (1 - frac) + mag[:, right] * frac) * inside
        # Coefficients that fall inside the range, binned to pixels, keep their maximum.
        first = max(int(np.ceil((start_s * sr + coeffs.origin) / hop)), lo)
        last = min(int(np.floor((end_s * sr + coeffs.origin) / hop)), hi - 1)
        pooled = torch.zeros_like(interpolated)
        if last >= first:
            index = torch.arange(first, last + 1)
            times = (index.to(torch.float64) * hop - coeffs.origin) / sr
            pixel = ((times - start_s) / pixel_s).floor().long().clamp(0, width - 1)
            pooled = pooled.scatter_reduce(
                1, pixel.expand(len(rows_here), -1), mag[:, first - lo : last - lo + 1], reduce="amax", include_self=True
            )
        out[torch.as_tensor(rows_here)] = to_db(torch.maximum(interpolated, pooled), floor_db)
    return Raster(
        db=out.numpy(),
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
    source = torch.from_numpy(raster.db)
    floor = float(source.min()) if source.numel() else -120.0
    src_step = (raster.end_s - raster.start_s) / raster.width
    step = (end_s - start_s) / width
    centres = start_s + (torch.arange(width, dtype=torch.float64) + 0.5) * step
    position = (centres - raster.start_s) / src_step - 0.5
    left = position.floor().clamp(0, raster.width - 1).long()
    right = (left + 1).clamp(max=raster.width - 1)
    frac = (position - left).clamp(0, 1).to(torch.float32)
    out = source[:, left] * (1 - frac) + source[:, right] * frac
    src_centres = raster.start_s + (torch.arange(raster.width, dtype=torch.float64) + 0.5) * src_step
    keep = (src_centres >= start_s) & (src_centres < end_s)
    if keep.any():
        pixel = ((src_centres[keep] - start_s) / step).floor().long().clamp(0, width - 1)
        pooled = torch.full_like(out, floor).scatter_reduce(
            1, pixel.expand(source.shape[0], -1), source[:, keep], reduce="amax", include_self=True
        )
        out = torch.maximum(out, pooled)
    outside = (position < -0.5) | (position > raster.width - 0.5)
    out[:, outside] = floor
    return Raster(out.numpy(), raster.centre_hz, float(start_s), float(end_s))
