"""Render, cancel and export from the window: the worker thread, progress, latency, files."""
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtWidgets import QFileDialog

from scalgui.app.document import Document
from scalgui.audio import load_audio
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.dsp.phase import RetrievalSettings
from scalgui.ui.main_window import MainWindow
from scalgui.ui.render_status import convergence_text
from scalgui.ui.testing import wait_for_picture

RECT = Rectangle(0.3, 0.7, 1000.0, 4000.0)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, stereo_music, sample_rate):
    """A window on a generated 1 s stereo sound (chord, bass, hiss, a click)."""
    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    questions = []
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: questions.append(title) or True)
    errors = []
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *args: errors.append(args))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.questions, w.errors = questions, errors
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    w.set_document(Document.from_samples(stereo_music[:, :sample_rate], sample_rate, device="cpu"))
    wait_for_picture(qtbot, w.view)
    w.activateWindow()
    w.view.setFocus()
    yield w
    w.set_document(None)  # nothing left to confirm when the window is closed


def test_render_runs_in_a_worker_and_the_event_loop_stays_responsive(qtbot, window):
    w = window
    w.apply_edit(Edit(RECT, "gain", -40.0))
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    progress = []
    timer.start()
    qtbot.keyClick(w.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert w.rendering and w.render_progress.isVisible() and w.render_cancel_button.isVisible()
    started = time.perf_counter()
    while w.rendering:  # keep the view busy too: redraw while the render runs
        qtbot.wait(50)
        progress.append(w.render_label.text())
        w.view.refresh()
        assert time.perf_counter() - started < 120
    timer.stop()
    gaps = np.diff([t for t in ticks if t >= started])
    assert len(gaps) > 10
    print(f"\nrender {time.perf_counter() - started:.2f} s; event-loop max gap {1000 * gaps.max():.1f} ms, "
          f"median {1000 * np.median(gaps):.1f} ms over {len(gaps)} ticks")
    assert gaps.max() < 0.100

    doc = w.document
    assert doc.rendered is not None and doc.rendered.shape == doc.samples.shape
    assert not doc.unrendered_edits and w.last_render is not None and not w.last_render.cancelled
    assert any("iteration" in text and " dB (" in text for text in progress)
    assert not w.render_progress.isVisible()
    # The render follows the edit: well down inside the rectangle.
    inside = doc.raster(0.4, 0.6, 8, channel="left", layer="render")
    source = doc.raster(0.4, 0.6, 8, channel="left", layer="source")
    rows = (inside.centre_hz > 1400) & (inside.centre_hz < 2800)
    assert np.median(source.db[rows] - inside.db[rows]) > 20
    # After a render the difference view is available.
    assert w.difference_action.isEnabled()
    w.difference_action.trigger()
    assert w.view.layer == "difference" and w.display_bar.layer.currentData() == "difference"
    wait_for_picture(qtbot, w.view)
    assert w.view.picture.request.layer == "difference"
    assert tuple(w.view.image.levels) == pytest.approx((-30, 30))


def _slow_renders(doc):
    """Renders long enough to act on while they run (no stopping rule, no budget)."""
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=400)


def _wait_for_workers(qtbot, w):
    qtbot.waitUntil(lambda: all(thread.isFinished() for thread in w._threads), timeout=60000)


@pytest.mark.parametrize("stage", ["analysing", "iterating"])
def test_cancel_is_immediate_and_changes_nothing(qtbot, window, stage):
    w = window
    doc = w.document
    w.apply_edit(Edit(RECT, "gain", -20.0))
    assert w.start_render()
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    before = doc.rendered.copy()
    _slow_renders(doc)
    w.apply_edit(Edit(Rectangle(0.1, 0.3, 500.0, 2000.0), "erase"))
    pending = doc.pending_spans
    assert w.start_render()
    if stage == "iterating":
        qtbot.waitUntil(lambda: "iteration" in w.render_label.text(), timeout=60000)
    clicked = time.perf_counter()
    qtbot.mouseClick(w.render_cancel_button, Qt.MouseButton.LeftButton)
    assert not w.rendering and not w.render_progress.isVisible()  # at once, not at the worker's next check
    assert time.perf_counter() - clicked < 0.5
    assert "cancelled" in w.statusBar().currentMessage()
    assert w.render_action.isEnabled() and not w.errors
    _wait_for_workers(qtbot, w)  # the worker stops on its own and leaves nothing behind
    qtbot.wait(50)
    assert np.array_equal(doc.rendered, before) and doc.pending_spans == pending
    assert len(doc.edits) == 2 and w.undo_stack.count() >= 2


def test_an_edit_during_a_render_ends_up_rendered(qtbot, window):
    w = window
    doc = w.document
    _slow_renders(doc)
    w.apply_edit(Edit(RECT, "gain", -20.0))
    assert w.start_render()
    qtbot.waitUntil(lambda: "iteration" in w.render_label.text(), timeout=60000)
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=8)
    w.apply_edit(Edit(Rectangle(0.1, 0.3, 500.0, 2000.0), "erase"))
    assert w.rendering  # started again with both edits, not waiting for the first render
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    assert not doc.unrendered_edits and w.last_render.iterations <= 8
    erased = doc.raster(0.15, 0.25, 4, channel="left", layer="render")
    source = doc.raster(0.15, 0.25, 4, channel="left", layer="source")
    rows = (erased.centre_hz > 700) & (erased.centre_hz < 1400)
    assert np.median(source.db[rows] - erased.db[rows]) > 20


