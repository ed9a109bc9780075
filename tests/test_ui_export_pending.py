"""Export with unrendered edits asks first: Render Now, Export Last Render (or Without Edits), Cancel.

Driven with real clicks on the real question's buttons; the files written are read back
and compared with the render they should hold.
"""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog

from scalgui.app.document import Document
from scalgui.audio import load_audio
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.dsp.phase import RetrievalSettings
from scalgui.ui.testing import wait_for_picture

FIRST = Edit(Rectangle(0.2, 0.5, 1000.0, 4000.0), "gain", -30.0)
SECOND = Edit(Rectangle(0.6, 0.9, 300.0, 900.0), "erase")
QUICK = RetrievalSettings(method="fgla", init="original", iterations=4)
FLOAT_WAV = {"bit_depth": 32}  # bit-exact: the file must hold exactly what was rendered


@pytest.fixture
def window(qtbot, empty_window, stereo_music, sample_rate):
    """A window on 1 s of the stereo example, rendering with a few iterations."""
    w = empty_window
    doc = Document.from_samples(stereo_music[:, :sample_rate], sample_rate, device="cpu")
    doc.retrieval_settings = QUICK
    w.set_document(doc)
    wait_for_picture(qtbot, w.view)
    return w


def _click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _render(qtbot, w) -> np.ndarray:
    assert w.start_render()
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    assert not w.last_render.cancelled
    return w.document.rendered.copy()


def _asks(w):
    flow = w.pending_export
    assert flow.question.isVisible()
    assert QApplication.activeModalWidget() is flow.question
    assert flow.question.windowModality() == Qt.WindowModality.WindowModal
    return flow


def _band_drop_db(doc, samples, t0=0.25, t1=0.45, f0=1400.0, f1=2800.0) -> float:
    """How far ``samples`` lie below the source inside the first edit's rectangle, dB."""
    probe = Document.from_samples(samples, doc.sample_rate, settings=doc.settings, device="cpu")
    got = probe.raster(t0, t1, 8, channel="left", layer="source")
    source = doc.raster(t0, t1, 8, channel="left", layer="source")
    rows = (got.centre_hz > f0) & (got.centre_hz < f1)
    return float(np.median(source.db[rows] - got.db[rows]))


def test_render_now_shows_the_render_then_writes_it(qtbot, window, tmp_path, monkeypatch):
    w = window
    w.apply_edit(FIRST)
    out = tmp_path / "out.flac"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "FLAC (*.flac)"))
    w.export_action.trigger()
    _click(qtbot, w.export_options_dialog.buttons.button(QDialogButtonBox.StandardButton.Ok))
    flow = _asks(w)
    assert flow.render_button.text() == "Render Now" and flow.last_render_button.text() == "Export Without Edits"
    assert not w.rendering and not out.exists()  # nothing happens before the answer

    _click(qtbot, flow.render_button)
    assert not flow.question.isVisible()
    # The render's progress is on screen while it runs, and the status bar says the export follows.
    assert w.rendering
    assert w.render_progress.isVisible() and w.render_label.isVisible() and w.render_cancel_button.isVisible()
    assert w.render_label.text()
    assert "exporting out.flac" in w.statusBar().currentMessage()
    labels = []
    while w.rendering and not out.exists():
        labels.append(w.render_label.text())
        qtbot.wait(20)
    qtbot.waitUntil(lambda: flow.outcome is not None, timeout=60000)
    assert flow.outcome == "written" and not w.errors
    assert all(labels)

    doc = w.document
    assert not doc.unrendered_edits and doc.rendered is not None
    audio = load_audio(out)
    assert audio.sample_rate == doc.sample_rate and audio.samples.shape == doc.samples.shape
    assert np.abs(audio.samples - doc.rendered).max() < 1e-4  # 24-bit FLAC of the render
    assert _band_drop_db(doc, audio.samples) > 20  # the -30 dB edit is in the file
    assert "Exported out.flac" in w.statusBar().currentMessage()
    assert not w.render_progress.isVisible()


def test_export_last_render_writes_it_without_the_new_edit(qtbot, window, tmp_path):
    w = window
    w.apply_edit(FIRST)
    first_render = _render(qtbot, w)
    w.apply_edit(SECOND)
    out = tmp_path / "last.wav"
    w.export_to(out, **FLOAT_WAV)
    flow = _asks(w)
    assert flow.last_render_button.text() == "Export Last Render"

    _click(qtbot, flow.last_render_button)
    assert not flow.question.isVisible()
    assert flow.outcome == "written" and not w.rendering and not w.errors
    audio = load_audio(out)
    np.testing.assert_array_equal(audio.samples, first_render)
    assert w.document.unrendered_edits  # the second edit is still waiting for a render
    assert _band_drop_db(w.document, audio.samples) > 20


def test_export_without_edits_writes_the_sound_as_opened_when_nothing_was_rendered(qtbot, window, tmp_path):
    w = window
    w.apply_edit(FIRST)
    out = tmp_path / "plain.wav"
    w.export_to(out, **FLOAT_WAV)
    flow = _asks(w)
    _click(qtbot, flow.last_render_button)
    assert not flow.question.isVisible()
    assert flow.outcome == "written" and not w.rendering
    np.testing.assert_array_equal(load_audio(out).samples, w.document.samples)
    assert "without the edits" in w.statusBar().currentMessage()
    assert w.document.rendered is None and w.document.unrendered_edits


def test_cancel_writes_nothing_and_renders_nothing(qtbot, window, tmp_path):
    w = window
    w.apply_edit(FIRST)
    out = tmp_path / "never.wav"
    w.export_to(out)
    flow = _asks(w)
    _click(qtbot, flow.cancel_button)
    assert not flow.question.isVisible()
    assert flow.outcome == "declined"
    qtbot.wait(200)
    assert not out.exists() and not w.rendering and w.document.rendered is None
    assert "nothing was written" in w.statusBar().currentMessage()


def test_a_cancelled_render_writes_nothing_and_says_so(qtbot, window, tmp_path):
    w = window
    w.document.retrieval_settings = dataclasses.replace(QUICK, iterations=400)  # long enough to cancel
    w.apply_edit(FIRST)
    out = tmp_path / "cancelled.wav"
    w.export_to(out)
    flow = _asks(w)
    _click(qtbot, flow.render_button)
    assert w.rendering
    _click(qtbot, w.render_cancel_button)
    qtbot.waitUntil(lambda: flow.outcome is not None, timeout=60000)
    assert flow.outcome == "render cancelled"
    assert not out.exists()
    assert "cancelled with the render: nothing was written" in w.statusBar().currentMessage()


def test_render_now_waits_for_a_running_render(qtbot, window, tmp_path):
    w = window
    w.apply_edit(FIRST)
    assert w.start_render()
    out = tmp_path / "after.wav"
    w.export_to(out, **FLOAT_WAV)
    flow = _asks(w)
    assert "A render is running" in flow.question.informativeText()
    _click(qtbot, flow.render_button)
    qtbot.waitUntil(lambda: flow.outcome is not None, timeout=60000)
    assert flow.outcome == "written" and not w.errors
    assert not w.document.unrendered_edits
    np.testing.assert_array_equal(load_audio(out).samples, w.document.rendered)
