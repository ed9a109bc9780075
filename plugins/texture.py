"""Texture: synthesise a sound texture whose scattering statistics match a reference region.

An audio-domain plugin (McDermott & Simoncelli 2011; Bruna & Mallat 2013): the texture of
a sound — rain, crackle, applause, a tremolo — is summarised by its **time-averaged
scattering coefficients**, first order ``S1(l1) = mean_t |x * psi_l1| * phi`` (how much
energy each band holds) and second order ``S2(l1, l2) = mean_t ||x * psi_l1| * psi_l2| *
phi`` (how each band's envelope is modulated, at which rates), computed by kymatio's
``Scattering1D`` (``J``, ``Q`` first-order wavelets per octave, 2 second-order wavelets per
octave, so that modulation rates are resolved to half an octave). A new sound is then
found by gradient descent (L-BFGS with a strong-Wolfe line search, through kymatio's torch
frontend) starting from seeded white noise at the reference's level, minimising the mean
squared difference of the log statistics (floored 60 dB below the loudest first-order
coefficient, so silent paths do not dominate)::

    loss = mean over channels and paths of (log(S(x) + floor) - log(S(ref) + floor))**2

The result fills the selection's time span, cross-faded over 10 ms at each end: a new
stretch of the same texture, with no repeats, however long the span. The host then
analyses it and blends it in with the selection's weight, so only the selected bands and
times change.

The reference is a time range in seconds. Left unset (``0:0``), it is as long as the span
and lies just before it (or just after it, if the span starts too early; or the span
itself, giving a fresh variation of what is there). ``J`` is lowered to fit spans shorter
than ``2**J`` samples.

Cost: each iteration evaluates the scattering transform and its gradient about once or
twice, and kymatio runs a few small FFTs per path (650 paths at J=13, Q=4), so this is the
slowest plugin: measured on the shared 2-core CPU, an evaluation took 0.15-0.3 s for a
second at 4 kHz (J=10, Q=4) and 4 s for 2 s of 44.1 kHz audio (J=13, Q=4; 9.5 s at
Q=8) — minutes for the default 30 iterations. Use a GPU, fewer iterations or a shorter
span. Results are cached per reference, span length and parameters, so undo, redo and
re-rendering the same edit do not repeat the synthesis.

Time-averaged first- and second-order scattering describes each band's envelope
statistics, not how bands line up with one another: a train of broadband clicks comes
back as crackle whose per-band events are not aligned.

Parameters
----------
reference : (float, float), seconds, default (0, 0) = not set
    Time range of the texture to imitate, within the sound.
iterations : int, 0 to 1000, default 30
    L-BFGS iterations (0 gives the starting noise at the reference's level).
seed : int, 0 to 2**31 - 1, default 0
    Seed of the starting noise: each seed gives another stretch of the same texture.
J : int, 4 to 16, default 13
    Averaging scale of the scattering transform, ``2**J`` samples (0.19 s at 44.1 kHz);
    it should exceed the period of the slowest modulation to be imitated.
Q : int, 1 to 16 wavelets per octave, default 4
    First-order frequency resolution (second order: :data:`Q2` per octave). 4 is about
    the ear's critical bands (McDermott & Simoncelli used 30 bands over 20 Hz-10 kHz).

Raises
------
PluginError
    A reference outside the sound, or a span or reference shorter than 64 samples.
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
import torch

from scalgui.plugins import Param, Plugin, PluginError

#: Second-order wavelets per octave: modulation rates resolved to half an octave (one per
#: octave placed a 4 Hz tremolo's synthesis at 3 Hz in trials; two put it at 4).
Q2 = 2
#: Log-statistics floor relative to the loudest first-order coefficient (-60 dB).
FLOOR = 1e-3
#: Cross-fade at each end of the synthesised stretch, in seconds.
FADE_S = 0.01

_CACHE: list = []  # (key, reference, texture), most recently used last
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _scattering(J: int, Q: int, length: int, device: str):
    """kymatio's Scattering1D (torch frontend) and the mask of its first- and
    second-order paths (order 0, the signal's local mean, is not a texture statistic)."""
    # `from kymatio.torch import Scattering1D` fails with scipy >= 1.17; the frontend
    # argument reaches the same torch implementation.
    from kymatio import Scattering1D

    transform = Scattering1D(J=J, shape=length, Q=(Q, Q2), frontend="torch").to(device)
    keep = torch.as_tensor(transform.meta()["order"] > 0, device=device)
    return transform, keep


def scattering_statistics(x: torch.Tensor, J: int, Q: int) -> torch.Tensor:
    """Time-averaged first- and second-order scattering coefficients.

    Parameters
    ----------
    x : torch.Tensor [shape=(channels, frames)]
        float32 signal(s).
    J : int
        Averaging scale: ``2**J`` samples.
    Q : int
        First-order wavelets per octave (second order: :data:`Q2`).

    Returns
    -------
    torch.Tensor [shape=(channels, paths)]
        Non-negative statistics, first-order paths then second-order ones (kymatio's order).
    """
    transform, keep = _scattering(int(J), int(Q), int(x.shape[-1]), str(x.device))
    return transform(x)[..., keep, :].mean(-1)


def log_distance(stats: torch.Tensor, reference: torch.Tensor) -> float:
    """RMS difference of log statistics (the synthesis loss, square-rooted): 0 for equal
    statistics, about 0.01 per 1 % of relative error. Floored per channel at
    :data:`FLOOR` of the reference's largest statistic."""
    floor = (FLOOR * reference.amax(-1, keepdim=True)).clamp_min(1e-30)  # a silent channel: no NaN
    return float(((torch.log(stats + floor) - torch.log(reference + floor)) ** 2).mean().sqrt())


def synthesise(reference: np.ndarray, length: int, *, J: int, Q: int, iterations: int, seed: int,
               device: str | torch.device = "cpu", step=None) -> np.ndarray:
    """A texture of ``length`` samples whose scattering statistics match ``reference``'s.

    Parameters
    ----------
    reference : np.ndarray [shape=(channels, frames)]
        The example texture, float32.
    length : int
        Samples to synthesise (per channel).
    J, Q : int
        Scattering scale (``2**J`` samples) and first-order wavelets per octave.
    iterations : int
        L-BFGS iterations (0: the seeded noise itself, at the reference's level).
    seed : int
        Seed of the starting noise.
    device : str or torch.device
    step : callable, optional
        ``step(evaluation, evaluations)`` before each scattering evaluation of the
        optimisation (a plugin passes its ``ctx.progress``, which may raise to stop it).

    Returns
    -------
    np.ndarray [shape=(channels, length)]
        float32, each channel at its reference's RMS level.
    """
    device = torch.device(device)
    ref = torch.as_tensor(np.ascontiguousarray(reference, dtype=np.float32), device=device)
    rms = ref.pow(2).mean(-1, keepdim=True).sqrt()
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(ref.shape[0], int(length), generator=generator).to(device)
    if iterations > 0 and float(rms.max()) > 0:
        with torch.no_grad():
            target_stats = scattering_statistics(ref, J, Q)
        floor = (FLOOR * target_stats.amax(-1, keepdim=True)).clamp_min(1e-30)  # a silent channel: no NaN
        target = torch.log(target_stats + floor)
        # The unknown is the noise in units of the reference's RMS, so the optimiser's
        # step sizes do not depend on the sound's level.
        z.requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [z], lr=1.0, max_iter=int(iterations), max_eval=int(iterations * 5 // 4) + 1,
            history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-12,
        )

        evaluations = [0, int(iterations * 5 // 4) + 1]

        def closure():
            if step is not None:
                step(*evaluations)
            evaluations[0] += 1
            optimizer.zero_grad(set_to_none=True)
            stats = scattering_statistics(z * rms, J, Q)
            loss = ((torch.log(stats + floor) - target) ** 2).mean()
            loss.backward()
            return loss

        optimizer.step(closure)
    x = (z.detach() * rms)
    # First-order statistics fix the level only approximately; the texture must sit at
    # the reference's level to splice in without a jump.
    x = x * (rms / x.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-12))
    return x.cpu().numpy().astype(np.float32)


def _reference_span(params, span: tuple[float, float], duration: float) -> tuple[float, float]:
    lo, hi = params["reference"]
    if hi > lo:
        if lo >= duration:
            raise PluginError(f"the reference {lo:g}-{hi:g} s lies outside the sound (0 to {duration:.3f} s)")
        return lo, min(hi, duration)
    start, end = span
    length = end - start
    if start - length >= 0:
        return start - length, start
    if end + length <= duration:
        return end, end + length
    return start, end


def _cached(key, reference: np.ndarray, make):
    """``make()``, or what it returned before for the same key and a reference equal to
    this one within 1e-4 of its peak: the host re-synthesises the same sound through
    other frames, with float32 round-off that an exact hash would not forgive."""
    tolerance = 1e-4 * (float(np.abs(reference).max()) or 1.0)
    with _CACHE_LOCK:
        for i, (k, ref, value) in enumerate(_CACHE):
            if k == key and ref.shape == reference.shape and float(np.abs(ref - reference).max()) <= tolerance:
                _CACHE.append(_CACHE.pop(i))
                return value
    value = make()
    with _CACHE_LOCK:
        _CACHE.append((key, reference.copy(), value))
        del _CACHE[:-_CACHE_SIZE]
    return value


def audio(ctx, samples: np.ndarray) -> np.ndarray:
    p = ctx.params
    sr = ctx.sample_rate
    n = samples.shape[-1]
    start_s, end_s = ctx.span
    ref_lo, ref_hi = _reference_span(p, (start_s, end_s), ctx.duration)
    r0, r1 = int(round(ref_lo * sr)), int(round(ref_hi * sr))
    fade = max(int(round(FADE_S * sr)), 1)
    a = max(int(round(start_s * sr)) - fade // 2, 0)
    b = min(int(round(end_s * sr)) + fade // 2, n)
    shortest = min(r1 - r0, b - a)
    if shortest < 64:
        raise PluginError(f"the span and the reference must each hold at least 64 samples "
                          f"({64 / sr * 1000:.1f} ms); got {(r1 - r0) / sr:.4f} s and {(b - a) / sr:.4f} s")
    J = min(int(p["J"]), int(math.floor(math.log2(shortest))))
    reference = samples[..., r0:r1].reshape(-1, r1 - r0)
    key = (b - a, sr, J, p["Q"], p["iterations"], p["seed"], str(ctx.device))
    texture = _cached(key, reference, lambda: synthesise(reference, b - a, J=J, Q=int(p["Q"]),
                                                         iterations=int(p["iterations"]), seed=int(p["seed"]),
                                                         device=ctx.device, step=lambda i, n: ctx.progress(
                                                             i / n, f"texture: evaluation {i + 1} of at most {n}")))
    # Equal-power cross-fades (the texture and what it replaces are uncorrelated),
    # skipped at the ends of the sound.
    m = b - a
    k = min(fade, m // 2)
    angle = np.full(m, np.pi / 2)
    ramp = np.pi / 2 * (np.arange(k) + 0.5) / k
    if a > 0:
        angle[:k] = ramp
    if b < n:
        angle[m - k:] = np.minimum(angle[m - k:], ramp[::-1])
    out = samples.copy()
    flat = out.reshape(-1, n)
    flat[:, a:b] = samples.reshape(-1, n)[:, a:b] * np.cos(angle) + texture * np.sin(angle)
    return out


PLUGIN = Plugin(
    name="texture",
    title="Texture",
    description="Fill or extend the selection with a new sound texture whose time-averaged scattering statistics "
                "(first and second order, kymatio) match a reference region: rain, crackle, applause, tremolo.",
    params=(
        Param("reference", "range", (0.0, 0.0), minimum=0.0, unit="s", title="Reference",
              description="Time range of the texture to imitate; 0:0 takes as long as the selection just before "
                          "it (or after it)."),
        Param("iterations", "int", 30, minimum=0, maximum=1000, step=10, title="Iterations",
              description="L-BFGS iterations of the synthesis (each costs one or two scattering transforms)."),
        Param("seed", "int", 0, minimum=0, maximum=2**31 - 1, title="Seed",
              description="Seed of the starting noise: another seed gives another stretch of the same texture."),
        Param("J", "int", 13, minimum=4, maximum=16, title="Scale J",
              description="Averaging scale of the scattering transform, 2**J samples (13 is 0.19 s at 44.1 kHz); "
                          "it should exceed the slowest modulation period to be imitated."),
        Param("Q", "int", 4, minimum=1, maximum=16, title="Wavelets per octave Q",
              description="First-order wavelets per octave: frequency detail of the statistics, and their cost "
                          "(twice the wavelets, about twice the time)."),
    ),
    audio=audio,
)
