"""The built-in plugins change sound as documented, measured on the scalograms of the target
and of the render (phase retrieval), not just "it ran"."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from scalgui.app.document import Document
from scalgui.dsp.edits import Rectangle, TimeRange
from scalgui.plugins import PluginEdit, PluginError, Registry, set_default_registry

ROOT = Path(__file__).resolve().parent.parent
SR = 22050


@pytest.fixture(scope="module")
def builtins():
    registry = Registry.discover(folders=[ROOT / "plugins"], entry_points=False)
    previous = set_default_registry(registry)
    yield registry
    set_default_registry(previous)


def _doc(x):
    return Document.from_samples(np.asarray(x, dtype=np.float32), SR, device="cpu")


def _apply(doc, registry, name, params=None, selection=None):
    edit = PluginEdit.create(registry.get(name), params or {}, selection)
    doc.push(edit)
    return edit


def _levels(doc, layer, t0, t1):
    """Mean power per wavelet band over [t0, t1] s of channel 0: ``(centre_hz, power)``."""
    if layer == "render":
        coeffs = doc.frame.analyze(torch.from_numpy(doc.rendered)).map(torch.abs)
    elif layer == "target":
        coeffs = doc.target()
    else:
        coeffs = doc.coefficients.map(torch.abs)
    b = doc.frame.bands
    power = []
    for k in b.wavelet_indices:
        t = coeffs.times(k)
        band = coeffs.groups[b.group[k]][0, b.row[k]].double().numpy()
        inside = (t >= t0) & (t <= t1)
        if not inside.any():  # a slow band with no coefficient in a short window: the nearest
            inside = np.abs(t - (t0 + t1) / 2) == np.abs(t - (t0 + t1) / 2).min()
        power.append(np.mean(band[inside] ** 2))
    return b.centre_hz[b.wavelet_indices], np.array(power)


def _peak_hz(centres, power):
    """Frequency of the energy peak, refined by a parabola through log power in log frequency."""
    i = int(np.argmax(power))
    y = np.log(power[i - 1: i + 2])
    offset = 0.5 * (y[0] - y[2]) / (y[0] - 2 * y[1] + y[2])
    step = np.log2(centres[i + 1] / centres[i])
    return float(2 ** (np.log2(centres[i]) + offset * step))


def _tone(freqs, seconds, amplitude=0.2):
    t = np.arange(int(seconds * SR)) / SR
    return sum(amplitude * np.sin(2 * np.pi * f * t) for f in freqs)


# --------------------------------------------------------------------------- transpose


def test_transpose_an_octave_up_moves_a_440_hz_tone_to_880_hz_after_render(builtins):
    doc = _doc(_tone([440.0], 1.0))
    _apply(doc, builtins, "transpose", {"semitones": 12})
    doc.render()
    centres, power = _levels(doc, "render", 0.2, 0.8)
    peak = _peak_hz(centres, power)
    assert abs(12 * math.log2(peak / 880.0)) < 0.25  # within a quarter semitone of 880 Hz
    at_440 = power[np.argmin(np.abs(centres - 440.0))]
    assert 10 * np.log10(power.max() / at_440) > 20.0  # and the 440 Hz tone is gone


def test_transpose_by_whole_bands_is_an_exact_shift_and_fractions_interpolate(builtins):
    doc = _doc(_tone([440.0], 1.0))
    _apply(doc, builtins, "transpose", {"semitones": 5})  # 12 voices: exactly 5 bands
    target, source = doc.target(), doc.coefficients.map(torch.abs)
    b, ctx_hop = doc.frame.bands, doc.frame.bands.hop
    wavelets = b.wavelet_indices
    for i in (50, 52, 54):  # the bands the 440 Hz tone reaches (band 53.5 from 20 Hz)
        k, src = wavelets[i + 5], wavelets[i]
        got = target.groups[b.group[k]][0, b.row[k]]
        moved = source.groups[b.group[src]][0, b.row[src]]
        if ctx_hop[src] == ctx_hop[k]:
            assert torch.allclose(got, moved, rtol=1e-5, atol=1e-8)
        else:  # a different rate: the same content resampled; compare levels over the middle
            t = target.times(k)
            ts = source.times(src)
            assert float(got[(t > 0.3) & (t < 0.7)].mean()) == pytest.approx(
                float(moved[(ts > 0.3) & (ts < 0.7)].mean()), rel=1e-2)
    doc.undo()
    _apply(doc, builtins, "transpose", {"semitones": 0.5})  # half a band: interpolated
    before_c, before = _levels(doc, "source", 0.2, 0.8)
    _, after = _levels(doc, "target", 0.2, 0.8)
    centroid = lambda p: np.sum(p * np.log2(before_c)) / np.sum(p)  # noqa: E731
    assert 12 * (centroid(after) - centroid(before)) == pytest.approx(0.5, abs=0.05)


def test_transpose_moves_only_the_selection(builtins):
    doc = _doc(_tone([440.0], 1.2))
    _apply(doc, builtins, "transpose", {"semitones": 12}, Rectangle(0.4, 0.8, 300.0, 600.0, feather_s=0.01))
    centres, inside = _levels(doc, "target", 0.5, 0.7)
    _, outside = _levels(doc, "target", 0.1, 0.3)
    assert abs(12 * math.log2(_peak_hz(centres, inside) / 880.0)) < 0.25
    assert abs(12 * math.log2(_peak_hz(centres, outside) / 440.0)) < 0.5  # where the tone always was
    _, source = _levels(doc, "source", 0.1, 0.3)
    assert np.allclose(outside, source)


# --------------------------------------------------------------------------- harmonic enhance


def test_harmonic_enhance_changes_harmonic_bands_by_the_gain_and_not_those_between(builtins):
    f0 = 320.0  # a band centre at 12 voices from 20 Hz, so "the harmonic's band" is unambiguous
    rng = np.random.default_rng(5)
    x = _tone([f0 * h for h in range(1, 9)], 1.0, 0.05) + 0.002 * rng.standard_normal(SR)
    doc = _doc(x)
    _apply(doc, builtins, "harmonics", {"fundamental_hz": f0, "gain_db": -12, "width_cents": 50, "count": 5})
    centres, before = _levels(doc, "source", 0.2, 0.8)
    _, after = _levels(doc, "target", 0.2, 0.8)
    change = 10 * np.log10(after / before)
    cents = lambda f, h: abs(1200 * np.log2(f / (h * f0)))  # noqa: E731
    near = [int(np.argmin(np.abs(np.log2(centres / (h * f0))))) for h in range(1, 6)]
    assert np.allclose(change[near], -12.0, atol=1e-3)
    # Bands whose atoms do not reach a harmonic's region (3 bands away at 12 voices) keep
    # their level; the ones just next to a harmonic change by the share it gives them.
    between = [i for i, f in enumerate(centres)
               if f > 50 and min(cents(f, h) for h in range(1, 10)) > 300]
    assert len(between) > 20 and np.all(np.abs(change[between]) < 0.01)
    beside = [i + 1 for i in near]
    assert np.all((change[beside] < -1.0) & (change[beside] > -11.0))
    beyond = [int(np.argmin(np.abs(np.log2(centres / (h * f0))))) for h in (7, 8)]  # count = 5
    assert np.all(np.abs(change[beyond]) < 0.01)
    # After render the harmonics are weaker by most of the gain; the seventh stays.
    doc.render()
    _, rendered = _levels(doc, "render", 0.2, 0.8)
    rendered_change = 10 * np.log10(rendered / before)
    assert np.all(rendered_change[near] < -8.0)
    assert np.all(np.abs(rendered_change[beyond]) < 1.5)


# --------------------------------------------------------------------------- denoise


def _tone_in_noise():
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    return (0.01 * rng.standard_normal(len(t)) + 0.1 * np.sin(2 * np.pi * 1000 * t) * ((t > 0.6) & (t < 1.8)))


def _snr_db(doc, layer):
    """Tone bands (within 1.5 bands of 1 kHz) over the rest, 0.8-1.6 s, in dB."""
    centres, power = _levels(doc, layer, 0.8, 1.6)
    b = doc.frame.bands
    weight = 1.0 / b.hop[b.wavelet_indices]  # power x coefficient rate: energy per second
    tone = np.abs(12 * np.log2(centres / 1000.0)) < 1.5
    return 10 * np.log10(np.sum((power * weight)[tone]) / np.sum((power * weight)[~tone]))


def test_denoise_with_a_learnt_noise_profile_raises_the_snr_of_a_tone_in_noise(builtins):
    doc = _doc(_tone_in_noise())
    before = _snr_db(doc, "source")
    _apply(doc, builtins, "denoise", {"noise": "0:0.5", "reduction_db": 30})
    target_gain = _snr_db(doc, "target") - before
    doc.render()
    render_gain = _snr_db(doc, "render") - before
    assert target_gain > 20.0  # the README states: more than 20 dB on the target
    assert render_gain > 20.0  # and after phase retrieval
    # Where only noise was, the level falls by about the reduction.
    _, noise_before = _levels(doc, "source", 0.1, 0.4)
    _, noise_after = _levels(doc, "target", 0.1, 0.4)
    drop = 10 * np.log10(np.sum(noise_after) / np.sum(noise_before))
    assert -32.0 < drop < -20.0


def test_denoise_without_a_noise_region_guesses_the_floor_and_checks_its_region(builtins):
    doc = _doc(_tone_in_noise())
    before = _snr_db(doc, "source")
    _apply(doc, builtins, "denoise", {"reduction_db": 30})
    assert _snr_db(doc, "target") - before > 20.0
    with pytest.raises(PluginError, match="holds no coefficients"):
        doc.push(PluginEdit.create(builtins.get("denoise"), {"noise": "5:6"}))


# --------------------------------------------------------------------------- blur and freeze


def _time_spread(doc, layer, hz):
    """Energy-weighted standard deviation in time (s) of the band nearest ``hz``, channel 0."""
    if layer == "render":
        coeffs = doc.frame.analyze(torch.from_numpy(doc.rendered)).map(torch.abs)
    else:
        coeffs = doc.target() if layer == "target" else doc.coefficients.map(torch.abs)
    b = doc.frame.bands
    k = int(b.wavelet_indices[np.argmin(np.abs(np.log2(b.centre_hz[b.wavelet_indices] / hz)))])
    p = coeffs.groups[b.group[k]][0, b.row[k]].double().numpy() ** 2
    t = coeffs.times(k)
    mean = np.sum(p * t) / np.sum(p)
    return float(np.sqrt(np.sum(p * (t - mean) ** 2) / np.sum(p)))


def test_blur_spreads_a_click_in_time_by_the_given_amount(builtins):
    x = np.zeros(SR)
    x[SR // 2] = 0.5
    doc = _doc(x)
    sigma = 0.05
    _apply(doc, builtins, "blur", {"time_s": sigma})
    for hz in (250.0, 1000.0, 4000.0):
        before = _time_spread(doc, "source", hz)
        assert before < 0.02
        assert _time_spread(doc, "target", hz) == pytest.approx(math.hypot(before, sigma), rel=0.02)
    doc.render()
    for hz in (1000.0, 4000.0):
        assert _time_spread(doc, "render", hz) > 0.8 * sigma  # the click is smeared in the sound too


def test_blur_across_frequency_widens_a_tone_by_the_given_semitones(builtins):
    doc = _doc(_tone([1000.0], 1.0))
    _apply(doc, builtins, "blur", {"time_s": 0.0, "semitones": 2.0})
    centres, before = _levels(doc, "source", 0.2, 0.8)
    _, after = _levels(doc, "target", 0.2, 0.8)

    def spread(p):
        x = 12 * np.log2(centres)
        mean = np.sum(p * x) / np.sum(p)
        return np.sqrt(np.sum(p * (x - mean) ** 2) / np.sum(p))

    assert spread(after) == pytest.approx(math.hypot(spread(before), 2.0), rel=0.05)
    assert np.sum(after) == pytest.approx(np.sum(before), rel=0.05)  # energy kept


def test_freeze_holds_one_moment_constant_over_the_span(builtins):
    t = np.arange(int(1.5 * SR)) / SR
    x = np.exp(-t / 0.2) * (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1320 * t))
    doc = _doc(x)
    _apply(doc, builtins, "freeze", {"at_s": 0.2, "length_s": 0.8})
    target, source = doc.target(), doc.coefficients.map(torch.abs)
    b = doc.frame.bands
    for hz in (440.0, 1320.0):
        k = int(b.wavelet_indices[np.argmin(np.abs(np.log2(b.centre_hz[b.wavelet_indices] / hz)))])
        times = target.times(k)
        got = target.groups[b.group[k]][0, b.row[k]].numpy()
        src = source.groups[b.group[k]][0, b.row[k]].numpy()
        span = (times >= 0.2) & (times <= 1.0)
        assert np.ptp(20 * np.log10(got[span])) < 0.01  # constant over the span
        moment = np.abs(times - 0.2) <= 0.01
        assert got[span][0] == pytest.approx(np.sqrt(np.mean(src[moment] ** 2)), rel=1e-5)
        outside = (times < 0.19) | (times > 1.01)
        assert np.array_equal(got[outside], src[outside])
    doc.render()
    _, held = _levels(doc, "render", 0.85, 0.95)
    _, moment = _levels(doc, "source", 0.18, 0.22)
    _, decayed = _levels(doc, "source", 0.85, 0.95)
    i440 = int(np.argmax(moment))
    assert 10 * np.log10(moment[i440] / decayed[i440]) > 25  # the source has died away by then
    assert abs(10 * np.log10(held[i440] / moment[i440])) < 3.0  # the render sustains the moment


def test_freeze_defaults_to_the_selection_and_rejects_a_moment_outside_the_sound(builtins):
    t = np.arange(SR) / SR
    doc = _doc(np.exp(-t / 0.2) * 0.3 * np.sin(2 * np.pi * 440 * t))
    _apply(doc, builtins, "freeze", {}, TimeRange(0.3, 0.7, feather_s=0.0))
    centres, early = _levels(doc, "target", 0.3, 0.35)
    _, late = _levels(doc, "target", 0.6, 0.7)
    _, after = _levels(doc, "target", 0.75, 0.9)
    _, source_after = _levels(doc, "source", 0.75, 0.9)
    audible = (centres > 200) & (centres < 2000)  # bands with coefficients in these short windows
    assert np.allclose(late[audible], early[audible], rtol=1e-3)  # held from the selection's start
    assert np.allclose(after[audible], source_after[audible])  # and released at its end
    with pytest.raises(PluginError, match="outside the sound"):
        doc.push(PluginEdit.create(builtins.get("freeze"), {"at_s": 5.0}))
