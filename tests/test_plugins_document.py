"""Plugin edits in the document: data in the undoable edit list, rasterised lazily, rendered
with the whole sound as context, and failures that leave the document as it was."""
import math
import warnings

import numpy as np
import pytest
import torch

from scalgui.app.document import Document
from scalgui.dsp.edits import Edit, Rectangle, TimeRange, touched_spans
from scalgui.plugins import (
    Param,
    Plugin,
    PluginEdit,
    PluginError,
    PluginWarning,
    Registry,
    set_default_registry,
)

SR = 22050


def _gain(ctx):
    for k in ctx.wavelets:
        ctx.band(k).mul_(10 ** (ctx.params["gain_db"] / 20))
    return ctx.magnitudes


def _copy_level(ctx):
    """Every band takes, inside the selection, its level at ``from_s`` (far from the selection)."""
    for k in ctx.wavelets:
        band = ctx.band(k)
        band[...] = band[..., int(ctx.index_at(k, ctx.params["from_s"]))].unsqueeze(-1)
    return ctx.magnitudes


def _glide(seconds, sample_rate):
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.2 * np.sin(2 * np.pi * (300 * t + 300 * t**2))).astype(np.float32)


def _replace_with_a_glide(ctx, samples):
    """An audio step: the selection's span (the whole sound without one) becomes a glide."""
    t = np.arange(samples.shape[-1]) / ctx.sample_rate
    start_s, end_s = ctx.span
    inside = (t >= start_s) & (t < end_s)
    return np.where(inside, _glide(ctx.duration, ctx.sample_rate), samples).astype(np.float32)


def _explode(ctx):
    raise RuntimeError("the plugin broke")


PLUGINS = (
    Plugin("gain", "Gain", "Change the level.", params=(Param("gain_db", "float", -20.0, unit="dB"),), process=_gain),
    Plugin("copy-level", "Copy level", "Hold the level of another moment.",
           params=(Param("from_s", "float", 0.1, unit="s"),), process=_copy_level),
    Plugin("explode", "Explode", "Always fails.", process=_explode, source="/plugins/explode.py"),
    Plugin("glide", "Glide", "Replace with a glide.", audio=_replace_with_a_glide),
)


@pytest.fixture
def registry():
    registry = Registry(PLUGINS)
    previous = set_default_registry(registry)
    yield registry
    set_default_registry(previous)


