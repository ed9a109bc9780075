"""Tests for the seeded test-signal generators and the bundled example sound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalgui import resources
from scalgui.dsp import signals

SR = 44100


def _db(x: float) -> float:
    return 20.0 * np.log10(x)


def _peak_freq(x: np.ndarray, center: int, sample_rate: float, win: int, nfft: int = 1 << 17) -> float:
    """Frequency (Hz) of the largest STFT peak of ``x`` in a Hann window centred at ``center``."""
    seg = x[center - win // 2 : center + win // 2].astype(np.float64)
    mag = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n=nfft))
    i = int(np.argmax(mag[1:-1])) + 1
    # parabolic interpolation on log magnitude
    a, b, c = np.log(mag[i - 1 : i + 2] + 1e-300)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return (i + delta) * sample_rate / nfft


def _spectrum_db(x: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed magnitude spectrum in dB relative to its maximum, and the bin frequencies."""
    mag = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size)))
    f = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    return 20 * np.log10(mag / mag.max() + 1e-300), f


# --------------------------------------------------------------------------- basics


def test_shapes_dtypes_and_lengths():
    outs = {
        "sine": signals.sine(440.0, 0.5, SR),
        "chirp": signals.exponential_chirp(100.0, 1000.0, 0.5, SR),
        "chord": signals.chord((220.0, 330.0), 0.5, SR),
        "glide": signals.glide(200.0, 400.0, 0.5, SR),
        "clicks": signals.clicks((0.1, 0.3), 0.5, SR),
        "noise_bursts": signals.noise_bursts(0.5, SR),
        "white_noise": signals.white_noise(0.5, SR),
    }
    for name, x in outs.items():
        assert x.dtype == np.float32, name
        assert x.shape == (SR // 2,), name
        assert np.all(np.isfinite(x)), name
        assert np.max(np.abs(x)) <= 1.0, name


def test_peak_normalised_to_amplitude():
    for x in (
        signals.chord((220.0, 330.0), 0.5, SR, amplitude=0.3),
        signals.glide(200.0, 400.0, 0.5, SR, amplitude=0.3),
        signals.noise_bursts(0.5, SR, amplitude=0.3),
        signals.clicks((0.1,), 0.5, SR, amplitude=0.3),
    ):
        assert np.max(np.abs(x)) == pytest.approx(0.3, rel=1e-6)


def test_sine_frequency_amplitude_phase():
    x = signals.sine(1000.0, 1.0, SR, amplitude=0.25, phase=np.pi / 2)
    assert x[0] == pytest.approx(0.25, abs=1e-7)  # cos start
    assert np.max(np.abs(x)) == pytest.approx(0.25, rel=1e-4)
    assert _peak_freq(x, SR // 2, SR, 8192) == pytest.approx(1000.0, rel=1e-4)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        signals.sine(30000.0, 1.0, SR)  # above Nyquist
    with pytest.raises(ValueError):
        signals.sine(440.0, 0.0, SR)
    with pytest.raises(ValueError):
        signals.exponential_chirp(0.0, 1000.0, 1.0, SR)
    with pytest.raises(ValueError):
        signals.clicks((2.0,), 1.0, SR)  # click after the end
    with pytest.raises(ValueError):
        signals.chord((), 1.0, SR)


# --------------------------------------------------------------------------- chirp


def test_chirp_follows_exponential_law(chirp, sample_rate):
    f0, f1, dur = 50.0, 16000.0, 2.0
    assert chirp.shape == (int(dur * sample_rate),)
    for t in (0.2, 0.5, 0.8, 1.0, 1.3, 1.6, 1.9):
        expected = f0 * (f1 / f0) ** (t / dur)
        win = 4096 if expected < 500 else 1024  # long enough for low f, short for fast sweep
        got = _peak_freq(chirp, int(round(t * sample_rate)), sample_rate, win)
        assert got == pytest.approx(expected, rel=0.03), f"t={t}s: {got:.1f} Hz, expected {expected:.1f} Hz"
    # a linear law would be far off in the middle
    assert abs(_peak_freq(chirp, sample_rate, sample_rate, 2048) - (f0 + f1) / 2) > 5000


def test_chirp_matches_scipy_logarithmic():
    scipy_signal = pytest.importorskip("scipy.signal")
    x = signals.exponential_chirp(30.0, 12000.0, 1.5, SR, amplitude=1.0)
    t = np.arange(x.size) / SR
    ref = scipy_signal.chirp(t, 30.0, 1.5, 12000.0, method="logarithmic", phi=-90.0)
    np.testing.assert_allclose(x, ref, atol=1e-5)


def test_chirp_downward_and_phase_continuous():
    x = signals.exponential_chirp(4000.0, 100.0, 1.0, SR).astype(np.float64)
    assert _peak_freq(x, int(0.1 * SR), SR, 1024) > _peak_freq(x, int(0.9 * SR), SR, 4096)
    # phase-continuous: no sample-to-sample jump bigger than the highest frequency allows
    assert np.max(np.abs(np.diff(x))) <= 0.5 * 2 * np.pi * 4000.0 / SR * 1.01


def test_glide_endpoints_and_harmonics():
    x = signals.glide(220.0, 440.0, 2.0, SR, harmonics=4, release_s=0.05)
    assert _peak_freq(x, int(0.15 * SR), SR, 4096) == pytest.approx(220.0 * 2 ** (0.15 / 2), rel=0.02)
    assert _peak_freq(x, int(1.85 * SR), SR, 4096) == pytest.approx(220.0 * 2 ** (1.85 / 2), rel=0.02)
    # the second partial is present at twice the fundamental
    center = SR
    seg = x[center - 2048 : center + 2048]
    spec, f = _spectrum_db(seg, SR)
    f_fund = 220.0 * 2 ** 0.5
    near = lambda hz: spec[np.abs(f - hz) < 8].max()  # noqa: E731
    assert near(2 * f_fund) > -12.0
    assert near(1.5 * f_fund) < near(2 * f_fund) - 20.0  # nothing between the partials


def test_glide_stays_below_nyquist_at_low_rate():
    sr = 8000
    x = signals.glide(500.0, 1500.0, 1.0, sr, harmonics=6)
    spec, f = _spectrum_db(x, sr)
    assert spec[f > 0.46 * sr].max() < -50.0


# --------------------------------------------------------------------------- chord


def test_chord_has_peaks_at_fundamentals_and_harmonics(chord_signal, chord_freqs_hz, sample_rate):
    spec, f = _spectrum_db(chord_signal, sample_rate)
    harmonics, rolloff = 6, 6.0
    partials = [(k, k * f0) for f0 in chord_freqs_hz for k in range(1, harmonics + 1)]
    all_hz = np.array([hz for _, hz in partials])
    for f0 in chord_freqs_hz:
        fund_db = spec[np.abs(f - f0) < 2].max()
        assert fund_db > -6.0
        for k in range(1, harmonics + 1):
            hz = k * f0
            level = spec[np.abs(f - hz) < 2].max()
            assert level > -50.0, f"no peak at {hz:.1f} Hz"
            isolated = np.sum(np.abs(all_hz - hz) < 10.0) == 1
            if isolated:
                assert level - fund_db == pytest.approx(-rolloff * (k - 1), abs=1.5), f"{hz:.1f} Hz"
    # almost all the energy is in the partials
    power = 10 ** (spec / 10)
    in_partials = np.zeros_like(f, dtype=bool)
    for hz in all_hz:
        in_partials |= np.abs(f - hz) < 5.0
    assert power[in_partials].sum() / power.sum() > 0.99
    # and nothing above the highest partial
    assert spec[f > all_hz.max() + 50].max() < -60.0


def test_chord_envelope():
    x = signals.chord((220.0,), 1.0, SR, attack_s=0.05, release_s=0.2)
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 1e-3
    mid = np.max(np.abs(x[int(0.3 * SR) : int(0.6 * SR)]))
    tail = np.max(np.abs(x[-int(0.02 * SR) :]))
    assert tail < 0.1 * mid


# --------------------------------------------------------------------------- transients, noise


def test_clicks_onsets_and_shortness():
    times = (0.1, 0.25, 0.7)
    x = signals.clicks(times, 1.0, SR, amplitude=0.8)
    for t in times:
        i = int(round(t * SR))
        assert x[i] == pytest.approx(0.8)
        assert np.all(x[i - 50 : i] == 0)
        assert np.max(np.abs(x[i + int(0.003 * SR) : i + int(0.02 * SR)])) == 0  # over after ~2 ms
    assert np.count_nonzero(x) <= len(times) * int(0.002 * SR) + len(times)


def test_white_noise_level():
    x = signals.white_noise(1.0, SR, seed=3, level_db=-35.0)
    assert _db(np.sqrt(np.mean(x.astype(np.float64) ** 2))) == pytest.approx(-35.0, abs=0.01)
    spec, f = _spectrum_db(x, SR)
    # roughly flat: the low and high halves hold similar power
    p = 10 ** (spec / 10)
    half = f.size // 2
    assert 0.8 < p[:half].sum() / p[half:].sum() < 1.25


def test_noise_bursts_are_speech_like(speech_like, sample_rate):
    x = speech_like.astype(np.float64)
    assert x.shape == (2 * sample_rate,)
    # syllable-rate envelope: 10 ms RMS frames, both loud and near-silent ones
    frames = x[: x.size // 441 * 441].reshape(-1, 441)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms > 0.1 * rms.max()
    assert 0.25 < loud.mean() < 0.9
    assert (rms < 1e-3 * rms.max()).any() or (rms < 0.03 * rms.max()).mean() > 0.05
    onsets = np.count_nonzero(np.diff(loud.astype(int)) == 1)
    assert 4 <= onsets <= 20  # around 6 syllables per second over 2 s, allowing for merges
    # the first syllable is voiced: a harmonic buzz whose period (autocorrelation peak)
    # is that of a ~120 Hz voice
    first = int(np.argmax(rms[:30])) * 441 + 220
    frame = x[first - 1024 : first + 1024] * np.hanning(2048)
    ac = np.correlate(frame, frame, mode="full")[2047:]
    lo, hi = int(sample_rate / 300), int(sample_rate / 70)
    lag = lo + int(np.argmax(ac[lo:hi]))
    assert 100.0 < sample_rate / lag < 145.0
    assert ac[lag] > 0.5 * ac[0]  # strongly periodic
    # energy band-limited to speech frequencies
    spec, f = _spectrum_db(x, sample_rate)
    p = 10 ** (spec / 10)
    assert p[(f > 80) & (f < 5500)].sum() / p.sum() > 0.98


def test_noise_bursts_contain_unvoiced_noise():
    x = signals.noise_bursts(2.0, SR, seed=0, band_hz=(2000.0, 4000.0)).astype(np.float64)
    spec, f = _spectrum_db(x, SR)
    p = 10 ** (spec / 10)
    # unvoiced bursts put noise energy in the 2-4 kHz band (the buzz alone is weak there)
    assert p[(f > 2000) & (f < 4000)].sum() / p.sum() > 0.02


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: signals.noise_bursts(1.0, SR, seed=seed),
        lambda seed: signals.white_noise(1.0, SR, seed=seed),
        lambda seed: signals.clicks((0.2, 0.6), 1.0, SR, seed=seed),
        lambda seed: signals.example_sound(22050, seed=seed),
    ],
    ids=["noise_bursts", "white_noise", "clicks", "example_sound"],
)
def test_seeded_determinism(make):
    a, b, c = make(0), make(0), make(1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape
    assert not np.array_equal(a, c)


def test_generator_seed_accepted():
    a = signals.white_noise(0.1, SR, seed=np.random.default_rng(7))
    b = signals.white_noise(0.1, SR, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_deterministic_generators_need_no_seed():
    chord = lambda: signals.chord((220.0, 330.0), 0.3, SR)  # noqa: E731
    np.testing.assert_array_equal(chord(), chord())
    np.testing.assert_array_equal(signals.glide(220.0, 440.0, 0.3, SR), signals.glide(220.0, 440.0, 0.3, SR))


# --------------------------------------------------------------------------- example sound


def test_example_sound_properties(example_audio, sample_rate):
    x = example_audio.astype(np.float64)
    assert example_audio.dtype == np.float32
    assert x.shape == (2, int(round(signals.EXAMPLE_DURATION_S * sample_rate)))
    assert 5.5 <= x.shape[1] / sample_rate <= 6.5
    assert np.all(np.isfinite(x))
    peak_db = _db(np.max(np.abs(x)))
    assert -3.0 <= peak_db <= -0.5
    assert peak_db == pytest.approx(signals.EXAMPLE_PEAK_DBFS, abs=0.01)
    # left and right differ clearly, so mid and side differ
    assert not np.allclose(x[0], x[1])
    side_rms = np.sqrt(np.mean((x[0] - x[1]) ** 2))
    mid_rms = np.sqrt(np.mean((x[0] + x[1]) ** 2))
    assert 0.05 < side_rms / mid_rms < 0.8


def test_example_sound_contents(example_audio, sample_rate):
    x = example_audio.astype(np.float64)
    mono = x.mean(axis=0)

    def seg(a, b, ch=None):
        y = mono if ch is None else x[ch]
        return y[int(a * sample_rate) : int(b * sample_rate)]

    # chord at C4/E4/G4 in the first second
    spec, f = _spectrum_db(seg(0.9, 1.5), sample_rate)
    for hz in (261.63, 329.63, 392.0, 65.41):
        assert spec[np.abs(f - hz) < 4].max() > -25.0, hz
    # the glide rises an octave, 220 -> 440 Hz over 2.0-4.5 s: its fundamental dominates
    for t in (2.5, 3.0, 3.5, 4.2):
        expected = 220.0 * 2 ** ((t - 2.0) / 2.5)
        got = _peak_freq(mono, int(round(t * sample_rate)), sample_rate, 4096)
        assert got == pytest.approx(expected, rel=0.03), t
    # hiss across the file: in the quiet end, the 2.5-9 kHz band holds white noise at
    # about -35 dBFS (RMS over the full band)
    tail = seg(5.7, 6.0, ch=0)
    spec_t = np.fft.rfft(tail)
    f_t = np.fft.rfftfreq(tail.size, 1 / sample_rate)
    band = (f_t > 2500) & (f_t < 9000)
    band_power = 2 * np.sum(np.abs(spec_t[band]) ** 2) / tail.size**2
    hiss_db = 10 * np.log10(band_power * (sample_rate / 2) / (9000 - 2500))
    assert hiss_db == pytest.approx(-35.0, abs=1.5)
    # noise burst much louder than the hiss above 2 kHz
    def hf_rms(a, b):
        s = np.fft.rfft(seg(a, b))
        ff = np.fft.rfftfreq(seg(a, b).size, 1 / sample_rate)
        return np.sqrt(np.sum(np.abs(s[(ff > 2500) & (ff < 9000)]) ** 2))

    assert hf_rms(4.8, 5.2) > 10 * hf_rms(5.6, 6.0)
    # transients: a sharp jump at each click
    for t in (0.8, 1.6, 3.2, 4.0):
        i = int(round(t * sample_rate))
        assert np.max(np.abs(np.diff(mono[i - 2 : i + 3]))) > 0.3
    # the 5.5 s click is in the right channel only
    i = int(round(5.5 * sample_rate))
    assert abs(x[1, i] - x[1, i - 1]) > 0.3 and abs(x[0, i] - x[0, i - 1]) < 0.05


def test_example_file_matches_generator(example_audio):
    from pedalboard.io import AudioFile

    path = resources.example_path()
    assert path.suffix == ".flac"
    assert path.stat().st_size < 2_000_000
    with AudioFile(str(path)) as f:
        assert f.samplerate == 44100
        assert f.num_channels == 2
        frames = f.frames
        decoded = f.read(frames)
    assert decoded.shape == example_audio.shape, "example.flac is out of date: run scripts/make_example.py"
    err = float(np.max(np.abs(decoded - example_audio)))
    assert err <= 1e-6, (
        f"resources/example.flac differs from example_sound() by {err:.3g}: "
        "regenerate it with `python scripts/make_example.py`"
    )


# --------------------------------------------------------------------------- package plumbing


def test_resources_paths():
    d = resources.resources_dir()
    assert d.is_dir() and d.name == "resources"
    assert d.parent == Path(resources.__file__).resolve().parent.parent
    assert resources.example_path() == d / "example.flac"


def test_import_is_light_and_sets_omp_policy():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = (
        "import os, sys\n"
        "import scalgui, scalgui.dsp\n"
        "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'\n"
        "assert 'torch' not in sys.modules, 'scalgui.dsp must not import torch'\n"
        "assert 'scalgui.dsp.signals' not in sys.modules\n"
        "print(scalgui.__version__)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1.0"


def test_torch_device_fixture(torch_device):
    assert torch_device in ("cpu", "cuda")