def test_status_plot_and_history_say_the_same_convergence(qtbot, window):
    w = window
    w.apply_edit(Edit(RECT, "gain", -20.0))
    qtbot.keyClick(w.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    figure = convergence_text(w.last_render.spectral_convergence_db)
    assert figure.endswith(")") and " dB (" in figure  # the number with its plain-language hint
    assert figure in w.statusBar().currentMessage()
    assert figure in w.convergence.getPlotItem().titleLabel.text
    assert figure in w.undo_stack.command(w.undo_stack.count() - 1).text()
    x, _ = w.convergence.points
    assert x.min() >= 1 and w.convergence.getPlotItem().viewRange()[0][0] == pytest.approx(0, abs=0.5)


def test_export_round_trip(qtbot, window, tmp_path, monkeypatch):
    w = window
    w.apply_edit(Edit(RECT, "gain", -20.0))
    out = tmp_path / "out.flac"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "FLAC (*.flac)"))
    w.export_action.trigger()
    w.export_options_dialog.accept()
    qtbot.mouseClick(w.pending_export.render_button, Qt.MouseButton.LeftButton)  # render, then write
    qtbot.waitUntil(out.exists, timeout=60000)
    doc = w.document
    audio = load_audio(out)
    assert audio.sample_rate == doc.sample_rate and audio.samples.shape == doc.samples.shape
    assert np.abs(audio.samples - doc.rendered).max() < 1e-4  # 24-bit FLAC
    assert not doc.unsaved and not w.errors


def test_export_refuses_to_overwrite_the_source(qtbot, window, tmp_path, monkeypatch):
    w = window
    source = tmp_path / "source.wav"
    source.write_bytes(b"")
    w.document.path = source
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(source), "WAV (*.wav)"))
    w.export_action.trigger()
    w.export_options_dialog.accept()
    assert w.errors and "source.wav" in " ".join(w.errors[0])
    assert source.read_bytes() == b""


def test_closing_with_unrendered_edits_asks_first(qtbot, window, monkeypatch):
    w = window
    w.apply_edit(Edit(RECT, "gain", -10.0))
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: w.questions.append(title) or False)
    w.close()
    assert w.isVisible() and w.questions == ["Discard changes?"]
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    w.close()
    assert not w.isVisible()


def test_the_spans_in_view_render_first_and_play_before_the_render_ends(qtbot, window, monkeypatch):
    w = window
    w.set_document(Document.from_samples(signals.example_sound(22050), 22050, device="cpu"))
    wait_for_picture(qtbot, w.view)
    doc = w.document
    w.apply_edit(Edit(Rectangle(2.6, 2.8, 500.0, 2000.0), "gain", -20.0))
    assert w.start_render()
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    w.transport.b_action.trigger()  # listening to the render
    assert w.transport.b_action.isChecked()
    before = doc.rendered.copy()
    w.apply_edit(Edit(Rectangle(0.5, 0.7, 500.0, 2000.0), "gain", -20.0))
    w.apply_edit(Edit(Rectangle(4.8, 5.0, 500.0, 2000.0), "gain", -20.0))
    w.view.show_time_range(4.0, 6.0)  # the second edit is in view: it renders first
    drafts, played = [], []
    monkeypatch.setattr(w.player, "set_audio", lambda samples, rate=None: played.append(samples))
    original = w._render_draft
    monkeypatch.setattr(w, "_render_draft", lambda d: (drafts.append((d.start_s, w.rendering)), original(d)))
    assert w.start_render()
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    assert len(drafts) == 2 and all(during for _, during in drafts)
    assert drafts[0][0] > 3.0 > drafts[1][0]  # nearest the view first
    # B played the first finished span while the render still ran, then the render.
    second, first = (slice(int(t * doc.sample_rate), int(t * doc.sample_rate) + 200) for t in (4.9, 0.6))
    halfway = [p for p in played if p is not None and not np.array_equal(p[:, second], before[:, second])
               and np.array_equal(p[:, first], before[:, first])]
    assert halfway  # the span in view, rendered, and the other one not yet
    assert np.array_equal(played[-1], doc.rendered)


def test_refine_render_from_the_keyboard(qtbot, window):
    w = window
    assert not w.refine_render_action.isEnabled()  # nothing rendered yet
    w.apply_edit(Edit(RECT, "gain", -30.0))
    w.document.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=0)
    qtbot.keyClick(w.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    first = w.last_render
    assert first.iterations == 0 and w.refine_render_action.isEnabled()
    w.document.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=6)
    qtbot.keyClick(w.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert w.rendering
    qtbot.waitUntil(lambda: not w.rendering, timeout=60000)
    assert w.last_render.iterations == 6
    assert w.last_render.spectral_convergence_db < first.spectral_convergence_db
