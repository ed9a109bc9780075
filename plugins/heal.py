"""Heal: fill a selection from its surroundings (spectral repair).

Everything the selection touches (weight above 0) is treated as damaged and rebuilt from
the magnitudes around it, in the log domain (dB), where levels interpolate the way the
ear hears them:

**Across time** (per band and channel): the level before the gap is the power mean of up
to ``context_s`` seconds of undamaged coefficients just before it, and the level after it
likewise, each weighted by distance (a linear taper: the coefficient next to the gap
counts most). The fill runs in a straight line in dB from the level before to the level
after. A power mean, not a mean of dB, so that noise keeps its energy (the mean of dB of
Rayleigh-distributed noise lies 2.5 dB below its power). With ``texture`` above 0 the
fill also carries the context's own fluctuation (its deviation in dB from its level),
mirrored into the gap from both sides, so healed noise stays rough like the noise
around it instead of turning into a smooth band.

**Across frequency** (per coefficient time): the level below the gap is the power mean of
the undamaged bands within ``context_semitones`` below it (nearest weighted most) at the
same moment, the level above likewise, and the fill interpolates in dB along log
frequency.

**Both**: each coefficient takes the two estimates weighted by how far they reach: the
width of the gap in units of the band's atom, in time (``duration * 2 pi sigma``) and in
frequency (``bandwidth / sigma``), so a click (short, broadband) heals across time and a
whistle (long, narrow) across frequency. Where one direction has no context (a selection
spanning the whole sound, or every band), the other is used, whatever the mode.

The host blends the fill in with the selection's weight: feathered edges cross-fade, and
nothing outside the selection changes. Context is taken only from undamaged coefficients
inside the sound (never the zero padding beyond its ends); select the whole visible
extent of the damage, since a band's atoms smear a click over about ``1 / (2 pi sigma)``
seconds either side.

Parameters
----------
mode : {"both", "time", "frequency"}, default "both"
    Direction(s) to interpolate in.
context_s : float, 0.005 to 5 s, default 0.1 s
    Longest stretch of sound before and after the gap each band's level is learnt from.
context_semitones : float, 0.1 to 24 semitones, default 2
    How far below and above the gap the bands the level is learnt from reach.
texture : float, 0 to 1, default 1
    Share of the time context's fluctuation (in dB) carried into the fill.

Raises
------
PluginError
    Without a selection, or when the selection leaves no context in either direction.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from scalgui.plugins import Param, Plugin, PluginError

MODES = ("both", "time", "frequency")

# Power floor relative to the loudest coefficient of the sound: keeps log() finite in
# silent bands (-200 dB, far below anything audible or drawn).
_FLOOR_DB = -200.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop indices ``[a, b)`` of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _taper(n: int, dtype, device) -> torch.Tensor:
    """Distance weights for ``n`` context values, nearest first: n, n-1, ..., 1 (over n)."""
    return torch.arange(n, 0, -1, dtype=dtype, device=device) / n


def _ping_pong(values: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` values read back and forth along the last axis of ``values`` (nearest first):
    0, 1, ..., m-1, m-2, ..., 0, 1, ... — a mirror image that never repeats an edge twice."""
    m = values.shape[-1]
    if m == 1:
        index = np.zeros(n, dtype=np.int64)
    else:
        period = 2 * (m - 1)
        phase = np.arange(n) % period
        index = np.where(phase < m, phase, period - phase)
    return values[..., torch.as_tensor(index, device=values.device)]


