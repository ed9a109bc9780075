"""Transpose: move the selection up or down by semitones along the log-frequency axis.

Every wavelet band ``i`` of the result takes the selected content of band
``i - semitones * voices_per_octave / 12`` (resampled in time from that band's rate to its
own), so times stay where they were. When the shift is a whole number of bands the move
is exact; otherwise each band mixes its two nearest source bands linearly. The selection's
content leaves where it was (what is left there is the unselected part) and is combined
in power with whatever lies where it lands. Content shifted past the lowest or highest
band is dropped.
"""
from __future__ import annotations

import math

import torch

from scalgui.plugins import Param, Plugin


def _shift(ctx, selected: list[torch.Tensor], bands: float) -> list[torch.Tensor]:
    """Wavelet bands of ``selected`` moved up by ``bands`` (fractional: linear mix)."""
    wavelets = [int(k) for k in ctx.wavelets]
    moved = [torch.zeros_like(m) for m in selected]
    low = math.floor(bands)
    frac = bands - low
    for i, k in enumerate(wavelets):
        group, row = int(ctx.bands.group[k]), int(ctx.bands.row[k])
        acc = moved[group][..., row, :]
        # Source position i - bands lies between bands i - low - 1 and i - low.
        for j, share in ((i - low, 1.0 - frac), (i - low - 1, frac)):
            if share <= 1e-12 or not 0 <= j < len(wavelets):
                continue
            src = wavelets[j]
            values = selected[int(ctx.bands.group[src])][..., int(ctx.bands.row[src]), :]
            acc += share * ctx.resample(values, ctx.hop(src), ctx.hop(k))
    return moved


def process(ctx) -> list[torch.Tensor]:
    semitones = float(ctx.params["semitones"])
    bands = semitones * ctx.voices_per_octave / 12.0
    if ctx.weight is None:
        weight = [torch.zeros_like(m[(0,) * len(ctx.batch_shape)]) for m in ctx.magnitudes]
        for k in ctx.wavelets:  # everything, but the lowpass and highpass atoms stay put
            weight[int(ctx.bands.group[k])][int(ctx.bands.row[k])] = 1.0
    else:
        weight = ctx.weight
    selected = [m * w for m, w in zip(ctx.magnitudes, weight)]
    kept = [m * (1 - w) for m, w in zip(ctx.magnitudes, weight)]
    moved = _shift(ctx, selected, bands)
    # Moved and kept content are different sounds: they add in power.
    return [torch.sqrt(a**2 + b**2) for a, b in zip(kept, moved)]


PLUGIN = Plugin(
    name="transpose",
    title="Transpose",
    description="Shift the selection up or down by semitones along the log-frequency axis, keeping its timing "
                "(exact band shifts when semitones x voices per octave / 12 is whole, interpolated otherwise).",
    params=(
        Param("semitones", "float", 12.0, minimum=-48.0, maximum=48.0, step=1.0, unit="semitones",
              description="How far to move the selection: positive is up, 12 is an octave."),
    ),
    process=process,
    blend=False,  # the content moves out of the selection: the plugin applies the weight itself
    local=True,  # content moves across frequency at the same times
)
