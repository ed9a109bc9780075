"""Image: turn a picture into sound, its brightness read as scalogram magnitude.

As in Photosounder or ARSS, the picture is laid on the scalogram: its x axis spans
``time`` (seconds; pixel column ``c`` of ``W`` covers ``[t0 + c T / W, t0 + (c + 1) T / W]``),
its y axis spans ``fmin`` to ``fmax`` Hz on a log-frequency scale (the top row is the
highest), and each pixel's brightness ``b`` in [0, 1] (luminance, times alpha: transparent
is black) becomes a level in dB:

    level = level_db - dynamic_range_db * (1 - b ** gamma)        (b > 0)

and silence where ``b`` is 0. A white pixel is a partial of amplitude ``level_db`` dBFS;
black is nothing. Each wavelet band takes, at each of its coefficient times, the largest
over nearby frequencies of the picture's amplitude there times the band's own response
to a partial at that frequency (as painting does), so a thin line becomes a partial that
the bands around it see as a real one would — a target a real sound can reach.

Instead of exciting the picture with noise (ARSS's "noise synthesis"), the plugin finds a
sound with those magnitudes by phase retrieval (``scalgui.dsp.phase.retrieve``: fast
Griffin-Lim on the frame, starting from the phase-gradient initial phase), over the
picture's time span plus the atoms' reach, and either adds it to the sound (``add``) or
replaces the sound in the span with it (``replace``). The host then analyses the result
and blends it in with the selection's weight.

Pictures are read with Pillow (a dependency of matplotlib, which scalgui requires): any
format it opens (PNG, JPEG, BMP, GIF, TIFF, WebP...); 16-bit greyscale keeps its depth.
Retrieved sounds are cached per picture file (path, size and modification time),
parameters and frame, so undo, redo and re-rendering do not repeat the retrieval.

Parameters
----------
file : str
    Path of the picture.
time : (float, float), seconds, default (0, 0) = the selection's span (the whole sound
    without a selection)
    Times of the picture's left and right edges.
fmin, fmax : float, 1 to 48000 Hz, defaults 100 Hz and 8000 Hz
    Frequencies of the picture's bottom and top edges (log scale in between). Bands
    outside the frame's range are not drawn.
level_db : float, -80 to 0 dBFS, default -12 dBFS
    Amplitude of a partial drawn in white.
dynamic_range_db : float, 6 to 140 dB, default 60 dB
    Level of the darkest non-black grey below white.
gamma : float, 0.1 to 10, default 1
    Exponent applied to brightness before it becomes dB.
iterations : int, 0 to 2000, default 100
    Phase-retrieval iterations.
mode : {"add", "replace"}, default "add"
    Add the picture's sound, or clear the span (5 ms fades) and put it there.

Raises
------
PluginError
    A missing or unreadable picture, fmax not above fmin, or a span after the sound.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict

import numpy as np
import torch

from scalgui.plugins import Param, Plugin, PluginError

MODES = ("add", "replace")
#: Frequencies, in units of a band's sigma, at which the picture is read for that band.
_STEPS = np.linspace(-3.0, 3.0, 25)
#: Fade at the edges of the span a "replace" clears, in seconds.
_FADE_S = 0.005

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def load_brightness(path: str) -> np.ndarray:
    """A picture's brightness in [0, 1], ``[rows, columns]``, row 0 at the top.

    Luminance (ITU-R 601 weights, Pillow's ``"L"``) times alpha where the picture has
    transparency; 16-bit and float greyscale keep their precision.

    Raises
    ------
    PluginError
        The file is missing or Pillow cannot read it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            mode = picture.mode
            if mode.startswith("I;16") or mode in ("I", "F"):
                values = np.asarray(picture, dtype=np.float64)
                full = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 1.0)
                return np.clip(values / full, 0.0, 1.0)
            if mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
                la = np.asarray(picture.convert("LA"), dtype=np.float64) / 255.0
                return la[..., 0] * la[..., 1]
            return np.asarray(picture.convert("L"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise PluginError(f"no picture at {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PluginError(f"cannot read the picture {path}: {exc}") from None


def brightness_to_amplitude(brightness: np.ndarray, *, level_db: float, dynamic_range_db: float,
                            gamma: float) -> np.ndarray:
    """Linear amplitude of each pixel (see the module's notes): 0 where brightness is 0."""
    b = np.clip(brightness, 0.0, 1.0) ** gamma
    amplitude = 10.0 ** ((level_db - dynamic_range_db * (1.0 - b)) / 20.0)
    return np.where(brightness > 0, amplitude, 0.0)


def _interpolate_rows(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Rows of ``values`` [rows, columns] at fractional row ``position`` [m] (linear, held
    at the edges): [m, columns]."""
    rows = values.shape[0]
    p = np.clip(position, 0.0, rows - 1.0)
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, rows - 1)
    frac = (p - i0)[:, None]
    return values[i0] * (1 - frac) + values[i1] * frac


def target_magnitudes(frame, coeffs, amplitude: np.ndarray, t0: float, t1: float, fmin: float,
                      fmax: float) -> list[torch.Tensor]:
    """The picture's magnitudes in the layout of ``coeffs`` (its times, its frame).

    Parameters
    ----------
    frame : WaveletFrame
    coeffs : Coefficients
        Any analysis whose layout and times (offset included) the result should have.
    amplitude : np.ndarray [shape=(rows, columns)]
        Linear amplitude per pixel, row 0 at ``fmax``.
    t0, t1 : float
        Seconds the picture's left and right edges sit at.
    fmin, fmax : float
        Hz of the picture's bottom and top edges.

    Returns
    -------
    list of torch.Tensor
        Per hop group ``[bands, frames]`` (no batch), on the frame's device.
    """
    table = frame.bands
    rows, columns = amplitude.shape
    out = [torch.zeros(g.shape[-2:], dtype=frame.dtype, device=g.device) for g in coeffs.groups]
    octaves = math.log2(fmax / fmin)
    for k in table.wavelet_indices:
        k = int(k)
        freqs = table.centre_hz[k] + _STEPS * table.sigma_hz[k]
        freqs = freqs[(freqs >= fmin) & (freqs <= fmax)]
        if len(freqs) == 0:
            continue
        response = frame.atom_response(k, freqs)
        # Height above the bottom edge in pixels; pixel y's centre sits at y + 0.5.
        height = np.log2(freqs / fmin) / octaves * rows - 0.5
        picture_rows = _interpolate_rows(amplitude, rows - 1 - height) * response[:, None]  # [f, columns]
        times = coeffs.times(k)
        inside = np.flatnonzero((times >= t0) & (times <= t1))
        if len(inside) == 0:
            continue
        across = (times[inside] - t0) / (t1 - t0) * columns - 0.5
        values = _interpolate_rows(picture_rows.T, across)  # [times, f]
        g, r = int(table.group[k]), int(table.row[k])
        out[g][r, inside[0]: inside[-1] + 1] = torch.as_tensor(values.max(axis=1), dtype=frame.dtype,
                                                               device=out[g].device)
    return out


def render(frame, amplitude: np.ndarray, t0: float, t1: float, fmin: float, fmax: float, n: int,
           iterations: int, *, progress=None, cancel=None) -> tuple[int, np.ndarray]:
    """Retrieve a sound for the picture: ``(first_sample, samples [frames])`` of a window
    of a sound ``n`` samples long (the span plus the atoms' reach, clipped to the sound).
    ``progress`` and ``cancel`` go to :func:`scalgui.dsp.phase.retrieve` (a cancelled run
    returns early: its result is not the picture's sound)."""
    from scalgui.dsp.phase import RetrievalSettings, retrieve

    sr = frame.sample_rate
    lo = max(int(math.floor(t0 * sr)) - frame.pad, 0)
    hi = min(int(math.ceil(t1 * sr)) + frame.pad, n)
    window = frame.analyze(torch.zeros(1, hi - lo, dtype=frame.dtype))
    window.offset = lo
    magnitudes = target_magnitudes(frame, window, amplitude, t0, t1, fmin, fmax)
    if not any(bool(m.any()) for m in magnitudes):
        return lo, np.zeros(hi - lo, dtype=np.float32)
    target = window.with_groups([m.unsqueeze(0) for m in magnitudes])
    result = retrieve(frame, target, RetrievalSettings(method="fgla", init="gradient", iterations=int(iterations)),
                      progress=progress, cancel=cancel)
    return lo, result.signal[0].detach().to("cpu", torch.float32).numpy()


def audio(ctx, samples: np.ndarray) -> np.ndarray:
    p = ctx.params
    frame = ctx.frame
    n = samples.shape[-1]
    t0, t1 = p["time"] if p["time"][1] > p["time"][0] else ctx.span
    t0, t1 = float(t0), float(t1)
    if t0 >= ctx.duration:
        raise PluginError(f"the picture's time span {t0:g}-{t1:g} s starts after the sound ends ({ctx.duration:.3f} s)")
    fmin, fmax = float(p["fmin"]), float(p["fmax"])
    if not fmax > fmin:
        raise PluginError(f"fmax ({fmax:g} Hz) must be above fmin ({fmin:g} Hz)")
    path = os.path.expanduser(p["file"])
    try:
        stat = os.stat(path)
    except OSError:
        raise PluginError(f"no picture at {path}") from None
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, t0, t1, fmin, fmax, p["level_db"],
           p["dynamic_range_db"], p["gamma"], p["iterations"], frame.settings, n, str(frame.device))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        amplitude = brightness_to_amplitude(load_brightness(path), level_db=p["level_db"],
                                            dynamic_range_db=p["dynamic_range_db"], gamma=p["gamma"])
        cached = render(frame, amplitude, t0, t1, fmin, fmax, n, p["iterations"], cancel=ctx.cancel_token,
                        progress=lambda r: ctx.progress(r.iteration / max(r.iterations, 1),
                                                        f"image: iteration {r.iteration} of {r.iterations}"))
        ctx.check()  # a cancelled retrieval stops early: never cache (or use) its result
        with _CACHE_LOCK:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    lo, sound = cached
    out = samples.copy()
    flat = out.reshape(-1, n)
    if p["mode"] == "replace":
        # Clear the span, with short fades so the cut itself adds no click.
        sr = ctx.sample_rate
        a, b = max(int(round(t0 * sr)), 0), min(int(round(t1 * sr)), n)
        keep = np.ones(n)
        keep[a:b] = 0.0
        fade = min(max(int(round(_FADE_S * sr)), 1), max((b - a) // 2, 1))
        ramp = 0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)  # 1 -> 0
        if a > 0:
            keep[a: a + fade] = ramp
        if b < n:
            keep[b - fade: b] = ramp[::-1]
        flat *= keep.astype(np.float32)
    flat[:, lo: lo + len(sound)] += sound
    return out


PLUGIN = Plugin(
    name="image",
    title="Image to Sound",
    description="Turn a picture into sound: its x axis spans a time range, its y axis fmin to fmax on a log "
                "scale, brightness becomes level in dB; the sound is found by phase retrieval, not noise.",
    params=(
        Param("file", "file", "", title="Picture", filter="Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)",
              description="The picture to play (any format Pillow reads)."),
        Param("time", "range", (0.0, 0.0), minimum=0.0, unit="s", title="Time span",
              description="Where the picture's left and right edges sit; 0:0 is the selection's span (the whole "
                          "sound without one)."),
        Param("fmin", "float", 100.0, minimum=1.0, maximum=48000.0, step=10.0, unit="Hz", title="Lowest frequency",
              description="Frequency of the picture's bottom edge."),
        Param("fmax", "float", 8000.0, minimum=1.0, maximum=48000.0, step=100.0, unit="Hz",
              title="Highest frequency", description="Frequency of the picture's top edge."),
        Param("level_db", "float", -12.0, minimum=-80.0, maximum=0.0, step=1.0, unit="dBFS", title="Level",
              description="Amplitude of a partial drawn in white."),
        Param("dynamic_range_db", "float", 60.0, minimum=6.0, maximum=140.0, step=6.0, unit="dB",
              title="Dynamic range", description="How far below white the darkest grey lies (black is silence)."),
        Param("gamma", "float", 1.0, minimum=0.1, maximum=10.0, step=0.1, title="Gamma",
              description="Brightness is raised to this power before it becomes dB: above 1 darkens the greys."),
        Param("iterations", "int", 100, minimum=0, maximum=2000, step=10, title="Iterations",
              description="Phase-retrieval iterations (fast Griffin-Lim on the frame)."),
        Param("mode", "choice", "add", choices=MODES, title="Mix",
              description="Add the picture's sound to what is there, or replace the span with it."),
    ),
    audio=audio,
)