def _time_fill(log_power: torch.Tensor, hole: np.ndarray, valid: np.ndarray, context: int,
               texture: float, rate_hz: float):
    """Time-direction estimate of one band.

    Parameters
    ----------
    log_power : torch.Tensor [shape=(*batch, frames)]
        Natural log of the band's power.
    hole : np.ndarray of bool [shape=(frames,)]
        Damaged coefficients.
    valid : np.ndarray of bool [shape=(frames,)]
        Coefficients that may serve as context (undamaged and inside the sound).
    context : int
        Longest context on each side, in coefficients.
    texture : float
        Share of the context's fluctuation carried into the fill (0..1).
    rate_hz : float
        Coefficient rate of the band, to express gap lengths in seconds.

    Returns
    -------
    estimate : torch.Tensor [shape=(*batch, frames)]
        Log power; NaN where there is no estimate (not in a gap, or no context).
    gap_s : np.ndarray [shape=(frames,)]
        Length in seconds of the gap each coefficient lies in (inf: one-sided, i.e.
        extrapolated; NaN: no estimate).
    """
    estimate = torch.full_like(log_power, math.nan)
    gap_s = np.full(hole.shape, math.nan)
    for a, b in _runs(hole):
        sides = []
        for direction in (-1, 1):
            # Contiguous undamaged coefficients next to the gap, nearest first.
            if direction < 0:
                index = np.arange(a - 1, max(a - context, 0) - 1, -1)
            else:
                index = np.arange(b, min(b + context, len(hole)))
            ok = valid[index]
            if not ok.all():
                index = index[: int(np.argmin(ok))]
            if len(index) == 0:
                sides.append(None)
                continue
            values = log_power[..., torch.as_tensor(index, device=log_power.device)]
            w = _taper(len(index), log_power.dtype, log_power.device)
            # Power mean, in the log domain (logsumexp keeps quiet bands exact).
            level = torch.logsumexp(values + torch.log(w), dim=-1) - torch.log(w.sum())
            sides.append((level, values - level.unsqueeze(-1)))
        if sides[0] is None and sides[1] is None:
            continue
        n = b - a
        position = (torch.arange(n, dtype=log_power.dtype, device=log_power.device) + 1.0) / (n + 1.0)
        if sides[0] is not None and sides[1] is not None:
            trend = sides[0][0].unsqueeze(-1) * (1 - position) + sides[1][0].unsqueeze(-1) * position
            # The first half mirrors the context before the gap, the second half the
            # context after it (averaging the two would halve the fluctuation's variance).
            half = (n + 1) // 2
            residual = torch.cat(
                [_ping_pong(sides[0][1], half), _ping_pong(sides[1][1], n - half).flip(-1)], dim=-1
            )
            gap_s[a:b] = n / rate_hz
        else:
            level, deviation = sides[0] if sides[0] is not None else sides[1]
            trend = level.unsqueeze(-1).expand(*level.shape, n)
            residual = _ping_pong(deviation, n)
            if sides[0] is None:
                residual = residual.flip(-1)
            gap_s[a:b] = math.inf
        estimate[..., a:b] = trend + texture * residual
    return estimate, gap_s


