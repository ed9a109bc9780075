"""The image plugin (plugins/image.py): pictures written by the test become sound.

Measured on the sound itself (the plugin's audio step, and the document's render): the
scalogram's loudest band per moment follows the drawn line, and the levels of drawn lines
follow the brightness-to-dB mapping.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.plugins import PluginContext, PluginEdit, PluginError, run_plugin

SR = 16000
N = 2 * SR
FMIN, FMAX = 200.0, 3200.0  # four octaves
T0, T1 = 0.25, 1.75
W, H = 128, 64  # picture size: 0.75 semitone per row


@pytest.fixture(scope="module")
def image(builtin_plugins):
    return builtin_plugins.get("image")


@pytest.fixture(scope="module")
def frame() -> WaveletFrame:
    return WaveletFrame(FrameSettings(SR, fmin=50.0))


@pytest.fixture(scope="module")
def diagonal(tmp_path_factory) -> Path:
    """White line from the bottom-left corner to the top-right corner, 2 pixels thick."""
    pixels = np.zeros((H, W), np.uint8)
    for c in range(W):
        r = H - 1 - int(round(c * (H - 1) / (W - 1)))
        pixels[max(r - 1, 0): r + 1, c] = 255
    path = tmp_path_factory.mktemp("pictures") / "diagonal.png"
    Image.fromarray(pixels).save(path)
    return path


def run_audio(plugin, frame, samples, params):
    """The plugin's audio step on ``samples`` [channels, frames], as the host calls it."""
    coeffs = frame.analyze(torch.from_numpy(samples))
    values = plugin.resolve(params)
    ctx = PluginContext([m.clone() for m in coeffs.magnitudes()], coeffs, values, None, None, plugin=plugin.name)
    return plugin.audio(ctx, samples.copy())


def peak_track(frame, sound, times):
    """Frequency in Hz of the loudest wavelet band at each time, refined between bands by
    a parabola through the log magnitudes of the peak band and its neighbours."""
    coeffs = frame.analyze(torch.from_numpy(np.ascontiguousarray(sound)))
    table = frame.bands
    wavelets = table.wavelet_indices
    q = frame.settings.voices_per_octave
    out = []
    for t in times:
        level = np.array([
            float(coeffs.band(int(k))[0, int(np.argmin(np.abs(coeffs.times(int(k)) - t)))].abs()) for k in wavelets
        ])
        i = int(np.argmax(level))
        offset = 0.0
        if 0 < i < len(level) - 1:
            a, b, c = np.log(level[i - 1: i + 2] + 1e-30)
            offset = 0.5 * (a - c) / (a - 2 * b + c)
        out.append(table.centre_hz[wavelets[i]] * 2 ** (offset / q))
    return np.array(out)


def expected_chirp(times):
    """The line's centre: pixel column c's centre at T0 + (c + 0.5) / W * (T1 - T0); the
    2-pixel line's centre half a row above row r, whose centre lies (H - 1 - r + 0.5) / H
    of the way up the log-frequency axis."""
    start, end = T0 + 0.5 / W * (T1 - T0), T1 - 0.5 / W * (T1 - T0)
    height = (H - 1) * (times - start) / (end - start) + 1.0  # rows from the bottom, +0.5 + 0.5
    return FMIN * (FMAX / FMIN) ** (height / H)


def assert_rising_chirp(frame, sound, *, tolerance_semitones):
    """Measured: median 0.09 / max 0.33 semitones from the audio step, 0.15 / 0.58 after
    the document's render; a pixel row is 0.75 semitones."""
    times = np.linspace(T0 + 0.05, T1 - 0.05, 57)
    track = peak_track(frame, sound, times)
    error = 12 * np.log2(track / expected_chirp(times))
    assert np.all(np.diff(track) > 0), "the peak frequency must rise at every step"
    assert np.median(np.abs(error)) <= 0.3
    assert np.max(np.abs(error)) <= tolerance_semitones
    # The endpoints, 50 ms inside the picture's edges: 226 Hz and 2.95 kHz.
    assert abs(error[0]) <= 0.5 and abs(error[-1]) <= 0.5


def test_diagonal_line_becomes_a_rising_chirp(image, frame, diagonal):
    silence = np.zeros((1, N), np.float32)
    params = {"file": str(diagonal), "time": (T0, T1), "fmin": FMIN, "fmax": FMAX, "iterations": 30}
    sound = run_audio(image, frame, silence, params)
    assert_rising_chirp(frame, sound, tolerance_semitones=0.75)
    # Nothing sounds before the picture starts (beyond the atoms' reach).
    assert np.abs(sound[0, : int(0.1 * SR)]).max() < 1e-3 * np.abs(sound).max()


