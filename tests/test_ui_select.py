"""Selections with real mouse and key events: lasso, time range, band, harmonic, rectangle
with modifiers; add and subtract; Enter applies one edit, Escape clears; zoom to selection."""
import itertools
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt

from scalgui.app.document import Document
from scalgui.dsp.edits import Band, Combined, Harmonic, Lasso, Rectangle, TimeRange
from scalgui.ui.main_window import MainWindow
from scalgui.ui.testing import (
    level_at,
    mouse_click,
    mouse_drag,
    mouse_move,
    mouse_press,
    mouse_release,
    screen_line,
    show_window,
    wait_for_picture,
)

SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, stereo_music, sample_rate):
    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    show_window(qtbot, w, Document.from_samples(stereo_music, sample_rate, device="cpu"))
    yield w
    w.set_document(None)


def _octave(hz):
    return math.log2(hz)


def test_time_range_drag_selects_all_frequencies_and_enter_applies_one_edit(qtbot, window):
    w, view = window, window.view
    qtbot.keyClick(view, Qt.Key.Key_T)
    assert view.tool.name == "time" and w.tool_bar.option_visible("feather")
    w.tool_bar.set_mode("attenuate")
    w.tool_bar.gain.setValue(30.0)
    sec_px, _ = view.units_per_pixel()
    mouse_drag(view, screen_line(view, (1.2, 300.0), (0.4, 2000.0), 8))  # right to left, and diagonal
    assert w.document.edits == ()  # a selection, not yet an edit
    (shape, op), = view.selection.parts
    assert isinstance(shape, TimeRange) and op == "add"
    assert (shape.t0, shape.t1) == pytest.approx((0.4, 1.2), abs=sec_px)
    assert shape.feather_s == pytest.approx(4 * sec_px)
    assert len(view._selection_overlay.items) == 1 and w.apply_selection_action.isEnabled()

    qtbot.keyClick(view, Qt.Key.Key_Return)
    doc = w.document
    assert len(doc.edits) == 1 and w.undo_stack.count() == 1
    edit = doc.edits[0]
    assert edit.shape == shape and (edit.action, edit.amount_db) == ("gain", -30.0)
    assert w.undo_stack.text(0) == "Time range -30 dB"
    for hz in (100.0, 1000.0, 8000.0):  # every frequency inside the range, nothing outside
        assert level_at(doc, "source", 0.8, hz) - level_at(doc, "target", 0.8, hz) == pytest.approx(30.0, abs=0.5)
    assert level_at(doc, "target", 1.6, 1000.0) == pytest.approx(level_at(doc, "source", 1.6, 1000.0), abs=1e-3)
    assert view.selection  # kept: it can be applied again, looped, listened to

    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.selection and view._selection_overlay.items == []
    assert not w.apply_selection_action.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_Return)  # nothing selected: nothing happens
    assert len(doc.edits) == 1
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.edits == ()