def _sample(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``values`` [..., n] at fractional ``positions`` [m]."""
    n = values.shape[-1]
    i0 = positions.floor().long().clamp(0, n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = (positions - i0.to(positions.dtype)).clamp(0, 1).to(values.dtype)
    return values[..., i0] * (1 - frac) + values[..., i1] * frac


def _frequency_fill(ctx, k_pos: int, columns: np.ndarray, log_powers: list[torch.Tensor],
                    weights: list[np.ndarray], inside: list[np.ndarray], starts: list[int], context_bands: int):
    """Frequency-direction estimate of wavelet band ``wavelets[k_pos]`` at ``columns``.

    ``log_powers``, ``weights`` and ``inside`` hold every wavelet band from coefficient
    ``starts[j]`` on (a window around the selection); ``columns`` count from ``starts[k_pos]``.

    Returns ``(estimate [*batch, len(columns)] log power, NaN where there is none;
    gap_sigmas [len(columns)]: the gap's width in units of the band's sigma, inf when
    one-sided)``.
    """
    wavelets = [int(k) for k in ctx.wavelets]
    k = wavelets[k_pos]
    hop_k = ctx.hop(k)
    device, dtype = log_powers[0].device, log_powers[0].dtype
    n_bands = len(wavelets)
    # Every band's log power, damage and validity at this band's column times.
    rows, damaged = [], []
    for j, kj in enumerate(wavelets):
        # Coefficient m of step h sits at sample m * h of the padded signal, for every band.
        position = (columns + starts[k_pos]) * (hop_k / ctx.hop(kj)) - starts[j]
        rows.append(_sample(log_powers[j], torch.as_tensor(position, dtype=dtype, device=device)))
        nearest = np.clip(np.rint(position).astype(np.int64), 0, len(weights[j]) - 1)
        damaged.append((weights[j][nearest] > 0) | ~inside[j][nearest])
    table = torch.stack(rows, dim=-2)  # [*batch, bands, columns]
    bad = np.stack(damaged)  # [bands, columns]
    log_f = np.log2(ctx.centre_hz[wavelets])
    sigma = float(ctx.bands.sigma_hz[k])
    columns_n = len(columns)
    sides = []
    for direction in (-1, 1):
        # Nearest undamaged band beyond the gap on this side, per column.
        order = np.arange(k_pos - 1, -1, -1) if direction < 0 else np.arange(k_pos + 1, n_bands)
        edge = np.full(columns_n, -1)
        if len(order):
            good = ~bad[order]  # [len(order), columns]
            found = good.any(axis=0)
            edge = np.where(found, order[np.argmax(good, axis=0)], -1)
        level = torch.full(table.shape[:-2] + (columns_n,), math.nan, dtype=dtype, device=device)
        cols = np.flatnonzero(edge >= 0)
        if len(cols):
            # Power mean of up to `context_bands` undamaged bands from the edge outwards,
            # nearest weighted most: log(sum w e^L / sum w), with a shared offset so quiet
            # bands do not underflow.
            values, shares = [], []
            for step in range(context_bands):
                j = edge[cols] + direction * step
                usable = (j >= 0) & (j < n_bands)
                j = np.clip(j, 0, n_bands - 1)
                usable &= ~bad[j, cols]
                if usable.any():
                    values.append(table[..., torch.as_tensor(j, device=device), torch.as_tensor(cols, device=device)])
                    shares.append(usable * (context_bands - step) / context_bands)
            stacked = torch.stack(values).to(torch.float64)  # [steps, *batch, cols]
            w = torch.as_tensor(np.stack(shares), dtype=torch.float64, device=device)
            w = w.reshape(w.shape[:1] + (1,) * (stacked.dim() - 2) + w.shape[1:])
            top = stacked.amax(0)
            mean = (w * torch.exp(stacked - top)).sum(0) / w.sum(0)
            level[..., torch.as_tensor(cols, device=device)] = (torch.log(mean) + top).to(dtype)
        sides.append((edge, level))
    (lo_edge, lo_level), (hi_edge, hi_level) = sides
    both = (lo_edge >= 0) & (hi_edge >= 0)
    estimate = torch.where(torch.isnan(lo_level), hi_level, lo_level)
    gap = np.full(columns_n, math.inf)
    gap[(lo_edge < 0) & (hi_edge < 0)] = math.nan
    if both.any():
        cols = np.flatnonzero(both)
        share = (log_f[k_pos] - log_f[lo_edge[cols]]) / (log_f[hi_edge[cols]] - log_f[lo_edge[cols]])
        share_t = torch.as_tensor(share, dtype=dtype, device=device)
        c = torch.as_tensor(cols, device=device)
        estimate[..., c] = lo_level[..., c] * (1 - share_t) + hi_level[..., c] * share_t
        freqs = ctx.centre_hz[wavelets]
        gap[cols] = (freqs[hi_edge[cols]] - freqs[lo_edge[cols]]) / sigma
    return estimate, gap


def _across_time(log_power, hole, valid, columns, c, context, texture, rate_hz, sigma_hz):
    """:func:`_time_fill` at ``columns``, with the gaps in units of the atom's time spread
    ``1 / (2 pi sigma)`` seconds (comparable with the frequency gaps in sigmas)."""
    estimate, gap_s = _time_fill(log_power, hole, valid, context, texture, rate_hz)
    return estimate[..., c], gap_s[columns] * 2 * math.pi * sigma_hz


def process(ctx):
    if ctx.weight is None:
        raise PluginError("heal needs a selection: it rebuilds the selected region from what surrounds it")
    p = ctx.params
    mode = p["mode"]
    texture = float(p["texture"])
    wavelets = [int(k) for k in ctx.wavelets]
    peak = max(float(m.max()) for m in ctx.magnitudes)
    floor = (peak**2) * 10.0 ** (_FLOOR_DB / 10.0) + 1e-300
    # Work on a window around the selection: the gap plus the time context (and a
    # coefficient to spare), so the cost follows the selection, not the sound's length.
    span_lo, span_hi = ctx.span
    margin = p["context_s"] + 0.01
    log_powers, weights, inside, starts = [], [], [], []
    for k in wavelets:
        i0, i1 = ctx.index_at(k, span_lo - margin) - 1, ctx.index_at(k, span_hi + margin) + 2
        i0 = max(int(i0), 0)
        band = ctx.band(k)[..., i0:i1].to(torch.float64)
        log_powers.append(torch.log(band.square().clamp_min(floor)))
        weights.append(ctx.band_weight(k)[i0:i1].detach().cpu().numpy())
        times = ctx.times(k)[i0:i1]
        inside.append((times >= 0.0) & (times <= ctx.duration))
        starts.append(i0)
    context_bands = max(1, int(round(p["context_semitones"] * ctx.voices_per_octave / 12.0)))
    healed = False
    for i, k in enumerate(wavelets):
        hole = weights[i] > 0
        if not hole.any():
            continue
        columns = np.flatnonzero(hole)
        c = torch.as_tensor(columns, device=log_powers[i].device)
        context = max(1, int(round(p["context_s"] * ctx.rate(k))))
        time_args = (log_powers[i], hole, ~hole & inside[i], columns, c, context, texture, ctx.rate(k),
                     float(ctx.bands.sigma_hz[k]))
        frequency_args = (ctx, i, columns, log_powers, weights, inside, starts, context_bands)
        t_est = _across_time(*time_args) if mode != "frequency" else None
        f_est = _frequency_fill(*frequency_args) if mode != "time" else None
        # A direction without context anywhere in the gap hands over to the other one.
        if t_est is None and np.isnan(f_est[1]).any():
            values, gap = _across_time(*time_args)
            t_est = (values, np.where(np.isnan(f_est[1]), gap, math.nan))
        if f_est is None and np.isnan(t_est[1]).any():
            values, gap = _frequency_fill(*frequency_args)
            f_est = (values, np.where(np.isnan(t_est[1]), gap, math.nan))
        # Inverse-gap weights (one-sided estimates count as an infinite gap: used only
        # when nothing else is there).
        parts = []
        for est in (t_est, f_est):
            if est is None:
                continue
            values, gap = est
            have = ~np.isnan(gap)
            w = np.where(have, 1.0 / np.maximum(np.where(np.isinf(gap), 1e12, gap), 1e-9), 0.0)
            parts.append((torch.nan_to_num(values, nan=0.0), w))
        total = sum(w for _, w in parts)
        if not np.any(total > 0):
            continue
        fill = sum(v * torch.as_tensor(w / np.maximum(total, 1e-300), dtype=v.dtype, device=v.device)
                   for v, w in parts)
        band = ctx.band(k)
        where = c + starts[i]
        have = torch.as_tensor(total > 0, device=band.device)
        band[..., where] = torch.where(have, torch.exp(0.5 * fill).to(band.dtype), band[..., where])
        healed = True
    if not healed:
        raise PluginError("nothing to heal from: the selection leaves no undamaged sound around it in time or "
                          "in frequency")
    return ctx.magnitudes


PLUGIN = Plugin(
    name="heal",
    title="Heal",
    description="Fill the selection from its surroundings (spectral repair): interpolate each band's level in dB "
                "across time from the context before and after, and/or across frequency from the bands below "
                "and above; nothing outside the selection changes.",
    params=(
        Param("mode", "choice", "both", choices=MODES, title="Direction",
              description="Interpolate across time (clicks, short dropouts), across frequency (whistles, hum "
                          "lines), or both, weighted towards whichever gap is narrower."),
        Param("context_s", "float", 0.1, minimum=0.005, maximum=5.0, step=0.05, unit="s", title="Time context",
              description="How much of the sound before and after the selection each band's level is learnt from."),
        Param("context_semitones", "float", 2.0, minimum=0.1, maximum=24.0, step=0.5, unit="semitones",
              title="Frequency context",
              description="How many semitones of bands below and above the selection the level is learnt from."),
        Param("texture", "float", 1.0, minimum=0.0, maximum=1.0, step=0.1, title="Texture",
              description="Share of the context's own fluctuation carried into a time fill: 1 keeps healed noise "
                          "as rough as the noise around it, 0 gives a smooth fill."),
    ),
    process=process,
)
