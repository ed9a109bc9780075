"""Editing in the window with real mouse and key events: brush, rectangle, undo and redo."""
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QSettings, Qt

from scalgui.app.document import Document
from scalgui.dsp.edits import Rectangle, Stroke
from scalgui.ui.main_window import MainWindow
from scalgui.ui.testing import level_at, mouse_drag, screen_line, show_window, wait_for_picture


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, stereo_music, sample_rate):
    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    show_window(qtbot, w, Document.from_samples(stereo_music, sample_rate, device="cpu"))
    yield w
    w.set_document(None)  # nothing left to confirm when the window is closed


def test_brush_drag_is_one_stroke_along_the_path_that_lowers_the_target(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("brush")
    w.tool_bar.set_mode("attenuate")
    w.tool_bar.gain.setValue(20.0)
    w.tool_bar.radius.setValue(12)
    start, end = (0.3, 400.0), (1.5, 1600.0)
    sec_px, oct_px = view.units_per_pixel()
    mouse_drag(view, screen_line(view, start, end, 24))

    doc = w.document
    assert len(doc.edits) == 1 and w.undo_stack.count() == 1
    edit = doc.edits[0]
    assert isinstance(edit.shape, Stroke)
    assert (edit.action, edit.amount_db) == ("gain", -20.0)
    stroke = edit.shape
    assert stroke.radius_s == pytest.approx(12 * sec_px)
    assert stroke.radius_oct == pytest.approx(12 * oct_px)
    points = np.array(stroke.points)
    assert len(points) >= 10
    # Endpoints where the drag began and ended, every point on the dragged line (a pixel).
    for point, (t, hz) in ((points[0], start), (points[-1], end)):
        assert point[0] == pytest.approx(t, abs=sec_px)
        assert math.log2(point[1]) == pytest.approx(math.log2(hz), abs=oct_px)
    frac = (points[:, 0] - start[0]) / (end[0] - start[0])
    expected_oct = math.log2(start[1]) + frac * (math.log2(end[1]) - math.log2(start[1]))
    assert np.abs(np.log2(points[:, 1]) - expected_oct).max() < 1.5 * oct_px
    assert np.all(np.diff(points[:, 0]) > 0)

    # Under the stroke the target is 20 dB below the source; away from it, unchanged.
    for f in (0.25, 0.5, 0.75):
        t = start[0] + f * (end[0] - start[0])
        hz = 2 ** (math.log2(start[1]) + f * (math.log2(end[1]) - math.log2(start[1])))
        drop = level_at(doc, "source", t, hz) - level_at(doc, "target", t, hz)
        assert drop == pytest.approx(20.0, abs=1.0)
    assert level_at(doc, "source", 1.0, 100.0) == pytest.approx(level_at(doc, "target", 1.0, 100.0), abs=1e-3)

    # The overlay shows the edit; the title says there are unrendered edits.
    wait_for_picture(qtbot, view)
    assert view.picture.mask is not None and view.picture.mask.max() > 0.9
    assert w.isWindowModified()


def test_undo_and_redo_with_the_keyboard(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("brush")
    mouse_drag(view, screen_line(view, (0.5, 300.0), (1.0, 300.0), 10))
    doc = w.document
    edit = doc.edits[0]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.edits == () and w.undo_stack.index() == 0
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.edits == (edit,) and w.undo_stack.index() == 1
    assert w.history.model().rowCount() == 2  # "Opened" and the stroke
    # A new edit after an undo drops the redo branch, in the stack and in the document.
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    mouse_drag(view, screen_line(view, (1.2, 500.0), (1.6, 500.0), 8))
    assert len(doc.edits) == 1 and doc.edits[0] != edit and not doc.can_redo
    assert w.undo_stack.count() == 1


def test_rectangle_drag_makes_one_rectangle_edit_with_the_dragged_bounds(qtbot, window):
    w, view = window, window.view
    qtbot.keyClick(view, Qt.Key.Key_R)  # the tool's shortcut
    assert view.tool.name == "rectangle"
    w.tool_bar.set_mode("erase")
    sec_px, oct_px = view.units_per_pixel()
    a, b = view.widget_pos(0.6, 2000.0), view.widget_pos(1.4, 500.0)  # drag up-left to down-right
    mouse_drag(view, [a, (a + b) / 2, b])
    assert len(w.document.edits) == 1
    edit = w.document.edits[0]
    shape = edit.shape
    assert isinstance(shape, Rectangle) and edit.action == "erase"
    assert (shape.t0, shape.t1) == pytest.approx((0.6, 1.4), abs=sec_px)
    assert math.log2(shape.f0) == pytest.approx(math.log2(500.0), abs=oct_px)
    assert math.log2(shape.f1) == pytest.approx(math.log2(2000.0), abs=oct_px)
    assert shape.feather_s == pytest.approx(4 * sec_px)
    inside = level_at(w.document, "target", 1.0, 1000.0)
    assert inside < level_at(w.document, "source", 1.0, 1000.0) - 60


def test_paint_mode_adds_magnitude_where_there_was_little(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("brush")
    w.tool_bar.set_mode("paint")
    w.tool_bar.paint.setValue(-20.0)
    mouse_drag(view, screen_line(view, (0.4, 3000.0), (1.6, 6000.0), 16))
    edit = w.document.edits[0]
    assert edit.action == "paint" and edit.amount_db == -20.0
    assert level_at(w.document, "target", 1.0, 2 ** ((math.log2(3000) + math.log2(6000)) / 2)) > -30


def test_pan_tool_drag_pans_instead_of_editing(qtbot, window):
    w, view = window, window.view
    view.show_time_range(0.5, 1.0)
    before = view.visible_range()
    a = view.widget_pos(0.75, 500.0)
    mouse_drag(view, [a, a + QPointF(-100, 0), a + QPointF(-200, 0)])
    after = view.visible_range()
    assert w.document.edits == ()
    assert after[0] > before[0] and after[1] - after[0] == pytest.approx(before[1] - before[0])
