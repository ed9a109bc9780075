"""The document: edits, undo/redo, events, render over touched spans, export."""
import threading

import numpy as np
import pytest
import torch

from scalgui.app.document import OVERVIEW_WIDTH, Document
from scalgui.app.incremental import reach_s
from scalgui.audio import AudioError, load_audio, save_audio
from scalgui.dsp import signals
from scalgui.dsp.edits import Band, Edit, Rectangle, Stroke, apply_edits
from scalgui.dsp.frame import FrameSettings
from scalgui.dsp.phase import CancelToken, RetrievalSettings

SR = 22050


@pytest.fixture
def doc():
    samples = signals.example_sound(SR)[:, : 3 * SR]
    return Document.from_samples(samples, SR, settings=FrameSettings(SR, 12, fmin=50.0), device="cpu")


def level_db(document, layer, rows, cols):
    picture = document.raster(0.0, 3.0, 300, layer=layer)
    keep = (picture.centre_hz > rows[0]) & (picture.centre_hz < rows[1])
    return picture.db[keep][:, cols[0] : cols[1]]


def test_push_undo_redo_and_events(doc):
    seen = []
    doc.events.changed.connect(seen.append)
    edit = Edit(Rectangle(1.0, 1.5, 300, 3000), "gain", -20)
    assert not doc.can_undo and not doc.unsaved
    doc.push(edit)
    assert doc.edits == (edit,) and doc.can_undo and doc.unrendered_edits and doc.unsaved
    assert doc.undo() is edit and doc.edits == () and doc.can_redo
    assert doc.redo() is edit and doc.edits == (edit,)
    assert seen == ["edits", "edits", "edits"]
    assert doc.undo() is edit and doc.undo() is None
    doc.push(Edit(Rectangle(0.1, 0.2, 300, 3000), "erase"))
    assert not doc.can_redo  # a new edit drops the redo history


