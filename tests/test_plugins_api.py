"""The plugin API: parameter declarations, plugin declarations, the context, the host.

Plugins here are declared in the tests themselves; the built-ins have their own tests.
"""
import math
import warnings

import numpy as np
import pytest
import torch

from scalgui.dsp.edits import Edit, Rectangle, TimeRange, apply_edits
from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.plugins import (
    Param,
    Plugin,
    PluginContext,
    PluginEdit,
    PluginError,
    PluginWarning,
    Registry,
    apply_edit_list,
    run_plugin,
    selection_weights,
)

SR = 22050


@pytest.fixture(scope="module")
def coeffs():
    """Frame coefficients of 1 s of two channels: a 440 Hz tone, and noise."""
    frame = WaveletFrame(FrameSettings(SR, voices_per_octave=12, fmin=50.0), device="cpu")
    t = np.arange(SR) / SR
    rng = np.random.default_rng(3)
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * rng.standard_normal(SR)]).astype(np.float32)
    return frame.analyze(torch.from_numpy(x))


def _gain_plugin(db=6.0, **kwargs):
    def process(ctx):
        gain = 10 ** (ctx.params["gain_db"] / 20)
        for k in ctx.wavelets:
            ctx.band(k).mul_(gain)
        return ctx.magnitudes

    return Plugin("gain", "Gain", "Change the level.",
                  params=(Param("gain_db", "float", db, minimum=-60, maximum=60, unit="dB"),), process=process, **kwargs)


# --------------------------------------------------------------------------- Param


@pytest.mark.parametrize("param, text, value", [
    (Param("x", "float", 1.0, minimum=0, maximum=2), "1.5", 1.5),
    (Param("n", "int", 3, minimum=1, maximum=9), "7", 7),
    (Param("n", "int", 3), 4.0, 4),
    (Param("b", "bool"), "yes", True),
    (Param("b", "bool", True), "off", False),
    (Param("c", "choice", choices=("a", "b")), "b", "b"),
    (Param("r", "range", unit="s"), "0.5:1.25", (0.5, 1.25)),
    (Param("r", "range"), [1, 2], (1.0, 2.0)),
    (Param("f", "file"), "/tmp/x.png", "/tmp/x.png"),
])
def test_param_parses_command_line_text_and_values(param, text, value):
    assert param.coerce(text) == value
    assert type(param.coerce(text)) is type(value)


@pytest.mark.parametrize("param, bad, message", [
    (Param("x", "float", 1.0, minimum=0, maximum=2), "3", "above the maximum 2"),
    (Param("x", "float", 1.0, minimum=0, maximum=2), "-1", "below the minimum 0"),
    (Param("x", "float"), "nan", "finite"),
    (Param("x", "float"), "abc", "expected a number"),
    (Param("n", "int"), "2.5", "whole number"),
    (Param("b", "bool"), "maybe", "yes/no"),
    (Param("c", "choice", choices=("a", "b")), "z", "not one of: a, b"),
    (Param("r", "range"), "2:1", "runs backwards"),
    (Param("r", "range"), "1", "LO:HI"),
    (Param("f", "file"), "", "needs a file"),
])
def test_param_rejects_bad_values_naming_the_parameter(param, bad, message):
    with pytest.raises(ValueError, match=message) as info:
        param.coerce(bad)
    assert repr(param.name) in str(info.value)


def test_param_defaults_and_bad_declarations():
    assert Param("x", "float", minimum=2.0).default == 2.0  # 0 is out of range: the minimum
    assert Param("c", "choice", choices=("lo", "hi")).default == "lo"
    assert Param("r", "range", unit="s").default == (0.0, 0.0)
    assert Param("f", "file").default == ""  # an empty file is a valid default, not a valid run value
    assert Param("gain_db", "float").label == "Gain db"
    assert Param("x", "float", 2.5, unit="dB").format(2.5) == "2.5 dB"
    with pytest.raises(ValueError, match="unknown kind"):
        Param("x", "colour")
    with pytest.raises(ValueError, match="above the maximum"):
        Param("x", "float", 5.0, minimum=0, maximum=1)
    with pytest.raises(ValueError, match="at least one value"):
        Param("c", "choice")
    with pytest.raises(ValueError, match="Python identifier"):
        Param("two words", "float")
    with pytest.raises(ValueError, match="minimum 3 is above maximum 1"):
        Param("x", "float", minimum=3, maximum=1)


