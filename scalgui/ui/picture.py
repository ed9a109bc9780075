"""What the scalogram view draws, computed from the document (numpy; no widgets).

A :class:`PictureRequest` names a visible time range, the visible part of the octave axis
and their size in device pixels; :func:`compute_picture` asks the document for a raster at
exactly that many columns (so zooming in never shows blocky pixels) and resamples its
bands (rows at geometric centre frequencies) linearly onto the pixel rows. It runs in the
view's raster thread; everything here is plain data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Picture", "PictureRequest", "band_extent", "channel_mix", "compute_picture", "envelope", "resample_rows"]


@dataclass(frozen=True)
class PictureRequest:
    """A picture to compute.

    Attributes
    ----------
    start_s, end_s : float
        Time range, seconds (already clipped to the sound).
    y0, y1 : float
        Visible octave range (log2 Hz), already clipped to the bands' extent.
    width, height : int
        Device pixels.
    channel : str or int
        Channel view (``"mean"``, ``"left"``, ``"right"``, ``"mid"``, ``"side"``).
    layer : str
        Document layer (``"target"``, ``"source"``, ``"render"``, ``"difference"``).
    mask : bool
        Also compute the edit-mask overlay.
    revision : int
        The view's count of document changes when the request was made.
    """

    start_s: float
    end_s: float
    y0: float
    y1: float
    width: int
    height: int
    channel: str | int = "mean"
    layer: str = "target"
    mask: bool = False
    revision: int = 0


@dataclass(frozen=True)
class Picture:
    """A computed picture.

    Attributes
    ----------
    request : PictureRequest
    image : np.ndarray [shape=(height, width)], float32
        dB (or the mask) on pixel rows, lowest frequency first.
    db : np.ndarray [shape=(bands, width)], float32
        The raster before row resampling (what the status read-out reports).
    centre_octaves : np.ndarray [shape=(bands,)]
        log2 of each band's centre frequency.
    mask : np.ndarray [shape=(height, width)] or None
        Edit strength in [0, 1] on the same pixel grid.
    seconds : float
        Time the computation took.
    """

    request: PictureRequest
    image: np.ndarray
    db: np.ndarray
    centre_octaves: np.ndarray
    mask: np.ndarray | None
    seconds: float = 0.0

    def value_at(self, t: float, octave: float) -> float:
        """The raster's value (dB) nearest to time ``t`` and ``octave``; NaN outside."""
        r = self.request
        if not (r.start_s <= t < r.end_s) or len(self.centre_octaves) == 0:
            return math.nan
        col = min(int((t - r.start_s) / (r.end_s - r.start_s) * self.db.shape[1]), self.db.shape[1] - 1)
        lo, hi = band_extent(self.centre_octaves)
        if not lo <= octave <= hi:
            return math.nan
        row = int(np.argmin(np.abs(self.centre_octaves - octave)))
        return float(self.db[row, col])


def band_extent(centre_octaves: np.ndarray) -> tuple[float, float]:
    """The octave range the bands cover: half a band step beyond the first and last centre."""
    c = np.asarray(centre_octaves, dtype=np.float64)
    if len(c) < 2:
        return float(c[0]) - 0.5, float(c[0]) + 0.5
    step = (c[-1] - c[0]) / (len(c) - 1)
    return float(c[0] - step / 2), float(c[-1] + step / 2)


def resample_rows(rows: np.ndarray, centre_octaves: np.ndarray, y0: float, y1: float, height: int) -> np.ndarray:
    """Linear interpolation of band rows onto ``height`` pixel rows spanning ``[y0, y1]`` octaves.

    Parameters
    ----------
    rows : np.ndarray [shape=(bands, width)]
    centre_octaves : np.ndarray [shape=(bands,)]
        Increasing.
    y0, y1 : float
        Octave range of the output, bottom to top.
    height : int

    Returns
    -------
    np.ndarray [shape=(height, width)], float32
    """
    n = rows.shape[0]
    y = y0 + (np.arange(height) + 0.5) * ((y1 - y0) / height)
    position = np.interp(y, centre_octaves, np.arange(n, dtype=np.float64))
    lo = np.floor(position).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = (position - lo).astype(np.float32)[:, None]
    return (rows[lo] * (1.0 - frac) + rows[hi] * frac).astype(np.float32, copy=False)


def compute_picture(doc, request: PictureRequest) -> Picture:
    """Raster the document for ``request`` and resample it onto the request's pixel grid."""
    import time

    begin = time.perf_counter()
    r = request
    # Without edits the target is the source, which the document draws without building it.
    layer = "source" if r.layer == "target" and not doc.edits else r.layer
    raster = doc.raster(r.start_s, r.end_s, r.width, channel=r.channel, layer=layer)
    octaves = np.log2(np.asarray(raster.centre_hz, dtype=np.float64))
    image = resample_rows(raster.db, octaves, r.y0, r.y1, r.height)
    mask = None
    if r.mask and doc.edits:
        mask = resample_rows(doc.edit_mask(r.start_s, r.end_s, r.width), octaves, r.y0, r.y1, r.height)
    return Picture(r, image, raster.db, octaves, mask, time.perf_counter() - begin)


def channel_mix(samples: np.ndarray, channel: str | int) -> np.ndarray:
    """One channel view of ``samples`` ``[channels, frames]`` as ``[frames]``."""
    if samples.shape[0] == 1:
        return samples[0] if channel != "side" else np.zeros_like(samples[0])
    if isinstance(channel, (int, np.integer)):
        return samples[channel]
    if channel == "left":
        return samples[0]
    if channel == "right":
        return samples[1]
    if channel == "mid":
        return (samples[0] + samples[1]) / 2
    if channel == "side":
        return (samples[0] - samples[1]) / 2
    return samples.mean(axis=0)


def envelope(signal: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of ``signal`` over ``width`` equal column spans.

    Returns two float32 arrays ``[columns]``; ``columns`` is ``min(width, len(signal))``.
    """
    n = len(signal)
    columns = max(1, min(int(width), n))
    starts = (np.arange(columns) * n) // columns
    return (
        np.minimum.reduceat(signal, starts).astype(np.float32),
        np.maximum.reduceat(signal, starts).astype(np.float32),
    )
