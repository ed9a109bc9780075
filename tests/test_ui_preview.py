"""Quick preview after each edit, and export options — driven with real events."""
import time

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFileDialog

from scalgui.audio import audio_info
from scalgui.ui.testing import mouse_drag, screen_line, wait_for_picture

# `silent_window` (tests/conftest.py): the editor on 2 s of stereo music, no sound device.


def test_p_toggles_preview_and_it_is_in_the_tool_bar_and_edit_menu(qtbot, silent_window):
    w = silent_window
    assert w.preview_action in w.tool_bar.actions()
    edit_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Edit")
    assert w.preview_action in edit_menu.actions()
    assert not w.preview_action.isChecked()
    qtbot.keyClick(w.view, Qt.Key.Key_P)
    assert w.preview_action.isChecked()
    qtbot.keyClick(w.view, Qt.Key.Key_P)
    assert not w.preview_action.isChecked()


def test_without_preview_an_edit_plays_nothing(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    w.tool_bar.set_tool("brush")
    mouse_drag(view, screen_line(view, (0.5, 400.0), (1.0, 800.0), 12))
    assert len(w.document.edits) == 1
    assert not w.previewing and not w.player.playing


def test_brush_drag_with_preview_on_plays_the_edited_span(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    qtbot.keyClick(view, Qt.Key.Key_P)
    assert w.preview_action.isChecked()
    w.tool_bar.set_tool("brush")
    w.tool_bar.set_mode("attenuate")
    starts = []
    w.player.positionChanged.connect(starts.append)
    with qtbot.waitSignal(w.previewFinished, timeout=15000) as blocker:
        mouse_drag(view, screen_line(view, (1.2, 400.0), (1.8, 1600.0), 16))
        assert w.undo_stack.count() == 1 and w.previewing
    start_s, samples, seconds = blocker.args[0]
    doc = w.document
    assert doc.rendered is None  # the preview changed nothing in the document
    assert samples.shape[0] == doc.channels and samples.shape[1] > 0
    end_s = start_s + samples.shape[1] / doc.sample_rate
    # The span covers the stroke (it is padded by the frame's support).
    assert start_s <= 1.2 and end_s >= 1.8
    assert w.player.playing and w.player.silent
    assert starts[0] == pytest.approx(start_s, abs=1e-3)
    assert w.player.duration == pytest.approx(end_s, abs=2 / doc.sample_rate)
    assert w.statusBar().currentMessage() == f"preview ready in {seconds:.1f} s"
    qtbot.wait(100)
    assert start_s < w.player.position <= end_s
    assert view.playhead.isVisible() and start_s <= view.playhead.value() <= end_s


def test_a_new_edit_cancels_the_running_preview(qtbot, silent_window):
    w, view = silent_window, silent_window.view
    doc = w.document
    quick = doc.preview

    def slow_preview(span=None, *, iterations=4, cancel=None):
        time.sleep(1.5)  # long enough for the next edit to arrive first
        return quick(span, iterations=iterations, cancel=cancel)

    doc.preview = slow_preview
    w.preview_action.setChecked(True)
    w.tool_bar.set_tool("brush")
    mouse_drag(view, screen_line(view, (0.5, 400.0), (0.8, 800.0), 8))
    first = w._preview_cancel
    assert first is not None
    wait_for_picture(qtbot, view)  # the edited picture, before the next stroke
    assert w.previewing
    with qtbot.waitSignal(w.previewFinished, timeout=20000) as blocker:
        mouse_drag(view, screen_line(view, (1.3, 400.0), (1.7, 800.0), 8))
        assert len(doc.edits) == 2, doc.edits
        assert first.cancelled and w._preview_cancel is not first
    start_s, samples, _ = blocker.args[0]
    assert start_s <= 1.3 and start_s + samples.shape[1] / w.document.sample_rate >= 1.7
    assert w.document.rendered is None


@pytest.mark.parametrize(("suffix", "bits"), [(".wav", 16), (".flac", 24)])
def test_export_dialog_bit_depth_reaches_the_file(qtbot, silent_window, tmp_path, monkeypatch, suffix, bits):
    w = silent_window
    target = tmp_path / f"out{suffix}"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    w.export_action.trigger()
    dialog = w.export_options_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.quality is None or suffix == ".flac"
    spec_default = dialog.spec.default_bit_depth
    assert dialog.bit_depth.currentData() == spec_default
    dialog.bit_depth.setCurrentIndex(dialog.bit_depth.findData(bits))
    dialog.accept()
    qtbot.waitUntil(lambda: target.exists(), timeout=10000)
    assert not w.errors
    assert audio_info(target)["bit_depth"] == bits


def test_export_dialog_offers_quality_for_lossy_formats(qtbot, silent_window, tmp_path):
    from scalgui.ui.export_dialog import ExportOptionsDialog

    dialog = ExportOptionsDialog(tmp_path / "x.ogg", silent_window)
    assert dialog.bit_depth is None and dialog.quality is not None
    assert dialog.options() == {"bit_depth": None, "quality": "256 kbps"}
    dialog.quality.setCurrentIndex(dialog.quality.findData("128 kbps"))
    assert dialog.options()["quality"] == "128 kbps"
    mp3 = ExportOptionsDialog(tmp_path / "x.mp3", silent_window)
    assert mp3.options() == {"bit_depth": None, "quality": "320 kbps"}