# --------------------------------------------------------------------------- Plugin


def test_plugin_declaration_is_checked():
    ok = _gain_plugin()
    assert ok.defaults() == {"gain_db": 6.0}
    assert ok.resolve({"gain_db": "-3"}) == {"gain_db": -3.0}
    with pytest.raises(PluginError, match=r"unknown parameter\(s\) gain \(parameters: gain_db\)"):
        ok.resolve({"gain": 1})
    with pytest.raises(PluginError, match="above the maximum 60"):
        ok.resolve({"gain_db": 99})
    with pytest.raises(ValueError, match="lower-case"):
        Plugin("Bad Name", "T", "d", process=lambda c: c.magnitudes)
    with pytest.raises(ValueError, match="needs a process function, an audio function, or both"):
        Plugin("p", "T", "d")
    with pytest.raises(ValueError, match="repeat: a"):
        Plugin("p", "T", "d", params=(Param("a", "float"), Param("a", "int")), process=lambda c: c.magnitudes)
    with pytest.raises(ValueError, match="must be callable"):
        Plugin("p", "T", "d", process="not a function")
    with pytest.raises(ValueError, match="title"):
        Plugin("p", "", "d", process=lambda c: c.magnitudes)


# --------------------------------------------------------------------------- PluginEdit


def test_plugin_edit_is_hashable_data_with_span_and_shape():
    plugin = Plugin("r", "R", "d", params=(Param("span", "range", unit="s"), Param("k", "int", 2)),
                    process=lambda c: c.magnitudes)
    edit = PluginEdit.create(plugin, {"span": [0.5, 1.0]})
    assert edit.params == (("k", 2), ("span", (0.5, 1.0)))  # every value recorded, defaults too
    assert hash(edit) == hash(PluginEdit("r", {"span": (0.5, 1.0), "k": 2}))
    assert edit.span() == (-math.inf, math.inf) and edit.action == "plugin"
    assert edit.shape.weights(np.array([-5.0, 0.0, 1e6]), 1000.0).tolist() == [1.0, 1.0, 1.0]
    selected = PluginEdit("r", {}, TimeRange(1.0, 2.0, feather_s=0.1))
    assert selected.span() == pytest.approx((0.9, 2.1))
    assert edit.describe(plugin) == "R (k 2, span 0.5:1 s)"
    with pytest.raises(ValueError, match="shape"):
        PluginEdit("r", {}, selection="everything")


# --------------------------------------------------------------------------- context