def test_document_render_draws_the_chirp(builtin_plugins, image, diagonal):
    """Through the editor: push the plugin edit on a silent document and render it by
    phase retrieval; the rendered sound is the chirp."""
    from scalgui.app.document import Document
    from scalgui.plugins import set_default_registry

    previous = set_default_registry(builtin_plugins)
    try:
        doc = Document.from_samples(np.zeros((1, N), np.float32), SR, settings=FrameSettings(SR, fmin=50.0),
                                    device="cpu")
        params = {"file": str(diagonal), "time": (T0, T1), "fmin": FMIN, "fmax": FMAX, "iterations": 30}
        doc.push(PluginEdit.create(image, params))
        doc.render()
        assert_rising_chirp(doc.frame, doc.rendered, tolerance_semitones=1.0)
    finally:
        set_default_registry(previous)


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_brightness_becomes_level_in_db(image, frame, tmp_path, gamma):
    # Two one-pixel lines: white at about 500 Hz, mid-grey (128) at about 2 kHz.
    def row(freq):
        return H - 1 - int(np.floor(np.log2(freq / FMIN) / np.log2(FMAX / FMIN) * H))

    pixels = np.zeros((H, 32), np.uint8)
    pixels[row(500.0), :] = 255
    pixels[row(2000.0), :] = 128
    path = tmp_path / "lines.png"
    Image.fromarray(pixels).save(path)
    params = {"file": str(path), "time": (T0, T1), "fmin": FMIN, "fmax": FMAX, "iterations": 30,
              "level_db": -12.0, "dynamic_range_db": 60.0, "gamma": gamma}
    sound = run_audio(image, frame, np.zeros((1, N), np.float32), params)[0]
    middle = sound[int(0.5 * SR): int(1.5 * SR)]
    window = np.hanning(len(middle))
    spectrum = np.abs(np.fft.rfft(middle * window)) * 2 / window.sum()  # sine amplitude
    freqs = np.fft.rfftfreq(len(middle), 1 / SR)

    def level_db(centre):
        near = (freqs > centre / 1.1) & (freqs < centre * 1.1)
        return 20 * np.log10(spectrum[near].max())

    def row_centre(freq):
        return FMIN * (FMAX / FMIN) ** ((H - 1 - row(freq) + 0.5) / H)

    white = level_db(row_centre(500.0))
    grey = level_db(row_centre(2000.0))
    assert white == pytest.approx(-12.0, abs=0.5)
    assert grey == pytest.approx(-12.0 - 60.0 * (1 - (128 / 255) ** gamma), abs=0.5)


def test_blank_picture_is_silence(image, frame, tmp_path):
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(black)
    # Transparent white is black too: brightness is luminance times alpha.
    clear = tmp_path / "clear.png"
    Image.fromarray(np.dstack([np.full((H, W, 3), 255, np.uint8), np.zeros((H, W), np.uint8)]), "RGBA").save(clear)
    for path in (black, clear):
        params = {"file": str(path), "time": (T0, T1), "fmin": FMIN, "fmax": FMAX, "iterations": 30}
        silence = np.zeros((1, N), np.float32)
        assert not np.any(run_audio(image, frame, silence, params))
        # Replacing a noisy span with a blank picture leaves silence there, and the
        # sound outside the span exactly as it was.
        noise = (0.1 * np.random.default_rng(0).standard_normal((1, N))).astype(np.float32)
        out = run_audio(image, frame, noise, {**params, "mode": "replace"})
        a, b = int(T0 * SR), int(T1 * SR)
        fade = int(0.005 * SR)
        assert not np.any(out[:, a + fade: b - fade])
        assert np.array_equal(out[:, :a], noise[:, :a]) and np.array_equal(out[:, b:], noise[:, b:])


def test_bad_input_is_a_plugin_error(image, frame, diagonal, tmp_path):
    coeffs = frame.analyze(torch.zeros(1, N))
    with pytest.raises(PluginError, match="no picture"):
        run_plugin(image, coeffs, None, {"file": str(tmp_path / "missing.png")})
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("not a picture")
    with pytest.raises(PluginError, match="cannot read the picture"):
        run_plugin(image, coeffs, None, {"file": str(not_a_picture)})
    with pytest.raises(PluginError, match="must be above fmin"):
        run_plugin(image, coeffs, None, {"file": str(diagonal), "fmin": 3000.0, "fmax": 2000.0})
