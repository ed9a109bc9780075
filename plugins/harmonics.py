"""Harmonic enhance: strengthen or weaken a harmonic series from its fundamental.

Harmonic ``h`` of ``fundamental_hz`` (``h = 1 .. count``) is the region ``width_cents``
wide around ``h * fundamental_hz``. Every wavelet band changes by ``gain_db`` times its
own response to that region (the largest response of the band's atom to a frequency in
it): a band centred in the region changes by the full gain, its neighbours by the share a
partial there gives them, and bands more than about two atom widths away (150 cents at
12 voices per octave) not at all. Weighting by the atom's response is what makes the
change survive phase retrieval: a partial shows in its neighbours' bands too, and
changing only the band at its centre asks for magnitudes no sound has. The host limits
the change to the selection.
"""
from __future__ import annotations

import math

import numpy as np

from scalgui.plugins import Param, Plugin


def band_weights(ctx, fundamental_hz: float, count: int, width_cents: float) -> np.ndarray:
    """Weight in [0, 1] of each wavelet band (``ctx.wavelets`` order): its largest
    response to a frequency within ``width_cents / 2`` of one of the harmonics."""
    centres = ctx.centre_hz[ctx.wavelets]
    half = 2.0 ** (width_cents / 2400.0)
    weights = np.zeros(len(centres))
    for h in range(1, int(count) + 1):
        lo, hi = h * fundamental_hz / half, h * fundamental_hz * half
        if lo >= ctx.sample_rate / 2:
            break
        # The atoms peak at their centre: the largest response over [lo, hi] is 1 when the
        # centre lies inside, else the response at the nearer edge.
        nearest = np.clip(centres, lo, hi)
        response = np.array([float(ctx.frame.atom_response(int(k), np.array([f]))[0])
                             for k, f in zip(ctx.wavelets, nearest)])
        weights = np.maximum(weights, response)
    return weights


def process(ctx):
    p = ctx.params
    weights = band_weights(ctx, p["fundamental_hz"], p["count"], p["width_cents"])
    for k, w in zip(ctx.wavelets, weights):
        if w > 1e-6:
            ctx.band(k).mul_(math.pow(10.0, p["gain_db"] * w / 20.0))
    return ctx.magnitudes


PLUGIN = Plugin(
    name="harmonics",
    title="Harmonic Enhance",
    description="Strengthen or weaken a harmonic series: the partials within a width in cents of the fundamental "
                "and its multiples change by a gain in dB; the bands in between are left alone.",
    params=(
        Param("fundamental_hz", "float", 220.0, minimum=10.0, maximum=10000.0, step=1.0, unit="Hz",
              title="Fundamental", description="Frequency of the first harmonic."),
        Param("gain_db", "float", 6.0, minimum=-60.0, maximum=24.0, step=1.0, unit="dB", title="Gain",
              description="Change of every harmonic: positive strengthens, negative weakens."),
        Param("width_cents", "float", 50.0, minimum=1.0, maximum=400.0, step=5.0, unit="cents", title="Width",
              description="Width of the region around each harmonic whose partials change."),
        Param("count", "int", 10, minimum=1, maximum=100, title="Harmonics",
              description="How many harmonics, counting the fundamental."),
    ),
    process=process,
)
