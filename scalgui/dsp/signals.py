"""Seeded, deterministic test signals and the bundled example sound.

Everything here is plain numpy (no torch, no audio I/O) so tests, benchmarks and the
example-file script can use it cheaply. Conventions:

* times and durations are in seconds, frequencies in Hz, levels in dB (dBFS where a
  level is absolute: 0 dBFS is a full-scale amplitude of 1.0);
* the number of frames is ``round(duration_s * sample_rate)``; sample ``n`` is at time
  ``n / sample_rate``;
* results are ``float32`` arrays of shape ``[frames]`` (``[channels, frames]`` where
  stated);
* randomness comes only from an explicit ``seed`` (an int, or a
  :class:`numpy.random.Generator` to draw from), so equal seeds give identical output;
* computation is done in float64 and cast to float32 at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "sine",
    "exponential_chirp",
    "chord",
    "glide",
    "clicks",
    "noise_bursts",
    "white_noise",
    "example_sound",
    "EXAMPLE_DURATION_S",
    "EXAMPLE_PEAK_DBFS",
]

#: Length of :func:`example_sound`, in seconds.
EXAMPLE_DURATION_S = 6.0
#: Sample peak of :func:`example_sound` over both channels, in dBFS.
EXAMPLE_PEAK_DBFS = -1.0

# Partials above this fraction of the sample rate are left out (or faded out), so that
# nothing is generated close to Nyquist.
_MAX_PARTIAL_FRACTION = 0.45


# --------------------------------------------------------------------------- helpers


def _frames(duration_s: float, sample_rate: float) -> int:
    if not np.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number in Hz, got {sample_rate!r}")
    n = int(round(duration_s * sample_rate))
    if n < 1:
        raise ValueError(f"{duration_s} s at {sample_rate} Hz is less than one frame")
    return n


def _times(n: int, sample_rate: float) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / float(sample_rate)


def _check_freq(name: str, freq_hz: float, sample_rate: float) -> None:
    if not np.isfinite(freq_hz) or freq_hz <= 0 or freq_hz >= sample_rate / 2:
        raise ValueError(
            f"{name} must be in (0, Nyquist = {sample_rate / 2:g}) Hz, got {freq_hz!r}"
        )


def _db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _normalise_peak(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale ``x`` so its largest absolute sample is ``peak`` (silence stays silence)."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (peak / m) if m > 0 else x


def _fade_envelope(n: int, sample_rate: float, attack_s: float, release_s: float) -> np.ndarray:
    """Unit envelope with raised-cosine attack and release ramps.

    If the ramps are longer than the signal together, both are shortened in proportion.
    """
    if attack_s < 0 or release_s < 0:
        raise ValueError("attack_s and release_s must be >= 0")
    env = np.ones(n, dtype=np.float64)
    na = int(round(attack_s * sample_rate))
    nr = int(round(release_s * sample_rate))
    if na + nr > n:
        scale = n / (na + nr)
        na, nr = int(na * scale), int(nr * scale)
    if na > 0:
        env[:na] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(na) + 0.5) / na)
    if nr > 0:
        env[n - nr :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(nr) + 0.5) / nr)
    return env


def _bandpass(x: np.ndarray, sample_rate: float, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Zero-phase FFT band-pass with raised-cosine skirts a sixth of an octave wide.

    The band is clipped to what the sample rate can hold.
    """
    nyq = sample_rate / 2
    lo = max(float(lo_hz), 0.0)
    hi = min(float(hi_hz), nyq * 0.98)
    if not lo < hi:
        raise ValueError(f"empty band ({lo_hz}, {hi_hz}) Hz at {sample_rate} Hz")
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate)
    w = 2.0 ** (1.0 / 6.0)  # skirt width as a frequency ratio
    with np.errstate(divide="ignore"):
        logf = np.log2(np.maximum(f, 1e-12))
    # rising skirt from lo/sqrt(w) to lo*sqrt(w), falling skirt around hi likewise
    def ramp(center: float) -> np.ndarray:
        if center <= 0:
            return np.ones_like(f)
        u = (logf - np.log2(center)) / np.log2(w) + 0.5
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))

    gain = ramp(lo) * (1.0 - ramp(hi))
    return np.fft.irfft(spec * gain, n=x.shape[-1])