def test_context_axes_and_accessors(coeffs):
    mags = [m.clone() for m in coeffs.magnitudes()]
    ctx = PluginContext(mags, coeffs, {"a": 1}, None, None, plugin="t")
    bands = coeffs.frame.bands
    k = ctx.nearest_band(440.0)
    assert abs(math.log2(ctx.centre_hz[k] / 440.0)) <= 1 / 24
    assert ctx.band(k).shape == (2, coeffs.padded_length // ctx.hop(k))
    assert ctx.band(k).data_ptr() == mags[bands.group[k]][..., bands.row[k], :].data_ptr()  # a view
    assert ctx.rate(k) == pytest.approx(SR / bands.hop[k])
    times = ctx.times(k)
    assert times[ctx.index_at(k, 0.5)] == pytest.approx(0.5, abs=0.5 * ctx.hop(k) / SR)
    assert ctx.span == (0.0, pytest.approx(1.0)) and ctx.duration == pytest.approx(1.0)
    assert ctx.voices_per_octave == 12 and ctx.sample_rate == SR and ctx.batch_shape == (2,)
    # The tone sits in band k of channel 0 at its amplitude times the band's response.
    middle = (times > 0.2) & (times < 0.8)
    expected = 0.3 * float(ctx.frame.atom_response(k, np.array([440.0]))[0])
    assert float(ctx.band(k)[0, middle].mean()) == pytest.approx(expected, rel=0.01)
    assert torch.equal(ctx.source(k), coeffs.band(k))


def test_context_resample_and_image_round_trip(coeffs):
    mags = [m.clone() for m in coeffs.magnitudes()]
    ctx = PluginContext(mags, coeffs, {}, None, None)
    hops = sorted(set(int(h) for h in ctx.bands.hop[ctx.wavelets]))
    fine, coarse = hops[0], hops[-1]
    ramp = torch.arange(ctx.frames(fine), dtype=torch.float32)
    down = ctx.resample(ramp, fine, coarse)
    assert down.shape == (ctx.frames(coarse),)
    r = coarse // fine
    # A box average of a ramp is the ramp at the box's centre (away from the edges).
    assert torch.allclose(down[2:-2], torch.arange(ctx.frames(coarse))[2:-2] * r - 0.5, atol=1e-3)
    up = ctx.resample(down, coarse, fine)
    assert up.shape == ramp.shape
    assert torch.allclose(up[2 * r:-2 * r], ramp[2 * r:-2 * r] - 0.5, atol=1e-3)  # linear: exact on a ramp
    image = ctx.image(coarse)
    assert image.shape == (2, len(ctx.wavelets), ctx.frames(coarse))
    assert np.allclose(ctx.grid_times(coarse)[1] - ctx.grid_times(coarse)[0], coarse / SR)
    ctx.set_image(torch.ones_like(image), coarse)
    assert all(torch.allclose(ctx.band(k), torch.ones(())) for k in ctx.wavelets)
    with pytest.raises(ValueError, match="does not match"):
        ctx.set_image(torch.ones(3, 4), coarse)


def test_context_analyze_gives_the_layout_of_the_magnitudes(coeffs):
    ctx = PluginContext([m.clone() for m in coeffs.magnitudes()], coeffs, {}, None, None)
    audio = ctx.source_audio()
    assert audio.shape == (2, SR) and audio.dtype == np.float32
    again = ctx.analyze(audio)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(again, coeffs.magnitudes()))
    mono = ctx.analyze(audio[:1])  # a batch of one broadcasts over the channels
    assert all(m.shape == c.shape for m, c in zip(mono, coeffs.groups))
    with pytest.raises(ValueError, match="frames"):
        ctx.analyze(audio[:, :100])


# --------------------------------------------------------------------------- host


def test_host_blends_with_the_feathered_selection_weight(coeffs):
    plugin = _gain_plugin()
    selection = Rectangle(0.3, 0.6, 300.0, 700.0, feather_s=0.02, feather_oct=1 / 12)
    out = run_plugin(plugin, coeffs, None, {"gain_db": 12.0}, selection)
    weights = selection_weights(coeffs, selection)
    source = coeffs.magnitudes()
    expected = [s * (1 + w * (10 ** 0.6 - 1)) for s, w in zip(source, weights)]
    assert all(torch.allclose(o, e, rtol=1e-5, atol=1e-9) for o, e in zip(out, expected))
    # Inside: +12 dB; far outside: untouched; in the feather: in between.
    k = int(coeffs.frame.bands.wavelet_indices[np.argmin(np.abs(coeffs.frame.bands.centre_hz[
        coeffs.frame.bands.wavelet_indices] - 440))])
    g, r = coeffs.frame.bands.group[k], coeffs.frame.bands.row[k]
    t = coeffs.times(k)
    ratio = (out[g][0, r] / source[g][0, r].clamp_min(1e-12)).numpy()
    assert np.allclose(ratio[(t > 0.35) & (t < 0.55)], 10 ** 0.6, rtol=1e-4)
    far = (t < 0.2) | (t > 0.7)
    assert torch.equal(out[g][0, r][far], source[g][0, r][far])
    assert weights[g][r][(t > 0.605) & (t < 0.615)].min() > 0 and ratio[(t > 0.605) & (t < 0.615)].max() < 10 ** 0.6


def test_host_without_blend_takes_the_plugin_result_as_it_is(coeffs):
    def zero(ctx):
        assert ctx.weight is not None  # the plugin gets the weight to use itself
        return [torch.zeros_like(m) for m in ctx.magnitudes]

    plugin = Plugin("z", "Z", "d", process=zero, blend=False)
    out = run_plugin(plugin, coeffs, None, {}, TimeRange(0.2, 0.3))
    assert all(float(o.abs().max()) == 0.0 for o in out)


