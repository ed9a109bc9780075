"""Static pictures of scalograms (PNG files), with matplotlib.

This is the only module that imports matplotlib, and it imports it lazily. It never
touches pyplot's global state: every picture is drawn on its own
:class:`matplotlib.figure.Figure` with the Agg canvas, so it is safe in scripts, tests
and worker threads, with or without a display.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from scalgui.dsp.raster import Raster

__all__ = ["DEFAULT_RANGE_DB", "band_edges_hz", "hz_label", "save_scalogram_png", "scalogram_figure"]

#: Colour range of a picture when none is given: the loudest value and this many dB below.
DEFAULT_RANGE_DB = 90.0

# Candidate tick positions on the frequency axis, in Hz (1-2-5 per decade).
_TICKS_HZ = [m * 10.0**e for e in range(6) for m in (1, 2, 5)]


def hz_label(freq_hz: float) -> str:
    """A short label for a frequency: ``50``, ``200``, ``1k``, ``2.5k``, ``10k``."""
    if freq_hz >= 1000:
        return f"{freq_hz / 1000:g}k"
    return f"{freq_hz:g}"


def band_edges_hz(centre_hz: np.ndarray) -> np.ndarray:
    """Edges of the rows of a log-frequency picture, in Hz.

    Parameters
    ----------
    centre_hz : np.ndarray [shape=(n_bands,)]
        Rising, positive centre frequencies.

    Returns
    -------
    np.ndarray [shape=(n_bands + 1,)]
        Geometric midpoints between neighbouring centres; the outer edges lie half a
        band step beyond the first and last centres (one octave either side when there
        is a single band).
    """
    c = np.asarray(centre_hz, dtype=float)
    if c.ndim != 1 or len(c) == 0 or np.any(c <= 0) or np.any(np.diff(c) <= 0):
        raise ValueError("centre frequencies must be a non-empty, rising list of positive values")
    if len(c) == 1:
        return np.array([c[0] / 2.0, c[0] * 2.0])
    inner = np.sqrt(c[:-1] * c[1:])
    return np.concatenate([[c[0] ** 2 / inner[0]], inner, [c[-1] ** 2 / inner[-1]]])


def _atomic_savefig(fig, path: Path, dpi: float) -> None:
    write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi), binary=True)


def scalogram_figure(
    raster: Raster,
    *,
    title: str | None = None,
    vmin_db: float | None = None,
    vmax_db: float | None = None,
    cmap: str = "magma",
    figsize: tuple[float, float] = (12.0, 5.0),
):
    """Draw a scalogram raster on a new Agg figure: time in s, log frequency in Hz, dB bar.

    Parameters
    ----------
    raster : Raster
        From :func:`scalgui.dsp.raster.scalogram_raster`: ``db`` [bands, width], rows
        at ``centre_hz``, columns spanning ``start_s`` to ``end_s``.
    title : str, optional
        Text above the plot.
    vmin_db, vmax_db : float, optional
        Colour range in dB. Defaults: the loudest value, and 90 dB below it.
    cmap : str
        A matplotlib colour map name.
    figsize : (float, float)
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas attached; ``fig.axes[0]`` is the plot, ``fig.axes[1]`` the
        colour bar.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    db = np.asarray(raster.db, dtype=np.float32)
    if db.ndim != 2 or db.shape[0] != len(raster.centre_hz) or db.shape[1] < 1:
        raise ValueError(f"raster of shape {db.shape} does not match its {len(raster.centre_hz)} centre frequencies")
    if vmax_db is None:
        vmax_db = float(np.nanmax(db)) if np.isfinite(db).any() else 0.0
    if vmin_db is None:
        vmin_db = vmax_db - DEFAULT_RANGE_DB
    if not vmax_db > vmin_db:
        raise ValueError(f"empty colour range: {vmin_db} dB to {vmax_db} dB")

    f_edges = band_edges_hz(raster.centre_hz)
    t_edges = np.linspace(raster.start_s, raster.end_s, db.shape[1] + 1)

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(t_edges, f_edges, db, shading="flat", cmap=cmap, vmin=vmin_db, vmax=vmax_db,
                         rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(f_edges[0], f_edges[-1])
    ax.set_xlim(raster.start_s, raster.end_s)
    ticks = [t for t in _TICKS_HZ if f_edges[0] <= t <= f_edges[-1]]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: hz_label(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title)
    bar = fig.colorbar(mesh, ax=ax, pad=0.01)
    bar.set_label("dB")
    return fig


def save_scalogram_png(
    raster: Raster,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    vmin_db: float | None = None,
    vmax_db: float | None = None,
    cmap: str = "magma",
    dpi: float = 100.0,
    figsize: tuple[float, float] = (12.0, 5.0),
) -> Path:
    """Save a scalogram raster as a PNG picture (see :func:`scalogram_figure`).

    Parameters
    ----------
    raster, title, vmin_db, vmax_db, cmap, figsize
        As for :func:`scalogram_figure`.
    path : str or os.PathLike
        Destination. Written atomically (a temporary file in the same folder, then
        renamed), so a failed write never leaves a half-written picture.
    dpi : float
        Pixels per inch; the image is ``figsize * dpi`` pixels (1200 x 500 by default).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    fig = scalogram_figure(raster, title=title, vmin_db=vmin_db, vmax_db=vmax_db, cmap=cmap, figsize=figsize)
    path = Path(path)
    _atomic_savefig(fig, path, dpi)
    return path