def _exp_sweep_phase(f0_hz: float, f1_hz: float, duration_s: float, t: np.ndarray) -> np.ndarray:
    """Phase (radians) of a sweep whose frequency goes f0 -> f1 exponentially over duration_s.

    Instantaneous frequency ``f0 * (f1/f0) ** (t / duration_s)``; this is the phase of
    ``scipy.signal.chirp(t, f0, duration_s, f1, method='logarithmic')`` (without its
    -90 degree cosine offset).
    """
    if f0_hz == f1_hz:
        return 2.0 * np.pi * f0_hz * t
    k = np.log(f1_hz / f0_hz) / duration_s  # 1/s
    # (exp(k t) - 1) / k, written with expm1 for accuracy when k is small
    return 2.0 * np.pi * f0_hz * np.expm1(k * t) / k


def _partial_gains(harmonics: int, rolloff_db_per_harmonic: float) -> np.ndarray:
    if harmonics < 1:
        raise ValueError(f"harmonics must be >= 1, got {harmonics!r}")
    k = np.arange(harmonics, dtype=np.float64)
    return 10.0 ** (-rolloff_db_per_harmonic * k / 20.0)


def _schroeder_phases(harmonics: int) -> np.ndarray:
    """Deterministic partial phases that keep the crest factor of a harmonic sum low."""
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    return np.pi * k * (k - 1) / harmonics


def _place(dst: np.ndarray, src: np.ndarray, start: int) -> None:
    """Add ``src`` into ``dst`` (last axis) starting at frame ``start``, clipping at both ends."""
    n = dst.shape[-1]
    a, b = max(start, 0), min(start + src.shape[-1], n)
    if a < b:
        dst[..., a:b] += src[..., a - start : b - start]


# --------------------------------------------------------------------------- generators


