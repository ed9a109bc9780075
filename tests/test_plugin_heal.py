"""The heal plugin (plugins/heal.py): damage inserted into a steady tone-plus-noise
recording is rebuilt from its surroundings.

Measured on the frame's magnitudes: per wavelet band, the power over the fully selected
coefficients after healing against the same coefficients of the clean recording (the
recording before the damage was added). Noise makes a short span's level a random
quantity (a 60 ms span of a 1 kHz band holds a dozen coefficients), so the tolerances are
on the median and the 90th percentile over the bands, plus a looser bound on every band;
before healing the same measure is off by 10-25 dB.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.signal import butter, sosfilt

from scalgui.dsp import signals
from scalgui.dsp.edits import Band, Rectangle, TimeRange
from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.plugins import PluginEdit, PluginError, run_plugin, selection_weights

SR = 16000
DURATION_S = 2.0

# Tolerances on |healed dB - clean dB| per band (see the module's notes).
MEDIAN_DB, P90_DB, MAX_DB = 2.0, 4.0, 6.0


@pytest.fixture(scope="module")
def heal(builtin_plugins):
    return builtin_plugins.get("heal")


@pytest.fixture(scope="module")
def frame() -> WaveletFrame:
    return WaveletFrame(FrameSettings(SR, fmin=50.0))


def steady(seed: int, *, tones=((440.0, 0.3), (1250.0, 0.1))) -> np.ndarray:
    """Tones plus white noise at -30 dBFS RMS: the 'recording' to be damaged."""
    x = signals.white_noise(DURATION_S, SR, seed=seed, level_db=-30.0).astype(np.float64)
    for freq, amp in tones:
        x += signals.sine(freq, DURATION_S, SR, amplitude=amp)
    return x.astype(np.float32)


def band_errors_db(frame, magnitudes, clean, damaged, selection):
    """Per wavelet band with fully selected coefficients: (healed - clean, damaged - clean)
    power in dB over those coefficients, and the bands' centres in Hz."""
    weights = selection_weights(damaged, selection)
    table = frame.bands
    healed_err, before_err, centres = [], [], []
    for k in table.wavelet_indices:
        g, r = int(table.group[k]), int(table.row[k])
        full = weights[g][r] >= 1.0
        if not bool(full.any()):
            continue

        def power(values):
            return float((values[..., r, :][..., full].double() ** 2).mean())

        reference = power(clean.groups[g].abs())
        healed_err.append(10 * np.log10(power(magnitudes[g]) / reference))
        before_err.append(10 * np.log10(power(damaged.groups[g].abs()) / reference))
        centres.append(float(table.centre_hz[k]))
    return np.array(healed_err), np.array(before_err), np.array(centres)


def assert_outside_unchanged(frame, magnitudes, damaged, selection):
    weights = selection_weights(damaged, selection)
    for g, (m, d, w) in enumerate(zip(magnitudes, damaged.groups, weights)):
        outside = w == 0
        assert torch.equal(m[..., outside], d.abs()[..., outside]), f"group {g} changed outside the selection"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_click_is_removed(heal, frame, seed):
    clean_x = steady(seed)
    # A click of peak 5 (+14 dBFS) at 1.0 s: a vertical line through every band.
    damaged_x = clean_x + signals.clicks([1.0], DURATION_S, SR, amplitude=5.0, seed=seed)
    clean, damaged = frame.analyze(clean_x), frame.analyze(damaged_x)
    # Covers the click's visible smear above 800 Hz (a band's atom spreads it by about
    # 1 / (2 pi sigma): 8 ms at 800 Hz).
    selection = Rectangle(0.97, 1.03, 800.0, 7000.0)
    out = run_plugin(heal, damaged, None, {"mode": "both"}, selection)
    healed, before, _ = band_errors_db(frame, out, clean, damaged, selection)
    assert len(healed) >= 30
    assert np.median(np.abs(before)) > 10.0  # the damage is there to remove
    assert np.median(np.abs(healed)) <= MEDIAN_DB
    assert np.percentile(np.abs(healed), 90) <= P90_DB
    assert np.max(np.abs(healed)) <= MAX_DB
    assert_outside_unchanged(frame, out, damaged, selection)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", ["time", "both"])
def test_band_limited_noise_burst_is_removed(heal, frame, seed, mode):
    clean_x = steady(seed)
    # 120 ms of noise band-passed to 2-4 kHz, about 20 dB above the background there.
    sos = butter(4, [2000.0, 4000.0], btype="band", fs=SR, output="sos")
    burst = sosfilt(sos, np.random.default_rng(100 + seed).standard_normal(len(clean_x))) * 0.5
    envelope = np.zeros(len(clean_x))
    envelope[int(1.0 * SR): int(1.12 * SR)] = 1.0
    damaged_x = (clean_x + burst * envelope).astype(np.float32)
    clean, damaged = frame.analyze(clean_x), frame.analyze(damaged_x)
    selection = Rectangle(0.98, 1.14, 1600.0, 5000.0)
    out = run_plugin(heal, damaged, None, {"mode": mode}, selection)
    healed, before, _ = band_errors_db(frame, out, clean, damaged, selection)
    assert np.median(np.abs(before)) > 15.0
    assert np.median(np.abs(healed)) <= MEDIAN_DB
    assert np.max(np.abs(healed)) <= MAX_DB
    assert_outside_unchanged(frame, out, damaged, selection)