@pytest.fixture
def tone_doc():
    """1.5 s: a 440 Hz tone over the first 0.6 s, then a quieter 1 kHz tone to the end."""
    t = np.arange(int(1.5 * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.6) + 0.05 * np.sin(2 * np.pi * 1000 * t) * (t >= 0.6)
    return Document.from_samples(x.astype(np.float32), SR, device="cpu")


def _band(doc, coeffs, hz):
    b = doc.frame.bands
    k = int(b.wavelet_indices[np.argmin(np.abs(np.log2(b.centre_hz[b.wavelet_indices] / hz)))])
    return coeffs.groups[b.group[k]][0, b.row[k]], coeffs.times(k)


def test_a_plugin_edit_changes_the_target_inside_the_selection_only_and_undoes(registry, tone_doc):
    doc = tone_doc
    source = [g.clone() for g in doc.target().groups]
    selection = Rectangle(0.2, 0.4, 300.0, 600.0)
    edit = PluginEdit.create(registry.get("gain"), {"gain_db": -20}, selection)
    doc.push(edit)
    assert doc.edits == (edit,) and doc.can_undo and doc.unrendered_edits
    level, times = _band(doc, doc.target(), 440)
    before, _ = _band(doc, doc.coefficients.map(torch.abs), 440)
    inside = (times > 0.25) & (times < 0.35)
    assert torch.allclose(level[inside], before[inside] * 0.1, rtol=1e-4)
    far = (times < 0.1) | ((times > 0.5) & (times < 1.5))
    assert torch.equal(level[far], before[far])
    hi, _ = _band(doc, doc.target(), 1000)  # outside the selection's band
    hi_before, _ = _band(doc, doc.coefficients.map(torch.abs), 1000)
    assert torch.equal(hi, hi_before)
    # Where it acts, for the overlay and the re-render: the selection's time span.
    assert touched_spans([edit], doc.duration) == [pytest.approx(selection.span())]
    mask = doc.edit_mask(0.0, doc.duration, 150)
    assert mask[:, 20:40].max() > 0.9 and mask[:, 60:].max() == 0.0

    assert doc.undo() == edit
    assert all(torch.equal(a, b) for a, b in zip(doc.target().groups, source))
    assert doc.redo() == edit
    level_again, _ = _band(doc, doc.target(), 440)
    assert torch.equal(level_again, level)


def test_plugin_edits_replay_in_order_with_the_other_edits(registry, tone_doc):
    doc = tone_doc
    doc.push(Edit(TimeRange(0.1, 0.3), "gain", -6.0))
    doc.push(PluginEdit.create(registry.get("gain"), {"gain_db": -6}))  # everywhere
    doc.push(Edit(TimeRange(0.2, 0.5), "restore"))
    incremental = [g.clone() for g in doc.target().groups]
    doc.undo()
    doc.redo()
    doc._target = None  # force a replay of the whole list (what a re-analysis does)
    assert all(torch.allclose(a, b) for a, b in zip(doc.target().groups, incremental))
    level, times = _band(doc, doc.target(), 440)
    source, _ = _band(doc, doc.coefficients.map(torch.abs), 440)
    ratio_db = 20 * torch.log10(level / source.clamp_min(1e-12))
    assert float(ratio_db[(times > 0.12) & (times < 0.18)].mean()) == pytest.approx(-12.0, abs=0.01)
    assert float(ratio_db[(times > 0.35) & (times < 0.45)].mean()) == pytest.approx(0.0, abs=0.01)
    assert float(ratio_db[(times > 0.03) & (times < 0.07)].mean()) == pytest.approx(-6.0, abs=0.01)


def test_a_failing_plugin_is_not_pushed_and_leaves_the_document_as_it_was(registry, tone_doc):
    doc = tone_doc
    doc.push(Edit(TimeRange(0.1, 0.3), "gain", -6.0))
    before = [g.clone() for g in doc.target().groups]
    with pytest.raises(PluginError, match=r"explode \(/plugins/explode.py\) failed: RuntimeError: the plugin broke"):
        doc.push(PluginEdit("explode"))
    assert len(doc.edits) == 1 and not doc.can_redo
    assert all(torch.equal(a, b) for a, b in zip(doc.target().groups, before))
    with pytest.raises(PluginError, match="unknown parameter"):
        doc.push(PluginEdit("gain", {"level": 3}))
    assert len(doc.edits) == 1


def test_a_plugin_that_went_missing_is_skipped_with_a_warning_on_replay(registry, tone_doc):
    doc = tone_doc
    doc.push(PluginEdit.create(registry.get("gain"), {"gain_db": -20}))
    set_default_registry(Registry())  # e.g. its file was removed and the plugins rescanned
    doc._target = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target = doc.target()
    assert any(issubclass(w.category, PluginWarning) and "no plugin named 'gain'" in str(w.message) for w in caught)
    assert all(torch.equal(a, b.abs()) for a, b in zip(target.groups, doc.coefficients.groups))


def _db(x):
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(x)))), 1e-12))


def test_render_realises_a_plugin_edit_and_keeps_the_rest_bit_for_bit(registry, tone_doc):
    doc = tone_doc
    doc.push(PluginEdit.create(registry.get("gain"), {"gain_db": -20}, TimeRange(0.9, 1.2, feather_s=0.01)))
    result = doc.render()
    assert not result.cancelled
    out, src = doc.rendered[0], doc.samples[0]
    inside = slice(int(0.97 * SR), int(1.13 * SR))
    assert _db(out[inside]) - _db(src[inside]) == pytest.approx(-20.0, abs=2.0)
    reach = doc.render_frame.pad / SR
    outside = slice(0, int((0.89 - reach) * SR))
    assert np.array_equal(out[outside], src[outside])


