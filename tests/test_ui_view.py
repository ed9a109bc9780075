"""The editor window as a viewer: opening, the picture, zoom and pan, read-out, axis, channels.

Driven with real Qt events on the view's viewport (pytest-qt, offscreen).
"""
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication

from scalgui.resources import example_path
from scalgui.ui.freq_axis import LogFrequencyAxis, note_name
from scalgui.ui.testing import mouse_move, wait_for_picture, wheel


@pytest.fixture
def window(empty_window):
    empty_window.resize(1200, 800)
    return empty_window


@pytest.fixture
def example_window(qtbot, window):
    window.open_file(example_path())
    qtbot.waitUntil(lambda: window.document is not None, timeout=20000)
    wait_for_picture(qtbot, window.view)
    return window


def test_opens_the_example_and_shows_a_picture_of_the_visible_range(example_window):
    w = example_window
    view, doc = w.view, w.document
    bands = len(doc.frame.bands.wavelet_indices)
    picture = view.picture
    request = picture.request
    assert view.visible_range() == pytest.approx((0.0, doc.duration))
    assert (request.start_s, request.end_s) == pytest.approx((0.0, doc.duration))
    # One image column per screen pixel and one row per pixel row; bands before resampling.
    assert request.width == pytest.approx(view.viewbox.width(), abs=1)
    assert request.height == pytest.approx(view.viewbox.height(), abs=1)
    assert view.image.image.shape == (request.height, request.width)
    assert picture.db.shape == (bands, request.width)
    assert view.image.image.dtype == np.float32
    assert view.image.levels is not None and tuple(view.image.levels) == pytest.approx(view.levels)
    assert str(example_path().resolve()) in w.recent_files()
    w.recent_menu.aboutToShow.emit()
    assert [a.text() for a in w.recent_menu.actions()] == ["example.flac"]
    assert "example.flac" in w.windowTitle()
    assert w.display_bar.channel.isEnabled()  # stereo: channel views offered


def test_wheel_zooms_time_around_the_cursor_and_redraws_at_the_new_range(qtbot, example_window):
    view = example_window.view
    before = view.visible_range()
    pos = view.widget_pos(2.0, 440.0)
    wheel(view, pos, notches=3)
    x0, x1 = view.visible_range()
    assert x1 - x0 == pytest.approx((before[1] - before[0]) * 0.8**3, rel=1e-3)
    # The time under the cursor stays under the cursor.
    assert view.view_pos(pos)[0] == pytest.approx(2.0, abs=(x1 - x0) / view.viewbox.width())
    assert view.visible_octaves() == pytest.approx(view._extent)  # frequency untouched
    wait_for_picture(qtbot, view)
    request = view.picture.request
    assert (request.start_s, request.end_s) == pytest.approx((x0, x1))
    assert request.width == pytest.approx(view.viewbox.width(), abs=1)  # re-rendered, not upscaled
    assert view.image.image.shape[1] == request.width
    wheel(view, pos, notches=-10)  # zooming out stops at the whole sound
    assert view.visible_range() == pytest.approx((0.0, example_window.document.duration))


def test_shift_wheel_zooms_frequency(example_window):
    view = example_window.view
    y0, y1 = view.visible_octaves()
    wheel(view, view.widget_pos(2.0, 440.0), notches=2, modifiers=Qt.KeyboardModifier.ShiftModifier)
    z0, z1 = view.visible_octaves()
    assert z1 - z0 == pytest.approx((y1 - y0) * 0.8**2, rel=1e-3)
    assert view.visible_range() == pytest.approx((0.0, example_window.document.duration))


def test_keys_zoom_pan_and_fit(qtbot, example_window):
    view = example_window.view
    view.setFocus()
    full = view.visible_range()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    zoomed = view.visible_range()
    assert zoomed[1] - zoomed[0] == pytest.approx((full[1] - full[0]) / 1.5)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    moved = view.visible_range()
    assert moved[0] == pytest.approx(zoomed[0] + 0.1 * (zoomed[1] - zoomed[0]))
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.visible_range() == pytest.approx(full)


def test_overview_region_follows_and_drives_the_visible_range(example_window):
    view = example_window.view
    view.show_time_range(1.0, 2.0)
    assert view.region.getRegion() == pytest.approx((1.0, 2.0))
    view.region.setRegion((3.0, 4.5))
    assert view.visible_range() == pytest.approx((3.0, 4.5))


def test_status_readout_shows_time_frequency_note_and_level(qtbot, example_window):
    w = example_window
    mouse_move(w.view, w.view.widget_pos(1.0, 261.63))
    text = w.readout.text()
    assert "Hz" in text and "dB" in text and " s" in text
    assert "C4" in text
    t, hz = (float(x) for x in text.split()[0:3:2])
    assert t == pytest.approx(1.0, abs=0.02)
    assert hz == pytest.approx(261.63, rel=0.02)


def test_channel_choice_redraws_with_that_channel(qtbot, example_window):
    w = example_window
    w.display_bar.channel.setCurrentIndex(w.display_bar.channel.findData("side"))
    wait_for_picture(qtbot, w.view)
    assert w.view.picture.request.channel == "side"
    side = w.view.picture.db
    w.display_bar.channel.setCurrentIndex(w.display_bar.channel.findData("left"))
    wait_for_picture(qtbot, w.view)
    assert not np.allclose(side, w.view.picture.db)


def test_colour_range_and_map_controls_set_the_image_levels(qtbot, example_window):
    w = example_window
    w.display_bar.floor.setValue(-80)
    w.display_bar.top.setValue(-20)
    assert tuple(w.view.image.levels) == pytest.approx((-80, -20))
    w.colormap_actions["viridis"].trigger()
    assert w.view.colormap == "viridis"


def test_log_frequency_axis_ticks_at_round_frequencies():
    axis = LogFrequencyAxis("left")
    levels = axis.tickValues(math.log2(20), math.log2(20000), 600)
    major = levels[0][1]
    labels = axis.tickStrings(major, 1.0, levels[0][0])
    for expected in ("50", "100", "200", "500", "1k", "2k", "5k", "10k"):
        assert expected in labels
    zoomed = axis.tickValues(math.log2(400), math.log2(500), 600)[0][1]
    assert len(zoomed) >= 3  # finer ticks when zoomed in
    axis.set_notes(True)
    notes = axis.tickStrings(axis.tickValues(math.log2(100), math.log2(1000), 600)[0][1], 1.0, 1.0)
    assert "C4" in notes


def test_note_names():
    assert note_name(440.0) == ("A4", 0)
    assert note_name(261.63)[0] == "C4"
    assert note_name(440.0 * 2 ** (30 / 1200)) == ("A4", 30)


def test_open_error_is_a_message_not_a_traceback(qtbot, window, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wave file")
    window.open_file(bad)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10000)
    _title, text, detail = window.errors[0]
    assert "broken.wav" in text + detail
    assert window.document is None


def test_dropping_a_file_opens_it(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(example_path()))])
    enter = QDragEnterEvent(QPoint(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.document is not None, timeout=20000)
    assert window.document.path.name == "example.flac"