def test_band_drag_selects_all_times(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("band")
    _, oct_px = view.units_per_pixel()
    mouse_drag(view, screen_line(view, (0.5, 500.0), (0.9, 2000.0), 8))
    (shape, _), = view.selection.parts
    assert isinstance(shape, Band)
    assert _octave(shape.f0) == pytest.approx(_octave(500.0), abs=oct_px)
    assert _octave(shape.f1) == pytest.approx(_octave(2000.0), abs=oct_px)
    assert shape.feather_oct == pytest.approx(4 * oct_px)


def test_lasso_drag_selects_the_drawn_polygon(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("lasso")
    sec_px, oct_px = view.units_per_pixel()
    corners = [(0.4, 300.0), (1.4, 400.0), (0.9, 3000.0)]
    points = screen_line(view, corners[0], corners[1], 20) + screen_line(view, corners[1], corners[2], 20)[1:]
    mouse_drag(view, points)
    (shape, _), = view.selection.parts
    assert isinstance(shape, Lasso) and len(shape.points) >= 20
    t = np.array([p[0] for p in shape.points])
    y = np.log2([p[1] for p in shape.points])
    assert (t[0], y[0]) == pytest.approx((0.4, _octave(300.0)), abs=max(sec_px, oct_px))
    assert t[-1] == pytest.approx(0.9, abs=sec_px) and y[-1] == pytest.approx(_octave(3000.0), abs=oct_px)
    assert (t.min(), t.max()) == pytest.approx((0.4, 1.4), abs=sec_px)
    assert (y.min(), y.max()) == pytest.approx((_octave(300.0), _octave(3000.0)), abs=oct_px)
    # Inside the triangle the selection weighs 1, far outside 0.
    assert shape.weights(np.array([0.9]), 700.0)[0] == pytest.approx(1.0)
    assert shape.weights(np.array([1.8]), 700.0)[0] == 0.0


def test_harmonic_press_on_the_fundamental_and_drag_the_time_extent(qtbot, window):
    w, view = window, window.view
    qtbot.keyClick(view, Qt.Key.Key_K)
    assert view.tool.name == "harmonic" and w.tool_bar.option_visible("harmonics")
    w.tool_bar.harmonics.setValue(6)
    w.tool_bar.width_cents.setValue(80)
    sec_px, oct_px = view.units_per_pixel()
    f0 = 220.0
    mouse_drag(view, screen_line(view, (0.3, f0), (1.5, f0 * 1.05), 10))  # vertical wobble ignored
    (shape, _), = view.selection.parts
    assert isinstance(shape, Harmonic)
    assert _octave(shape.f0) == pytest.approx(_octave(f0), abs=oct_px)
    assert (shape.t0, shape.t1) == pytest.approx((0.3, 1.5), abs=sec_px)
    assert (shape.count, shape.width_cents) == (6, 80.0)
    # Applied as erase: down on the harmonics, untouched between them.
    w.tool_bar.set_mode("erase")
    w.apply_selection_action.trigger()
    doc = w.document
    assert len(doc.edits) == 1 and doc.edits[0].action == "erase"
    for k in (1, 3):
        assert level_at(doc, "target", 0.9, k * f0) < level_at(doc, "source", 0.9, k * f0) - 20
    between = 2.5 * f0
    assert level_at(doc, "target", 0.9, between) == pytest.approx(level_at(doc, "source", 0.9, between), abs=0.5)


def test_shift_adds_and_alt_or_ctrl_subtract_then_one_combined_edit(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("time")
    w.tool_bar.set_mode("erase")
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6))
    w.tool_bar.set_tool("band")
    mouse_drag(view, screen_line(view, (1.5, 2000.0), (1.5, 8000.0), 6), modifiers=SHIFT)
    w.tool_bar.set_tool("rectangle")  # with a modifier the rectangle selects too
    mouse_drag(view, screen_line(view, (0.4, 200.0), (0.6, 800.0), 6), modifiers=ALT)
    w.tool_bar.set_tool("lasso")
    lasso = [(0.95, 3000.0), (1.35, 3000.0), (1.15, 6000.0), (0.95, 3000.0)]  # a hole in the band
    points = [p for a, b in itertools.pairwise(lasso) for p in screen_line(view, a, b, 10)[:-1]] + [view.widget_pos(*lasso[-1])]
    mouse_drag(view, points, modifiers=CTRL)
    assert w.document.edits == ()
    ops = [op for _, op in view.selection.parts]
    kinds = [type(shape) for shape, _ in view.selection.parts]
    assert ops == ["add", "add", "subtract", "subtract"]
    assert kinds == [TimeRange, Band, Rectangle, Lasso]
    assert len(view._selection_overlay.items) == 4

    qtbot.keyClick(view, Qt.Key.Key_Enter)
    doc = w.document
    assert len(doc.edits) == 1 and w.undo_stack.count() == 1
    shape = doc.edits[0].shape
    assert isinstance(shape, Combined) and shape.parts == view.selection.parts
    assert w.undo_stack.text(0) == "Selection (4 parts) erase"
    assert level_at(doc, "target", 0.35, 3000.0) < level_at(doc, "source", 0.35, 3000.0) - 60  # time range
    assert level_at(doc, "target", 1.8, 4000.0) < level_at(doc, "source", 1.8, 4000.0) - 60  # band
    for t, hz in ((0.5, 400.0), (1.15, 3800.0)):  # the subtracted rectangle and lasso
        assert level_at(doc, "target", t, hz) == pytest.approx(level_at(doc, "source", t, hz), abs=0.5)
    assert level_at(doc, "target", 1.15, 1000.0) == pytest.approx(level_at(doc, "source", 1.15, 1000.0), abs=0.5)
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.edits == () and w.undo_stack.index() == 0


def test_plain_drag_replaces_and_subtracting_from_nothing_says_so(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6))
    mouse_drag(view, screen_line(view, (1.0, 1000.0), (1.4, 1000.0), 6))
    (shape, _), = view.selection.parts
    assert shape.t0 == pytest.approx(1.0, abs=0.01)
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6), modifiers=ALT)
    assert not view.selection
    assert "Nothing to subtract" in w.statusBar().currentMessage()
    # A plain click with a selection tool drops the selection and places the play cursor.
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6))
    mouse_click(view, view.widget_pos(1.25, 1000.0))
    assert not view.selection
    assert w.play_cursor == pytest.approx(1.25, abs=view.units_per_pixel()[0])
    assert view.cursor_line.isVisible() and view.cursor_line.value() == pytest.approx(w.play_cursor)


