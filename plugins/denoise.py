"""Denoise: a spectral gate with a noise profile learnt from a region of noise alone.

For every band (the lowpass and highpass atoms too) and channel, the noise floor is a
statistic (mean, median, 90th percentile or maximum) of the band's magnitudes over the
``noise`` time range (seconds). Where a magnitude stands less than ``threshold_db`` above
its band's floor, the gate closes and lowers it by ``reduction_db``; above, it passes
unchanged. The gate's openings are smoothed over ``smoothing_s`` seconds in time and
``smoothing_semitones`` across bands, so it opens and closes without the warbling of a
hard per-coefficient switch. Without a noise range, the floor is guessed from each band's
quietest coefficients: if the quietest tenth of them are Gaussian noise, their magnitudes
follow a Rayleigh law whose scale is the 10th percentile / 0.459, and the chosen
statistic of that law is the floor (this assumes the sound leaves the band to the noise
at least a tenth of the time). The host limits the change to the selection.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from scalgui.plugins import Param, Plugin, PluginError

STATISTICS = ("p90", "mean", "median", "max")

#: Statistics of a Rayleigh law of scale 1 (the magnitude of complex Gaussian noise):
#: the 10th percentile estimates the scale; "max" stands for the 99th percentile.
_RAYLEIGH_P10 = math.sqrt(-2.0 * math.log(0.9))
_RAYLEIGH = {"mean": math.sqrt(math.pi / 2.0), "median": math.sqrt(2.0 * math.log(2.0)),
             "p90": math.sqrt(-2.0 * math.log(0.1)), "max": math.sqrt(-2.0 * math.log(0.01))}


def _floor(values: torch.Tensor, statistic: str) -> torch.Tensor:
    """Noise floor of ``values`` [*batch, frames] along time: [*batch]."""
    if statistic == "mean":
        return values.mean(-1)
    if statistic == "median":
        return values.median(-1).values
    if statistic == "max":
        return values.amax(-1)
    if statistic == "p10":
        return torch.quantile(values.double(), 0.1, dim=-1).to(values.dtype)
    return torch.quantile(values.double(), 0.9, dim=-1).to(values.dtype)


def _box(values: torch.Tensor, width: int) -> torch.Tensor:
    """Moving average over ``width`` samples (odd) along the last axis, edges replicated."""
    if width <= 1:
        return values
    shape = values.shape
    flat = values.reshape(-1, 1, shape[-1])
    padded = torch.nn.functional.pad(flat, (width // 2, width // 2), mode="replicate")
    return torch.nn.functional.avg_pool1d(padded, kernel_size=width, stride=1).reshape(shape)


def process(ctx):
    p = ctx.params
    # Every atom, the lowpass and highpass ones too: white noise has most of its energy at
    # the top, which the highpass atom holds.
    atoms = list(range(len(ctx.bands)))
    lo, hi = p["noise"]
    open_ratio = 10.0 ** (p["threshold_db"] / 20.0)
    closed = 10.0 ** (-p["reduction_db"] / 20.0)
    # The gate per band (1 open, `closed` shut), on each band's own grid.
    gates = []
    for k in atoms:
        band = ctx.band(k)
        if hi > lo:
            times = ctx.times(k)
            inside = np.flatnonzero((times >= lo) & (times <= hi))
            if len(inside) == 0:
                raise PluginError(f"the noise range {lo:g}-{hi:g} s holds no coefficients of the {ctx.centre_hz[k]:.0f} "
                                  f"Hz band; choose a range inside the sound")
            floor = _floor(band[..., inside[0]: inside[-1] + 1], p["statistic"])
        else:
            times = ctx.times(k)
            inside = np.flatnonzero((times >= 0) & (times <= ctx.duration))
            scale = _floor(band[..., inside[0]: inside[-1] + 1], "p10") / _RAYLEIGH_P10
            floor = scale * _RAYLEIGH[p["statistic"]]
        gate = torch.where(band > open_ratio * floor.unsqueeze(-1), 1.0, closed).to(band.dtype)
        gate = _box(gate, 2 * int(round(p["smoothing_s"] * ctx.rate(k) / 2)) + 1)
        gates.append(gate)
    spread = p["smoothing_semitones"] * ctx.voices_per_octave / 12.0
    if spread > 0:
        # Across bands: a raised-cosine average of the neighbours' gates, each resampled
        # to this band's grid.
        reach = int(math.ceil(spread))
        smoothed = []
        for i, k in enumerate(atoms):
            acc, total = torch.zeros_like(gates[i]), 0.0
            for j in range(max(i - reach, 0), min(i + reach + 1, len(atoms))):
                w = 0.5 + 0.5 * math.cos(math.pi * (j - i) / (spread + 1.0))
                acc += w * ctx.resample(gates[j], ctx.hop(atoms[j]), ctx.hop(k))
                total += w
            smoothed.append(acc / total)
        gates = smoothed
    for k, gate in zip(atoms, gates):
        ctx.band(k).mul_(gate)
    return ctx.magnitudes


PLUGIN = Plugin(
    name="denoise",
    title="Denoise",
    description="Spectral gate: learn each band's noise floor from a region of noise alone, then lower whatever "
                "stays near that floor by the reduction, keeping what stands above the threshold.",
    params=(
        Param("noise", "range", (0.0, 0.0), minimum=0.0, unit="s", title="Noise region",
              description="Time range of noise alone to learn the profile from; 0:0 guesses the floor from each "
                          "band's quietest tenth over the whole sound."),
        Param("statistic", "choice", "p90", choices=STATISTICS, title="Floor statistic",
              description="How the noise floor summarises the region per band: 90th percentile, mean, median "
                          "or maximum."),
        Param("threshold_db", "float", 6.0, minimum=-20.0, maximum=40.0, step=1.0, unit="dB", title="Threshold",
              description="How far above the floor a magnitude must stand to pass."),
        Param("reduction_db", "float", 24.0, minimum=0.0, maximum=100.0, step=1.0, unit="dB", title="Reduction",
              description="How much the closed gate lowers the noise."),
        Param("smoothing_s", "float", 0.02, minimum=0.0, maximum=1.0, step=0.01, unit="s", title="Time smoothing",
              description="Length of the moving average that softens the gate in time."),
        Param("smoothing_semitones", "float", 1.0, minimum=0.0, maximum=12.0, step=0.5, unit="semitones",
              title="Frequency smoothing", description="How far the gate is averaged across bands."),
    ),
    process=process,
)