@pytest.mark.parametrize("result, message", [
    (lambda ctx: None, "must return a list of tensors"),
    (lambda ctx: ctx.magnitudes[:-1], "expected"),
    (lambda ctx: [m[..., :-1] for m in ctx.magnitudes], "has shape"),
    (lambda ctx: [m * float("nan") for m in ctx.magnitudes], "NaN or infinite"),
    (lambda ctx: [m.to(torch.complex64) for m in ctx.magnitudes], "complex"),
    (lambda ctx: 1 / 0, "ZeroDivisionError: division by zero"),
])
def test_host_turns_bad_results_and_exceptions_into_plugin_errors(coeffs, result, message):
    plugin = Plugin("bad", "Bad", "d", process=result, source="/somewhere/bad.py")
    with pytest.raises(PluginError, match=message) as info:
        run_plugin(plugin, coeffs)
    assert info.value.plugin == "bad"
    if "ZeroDivision" in message:
        assert "/somewhere/bad.py" in str(info.value)


def test_negative_magnitudes_are_clipped_to_zero(coeffs):
    plugin = Plugin("neg", "Neg", "d", process=lambda ctx: [-m for m in ctx.magnitudes])
    assert all(float(o.max()) == 0.0 for o in run_plugin(plugin, coeffs))


def test_audio_step_runs_on_the_current_sound_and_feeds_process(coeffs):
    seen = {}

    def halve(ctx, samples):
        seen["shape"], seen["peak"] = samples.shape, float(np.abs(samples[0]).max())
        return samples * 0.5

    def process(ctx):
        seen["process"] = True
        return ctx.magnitudes

    plugin = Plugin("half", "Half", "d", audio=halve, process=process)
    current = [m * 2 for m in coeffs.magnitudes()]  # an earlier edit doubled everything
    out = run_plugin(plugin, coeffs, current)
    assert seen["shape"] == (2, SR) and seen["process"]
    assert seen["peak"] == pytest.approx(0.6, rel=0.02)  # the current sound (doubled), not the source
    assert all(torch.allclose(o, m, rtol=1e-3, atol=1e-5) for o, m in zip(out, coeffs.magnitudes()))
    wrong = Plugin("w", "W", "d", audio=lambda ctx, x: x[:, :10])
    with pytest.raises(PluginError, match="audio step returned shape"):
        run_plugin(wrong, coeffs)


def test_edit_list_runs_dsp_edits_and_plugin_steps_in_order(coeffs):
    registry = Registry([_gain_plugin()])
    cut = Edit(Rectangle(0.2, 0.8, 300, 700), "gain", -20.0)
    boost = PluginEdit("gain", {"gain_db": 6.0})
    restore = Edit(TimeRange(0.0, 0.1), "restore")
    out = apply_edit_list(coeffs, [cut, boost, restore], registry=registry)
    step1 = apply_edits(coeffs, [cut])
    step2 = run_plugin(registry.get("gain"), coeffs, step1.groups, {"gain_db": 6.0})
    step3 = apply_edits(coeffs, [restore], onto=coeffs.with_groups(step2))
    assert all(torch.allclose(a, b) for a, b in zip(out.groups, step3.groups))
    # Onto earlier results, as the document does after a push.
    incremental = apply_edit_list(coeffs, [restore], onto=apply_edit_list(coeffs, [cut, boost], registry=registry),
                                  registry=registry)
    assert all(torch.allclose(a, b) for a, b in zip(out.groups, incremental.groups))
    # Only dsp edits: exactly apply_edits.
    plain = apply_edit_list(coeffs, [cut, restore], registry=registry)
    assert all(torch.equal(a, b) for a, b in zip(plain.groups, apply_edits(coeffs, [cut, restore]).groups))


def test_edit_list_with_a_missing_plugin_raises_or_warns_and_skips(coeffs):
    cut = Edit(TimeRange(0.2, 0.4), "gain", -20.0)
    ghost = PluginEdit("ghost", {})
    with pytest.raises(PluginError, match="no plugin named 'ghost'"):
        apply_edit_list(coeffs, [cut, ghost], registry=Registry())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = apply_edit_list(coeffs, [cut, ghost], registry=Registry(), errors="warn")
    assert any(issubclass(w.category, PluginWarning) and "ghost" in str(w.message) for w in caught)
    assert all(torch.equal(a, b) for a, b in zip(out.groups, apply_edits(coeffs, [cut]).groups))