def test_target_follows_edits_incrementally_and_after_undo(doc):
    a = Edit(Rectangle(1.0, 1.5, 300, 3000, 0.0, 0.0), "gain", -20)
    b = Edit(Rectangle(1.2, 1.3, 500, 1000, 0.0, 0.0), "erase")
    doc.push(a)
    doc.target()  # built; later edits, undos and redos update it in place over their spans
    doc.push(b)
    after_b = [g.clone() for g in doc.target().groups]
    for x, y in zip(after_b, apply_edits(doc.coefficients, [a, b]).groups):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    doc.undo()
    for x, y in zip(doc.target().groups, apply_edits(doc.coefficients, [a]).groups):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    doc.redo()
    for x, y in zip(doc.target().groups, after_b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    # A band edit reaches the whole sound: the target is rebuilt when next needed.
    c = Edit(Band(500, 1000), "gain", -10)
    for step, edits in ((lambda: doc.push(c), [a, b, c]), (doc.undo, [a, b]), (doc.redo, [a, b, c])):
        step()
        for x, y in zip(doc.target().groups, apply_edits(doc.coefficients, edits).groups):
            torch.testing.assert_close(x, y)
    inside = level_db(doc, "target", (350, 450), (105, 145))
    source = level_db(doc, "source", (350, 450), (105, 145))
    assert np.allclose(source - inside, 20.0, atol=0.05)


def test_render_realises_a_rectangle_cut_and_keeps_the_rest(doc):
    doc.push(Edit(Rectangle(1.0, 1.6, 300, 3000, feather_s=0.02, feather_oct=1 / 12), "gain", -40))
    result = doc.render()
    assert result.iterations > 0 and not doc.unrendered_edits
    assert doc.rendered.shape == doc.samples.shape
    inside = np.median(level_db(doc, "source", (500, 2000), (110, 150)) - level_db(doc, "render", (500, 2000), (110, 150)))
    assert inside > 30.0
    outside = level_db(doc, "render", (500, 2000), (20, 80)) - level_db(doc, "source", (500, 2000), (20, 80))
    assert np.abs(np.median(outside)) < 1.0
    # Far from the edit the samples are the source's, bit for bit.
    untouched = int(np.ceil(doc.edits[0].span()[1] * SR)) + doc.render_frame.pad
    assert np.array_equal(doc.rendered[:, untouched:], doc.samples[:, untouched:])
    assert not np.array_equal(doc.rendered[:, untouched - 2000 :], doc.samples[:, untouched - 2000 :])
    difference = doc.raster(0.0, 3.0, 300, layer="difference")
    assert np.all(np.isfinite(difference.db))


def test_paint_draws_a_new_partial_from_silence():
    document = Document.from_samples(np.zeros((1, 2 * SR), np.float32) + 1e-6 * np.random.default_rng(0).standard_normal((1, 2 * SR)).astype(np.float32),
                                     SR, settings=FrameSettings(SR, 12, fmin=50.0), device="cpu")
    document.push(Edit(Stroke(((0.5, 1000.0), (1.5, 1000.0)), radius_s=0.05, radius_oct=1 / 24, hardness=0.8), "paint", -12))
    document.render(RetrievalSettings(init="gradient", iterations=40))
    y = document.rendered[0]
    middle = y[int(0.8 * SR) : int(1.2 * SR)]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    peak_hz = np.argmax(spectrum) * SR / len(middle)
    assert peak_hz == pytest.approx(1000.0, rel=0.03)
    assert 20 * np.log10(np.sqrt(2) * middle.std()) > -20  # a partial near -12 dBFS, not silence
    assert np.abs(y[: int(0.3 * SR)]).max() < 1e-3


@pytest.mark.parametrize("stage", ["analysing", "initial phase", "iterating"])
def test_a_cancel_at_any_stage_changes_nothing(doc, stage):
    doc.push(Edit(Rectangle(0.5, 1.0, 300, 3000), "gain", -30))
    first = doc.render()
    assert not first.cancelled
    before = doc.rendered.copy()
    doc.push(Edit(Rectangle(1.0, 1.5, 300, 3000), "gain", -30))
    pending = doc.pending_spans
    token = CancelToken()
    seen = []

    def stop(report):
        seen.append(report.stage)
        if report.stage == stage and (stage != "iterating" or report.iteration == 2):
            token.cancel()

    result = doc.render(RetrievalSettings(init="original", iterations=200), progress=stop, cancel=token)
    assert result.cancelled and result.stopped == "cancelled" and result.iterations < 200
    assert seen[-1] == stage  # stopped at that stage: nothing after it ran
    assert np.array_equal(doc.rendered, before) and doc.pending_spans == pending
    assert len(doc.edits) == 2


def test_a_cancelled_render_may_keep_its_partial_result(doc):
    doc.push(Edit(Rectangle(1.0, 1.5, 300, 3000), "gain", -30))
    token = CancelToken()

    def stop(report):
        if report.iteration == 2:
            threading.Thread(target=token.cancel).start()

    result = doc.render(RetrievalSettings(init="original", iterations=200), progress=stop, cancel=token,
                        keep_partial=True)
    assert result.cancelled and result.iterations < 200
    assert doc.unrendered_edits and doc.rendered is not None and np.isfinite(doc.rendered).all()


def test_settings_change_keeps_edits(doc):
    edit = Edit(Rectangle(1.0, 1.5, 300, 3000, 0.0, 0.0), "gain", -20)
    doc.push(edit)
    doc.set_settings(FrameSettings(SR, 24, fmin=50.0))
    assert doc.edits == (edit,) and doc.frame.settings.voices_per_octave == 24
    drop = level_db(doc, "source", (350, 450), (105, 145)) - level_db(doc, "target", (350, 450), (105, 145))
    assert np.allclose(drop, 20.0, atol=0.05)
    with pytest.raises(ValueError, match="Hz"):
        doc.set_settings(FrameSettings(44100))


def test_export_round_trip_and_source_protection(tmp_path):
    source = tmp_path / "take.wav"
    save_audio(source, signals.example_sound(SR)[:, : SR], SR, bit_depth=24)
    document = Document.open(source, settings=FrameSettings(SR, 12, fmin=50.0), device="cpu")
    document.push(Edit(Rectangle(0.3, 0.6, 1000, 4000), "gain", -20))
    out = tmp_path / "take-edited.flac"
    report = document.export(out)
    assert not document.unrendered_edits and not document.unsaved
    back = load_audio(out)
    assert back.samples.shape == document.samples.shape and back.sample_rate == SR
    assert np.allclose(back.samples, document.rendered, atol=1e-5)
    assert report.peak_dbfs < 0
    before = source.read_bytes()
    with pytest.raises(AudioError, match="source"):
        document.export(source)
    assert source.read_bytes() == before


def test_edit_mask_marks_where_edits_act(doc):
    doc.push(Edit(Rectangle(1.0, 2.0, 500, 1000, 0.0, 0.0), "gain", -6))
    mask = doc.edit_mask(0.0, 3.0, 300)
    centres = doc.raster(0.0, 3.0, 300).centre_hz
    rows = (centres > 550) & (centres < 900)
    assert mask.dtype == np.float32 and mask.shape == (len(centres), 300)
    assert np.all(mask[rows][:, 105:195] > 0.99)
    assert mask[:, :90].max() == 0.0 and mask[centres > 2000].max() == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        Document.from_samples(np.array([[0.0, np.nan]], np.float32), SR)
    with pytest.raises(ValueError, match="frames"):
        Document.from_samples(np.zeros((1, 0), np.float32), SR)
    with pytest.raises(AudioError, match="nope.wav"):
        Document.open("/nonexistent/nope.wav")


def test_band_audio_keeps_only_the_band():
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 200 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    document = Document.from_samples(x[None], SR, settings=FrameSettings(SR, 12, fmin=50.0), device="cpu")
    low = document.band_audio(100.0, 400.0)
    assert low.shape == (1, 2 * SR) and low.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(low[0, SR // 2 : 3 * SR // 2]))
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spectrum[np.argmin(abs(freqs - 200))] > 1000 * spectrum[np.argmin(abs(freqs - 3000))]
    middle = low[0, SR // 2 : 3 * SR // 2]
    assert np.sqrt(2) * middle.std() == pytest.approx(0.3, rel=0.05)
    with pytest.raises(ValueError, match="band"):
        document.band_audio(400.0, 100.0)


def test_a_stale_overview_is_not_cached(doc):
    """An overview drawn while an edit lands must not outlive the edit."""
    original = doc._raster

    def slow_raster(*args, **kwargs):
        picture = original(*args, **kwargs)
        if not doc.edits:
            doc.push(Edit(Rectangle(1.0, 1.5, 300, 3000, 0.0, 0.0), "gain", -20))
        return picture

    doc._raster = slow_raster
    doc.raster(0.0, 3.0, 100)  # drawn before the edit, finished after it
    doc._raster = original
    fresh = doc.raster(0.0, 3.0, 100)
    source = doc.raster(0.0, 3.0, 100, layer="source")
    rows = (fresh.centre_hz > 500) & (fresh.centre_hz < 2000)
    assert np.median(source.db[rows][:, 38:48] - fresh.db[rows][:, 38:48]) > 15


def test_quick_preview_hears_the_edit_without_changing_the_document(doc):
    import time

    doc.push(Edit(Rectangle(1.0, 1.5, 200, 4000, feather_s=0.02), "erase"))
    started = time.perf_counter()
    start_s, audio = doc.preview(iterations=4)
    assert time.perf_counter() - started < 5.0
    assert doc.rendered is None and doc.unrendered_edits  # nothing committed
    assert start_s == pytest.approx(0.98, abs=1e-3) and audio.shape[0] == doc.channels
    assert audio.shape[1] == pytest.approx(0.54 * SR, abs=2)
    inside = audio[:, int(0.2 * SR) : int(0.4 * SR)]  # 1.18..1.38 s
    first = int(round(start_s * SR)) + int(0.2 * SR)
    source = doc.samples[:, first : first + inside.shape[1]]
    spectrum = lambda a: np.abs(np.fft.rfft(a.mean(0)))
    freqs = np.fft.rfftfreq(inside.shape[1], 1 / SR)
    band = (freqs > 400) & (freqs < 2000)
    # Four warm-started iterations already take the erased band well down (a full render
    # goes further: see test_render_realises_a_rectangle_cut_and_keeps_the_rest).
    drop_db = 10 * np.log10((spectrum(source)[band] ** 2).sum() / (spectrum(inside)[band] ** 2).sum())
    assert drop_db > 10
    with pytest.raises(ValueError, match="outside"):
        doc.preview((10.0, 11.0))


def _full_overview(document, layer):
    """The whole-file picture of ``layer`` drawn from scratch: a new document, same edits."""
    fresh = Document.from_samples(document.samples, SR, settings=document.settings, device="cpu")
    for edit in document.edits:
        fresh.push(edit)
    return fresh.raster(0.0, fresh.duration, OVERVIEW_WIDTH, layer=layer).db


def test_overview_after_edit_undo_and_redo_redraws_only_the_touched_columns(doc):
    drawn = []

    def recording(draw):
        def wrapper(start_s, end_s, width, *args, **kwargs):
            drawn.append((start_s, end_s, width))
            return draw(start_s, end_s, width, *args, **kwargs)
        return wrapper

    full_mask = doc._mask_raster
    doc._raster, doc._mask_raster = recording(doc._raster), recording(doc._mask_raster)
    whole = (0.0, doc.duration, OVERVIEW_WIDTH)
    doc.raster(*whole, layer="source")  # what a view draws before any edit
    doc.raster(*whole, layer="render")  # no render yet: the source; edits never change it
    assert drawn == [whole, whole]
    a = Edit(Rectangle(1.0, 1.3, 300, 3000), "gain", -25)
    b = Edit(Rectangle(1.2, 1.6, 150, 800), "erase")
    column_s = doc.duration / OVERVIEW_WIDTH
    steps = [("push a", lambda: doc.push(a), a), ("push b", lambda: doc.push(b), b),
             ("undo b", doc.undo, b), ("redo b", doc.redo, b)]
    for name, step, edit in steps:
        step()
        drawn.clear()
        for layer in ("target", "difference"):
            cached = doc.raster(*whole, layer=layer).db
            np.testing.assert_allclose(cached, _full_overview(doc, layer), rtol=0, atol=1e-3, err_msg=name)
        mask = doc.edit_mask(*whole)  # the edit overlay, from its own whole-file picture
        # Only strips around the edit's span were drawn, not the whole sound again.
        lo, hi = edit.span()
        widest = (hi - lo + 2 * reach_s(doc.coefficients)) / column_s + 6
        assert len(drawn) >= 2 and all(width <= widest for _, _, width in drawn), (name, drawn, widest)
        assert all(start >= lo - 1.0 and end <= hi + 1.0 for start, end, _ in drawn), name
        expected = full_mask(*whole).db
        np.testing.assert_allclose(mask, np.clip(10.0 ** (expected / 20.0), 0, 1) * (expected > -119.9),
                                   rtol=0, atol=1e-5, err_msg=name)
    assert doc.edits == (a, b)
    # A band edit reaches the whole sound: redrawn whole, still right.
    doc.push(Edit(Band(500, 1000), "gain", -10))
    np.testing.assert_allclose(doc.raster(*whole).db, _full_overview(doc, "target"), rtol=0, atol=1e-3)
    doc.undo()
    np.testing.assert_allclose(doc.raster(*whole).db, _full_overview(doc, "target"), rtol=0, atol=1e-3)


def test_a_second_render_redraws_only_the_spans_it_changed():
    """After a render, the render's coefficients and whole-file picture are brought up to
    date over the spans that render changed, not re-analysed and redrawn whole."""
    samples = np.tile(signals.example_sound(SR)[:, : 3 * SR], (1, 4))  # 12 s
    doc = Document.from_samples(samples, SR, settings=FrameSettings(SR, 12, fmin=50.0), device="cpu")
    whole = (0.0, doc.duration, OVERVIEW_WIDTH)
    settings = RetrievalSettings(method="fgla", init="original", iterations=8)
    doc.push(Edit(Rectangle(1.0, 1.3, 300, 3000), "gain", -25))
    doc.render(settings)
    doc.raster(*whole, layer="render")  # the render view: its coefficients analysed once
    first = doc.rendered.copy()

    drawn = []
    draw = doc._raster

    def recording(start_s, end_s, width, *args, **kwargs):
        drawn.append((start_s, end_s, width))
        return draw(start_s, end_s, width, *args, **kwargs)

    doc._raster = recording
    doc.push(Edit(Rectangle(9.0, 9.3, 150, 800), "erase"))
    doc.render(settings)
    assert np.array_equal(doc.rendered[:, : int(6.0 * SR)], first[:, : int(6.0 * SR)])  # the first span kept
    picture = doc.raster(*whole, layer="render").db
    assert drawn and all(width < OVERVIEW_WIDTH // 2 and start > 6.0 for start, _, width in drawn), drawn

    fresh = Document.from_samples(doc.samples, SR, settings=doc.settings, device="cpu")
    fresh.restore(doc.edits, rendered=doc.rendered)
    for kept, new in zip(doc._render_coefficients().groups, fresh._render_coefficients().groups):
        torch.testing.assert_close(kept, new, rtol=0, atol=1e-5 * float(new.abs().max()))
    # The patched picture is the whole one drawn from the same coefficients...
    doc._raster = draw
    doc._overviews.forget("render")
    np.testing.assert_allclose(picture, doc.raster(*whole, layer="render").db, rtol=0, atol=1e-3)
    # ...and those are the fresh analysis's to float round-off (0.1 dB even 90 dB down).
    np.testing.assert_allclose(picture, fresh.raster(*whole, layer="render").db, rtol=0, atol=0.1)