def test_whistle_over_the_whole_sound_heals_across_frequency(heal, frame):
    # A 3 kHz whistle from start to end: no time context exists, so even mode "time"
    # must hand over to the frequency direction (bands below and above).
    clean_x = steady(3, tones=((440.0, 0.3),))
    damaged_x = clean_x + signals.sine(3000.0, DURATION_S, SR, amplitude=0.2)
    clean, damaged = frame.analyze(clean_x), frame.analyze(damaged_x)
    selection = Band(2500.0, 3600.0)
    for mode in ("frequency", "time", "both"):
        out = run_plugin(heal, damaged, None, {"mode": mode}, selection)
        healed, before, _ = band_errors_db(frame, out, clean, damaged, selection)
        assert np.max(np.abs(before)) > 20.0  # the whistle's own bands
        assert np.max(np.abs(healed)) <= 3.0, mode
        assert_outside_unchanged(frame, out, damaged, selection)


def test_texture_keeps_noise_rough(heal, frame):
    clean_x = steady(4)
    damaged_x = clean_x + signals.clicks([1.0], DURATION_S, SR, amplitude=5.0, seed=4)
    damaged = frame.analyze(damaged_x)
    clean = frame.analyze(clean_x)
    # Hard-edged, so every selected coefficient is the plugin's fill (no blending).
    selection = Rectangle(0.9, 1.1, 2000.0, 6000.0, feather_s=0.0, feather_oct=0.0)
    weights = selection_weights(damaged, selection)

    def spread_db(groups):
        """Median over bands of the standard deviation of dB inside the selection."""
        spreads = []
        for k in frame.bands.wavelet_indices:
            g, r = int(frame.bands.group[k]), int(frame.bands.row[k])
            inside = weights[g][r] >= 1.0
            if int(inside.sum()) >= 20:
                spreads.append(float((20 * torch.log10(groups[g][..., r, :][..., inside])).std()))
        return float(np.median(spreads))

    rough = spread_db(run_plugin(heal, damaged, None, {"mode": "time", "texture": 1.0}, selection))
    smooth = spread_db(run_plugin(heal, damaged, None, {"mode": "time", "texture": 0.0}, selection))
    natural = spread_db(clean.magnitudes())  # Rayleigh noise: about 5.6 dB
    assert abs(rough - natural) < 1.5
    assert smooth < 1.0


def test_needs_a_selection_with_something_around_it(heal, frame):
    damaged = frame.analyze(steady(0))
    with pytest.raises(PluginError, match="needs a selection"):
        run_plugin(heal, damaged, None, {}, None)
    # Every band at every time: no context in either direction.
    with pytest.raises(PluginError, match="nothing to heal from"):
        run_plugin(heal, damaged, None, {}, TimeRange(-1.0, DURATION_S + 1.0))


def test_document_render_removes_the_click(builtin_plugins, heal):
    """Through the editor's path: push a heal edit, render by phase retrieval, and
    measure the rendered sound (not just the target magnitudes)."""
    from scalgui.app.document import Document
    from scalgui.plugins import set_default_registry

    previous = set_default_registry(builtin_plugins)
    try:
        clean_x = steady(5)
        damaged_x = clean_x + signals.clicks([1.0], DURATION_S, SR, amplitude=5.0, seed=5)
        doc = Document.from_samples(damaged_x, SR, settings=FrameSettings(SR, fmin=50.0), device="cpu")
        selection = Rectangle(0.97, 1.03, 800.0, 7000.0)
        doc.push(PluginEdit.create(heal, {"mode": "both"}, selection))
        doc.render()
        frame = doc.frame
        rendered = frame.analyze(torch.from_numpy(doc.rendered))
        healed, before, centres = band_errors_db(
            frame, rendered.magnitudes(), frame.analyze(clean_x), doc.coefficients, selection
        )
        # Bands well inside the selection and clear of the tones (where the click stands
        # 15-20 dB above the background). Edits never touch the highpass atom above the
        # top wavelet (6.4 kHz at 16 kHz), so the click's energy there survives and leaks
        # back into the top bands after rendering: those are left out.
        inner = (centres >= 2000.0) & (centres <= 5000.0)
        assert np.median(np.abs(before[inner])) > 10.0
        assert np.median(np.abs(healed[inner])) <= MEDIAN_DB
        assert np.max(np.abs(healed[inner])) <= MAX_DB
        # The render splices: samples beyond the atoms' reach of the edit stay the source's.
        far = np.r_[0: int(0.5 * SR), int(1.5 * SR): len(damaged_x)]
        assert np.array_equal(doc.rendered[0, far], damaged_x[far])
    finally:
        set_default_registry(previous)