def sine(
    freq_hz: float,
    duration_s: float,
    sample_rate: float,
    *,
    amplitude: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """A pure sine tone, ``amplitude * sin(2 pi freq_hz t + phase)``.

    Parameters
    ----------
    freq_hz : float
        Frequency in Hz, in ``(0, sample_rate / 2)``.
    duration_s : float
        Length in seconds.
    sample_rate : float
        Sample rate in Hz.
    amplitude : float, optional
        Peak amplitude (linear, 1.0 = 0 dBFS).
    phase : float, optional
        Starting phase in radians.

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``.
    """
    n = _frames(duration_s, sample_rate)
    _check_freq("freq_hz", freq_hz, sample_rate)
    t = _times(n, sample_rate)
    return (amplitude * np.sin(2.0 * np.pi * freq_hz * t + phase)).astype(np.float32)


def exponential_chirp(
    f0_hz: float,
    f1_hz: float,
    duration_s: float,
    sample_rate: float,
    *,
    amplitude: float = 0.5,
) -> np.ndarray:
    """A phase-continuous exponential (logarithmic) sine sweep.

    The instantaneous frequency is ``f0_hz * (f1_hz / f0_hz) ** (t / duration_s)`` Hz,
    i.e. it moves by a constant number of octaves per second, like
    ``scipy.signal.chirp(t, f0_hz, duration_s, f1_hz, method='logarithmic')`` (this one
    is a sine, starting at phase 0). Up- and down-sweeps both work.

    Parameters
    ----------
    f0_hz, f1_hz : float
        Start and end frequency in Hz, both in ``(0, sample_rate / 2)``.
    duration_s : float
        Length in seconds; the frequency reaches ``f1_hz`` at ``t = duration_s``.
    sample_rate : float
        Sample rate in Hz.
    amplitude : float, optional
        Peak amplitude (linear).

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``.
    """
    n = _frames(duration_s, sample_rate)
    _check_freq("f0_hz", f0_hz, sample_rate)
    _check_freq("f1_hz", f1_hz, sample_rate)
    t = _times(n, sample_rate)
    phi = _exp_sweep_phase(f0_hz, f1_hz, duration_s, t)
    return (amplitude * np.sin(phi)).astype(np.float32)


def chord(
    freqs_hz: Sequence[float],
    duration_s: float,
    sample_rate: float,
    *,
    harmonics: int = 6,
    rolloff_db_per_harmonic: float = 6.0,
    amplitude: float = 0.5,
    attack_s: float = 0.02,
    release_s: float = 0.2,
) -> np.ndarray:
    """Harmonic tones sounding together, with an attack/release envelope.

    Each note has partials at ``k * f`` for ``k = 1 .. harmonics``; partial ``k`` is
    ``rolloff_db_per_harmonic * (k - 1)`` dB below the fundamental. Partials at or above
    0.45 x the sample rate are left out. Partial phases are fixed (Schroeder phases), so
    the result is deterministic without a seed.

    Parameters
    ----------
    freqs_hz : sequence of float
        Fundamental frequencies in Hz, e.g. ``(261.63, 329.63, 392.0)`` for C major.
    duration_s : float
        Length in seconds (the release ends at the end).
    sample_rate : float
        Sample rate in Hz.
    harmonics : int, optional
        Number of partials per note, counting the fundamental.
    rolloff_db_per_harmonic : float, optional
        Level drop per partial, in dB.
    amplitude : float, optional
        Peak amplitude of the result (it is peak-normalised to this).
    attack_s, release_s : float, optional
        Raised-cosine fade-in and fade-out lengths in seconds.

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``, peak ``amplitude``.
    """
    freqs = [float(f) for f in np.atleast_1d(np.asarray(freqs_hz, dtype=np.float64))]
    if not freqs:
        raise ValueError("freqs_hz must hold at least one frequency")
    n = _frames(duration_s, sample_rate)
    for f in freqs:
        _check_freq("each of freqs_hz", f, sample_rate)
    t = _times(n, sample_rate)
    gains = _partial_gains(harmonics, rolloff_db_per_harmonic)
    phases = _schroeder_phases(harmonics)
    out = np.zeros(n, dtype=np.float64)
    for i, f in enumerate(freqs):
        for k in range(1, harmonics + 1):
            fk = k * f
            if fk >= _MAX_PARTIAL_FRACTION * sample_rate:
                break
            # a per-note phase offset keeps notes from lining up at t = 0
            out += gains[k - 1] * np.sin(2.0 * np.pi * fk * t + phases[k - 1] + 0.7 * i * k)
    out *= _fade_envelope(n, sample_rate, attack_s, release_s)
    return _normalise_peak(out, amplitude).astype(np.float32)


def glide(
    f0_hz: float,
    f1_hz: float,
    duration_s: float,
    sample_rate: float,
    *,
    harmonics: int = 4,
    rolloff_db_per_harmonic: float = 6.0,
    amplitude: float = 0.5,
    attack_s: float = 0.02,
    release_s: float = 0.2,
    exponential: bool = True,
) -> np.ndarray:
    """A harmonic tone whose pitch glides from ``f0_hz`` to ``f1_hz``.

    The fundamental sweeps exponentially (constant octaves per second; set
    ``exponential=False`` for a linear sweep in Hz) and partial ``k`` follows at exactly
    ``k`` times the fundamental's frequency and phase. Partials fade out smoothly where
    they would pass 0.45 x the sample rate.

    Parameters
    ----------
    f0_hz, f1_hz : float
        Start and end fundamental frequency in Hz, both in ``(0, sample_rate / 2)``.
    duration_s : float
        Length in seconds; the fundamental reaches ``f1_hz`` at ``t = duration_s``.
    sample_rate : float
        Sample rate in Hz.
    harmonics : int, optional
        Number of partials, counting the fundamental.
    rolloff_db_per_harmonic : float, optional
        Level drop per partial, in dB.
    amplitude : float, optional
        Peak amplitude of the result (it is peak-normalised to this).
    attack_s, release_s : float, optional
        Raised-cosine fade-in and fade-out lengths in seconds.
    exponential : bool, optional
        Exponential (default) or linear frequency law.

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``, peak ``amplitude``.
    """
    n = _frames(duration_s, sample_rate)
    _check_freq("f0_hz", f0_hz, sample_rate)
    _check_freq("f1_hz", f1_hz, sample_rate)
    t = _times(n, sample_rate)
    if exponential:
        phi = _exp_sweep_phase(f0_hz, f1_hz, duration_s, t)
        inst_f = f0_hz * (f1_hz / f0_hz) ** (t / duration_s)
    else:
        rate = (f1_hz - f0_hz) / duration_s
        phi = 2.0 * np.pi * (f0_hz * t + 0.5 * rate * t * t)
        inst_f = f0_hz + rate * t
    gains = _partial_gains(harmonics, rolloff_db_per_harmonic)
    limit = _MAX_PARTIAL_FRACTION * sample_rate
    taper = 0.05 * sample_rate  # fade partials out over the last 5 % below the limit
    out = np.zeros(n, dtype=np.float64)
    for k in range(1, harmonics + 1):
        g = np.clip((limit - k * inst_f) / taper, 0.0, 1.0)
        if not np.any(g):
            continue
        out += gains[k - 1] * g * np.sin(k * phi)
    out *= _fade_envelope(n, sample_rate, attack_s, release_s)
    return _normalise_peak(out, amplitude).astype(np.float32)


def clicks(
    times_s: Sequence[float],
    duration_s: float,
    sample_rate: float,
    *,
    amplitude: float = 0.8,
    click_s: float = 0.002,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Sharp, Dirac-like transients: very short exponentially decaying noise bursts.

    Each click starts with a full-height impulse at its onset followed by a noise tail
    that decays by about 43 dB over ``click_s``. In a scalogram each one is a vertical
    line spanning every band.

    Parameters
    ----------
    times_s : sequence of float
        Onset times in seconds, each in ``[0, duration_s)``.
    duration_s : float
        Length of the result in seconds. Tails running past the end are cut.
    sample_rate : float
        Sample rate in Hz.
    amplitude : float, optional
        Peak amplitude of each click (and of the result; overlapping clicks are scaled
        down together so the result never exceeds it).
    click_s : float, optional
        Length of each burst in seconds.
    seed : int or numpy.random.Generator, optional
        Seed for the noise tails.

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``.
    """
    n = _frames(duration_s, sample_rate)
    rng = np.random.default_rng(seed)
    length = max(int(round(click_s * sample_rate)), 1)
    decay = np.exp(-5.0 * np.arange(length) / length)
    out = np.zeros(n, dtype=np.float64)
    for ts in np.atleast_1d(np.asarray(times_s, dtype=np.float64)):
        if not 0.0 <= ts < duration_s:
            raise ValueError(f"click time {ts} s is outside [0, {duration_s}) s")
        burst = rng.standard_normal(length) * decay
        burst[0] = 0.0
        m = np.max(np.abs(burst))
        if m > 0:
            burst *= 0.7 / m  # tail below the impulse itself
        burst[0] = 1.0
        _place(out, amplitude * burst, int(round(ts * sample_rate)))
    m = np.max(np.abs(out))
    if m > amplitude:
        out *= amplitude / m
    return out.astype(np.float32)


def noise_bursts(
    duration_s: float,
    sample_rate: float,
    *,
    seed: int | np.random.Generator = 0,
    burst_s: float = 0.08,
    rate_hz: float = 6.0,
    band_hz: tuple[float, float] = (300.0, 4000.0),
    f0_hz: float = 120.0,
    voiced_fraction: float = 0.6,
    amplitude: float = 0.5,
) -> np.ndarray:
    """Speech-like test material: syllables of buzz and of band-limited noise.

    Syllables start at about ``rate_hz`` per second (with random jitter and an occasional
    pause). Each is either *voiced* - a harmonic buzz near ``f0_hz`` with a falling
    pitch contour and two vowel-like formant peaks, about 1.5-3 x ``burst_s`` long - or
    *unvoiced* - band-limited noise in ``band_hz``, about ``burst_s`` long (a fricative).
    The first syllable is always voiced and the second unvoiced, so both kinds occur
    whenever the signal is long enough for two.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    sample_rate : float
        Sample rate in Hz.
    seed : int or numpy.random.Generator, optional
        Seed for timing, pitch, formants and noise.
    burst_s : float, optional
        Typical unvoiced burst length, in seconds.
    rate_hz : float, optional
        Mean syllable rate, in Hz (syllables per second).
    band_hz : (float, float), optional
        Band of the unvoiced noise, in Hz (clipped to below Nyquist).
    f0_hz : float, optional
        Typical pitch of the voiced buzz, in Hz.
    voiced_fraction : float, optional
        Probability that a syllable (after the first two) is voiced.
    amplitude : float, optional
        Peak amplitude of the result (it is peak-normalised to this).

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``, peak ``amplitude``.
    """
    n = _frames(duration_s, sample_rate)
    if burst_s <= 0 or rate_hz <= 0:
        raise ValueError("burst_s and rate_hz must be positive")
    _check_freq("f0_hz", f0_hz, sample_rate)
    rng = np.random.default_rng(seed)
    noise = _bandpass(rng.standard_normal(n), sample_rate, band_hz[0], band_hz[1])
    noise /= max(float(np.std(noise)), 1e-12)
    vowels = ((730.0, 1090.0), (270.0, 2290.0), (530.0, 1840.0), (570.0, 840.0), (440.0, 1020.0))
    top_hz = min(5000.0, _MAX_PARTIAL_FRACTION * sample_rate)
    out = np.zeros(n, dtype=np.float64)

    t0 = 0.03 + rng.uniform(0.0, 0.5 / rate_hz)
    index = 0
    while t0 < duration_s:
        if index == 0:
            voiced = True
        elif index == 1:
            voiced = False
        else:
            voiced = bool(rng.random() < voiced_fraction)
        start = int(round(t0 * sample_rate))
        if voiced:
            seg_s = burst_s * rng.uniform(1.5, 3.0)
            m = max(int(round(seg_s * sample_rate)), 1)
            tt = _times(m, sample_rate)
            f_start = f0_hz * (1.0 + 0.12 * rng.uniform(-1.0, 1.0))
            f_end = f_start * rng.uniform(0.82, 0.97)  # declination
            f_inst = f_start + (f_end - f_start) * tt / seg_s
            phi = 2.0 * np.pi * np.cumsum(f_inst) / sample_rate
            f1, f2 = vowels[int(rng.integers(len(vowels)))]
            f_mean = 0.5 * (f_start + f_end)
            seg = np.zeros(m, dtype=np.float64)
            for k in range(1, int(top_hz // max(f_start, f_end)) + 1):
                fk = k * f_mean
                formant = (
                    0.05
                    + np.exp(-(((fk - f1) / 120.0) ** 2))
                    + 0.6 * np.exp(-(((fk - f2) / 180.0) ** 2))
                )
                seg += formant / k * np.sin(k * phi)
            seg = _normalise_peak(seg, rng.uniform(0.6, 1.0))
            seg *= _fade_envelope(m, sample_rate, 0.3 * seg_s, 0.4 * seg_s)
        else:
            seg_s = burst_s * rng.uniform(0.7, 1.3)
            m = max(min(int(round(seg_s * sample_rate)), n - start), 1)
            seg = noise[start : start + m].copy()
            seg *= 0.2 * rng.uniform(0.6, 1.0) * _fade_envelope(m, sample_rate, 0.4 * seg_s, 0.5 * seg_s)
        _place(out, seg, start)
        gap = rng.uniform(0.6, 1.4) / rate_hz
        if rng.random() < 0.15:
            gap += 2.0 / rate_hz  # a pause between "words"
        t0 += max(gap, 0.8 * seg_s)
        index += 1
    return _normalise_peak(out, amplitude).astype(np.float32)


def white_noise(
    duration_s: float,
    sample_rate: float,
    *,
    seed: int | np.random.Generator = 0,
    level_db: float = -30.0,
) -> np.ndarray:
    """Gaussian white noise at a given RMS level.

    Not peak-normalised: ``level_db`` sets the RMS (exactly, for the generated
    samples), and peaks are typically 4-5 x the RMS.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    sample_rate : float
        Sample rate in Hz.
    seed : int or numpy.random.Generator, optional
        Seed for the noise.
    level_db : float, optional
        RMS level in dBFS.

    Returns
    -------
    numpy.ndarray
        float32, shape ``[frames]``.
    """
    n = _frames(duration_s, sample_rate)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    rms = float(np.sqrt(np.mean(x * x)))
    if rms > 0:
        x *= _db_to_amp(level_db) / rms
    return x.astype(np.float32)


# --------------------------------------------------------------------------- example


def example_sound(sample_rate: float = 44100, *, seed: int = 0) -> np.ndarray:
    """About six seconds of stereo material that shows what a scalogram editor can do.

    Contents (times in seconds):

    * **chord** 0.0-2.5: C major (C4 261.6, E4 329.6, G4 392.0 Hz), six partials each,
      leaning left (right channel 3 dB down and 0.3 ms late);
    * **bass note** 0.3-2.6: C2 (65.4 Hz), three partials, centred;
    * **glide** 2.0-4.5: a four-partial tone gliding up an octave, A3 220 Hz -> A4
      440 Hz, leaning right (left channel 4 dB down);
    * **clicks** at 0.8, 1.6, 3.2 and 4.0 (both channels) and 5.5 (right only): sharp
      ~2 ms transients, spanning every band;
    * **noise burst** 4.6-5.4: band-limited noise 2-10 kHz (a "shh"), uncorrelated
      between channels, well above the hiss;
    * **hiss** throughout: white noise at about -35 dBFS RMS, independent in each channel;
    * **low tone** 4.3-6.0: a second bass note, G1 (49.0 Hz), centred, under the noise
      burst.

    Left and right differ (panning, a small delay, decorrelated noise), so mid/side views
    show different things. The whole is scaled so its sample peak over both channels is
    exactly ``EXAMPLE_PEAK_DBFS`` (-1 dBFS); nothing clips.

    Parameters
    ----------
    sample_rate : float, optional
        Sample rate in Hz (the bundled file uses 44100).
    seed : int, optional
        Seed for every random part (clicks, noise burst, hiss).

    Returns
    -------
    numpy.ndarray
        float32, shape ``[2, frames]`` with ``frames = round(6.0 * sample_rate)``.
    """
    sr = float(sample_rate)
    n = _frames(EXAMPLE_DURATION_S, sr)
    rng = np.random.default_rng(seed)
    # Independent child seeds, drawn up front in a fixed order so each part's randomness
    # doesn't depend on how much another part consumed.
    click_seed, burst_seed_l, burst_seed_r, hiss_seed_l, hiss_seed_r = (
        int(s) for s in rng.integers(0, 2**31 - 1, size=5)
    )
    mix = np.zeros((2, n), dtype=np.float64)

    def at(start_s: float) -> int:
        return int(round(start_s * sr))

    def add(sig: np.ndarray, start_s: float, gain_l: float, gain_r: float, delay_r_s: float = 0.0) -> None:
        sig = sig.astype(np.float64)
        _place(mix[0], gain_l * sig, at(start_s))
        _place(mix[1], gain_r * sig, at(start_s + delay_r_s))

    # C major chord, leaning left, right channel slightly late.
    c_major = chord((261.63, 329.63, 392.00), 2.5, sr, harmonics=6, amplitude=0.45, release_s=0.4)
    add(c_major, 0.0, 1.0, _db_to_amp(-3.0), delay_r_s=0.0003)

    # Bass note C2 under the chord, centred.
    bass = chord((65.41,), 2.3, sr, harmonics=3, rolloff_db_per_harmonic=8.0, amplitude=0.35,
                 attack_s=0.03, release_s=0.3)
    add(bass, 0.3, 1.0, 1.0)

    # Glide up an octave, leaning right.
    rising = glide(220.0, 440.0, 2.5, sr, harmonics=4, amplitude=0.4, attack_s=0.05, release_s=0.3)
    add(rising, 2.0, _db_to_amp(-4.0), 1.0)

    # A low G1 under the end of the glide and under the noise burst, centred.
    low = chord((49.0,), 1.7, sr, harmonics=3, rolloff_db_per_harmonic=8.0, amplitude=0.3,
                attack_s=0.05, release_s=0.4)
    add(low, 4.3, 1.0, 1.0)

    # Sharp transients: four in both channels, one in the right channel only.
    both = clicks((0.8, 1.6, 3.2, 4.0), EXAMPLE_DURATION_S, sr, amplitude=0.6, seed=click_seed)
    right_only = clicks((5.5,), EXAMPLE_DURATION_S, sr, amplitude=0.5, seed=click_seed + 1)
    mix[0] += both
    mix[1] += both + right_only

    # A loud band-limited noise burst ("shh"), decorrelated between channels.
    burst_n = _frames(0.8, sr)
    burst_env = _fade_envelope(burst_n, sr, 0.08, 0.2)
    for ch, s in enumerate((burst_seed_l, burst_seed_r)):
        b = _bandpass(np.random.default_rng(s).standard_normal(burst_n), sr, 2000.0, 10000.0)
        b *= _db_to_amp(-14.0) / max(float(np.sqrt(np.mean(b * b))), 1e-12)
        _place(mix[ch], b * burst_env, at(4.6))

    # Scale the music to leave room for the hiss, add the hiss, then set the exact peak.
    target = _db_to_amp(EXAMPLE_PEAK_DBFS)
    mix = _normalise_peak(mix, 0.97 * target)
    mix[0] += white_noise(EXAMPLE_DURATION_S, sr, seed=hiss_seed_l, level_db=-35.0)
    mix[1] += white_noise(EXAMPLE_DURATION_S, sr, seed=hiss_seed_r, level_db=-35.0)
    mix = _normalise_peak(mix, target)
    return mix.astype(np.float32)
