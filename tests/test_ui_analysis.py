"""View → Analysis Settings…: re-analysis in a worker keeps the edits and redraws; invalid
values are refused in the dialog with the reason."""
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDialogButtonBox

from scalgui.app.document import Document
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.ui.testing import wait_for_picture


@pytest.fixture
def window(qtbot, empty_window, stereo_music, sample_rate):
    empty_window.set_document(Document.from_samples(stereo_music[:, :sample_rate], sample_rate, device="cpu"))
    wait_for_picture(qtbot, empty_window.view)
    return empty_window


def _ok(qtbot, dialog):
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_changing_voices_reanalyses_in_a_worker_and_keeps_the_edits(qtbot, window):
    w, view = window, window.view
    doc = w.document
    edit = Edit(Rectangle(0.3, 0.6, 1000.0, 4000.0), "gain", -30.0)
    w.apply_edit(edit)
    wait_for_picture(qtbot, view)
    bands_before = view.picture.db.shape[0]
    assert bands_before == len(doc.frame.bands.wavelet_indices)
    drop_before = view.picture.request

    w.analysis_action.trigger()
    dialog = w.settings_dialog
    assert dialog.isVisible() and dialog.voices.value() == 12
    dialog.voices.setValue(24)
    _ok(qtbot, dialog)
    assert not dialog.isVisible()
    assert w.analysing and w.analysis_progress.isVisible()  # busy indicator
    assert not w.render_action.isEnabled() and not view.editable
    qtbot.waitUntil(lambda: not w.analysing, timeout=30000)
    assert not w.errors and not w.analysis_progress.isVisible() and view.editable
    assert doc.settings.voices_per_octave == 24
    assert doc.edits == (edit,) and w.undo_stack.count() == 1  # edits are kept
    wait_for_picture(qtbot, view)
    bands_after = view.picture.db.shape[0]
    assert bands_after == len(doc.frame.bands.wavelet_indices)
    assert bands_after == pytest.approx(2 * bands_before, abs=2)  # the picture follows the band count
    assert view.picture.request != drop_before
    # The edit acts on the new analysis: the target is 30 dB down inside the rectangle.
    raster_t = doc.raster(0.44, 0.46, 1, channel="left", layer="target")
    raster_s = doc.raster(0.44, 0.46, 1, channel="left", layer="source")
    rows = (raster_t.centre_hz > 1500) & (raster_t.centre_hz < 2700)
    assert (raster_s.db[rows, 0] - raster_t.db[rows, 0]) == pytest.approx(30.0, abs=0.5)
    assert "24 voices" in w.statusBar().currentMessage()


def test_invalid_settings_are_refused_in_the_dialog_with_the_reason(qtbot, window):
    w = window
    doc = w.document
    settings = doc.settings
    w.analysis_action.trigger()
    dialog = w.settings_dialog
    dialog.fmin.setValue(5000.0)
    dialog.fmax.setValue(1000.0)
    _ok(qtbot, dialog)
    assert dialog.isVisible() and dialog.error.isVisible()
    assert "fmax" in dialog.error.text() and "fmin" in dialog.error.text()
    assert not w.analysing and doc.settings == settings

    dialog.fmin.setValue(2000.0)
    dialog.fmax.setValue(2000.0)  # equal: a frame with one band is no scalogram
    _ok(qtbot, dialog)
    assert dialog.isVisible() and "below fmax" in dialog.error.text()

    dialog.fmin.setValue(30000.0)  # above Nyquist (22050 Hz)
    dialog.fmax.setValue(40000.0)
    _ok(qtbot, dialog)
    assert dialog.isVisible() and "Nyquist" in dialog.error.text()
    assert doc.settings == settings

    dialog.fmin.setValue(40.0)  # a valid change goes through
    dialog.fmax.setValue(12000.0)
    _ok(qtbot, dialog)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not w.analysing, timeout=30000)
    assert (doc.settings.fmin, doc.settings.fmax) == (40.0, 12000.0)
    wait_for_picture(qtbot, w.view)
    lo, hi = w.view.octave_extent()
    assert 2**lo > 35.0 and 2**hi < 13000.0
    assert w.view.visible_octaves() == pytest.approx((lo, hi))  # the whole new range is shown


def test_cancel_changes_nothing(qtbot, window):
    w = window
    settings = w.document.settings
    w.analysis_action.trigger()
    dialog = w.settings_dialog
    dialog.voices.setValue(36)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and not w.analysing and w.document.settings == settings
