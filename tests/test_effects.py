"""Effect chains (scalgui.audio.effects): the registry, what each effect does to audio
(measured on the output), bypass, presets, VST3 failures, and the document's chains."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from scalgui.audio import save_audio
from scalgui.audio.effect_registry import CATEGORIES, EFFECTS, builtin_effect_classes
from scalgui.audio.effects import (
    PRESET_VERSION,
    EffectChain,
    apply_chain,
    apply_effect,
    chains_to_dict,
    effect,
    load_preset,
    save_preset,
    vst3_effect,
)
from scalgui.audio.errors import (
    BadEffectParameter,
    EffectError,
    EffectProcessingError,
    PluginLoadError,
    PresetError,
)

SR = 44100
UNITS = {"", "dB", "Hz", "ms", "s", "semitones", "bits", ":1"}


# --------------------------------------------------------------------------- helpers


def sine(freq_hz, seconds=1.0, amplitude=0.5, sr=SR, channels=1):
    t = np.arange(int(round(seconds * sr))) / sr
    x = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.tile(x, (channels, 1))


def noise(seconds=1.0, level=0.1, channels=1, seed=0, sr=SR):
    return (np.random.default_rng(seed).standard_normal((channels, int(seconds * sr))) * level).astype(np.float32)


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def db(ratio):
    return 20 * math.log10(ratio)


def gain_db(spec, freq_hz, sr=SR):
    """Steady-state gain in dB of ``spec`` on a sine (the first half second is skipped)."""
    x = sine(freq_hz, 1.0, 0.25, sr)
    y = apply_effect(spec, x, sr)
    return db(rms(y[:, sr // 2:]) / rms(x[:, sr // 2:]))


def band_level_db(x, lo_hz, hi_hz, sr=SR):
    spectrum = np.abs(np.fft.rfft(x[0] * np.hanning(x.shape[1]))) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / sr)
    return 10 * math.log10(spectrum[(freqs >= lo_hz) & (freqs < hi_hz)].mean() + 1e-30)


def peak_frequency(x, sr=SR, zero_pad=8):
    n = x.shape[-1]
    spectrum = np.abs(np.fft.rfft(x[0] * np.hanning(n), zero_pad * n))
    return float(np.fft.rfftfreq(zero_pad * n, 1 / sr)[np.argmax(spectrum)])


def write_ir(path, ir, sr=SR):
    save_audio(path, np.atleast_2d(ir).astype(np.float32), sr, bit_depth=32, clip="allow")
    return str(path)


@pytest.fixture
def ir_file(tmp_path):
    """A decaying noise impulse response, mono 32-bit float WAV: (path, ir[1, n])."""
    rng = np.random.default_rng(7)
    n = 2000
    ir = (rng.standard_normal(n) * np.exp(-np.arange(n) / 300.0) * 0.3).astype(np.float32)
    ir[:50] = 0.0  # a pre-delay: the convolution must keep it
    return write_ir(tmp_path / "ir.wav", ir), ir[None, :]


# --------------------------------------------------------------------------- the registry


def test_registry_holds_every_effect_pedalboard_ships():
    classes = builtin_effect_classes()
    assert set(EFFECTS) == set(classes), "an effect of this pedalboard is missing from the table (or gone from it)"
    for name in ("Reverb", "Delay", "Chorus", "Phaser", "Compressor", "Limiter", "NoiseGate", "HighpassFilter",
                 "LowpassFilter", "HighShelfFilter", "LowShelfFilter", "PeakFilter", "LadderFilter", "Distortion",
                 "Bitcrush", "PitchShift", "Gain", "Clipping", "Convolution", "GSMFullRateCompressor",
                 "MP3Compressor", "Resample", "Invert", "BrickwallLimiter"):
        assert name in EFFECTS


def test_every_parameter_is_described():
    for kind in EFFECTS.values():
        assert kind.category in CATEGORIES and kind.description, kind.name
        for p in kind.params:
            assert p.label and p.doc, (kind.name, p.name)
            assert p.kind in ("float", "bool", "choice", "file"), (kind.name, p.name)
            if p.kind == "float":
                assert p.unit in UNITS, (kind.name, p.name, p.unit)
                assert p.minimum < p.maximum and p.minimum <= p.default <= p.maximum, (kind.name, p.name)
            if p.kind == "choice":
                assert p.default in p.choices


@pytest.mark.parametrize("name", [n for n in EFFECTS if n != "Convolution"])
def test_defaults_are_pedalboards(name):
    plugin = getattr(pedalboard, name)()
    for p in EFFECTS[name].params:
        actual = getattr(plugin, p.name)
        if p.kind == "choice":
            assert actual.name == p.default, p.name
        elif p.kind == "bool":
            assert bool(actual) is p.default, p.name
        else:
            assert float(actual) == pytest.approx(p.default, rel=1e-6, abs=1e-6), p.name  # float32 inside


def _settings(name, ir_path):
    """Defaults, then each float parameter at its minimum and at its maximum."""
    base = {"impulse_response": ir_path} if name == "Convolution" else {}
    yield base
    for p in EFFECTS[name].params:
        if p.kind == "float":
            yield {**base, p.name: p.minimum}
            yield {**base, p.name: p.maximum}
        elif p.kind == "choice":
            for choice in p.choices:
                yield {**base, p.name: choice}
        elif p.kind == "bool":
            yield {**base, p.name: not p.default}


@pytest.mark.parametrize("name", list(EFFECTS))
def test_every_effect_runs_with_defaults_and_at_both_ends_of_every_range(name, ir_file):
    sr = 48000  # above 40 kHz, so 20 kHz cut-offs are below Nyquist
    x = noise(0.1, 0.1, channels=2, sr=sr)
    for params in _settings(name, ir_file[0]):
        y = apply_chain([effect(name, **params)], x, sr)
        assert y.shape == x.shape and y.dtype == np.float32, params
        assert np.isfinite(y).all(), params


def test_out_of_range_and_unknown_parameters_are_refused_with_the_range():
    with pytest.raises(BadEffectParameter, match=r"Reverb: room_size 1\.5 is outside 0 to 1"):
        effect("Reverb", room_size=1.5)
    with pytest.raises(BadEffectParameter, match=r"cutoff_frequency_hz 5 Hz is outside 20 to 20000 Hz"):
        effect("HighpassFilter", cutoff_frequency_hz=5)
    with pytest.raises(BadEffectParameter, match="no parameter 'size'.*room_size"):
        effect("Reverb", size=0.5)
    with pytest.raises(BadEffectParameter, match="unknown effect type 'Flanger'"):
        effect("Flanger")
    with pytest.raises(BadEffectParameter, match="must be true or false"):
        effect("BrickwallLimiter", true_peak=1)
    with pytest.raises(BadEffectParameter, match="mode must be one of LPF12"):
        effect("LadderFilter", mode="notch")
    with pytest.raises(BadEffectParameter, match="must be a number"):
        effect("Gain", gain_db="loud")


def test_a_frequency_above_nyquist_is_refused_when_the_chain_runs():
    spec = effect("LowpassFilter", cutoff_frequency_hz=15000.0)
    with pytest.raises(BadEffectParameter, match=r"not below Nyquist \(11025 Hz at 22050 Hz\)"):
        apply_chain([spec], sine(440, 0.1, sr=22050), 22050)
    assert np.isfinite(apply_chain([spec], sine(440, 0.1), SR)).all()


# --------------------------------------------------------------------------- what each effect does


def test_gain_scales_by_its_decibels():
    x = noise(0.5)
    assert rms(apply_effect(effect("Gain", gain_db=6.0), x, SR)) / rms(x) == pytest.approx(2.0, rel=0.01)
    assert rms(apply_effect(effect("Gain", gain_db=-20.0), x, SR)) / rms(x) == pytest.approx(0.1, rel=1e-4)


def test_highpass_and_lowpass_are_first_order_at_their_cutoff():
    # First order (6 dB/octave): |H| = f/sqrt(f^2 + fc^2) for the high-pass.
    hp = effect("HighpassFilter", cutoff_frequency_hz=1000.0)
    assert gain_db(hp, 100) < -19.5  # a decade below: about -20 dB
    assert gain_db(hp, 100) == pytest.approx(db(100 / math.hypot(100, 1000)), abs=0.3)
    assert gain_db(hp, 1000) == pytest.approx(-3.01, abs=0.2)
    assert -1.0 < gain_db(hp, 5000) <= 0.05
    lp = effect("LowpassFilter", cutoff_frequency_hz=1000.0)
    assert -1.0 < gain_db(lp, 100) <= 0.05
    assert gain_db(lp, 1000) == pytest.approx(-3.01, abs=0.2)
    assert gain_db(lp, 10000) < -19.0


def test_shelves_and_peak_boost_where_they_say():
    high = effect("HighShelfFilter", cutoff_frequency_hz=1000.0, gain_db=12.0)
    low = effect("LowShelfFilter", cutoff_frequency_hz=1000.0, gain_db=12.0)
    peak = effect("PeakFilter", cutoff_frequency_hz=1000.0, gain_db=-12.0, q=2.0)
    assert gain_db(high, 100) == pytest.approx(0.0, abs=0.3) and gain_db(high, 10000) == pytest.approx(12.0, abs=0.3)
    assert gain_db(low, 100) == pytest.approx(12.0, abs=0.3) and gain_db(low, 10000) == pytest.approx(0.0, abs=0.3)
    assert gain_db(high, 1000) == pytest.approx(6.0, abs=0.3)  # half the shelf's gain at the corner
    assert gain_db(peak, 1000) == pytest.approx(-12.0, abs=0.3)
    assert abs(gain_db(peak, 100)) < 0.3 and abs(gain_db(peak, 10000)) < 0.3


def test_ladder_filter_modes():
    lp = effect("LadderFilter", mode="LPF24", cutoff_hz=1000.0)
    hp = effect("LadderFilter", mode="HPF24", cutoff_hz=1000.0)
    assert abs(gain_db(lp, 100)) < 1.0 and gain_db(lp, 10000) < -60
    assert abs(gain_db(hp, 10000)) < 1.0 and gain_db(hp, 100) < -60
    assert gain_db(effect("LadderFilter", mode="LPF12", cutoff_hz=1000.0), 10000) == pytest.approx(-39, abs=3)


def test_delay_puts_an_echo_at_the_delay():
    x = noise(1.0, 0.1)
    y = apply_effect(effect("Delay", delay_seconds=0.1, feedback=0.0, mix=0.5), x, SR)
    power = np.abs(np.fft.rfft(y[0], 2 * y.shape[1])) ** 2
    autocorrelation = np.fft.irfft(power)[: SR // 2]
    lag = 100 + int(np.argmax(autocorrelation[100:]))  # beyond the zero-lag peak
    assert lag == int(0.1 * SR)
    assert autocorrelation[lag] / autocorrelation[0] == pytest.approx(0.5, abs=0.05)  # equal dry and echo
    wet = apply_effect(effect("Delay", delay_seconds=0.1, feedback=0.0, mix=1.0), x, SR)
    np.testing.assert_allclose(wet[0, 4410:], x[0, :-4410], atol=1e-6)


def test_reverb_lengthens_the_decay_and_a_bigger_room_more():
    x = np.zeros((2, 2 * SR), np.float32)
    x[:, : SR // 10] = noise(0.1, 0.3, channels=2)
    dry_tail = rms(x[:, SR // 2: SR // 2 + 2205])
    assert dry_tail == 0.0

    def tail_db(room, at_s):
        y = apply_effect(effect("Reverb", room_size=room, wet_level=0.5, dry_level=0.5), x, SR)
        start = int(at_s * SR)
        return db(rms(y[:, start:start + 2205]) / rms(x[:, : SR // 10]))

    assert tail_db(0.8, 0.5) > -40  # half a second after the burst, still ringing
    assert tail_db(0.8, 1.0) - tail_db(0.2, 1.0) > 30  # the big room rings far longer


def test_bitcrush_adds_quantisation_noise_of_the_expected_level():
    x = noise(0.5, 0.2)
    for bits in (6, 8, 12):
        error = apply_effect(effect("Bitcrush", bit_depth=float(bits)), x, SR) - x
        # Rounding to steps of 2^-bits: uniform error, RMS = step / sqrt(12).
        assert rms(error) == pytest.approx(2.0 ** -bits / math.sqrt(12), rel=0.1), bits


def test_pitch_shift_moves_a_sine_and_keeps_the_length():
    x = sine(1000, 2.0)
    up = apply_effect(effect("PitchShift", semitones=12.0), x, SR)
    assert up.shape == x.shape
    assert peak_frequency(up[:, SR // 2:]) == pytest.approx(2000, rel=0.01)
    fifth = apply_effect(effect("PitchShift", semitones=7.0), x, SR)
    assert peak_frequency(fifth[:, SR // 2:]) == pytest.approx(1000 * 2 ** (7 / 12), rel=0.01)


def test_convolution_with_an_impulse_response_file_is_numpys_convolution(ir_file):
    path, ir = ir_file
    x = noise(0.5, 0.1, channels=2)
    expected = np.stack([np.convolve(c.astype(np.float64), ir[0].astype(np.float64))[: x.shape[1]] for c in x])
    plain = apply_effect(effect("Convolution", impulse_response=path, normalize=False, mix=1.0), x, SR)
    np.testing.assert_allclose(plain, expected, atol=1e-5 * np.abs(expected).max())
    # pedalboard's own (normalised) convolution: the same, scaled to 0.125 / ||h||.
    scaled = apply_effect(effect("Convolution", impulse_response=path, mix=1.0), x, SR)
    np.testing.assert_allclose(scaled, expected * 0.125 / np.linalg.norm(ir), atol=1e-6)
    half = apply_effect(effect("Convolution", impulse_response=path, normalize=False, mix=0.5), x, SR)
    np.testing.assert_allclose(half, 0.5 * x + 0.5 * expected, atol=1e-5 * np.abs(expected).max())


def test_convolution_with_a_stereo_impulse_response(tmp_path):
    rng = np.random.default_rng(3)
    ir = np.zeros((2, 1000), np.float32)
    ir[0, 10:] = rng.standard_normal(990) * np.exp(-np.arange(990) / 100)
    ir[1, 200:] = 0.5 * rng.standard_normal(800) * np.exp(-np.arange(800) / 200)
    path = write_ir(tmp_path / "stereo.wav", ir)
    x = noise(0.3, 0.1, channels=2)
    y = apply_effect(effect("Convolution", impulse_response=path, normalize=False), x, SR)
    expected = np.stack([np.convolve(x[c], ir[c])[: x.shape[1]] for c in range(2)])
    np.testing.assert_allclose(y, expected, atol=1e-5 * np.abs(expected).max())


def test_convolution_file_problems_name_the_file(tmp_path):
    with pytest.raises(BadEffectParameter, match="Convolution: no impulse response file chosen"):
        apply_chain([effect("Convolution")], noise(0.1), SR)
    missing = tmp_path / "hall.wav"
    with pytest.raises(EffectError, match=r"Convolution: impulse response: cannot read .*hall\.wav.*no such file"):
        apply_chain([effect("Convolution", impulse_response=str(missing))], noise(0.1), SR)


def test_dynamics():
    loud = sine(440, 2.0, 0.9)
    quiet = sine(440, 2.0, 0.01)
    comp = effect("Compressor", threshold_db=-20.0, ratio=4.0)
    in_peak = db(0.9)
    out = apply_effect(comp, loud, SR)
    out_peak = db(np.abs(out[:, SR:]).max())
    assert out_peak == pytest.approx(-20 + (in_peak + 20) / 4, abs=1.0)  # 4 dB in per dB out over -20
    assert db(rms(apply_effect(comp, quiet, SR)[:, SR:]) / rms(quiet[:, SR:])) == pytest.approx(0.0, abs=0.1)

    limited = apply_effect(effect("Limiter", threshold_db=-10.0), loud, SR)
    assert np.abs(limited).max() <= 1.0 + 1e-6
    boosted = apply_effect(effect("Limiter", threshold_db=-10.0), quiet, SR)
    assert rms(boosted[:, SR:]) > 2 * rms(quiet[:, SR:])  # make-up gain lifts what is below

    wall = apply_effect(effect("BrickwallLimiter", ceiling_db=-6.0), loud, SR)
    assert db(np.abs(wall[:, SR:]).max()) <= -6.0 + 0.05

    gate = effect("NoiseGate", threshold_db=-40.0, ratio=10.0)
    faint = sine(440, 2.0, 0.001)
    assert db(rms(apply_effect(gate, faint, SR)[:, SR:]) / rms(faint[:, SR:])) < -30
    assert db(rms(apply_effect(gate, loud, SR)[:, SR:]) / rms(loud[:, SR:])) == pytest.approx(0.0, abs=0.1)


def test_chorus_and_phaser_modulate():
    x = sine(1000, 3.0)

    def sideband_share(y):
        spectrum = np.abs(np.fft.rfft(y[0, SR:] * np.hanning(y.shape[1] - SR))) ** 2
        freqs = np.fft.rfftfreq(y.shape[1] - SR, 1 / SR)
        return spectrum[np.abs(freqs - 1000) > 5].sum() / spectrum.sum()

    assert sideband_share(apply_effect(effect("Chorus", rate_hz=2.0, depth=0.25, mix=1.0), x, SR)) > 0.3
    assert sideband_share(apply_effect(effect("Chorus", rate_hz=2.0, depth=0.0, mix=1.0), x, SR)) < 1e-6

    tone = sine(1300, 3.0)

    def envelope_range_db(depth):
        y = apply_effect(effect("Phaser", rate_hz=2.0, depth=depth, centre_frequency_hz=1300.0, mix=0.5), tone, SR)
        env = np.array([rms(y[:, i:i + 220]) for i in range(SR, 3 * SR - 220, 220)])
        return db(env.max() / env.min())

    assert envelope_range_db(1.0) > 10  # the notches sweep across the tone
    assert envelope_range_db(0.0) < 3


def test_waveshapers_and_invert():
    x = sine(440, 0.2, 0.5)
    np.testing.assert_allclose(apply_effect(effect("Distortion", drive_db=12.0), x, SR),
                               np.tanh(x * 10 ** (12 / 20)), atol=1e-6)
    clipped = apply_effect(effect("Clipping", threshold_db=-12.0), x, SR)
    ceiling = 10 ** (-12 / 20)
    assert np.abs(clipped).max() == pytest.approx(ceiling, rel=1e-5)
    below = np.abs(x) < ceiling
    np.testing.assert_array_equal(clipped[below], x[below])
    np.testing.assert_array_equal(apply_effect(effect("Invert"), x, SR), -x)


def test_lofi_effects_remove_the_top_octaves():
    x = noise(1.0, 0.1)
    for spec in (effect("Resample", target_sample_rate=8000.0), effect("GSMFullRateCompressor")):
        y = apply_effect(spec, x, SR)
        assert band_level_db(y, 5000, 20000) - band_level_db(x, 5000, 20000) < -40, spec.type
    resampled = apply_effect(effect("Resample", target_sample_rate=8000.0), x, SR)
    assert abs(band_level_db(resampled, 500, 3000) - band_level_db(x, 500, 3000)) < 1.0
    mp3 = apply_effect(effect("MP3Compressor", vbr_quality=9.0), x, SR)
    assert band_level_db(mp3, 17500, 20000) - band_level_db(x, 17500, 20000) < -20  # low quality: lowpassed
    with pytest.raises(EffectProcessingError, match="MP3Compressor failed while processing: MP3 only supports"):
        apply_effect(effect("MP3Compressor"), noise(0.1, sr=37000), 37000)


# --------------------------------------------------------------------------- chains and bypass


def test_bypass_is_identity_and_a_chain_never_changes_its_input():
    x = noise(0.3, 0.1, channels=2)
    before = x.copy()
    specs = [effect(name, bypass=True) for name in EFFECTS if name != "Convolution"]
    out = apply_chain(EffectChain("render", tuple(specs)), x, SR)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    chain = EffectChain("render", (effect("Gain", gain_db=6.0), effect("Reverb", bypass=True), effect("Invert")))
    np.testing.assert_array_equal(apply_chain(chain, x, SR),
                                  apply_chain([effect("Gain", gain_db=6.0), effect("Invert")], x, SR))
    np.testing.assert_array_equal(x, before)
    with pytest.raises(EffectError):
        apply_chain([effect("Gain", gain_db=6.0), vst3_effect("/no/such/plugin.vst3")], x, SR)
    np.testing.assert_array_equal(x, before)


def test_chain_edits_are_values():
    a, b, c = effect("Gain"), effect("Reverb"), effect("Invert")
    chain = EffectChain("source").added(a).added(b).added(c, index=0)
    assert [s.type for s in chain] == ["Invert", "Gain", "Reverb"]
    assert [s.type for s in chain.moved(0, 2)] == ["Gain", "Reverb", "Invert"]
    assert [s.type for s in chain.removed(1)] == ["Invert", "Reverb"]
    assert chain.replaced(1, a.with_bypass()).active == (c, b)
    assert chain.with_placement("render").placement == "render" and chain.placement == "source"
    assert chain.describe() == "Invert > Gain > Reverb"
    assert b.with_params(room_size=0.9).params["room_size"] == 0.9 and b.params["room_size"] == 0.5
    with pytest.raises(TypeError):
        b.params["room_size"] = 1.0  # specs are read-only values
    with pytest.raises(ValueError, match="placement"):
        EffectChain("middle")
    assert effect("Gain", gain_db=3.0) == effect("Gain", gain_db=3.0) != effect("Gain", gain_db=3.5)


# --------------------------------------------------------------------------- presets


def _every_effect_chain(ir_path):
    rng = np.random.default_rng(5)
    specs = []
    for name, kind in EFFECTS.items():
        params = {}
        for p in kind.params:
            if p.kind == "float":
                params[p.name] = float(rng.uniform(p.minimum, p.maximum))  # full-precision floats
            elif p.kind == "choice":
                params[p.name] = p.choices[-1]
            elif p.kind == "bool":
                params[p.name] = not p.default
            else:
                params[p.name] = ir_path
        specs.append(effect(name, bypass=bool(len(specs) % 3 == 0), **params))
    return specs


def test_preset_round_trip_is_exact(tmp_path, ir_file):
    specs = _every_effect_chain(ir_file[0])
    chains = (EffectChain("source", tuple(specs[:12]) + (effect("Gain", gain_db=0.1 + 0.2),)),
              EffectChain("render", tuple(specs[12:]) + (vst3_effect("/opt/vst3/Fancy.vst3", plugin_name="Fancy Verb",
                                                                      params={"mix": 0.3, "mode": "Hall",
                                                                              "on": True}),)))
    path = save_preset(tmp_path / "all.json", chains)
    loaded = load_preset(path)
    assert loaded == chains
    assert json.loads(path.read_text()) == chains_to_dict(chains)
    again = save_preset(tmp_path / "again.json", loaded)
    assert again.read_text() == path.read_text()
    data = json.loads(path.read_text())
    assert data["format"] == "scalgui-effects" and data["version"] == PRESET_VERSION
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left nothing behind


def test_preset_fills_defaults_and_resolves_relative_paths(tmp_path, ir_file):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "irs").mkdir()
    os.replace(ir_file[0], folder / "irs" / "hall.wav")
    (folder / "p.json").write_text(json.dumps({
        "format": "scalgui-effects", "version": 1,
        "chains": [{"placement": "render", "effects": [
            {"type": "Reverb", "params": {"room_size": 0.9}},
            {"type": "Convolution", "params": {"impulse_response": "irs/hall.wav"}},
        ]}]}))
    (chain,) = load_preset(folder / "p.json")
    assert chain[0] == effect("Reverb", room_size=0.9)
    assert chain[1].params["impulse_response"] == str(folder.resolve() / "irs" / "hall.wav")
    assert np.isfinite(apply_chain(chain, noise(0.1), SR)).all()


def _preset(chains, **top):
    return {"format": "scalgui-effects", "version": 1, "chains": chains, **top}


BAD_PRESETS = {
    "not json": ("{nope", "not valid JSON: Expecting property name"),
    "a list": ("[]", "the top level must be an object"),
    "another format": (json.dumps({"format": "other", "version": 1, "chains": []}), "not a scalgui effects preset"),
    "newer version": (json.dumps(_preset([], version=2)), "preset version 2 is newer than this scalgui reads (1)"),
    "unknown effect": (json.dumps(_preset([{"placement": "render", "effects": [{"type": "Flanger"}]}])),
                       "chains[0].effects[0]: Flanger: unknown effect type 'Flanger'"),
    "unknown parameter": (json.dumps(_preset([{"effects": [{"type": "Gain", "params": {"volume": 3}}]}])),
                          "chains[0].effects[0]: Gain: no parameter 'volume'; it has: gain_db"),
    "out of range": (json.dumps(_preset([{"effects": [{"type": "Reverb", "params": {"room_size": 3}}]}])),
                     "Reverb: room_size 3 is outside 0 to 1"),
    "wrong type": (json.dumps(_preset([{"effects": [{"type": "Gain", "params": {"gain_db": "loud"}}]}])),
                   "gain_db must be a number"),
    "bad bypass": (json.dumps(_preset([{"effects": [{"type": "Gain", "bypass": "yes"}]}])),
                   "\"bypass\" must be true or false"),
    "bad placement": (json.dumps(_preset([{"placement": "middle", "effects": []}])),
                      "placement must be one of source, render"),
    "two render chains": (json.dumps(_preset([{"placement": "render"}, {"placement": "render"}])),
                          "chains[1]: a second 'render' chain"),
    "vst3 without path": (json.dumps(_preset([{"effects": [{"type": "VST3", "params": {}}]}])),
                          "needs a \"path\""),
    "unknown key": (json.dumps(_preset([{"effects": [{"type": "Gain", "gian_db": 3}]}])), "unknown key(s) 'gian_db'"),
}


@pytest.mark.parametrize("case", list(BAD_PRESETS))
def test_a_bad_preset_names_the_file_and_the_problem(case, tmp_path):
    text, problem = BAD_PRESETS[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    message = str(info.value)
    assert message.startswith(f"cannot read preset '{path}': "), message
    assert problem in message
    assert "\n" not in message


def test_preset_files_that_are_not_there_or_not_text(tmp_path):
    with pytest.raises(PresetError, match=r"cannot read preset '.*missing\.json': no such file"):
        load_preset(tmp_path / "missing.json")
    with pytest.raises(PresetError, match="is a folder"):
        load_preset(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(PresetError, match="not a text file"):
        load_preset(tmp_path / "bin.json")
    with pytest.raises(PresetError, match=r"cannot write preset '.*nofolder.*'"):
        save_preset(tmp_path / "nofolder" / "p.json", [EffectChain("render")])
    with pytest.raises(PresetError, match="one chain per placement"):
        save_preset(tmp_path / "two.json", [EffectChain("render"), EffectChain("render")])


# --------------------------------------------------------------------------- VST3


def test_vst3_that_cannot_load_names_the_plugin_and_the_problem(tmp_path, monkeypatch):
    from scalgui.audio.vst3 import load_vst3

    monkeypatch.setenv("SCALGUI_VST3_PATH", str(tmp_path))  # as if installed in a VST3 folder

    with pytest.raises(PluginLoadError, match=r"cannot load VST3 plugin '.*Nothere\.vst3': no such file or folder"):
        load_vst3(tmp_path / "Nothere.vst3")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(PluginLoadError, match=r"'.*notes\.txt': not a VST3 plugin: expected a \.vst3"):
        load_vst3(text)
    fake = tmp_path / "Fake.vst3"
    fake.write_text("not a plugin")
    with pytest.raises(PluginLoadError, match=r"cannot load VST3 plugin '.*Fake\.vst3': .*(scan|load)"):
        load_vst3(fake)
    bundle = tmp_path / "Bundle.vst3"
    (bundle / "Contents").mkdir(parents=True)
    with pytest.raises(PluginLoadError, match=r"Bundle\.vst3"):
        load_vst3(bundle)


def test_a_broken_vst3_in_a_chain_leaves_the_audio_alone(tmp_path):
    fake = tmp_path / "Fake.vst3"
    fake.write_text("not a plugin")
    x = noise(0.1)
    before = x.copy()
    with pytest.raises(PluginLoadError, match="Fake.vst3"):
        apply_chain([effect("Gain", gain_db=6.0), vst3_effect(fake)], x, SR)
    np.testing.assert_array_equal(x, before)


class FakeParameter:
    def __init__(self, name, type_, lo=None, hi=None, label="", values=()):
        self.name, self.type, self.min_value, self.max_value, self.label = name, type_, lo, hi, label
        self.valid_values, self.step_size, self.approximate_step_size = list(values), None, None


class FakePlugin:
    """Stands in for a pedalboard.VST3Plugin: parameters, attributes, process."""

    def __init__(self, process=None):
        self.parameters = {"mix": FakeParameter("Mix", float, 0.0, 100.0, "%"),
                           "bypass_tail": FakeParameter("Bypass Tail", bool),
                           "mode": FakeParameter("Mode", str, values=("Room", "Hall"))}
        self.mix, self.bypass_tail, self.mode = 50.0, False, "Room"
        self._process = process

    def process(self, x, sample_rate, buffer_size=8192, reset=True):
        return self._process(x)


def test_vst3_parameters_become_a_generic_form():
    from scalgui.audio.vst3 import set_vst3_parameters, vst3_parameter_specs, vst3_parameter_values

    plugin = FakePlugin()
    specs = {s.name: s for s in vst3_parameter_specs(plugin)}
    assert (specs["mix"].kind, specs["mix"].minimum, specs["mix"].maximum, specs["mix"].unit) == ("float", 0, 100, "%")
    assert specs["mix"].default == 50.0 and specs["mix"].label == "Mix"
    assert specs["bypass_tail"].kind == "bool"
    assert specs["mode"].kind == "choice" and specs["mode"].choices == ("Room", "Hall")
    set_vst3_parameters(plugin, {"mix": 20.0, "mode": "Hall"})
    assert vst3_parameter_values(plugin) == {"mix": 20.0, "bypass_tail": False, "mode": "Hall"}
    with pytest.raises(BadEffectParameter, match="VST3 'X': has no parameter 'wet'; it has: mix, bypass_tail, mode"):
        set_vst3_parameters(plugin, {"wet": 1.0}, label="VST3 'X'")


def test_a_vst3_that_raises_or_returns_nan_while_processing(monkeypatch):
    from scalgui.audio import vst3

    def boom(x):
        raise RuntimeError("plugin crashed in processBlock")

    for behaviour, message in ((boom, "plugin crashed in processBlock"),
                               (lambda x: x * np.nan, "produced NaN or infinite samples"),
                               (lambda x: x[:1], "returned audio of shape")):
        monkeypatch.setattr(vst3, "load_vst3", lambda path, name=None, b=behaviour: FakePlugin(b))
        x = noise(0.1, channels=2)
        before = x.copy()
        with pytest.raises(EffectProcessingError) as info:
            apply_chain([vst3_effect("/plugins/Wobble.vst3", params={"mix": 10.0})], x, SR)
        assert str(info.value).startswith("VST3 'Wobble' '/plugins/Wobble.vst3' failed while processing: ")
        assert message in str(info.value) and "the audio was left unchanged" in str(info.value)
        np.testing.assert_array_equal(x, before)
    # The thin success path: a plugin that works runs with its parameters set.
    monkeypatch.setattr(vst3, "load_vst3", lambda path, name=None: FakePlugin(lambda x: x * 0.5))
    np.testing.assert_allclose(apply_chain([vst3_effect("/plugins/Half.vst3")], noise(0.1), SR), noise(0.1) * 0.5)


def test_vst3_folders_and_search(tmp_path):
    from scalgui.audio.vst3 import find_vst3_plugins, vst3_folders

    assert vst3_folders("linux", {"HOME": "/home/ada"}) == [
        Path(p) for p in ("/home/ada/.vst3", "/usr/lib/vst3", "/usr/local/lib/vst3")]
    mac = [str(p) for p in vst3_folders("darwin", {"HOME": "/Users/ada"})]
    assert mac[:2] == ["/Users/ada/Library/Audio/Plug-Ins/VST3", "/Library/Audio/Plug-Ins/VST3"]
    win = [str(p) for p in vst3_folders("win32", {"COMMONPROGRAMFILES": "C:\\Program Files\\Common Files",
                                                 "LOCALAPPDATA": "C:\\Users\\ada\\AppData\\Local"})]
    assert win == ["C:\\Users\\ada\\AppData\\Local\\Programs\\Common\\VST3", "C:\\Program Files\\Common Files\\VST3"]

    (tmp_path / "a" / "Vendor" / "Verb.vst3" / "Contents" / "Inner.vst3").mkdir(parents=True)
    (tmp_path / "a" / "Comp.vst3").write_text("")
    (tmp_path / "a" / "readme.txt").write_text("")
    found = find_vst3_plugins([tmp_path / "a", tmp_path / "missing"])
    assert [p.name for p in found] == ["Comp.vst3", "Verb.vst3"]  # not inside a bundle, missing folders skipped


# --------------------------------------------------------------------------- the document's chains


@pytest.fixture
def doc():
    from scalgui.app.document import Document
    from scalgui.dsp import signals

    sr = 22050
    left = signals.chord((220.0, 330.0), 1.0, sr, amplitude=0.3)
    return Document(np.stack([left, left[::-1].copy()]), sr, device="cpu")


def _level(doc, layer, t, hz):
    raster = doc.raster(t - 0.005, t + 0.005, 1, channel="left", layer=layer)
    row = int(np.argmin(np.abs(np.log2(raster.centre_hz) - math.log2(hz))))
    return float(raster.db[row, 0])


def test_a_source_chain_reanalyses_and_keeps_the_edits(doc):
    from scalgui.dsp.edits import Edit, Rectangle

    original = doc.samples.copy()
    doc.push(Edit(Rectangle(0.3, 0.7, 180, 260), "gain", -20))
    before_target, before_source = _level(doc, "target", 0.5, 220), _level(doc, "source", 0.5, 220)
    events = []
    doc.events.changed.connect(events.append)
    doc.set_effect_chain(EffectChain("source", (effect("Gain", gain_db=6.0),)))
    assert events == ["analysis", "effects"]
    np.testing.assert_allclose(doc.samples, original * 10 ** (6 / 20), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(doc.original_samples, original)
    assert len(doc.edits) == 1 and doc.unrendered_edits and doc.rendered is None
    # The analysis is of the processed sound, and the edit still acts on it, in seconds and Hz.
    assert _level(doc, "source", 0.5, 220) == pytest.approx(before_source + 6.0, abs=0.05)
    assert _level(doc, "target", 0.5, 220) == pytest.approx(before_target + 6.0, abs=0.05)
    assert _level(doc, "source", 0.5, 220) - _level(doc, "target", 0.5, 220) == pytest.approx(20, abs=1)
    doc.render()  # from the processed source: 6 dB louder than the file, less the edited partial
    assert db(rms(doc.rendered) / rms(original)) == pytest.approx(6.0, abs=1.5)
    assert abs(db(rms(doc.rendered) / rms(doc.samples))) < 1.5


def test_a_failing_source_chain_leaves_the_document_as_it_was(doc, tmp_path):
    samples, coefficients = doc.samples, doc.coefficients
    events = []
    doc.events.changed.connect(events.append)
    with pytest.raises(PluginLoadError):
        doc.set_effect_chain(EffectChain("source", (effect("Gain"), vst3_effect(tmp_path / "Gone.vst3"))))
    assert doc.samples is samples and doc.coefficients is coefficients
    assert doc.effect_chain("source") == EffectChain("source") and events == []
    doc.set_effect_chain(EffectChain("source"))  # the same chain again: nothing happens
    assert events == []


def test_the_render_chain_is_heard_and_exported_not_rendered(doc, tmp_path, monkeypatch):
    from scalgui.audio import AudioWriteError, load_audio, vst3

    chain = EffectChain("render", (effect("Gain", gain_db=-6.0), effect("Invert")))
    events = []
    doc.events.changed.connect(events.append)
    doc.set_effect_chain(chain)
    assert events == ["effects"] and doc.effect_chain("render") == chain
    np.testing.assert_allclose(doc.output(), -doc.samples * 10 ** (-6 / 20), rtol=1e-6, atol=1e-7)
    assert doc.output() is doc.output()  # cached until the render or the chain changes
    report = doc.export(tmp_path / "out.wav", bit_depth=32)
    np.testing.assert_allclose(load_audio(report.path).samples, doc.output(), atol=1e-7)
    # A chain that cannot run is refused when it is set...
    with pytest.raises(PluginLoadError, match="Gone.vst3"):
        doc.set_effect_chain(EffectChain("render", (vst3_effect(tmp_path / "Gone.vst3"),)))
    assert doc.effect_chain("render") == chain
    # ...and one that breaks later (a plugin that starts failing) fails the export like any
    # failed write, writing nothing.
    monkeypatch.setattr(vst3, "load_vst3", lambda path, name=None: FakePlugin(lambda x: x))
    doc.set_effect_chain(EffectChain("render", (vst3_effect("/plugins/Flaky.vst3"),)))
    monkeypatch.setattr(vst3, "load_vst3", lambda path, name=None: FakePlugin(lambda x: x * np.inf))
    with pytest.raises(AudioWriteError, match=r"cannot write '.*late\.wav': VST3 'Flaky' .* failed while processing"):
        doc.export(tmp_path / "late.wav")
    assert not (tmp_path / "late.wav").exists()


def test_effect_preview_runs_a_span_with_a_tail_and_changes_nothing(doc):
    chain = EffectChain("render", (effect("Delay", delay_seconds=0.05, mix=1.0),))
    start, audio = doc.preview_effects(chain, 0.2, 0.5, tail_s=0.25)
    sr = doc.sample_rate
    assert start == pytest.approx(0.2) and audio.shape == (2, int(0.3 * sr) + int(0.25 * sr))
    delay = int(0.05 * sr)
    np.testing.assert_allclose(audio[:, delay:int(0.3 * sr) + delay], doc.samples[:, int(0.2 * sr):int(0.5 * sr)],
                               atol=1e-6)
    assert doc.effect_chain("render") == EffectChain("render")
    with pytest.raises(ValueError, match="nothing to preview"):
        doc.preview_effects(chain, 5.0, 6.0)


@pytest.mark.parametrize("name", ["BrickwallLimiter", "Reverb", "Delay"])
def test_running_without_a_reset_gives_the_same_audio_latency_included(name):
    """VST3 plugins run with reset=False (pedalboard resets them on the main thread only):
    a plugin with latency (the brick-wall limiter's look-ahead) must still come out aligned
    and as long as its input."""
    from scalgui.audio.effects import _builtin_plugin, _process

    x = np.random.default_rng(3).standard_normal((2, SR // 2)).astype(np.float32) * 0.5
    spec = effect(name)
    with_reset = _process(_builtin_plugin(spec, SR)[0], x, SR, reset=True)
    without = _process(_builtin_plugin(spec, SR)[0], x, SR, reset=False)
    assert without.shape == x.shape
    np.testing.assert_allclose(without, with_reset, atol=1e-6)