def test_zoom_to_selection_shows_its_bounds(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("rectangle")
    mouse_drag(view, screen_line(view, (0.5, 400.0), (1.1, 1600.0), 6), modifiers=SHIFT)
    (rect, _), = view.selection.parts
    qtbot.keyClick(view, Qt.Key.Key_E, CTRL)
    assert view.visible_range() == pytest.approx((rect.t0, rect.t1), abs=1e-6)
    assert view.visible_octaves() == pytest.approx((_octave(rect.f0), _octave(rect.f1)), abs=1e-6)
    wait_for_picture(qtbot, view)
    # A time range's bounds span every band.
    view.fit()
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (0.2, 1000.0), (0.6, 1000.0), 6))
    w.zoom_selection_action.trigger()
    assert view.visible_octaves() == pytest.approx(view.octave_extent())
    assert view.visible_range()[1] - view.visible_range()[0] == pytest.approx(0.4, abs=0.01)


def test_apply_button_uses_the_mode_and_the_tool_options_follow_the_tool(qtbot, window):
    w, view = window, window.view
    bar = w.tool_bar
    bar.set_tool("brush")
    assert bar.option_visible("radius") and not bar.option_visible("harmonics")
    bar.set_tool("band")
    assert not bar.option_visible("radius") and bar.option_visible("feather")
    bar.set_mode("boost")
    bar.gain.setValue(6.0)
    mouse_drag(view, screen_line(view, (1.0, 100.0), (1.0, 150.0), 6))
    button = bar.widgetForAction(bar.apply_action)
    assert button is not None and button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    edit = w.document.edits[0]
    assert isinstance(edit.shape, Band) and (edit.action, edit.amount_db) == ("gain", 6.0)
    assert level_at(w.document, "target", 1.0, 122.0) - level_at(w.document, "source", 1.0, 122.0) == pytest.approx(
        6.0, abs=0.3)
    # Enter in the main window (focus on a tool bar button) applies too; in a spin box it does not.
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_Return)
    assert len(w.document.edits) == 2
    bar.gain.setFocus()
    qtbot.keyClick(bar.gain, Qt.Key.Key_Return)
    assert len(w.document.edits) == 2
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.selection


def test_tools_preview_their_outline_while_dragging(qtbot, window):
    """A selection drag shows its shape before the release (then the selection overlay does)."""
    w, view = window, window.view
    w.tool_bar.set_tool("harmonic")
    a, b = view.widget_pos(0.5, 200.0), view.widget_pos(1.0, 200.0)
    mouse_press(view, a)
    for f in (0.3, 0.6, 1.0):
        mouse_move(view, a + (b - a) * f, buttons=Qt.MouseButton.LeftButton)
    preview = view.tool._preview
    assert preview is not None and not preview.path().isEmpty()
    box = preview.path().boundingRect()
    assert (box.left(), box.right()) == pytest.approx((0.5, 1.0), abs=2 * view.units_per_pixel()[0])
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # abandons the gesture: no selection
    mouse_release(view, b)
    assert not view.selection and view.tool._preview is None
