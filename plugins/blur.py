"""Blur (smear) and freeze: smoothing in time or frequency, and sustaining one moment.

**Blur** spreads energy with a Gaussian of standard deviation ``time_s`` seconds along
time (each band at its own rate) and ``semitones`` along log frequency (each band
averaging its neighbours, resampled to its own rate). It works on power (magnitude
squared) so the energy of a spread event is kept: a click's energy-weighted spread in
time grows from ``s`` to about ``sqrt(s**2 + time_s**2)``.

**Freeze** holds the magnitudes of one moment, ``at_s`` seconds (by default the start of
the selection), for ``length_s`` seconds (by default to the end of the selection, or of
the sound): every band keeps, over that span, its level averaged over ``average_s``
around the moment. What comes after the span is left as it was.

Both blend into the selection (the host applies its weight).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from scalgui.plugins import Param, Plugin, PluginError


def _box_sum(values: torch.Tensor, width: int) -> torch.Tensor:
    """Moving average of odd ``width`` along the last axis, edges replicated (float64
    cumulative sums keep long boxes exact enough)."""
    half = width // 2
    padded = torch.nn.functional.pad(values.reshape(-1, 1, values.shape[-1]), (half + 1, half), mode="replicate")
    c = torch.cumsum(padded.double(), dim=-1)
    return ((c[..., width:] - c[..., :-width]) / width).to(values.dtype).reshape(values.shape)


def gaussian_time(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth along the last axis with (nearly) a Gaussian of ``sigma`` samples.

    Three passes of a box of width ``w`` have variance ``3 (w**2 - 1) / 12``; ``w`` is the
    odd width closest to ``sigma``, and a light exact Gaussian makes up the remainder, so
    the spread is right for short and long kernels alike at a cost independent of sigma.
    """
    if sigma <= 0.0:
        return values
    width = int(math.floor(math.sqrt(4.0 * sigma**2 + 1.0)))
    width -= 1 - width % 2  # odd
    out = values
    rest = sigma**2
    if width >= 3:
        for _ in range(3):
            out = _box_sum(out, width)
        rest -= (width**2 - 1) / 4.0
    if rest > 1e-6:
        s = math.sqrt(rest)
        reach = max(1, int(math.ceil(4 * s)))
        taps = torch.arange(-reach, reach + 1, dtype=values.dtype, device=values.device)
        kernel = torch.exp(-0.5 * (taps / s) ** 2)
        kernel = (kernel / kernel.sum()).reshape(1, 1, -1)
        flat = out.reshape(-1, 1, out.shape[-1])
        padded = torch.nn.functional.pad(flat, (reach, reach), mode="replicate")
        out = torch.nn.functional.conv1d(padded, kernel).reshape(out.shape)
    return out


def blur(ctx):
    p = ctx.params
    wavelets = [int(k) for k in ctx.wavelets]
    power = [ctx.band(k) ** 2 for k in wavelets]
    if p["time_s"] > 0:
        power = [gaussian_time(pw, p["time_s"] * ctx.rate(k)) for pw, k in zip(power, wavelets)]
    spread = p["semitones"] * ctx.voices_per_octave / 12.0
    if spread > 0:
        reach = int(math.ceil(3 * spread))
        smoothed = []
        for i, k in enumerate(wavelets):
            acc, total = torch.zeros_like(power[i]), 0.0
            for j in range(max(i - reach, 0), min(i + reach + 1, len(wavelets))):
                w = math.exp(-0.5 * ((j - i) / spread) ** 2)
                acc += w * ctx.resample(power[j], ctx.hop(wavelets[j]), ctx.hop(k))
                total += w
            smoothed.append(acc / total)
        power = smoothed
    for k, pw in zip(wavelets, power):
        ctx.band(k).copy_(pw.clamp_min(0).sqrt())
    return ctx.magnitudes


def freeze(ctx):
    p = ctx.params
    start, end = ctx.span
    at = p["at_s"] if p["at_s"] >= 0 else start
    stop = at + p["length_s"] if p["length_s"] > 0 else end
    if not 0 <= at <= ctx.duration:
        raise PluginError(f"the moment to freeze, {at:g} s, lies outside the sound (0 to {ctx.duration:.3f} s)")
    if stop <= at:
        raise PluginError(f"nothing to freeze: the span ends at {stop:g} s, before the moment at {at:g} s")
    for k in ctx.wavelets:
        band = ctx.band(k)
        times = ctx.times(k)
        half = max(p["average_s"] / 2.0, 0.5 / ctx.rate(k))
        near = np.flatnonzero(np.abs(times - at) <= half)
        if len(near) == 0:
            near = ctx.index_at(k, at).reshape(1)
        # Averaged in power: the level of the moment, not of its phase beats.
        level = (band[..., near[0]: near[-1] + 1] ** 2).mean(-1, keepdim=True).sqrt()
        span = np.flatnonzero((times >= at) & (times <= stop))
        if len(span):
            band[..., span[0]: span[-1] + 1] = level
    return ctx.magnitudes


BLUR = Plugin(
    name="blur",
    title="Blur / Smear",
    description="Smear the selection in time (seconds) and/or across frequency (semitones) with a Gaussian, "
                "keeping its energy.",
    params=(
        Param("time_s", "float", 0.05, minimum=0.0, maximum=5.0, step=0.01, unit="s", title="Time",
              description="Standard deviation of the smoothing along time (0: none)."),
        Param("semitones", "float", 0.0, minimum=0.0, maximum=24.0, step=0.5, unit="semitones", title="Frequency",
              description="Standard deviation of the smoothing along log frequency (0: none)."),
    ),
    process=blur,
)

FREEZE = Plugin(
    name="freeze",
    title="Freeze",
    description="Sustain the magnitudes of one moment over a span: every band holds its level at that time.",
    params=(
        Param("at_s", "float", -1.0, minimum=-1.0, step=0.1, unit="s", title="Moment",
              description="Time whose magnitudes are held; -1: the start of the selection (or of the sound)."),
        Param("length_s", "float", 0.0, minimum=0.0, step=0.1, unit="s", title="Length",
              description="How long to hold them; 0: to the end of the selection (or of the sound)."),
        Param("average_s", "float", 0.02, minimum=0.0, maximum=1.0, step=0.01, unit="s", title="Averaging",
              description="Window around the moment whose levels are averaged (smooths out beating)."),
    ),
    process=freeze,
)

PLUGINS = (BLUR, FREEZE)