def test_render_gives_plugins_the_whole_sound_even_for_a_short_span(registry, tone_doc):
    # The level copied into 1.2-1.4 s comes from 0.1 s, far outside the re-rendered window.
    doc = tone_doc
    doc.push(PluginEdit.create(registry.get("copy-level"), {"from_s": 0.1}, TimeRange(1.2, 1.4, feather_s=0.01)))
    doc.render()
    rendered = doc.frame.analyze(torch.from_numpy(doc.rendered))
    a440, times = _band(doc, rendered.map(torch.abs), 440)
    middle = (times > 1.25) & (times < 1.35)
    assert 20 * math.log10(float(a440[middle].mean()) / 0.3) > -3.0  # the 440 Hz tone's level is back
    start, audio = doc.preview((1.2, 1.4), iterations=2)  # the quick preview takes the same path
    assert audio.shape[0] == 1 and start <= 1.2 and np.abs(audio).max() > 0.1


def _rms_db_of_difference(a, b):
    return _db(a - b) - _db(b)


@pytest.mark.parametrize("warm_start", [True, False])
def test_a_render_starts_from_the_sound_a_plugins_audio_step_made(registry, tone_doc, monkeypatch, warm_start):
    """Where a plugin made sound, its magnitudes are that sound's: the render starts from
    its phase there and gives the plugin's sound back, not a retrieval of it."""
    from scalgui.plugins import host

    monkeypatch.setattr(host, "AUDIO_STEP_WARM_START", warm_start)
    doc = tone_doc
    doc.push(PluginEdit.create(registry.get("glide"), {}))
    result = doc.render()
    glide = _glide(doc.duration, SR)
    if warm_start:
        assert result.spectral_convergence_db < -60.0
        assert _rms_db_of_difference(doc.rendered[0], glide) < -60.0
    else:  # from the previous render's (the source's) phase: a retrieval, far from exact
        assert result.spectral_convergence_db > -40.0
        assert _rms_db_of_difference(doc.rendered[0], glide) > -40.0


def test_a_render_takes_an_audio_steps_phase_inside_its_selection(registry, tone_doc, monkeypatch):
    from scalgui.plugins import host

    doc = tone_doc
    edit = PluginEdit.create(registry.get("glide"), {}, TimeRange(0.5, 1.0, feather_s=0.02))
    inside = slice(int(0.6 * SR), int(0.9 * SR))
    glide = _glide(doc.duration, SR)[inside]
    misses = {}
    for warm_start in (False, True):
        monkeypatch.setattr(host, "AUDIO_STEP_WARM_START", warm_start)
        doc.push(edit)
        doc.render()
        misses[warm_start] = _rms_db_of_difference(doc.rendered[0][inside], glide)
        doc.undo()
        doc.render()
    assert misses[True] < -30.0 and misses[True] < misses[False] - 10.0, misses


def test_a_running_plugin_does_not_hold_the_document(tone_doc):
    """Playback and pictures take the document's lock from the GUI thread: a plugin that
    runs for seconds must not block them."""
    import threading

    started, release = threading.Event(), threading.Event()

    def slow(ctx):
        started.set()
        assert release.wait(10.0)
        return ctx.magnitudes

    registry = Registry((Plugin("slow", "Slow", "Waits.", process=slow),))
    previous = set_default_registry(registry)
    try:
        doc = tone_doc
        edit = PluginEdit.create(registry.get("slow"), {}, None)
        worker = threading.Thread(target=doc.push, args=(edit,))
        worker.start()
        assert started.wait(10.0)
        # While the plugin runs, the document answers: target() takes the lock.
        answered = []
        query = threading.Thread(target=lambda: answered.append(doc.target()))
        query.start()
        query.join(5.0)
        assert answered, "the document's lock was held while the plugin ran"
        assert doc.edits == ()
        release.set()
        worker.join(10.0)
        assert not worker.is_alive() and doc.edits == (edit,)
    finally:
        release.set()
        set_default_registry(previous)
