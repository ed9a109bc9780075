"""Selections with real mouse and key events: lasso, time range, band, harmonic, rectangle
with modifiers; add and subtract; Enter applies one edit, Escape clears; zoom to selection;
selection changes as undo steps; one outline for a combined selection."""
import itertools
import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QSettings, Qt

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
    assert len(doc.edits) == 1 and w.undo_stack.count() == 2  # the selection, then the edit
    edit = doc.edits[0]
    assert edit.shape == shape and (edit.action, edit.amount_db) == ("gain", -30.0)
    assert [w.undo_stack.text(i) for i in range(2)] == ["Select time range", "Time range -30 dB"]
    for hz in (100.0, 1000.0, 8000.0):  # every frequency inside the range, nothing outside
        assert level_at(doc, "source", 0.8, hz) - level_at(doc, "target", 0.8, hz) == pytest.approx(30.0, abs=0.5)
    assert level_at(doc, "target", 1.6, 1000.0) == pytest.approx(level_at(doc, "source", 1.6, 1000.0), abs=1e-3)
    assert view.selection  # kept: it can be applied again, looped, listened to

    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.selection and view._selection_overlay.items == []
    assert not w.apply_selection_action.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_Return)  # nothing selected: nothing happens
    assert len(doc.edits) == 1
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)  # undoes the deselection first
    assert view.selection.parts == ((shape, "add"),) and len(doc.edits) == 1
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.edits == () and view.selection


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
    assert len(view._selection_overlay.items) == 1  # one outline of the whole region

    qtbot.keyClick(view, Qt.Key.Key_Enter)
    doc = w.document
    assert len(doc.edits) == 1 and w.undo_stack.count() == 5
    shape = doc.edits[0].shape
    assert isinstance(shape, Combined) and shape.parts == view.selection.parts
    assert w.undo_stack.text(4) == "Selection (4 parts) erase"
    assert level_at(doc, "target", 0.35, 3000.0) < level_at(doc, "source", 0.35, 3000.0) - 60  # time range
    assert level_at(doc, "target", 1.8, 4000.0) < level_at(doc, "source", 1.8, 4000.0) - 60  # band
    for t, hz in ((0.5, 400.0), (1.15, 3800.0)):  # the subtracted rectangle and lasso
        assert level_at(doc, "target", t, hz) == pytest.approx(level_at(doc, "source", t, hz), abs=0.5)
    assert level_at(doc, "target", 1.15, 1000.0) == pytest.approx(level_at(doc, "source", 1.15, 1000.0), abs=0.5)
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert doc.edits == () and w.undo_stack.index() == 4  # the four selection steps remain
    assert shape.parts == view.selection.parts


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


def _history(w) -> list[str]:
    """The History panel's rows as the user reads them (the first is the opened state)."""
    model = w.history.model()
    return [model.data(model.index(row, 0)) for row in range(model.rowCount())]


def test_selection_changes_are_undo_steps_in_order_with_the_edits(qtbot, window):
    w, view = window, window.view
    doc = w.document
    w.tool_bar.set_mode("attenuate")
    w.tool_bar.gain.setValue(20.0)
    states = [view.selection.parts]
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6))
    states.append(view.selection.parts)
    w.tool_bar.set_tool("band")
    mouse_drag(view, screen_line(view, (1.5, 2000.0), (1.5, 8000.0), 6), modifiers=SHIFT)
    states.append(view.selection.parts)
    w.tool_bar.set_tool("rectangle")
    mouse_drag(view, screen_line(view, (0.4, 200.0), (0.6, 800.0), 6), modifiers=ALT)
    states.append(view.selection.parts)
    qtbot.keyClick(view, Qt.Key.Key_Return)  # applies the selection: an edit
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # deselects
    assert [len(parts) for parts in states] == [0, 1, 2, 3] and not view.selection
    assert _history(w) == ["Opened", "Select time range", "Add band to selection",
                           "Subtract rectangle from selection", "Selection (3 parts) -20 dB", "Deselect"]
    # (selection, number of edits) after each step, oldest first.
    timeline = [(states[0], 0), (states[1], 0), (states[2], 0), (states[3], 0), (states[3], 1), ((), 1)]
    assert w.undo_stack.index() == 5
    for step in range(5, 0, -1):
        qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
        parts, edits = timeline[step - 1]
        assert (view.selection.parts, len(doc.edits)) == (parts, edits), step
        assert w.history.currentIndex().row() == step - 1
        assert len(view._selection_overlay.items) == (1 if parts else 0)
        assert w.apply_selection_action.isEnabled() == bool(parts)
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)  # nothing left to undo
    assert w.undo_stack.index() == 0 and not view.selection and doc.edits == ()
    for step in range(1, 6):
        qtbot.keyClick(view, Qt.Key.Key_Z, CTRL | SHIFT)
        parts, edits = timeline[step]
        assert (view.selection.parts, len(doc.edits)) == (parts, edits), step
    assert level_at(doc, "target", 0.5, 3000.0) == pytest.approx(level_at(doc, "source", 0.5, 3000.0) - 20, abs=0.5)

    # A click with a selection tool deselects, as one step; a new selection after an
    # undo drops what could have been redone.
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)  # the selection is back
    w.tool_bar.set_tool("lasso")
    mouse_click(view, view.widget_pos(1.25, 1000.0))
    assert not view.selection and _history(w)[-1] == "Deselect" and w.undo_stack.index() == 5
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    assert view.selection.parts == states[3]
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (1.0, 1000.0), (1.4, 1000.0), 6))
    assert _history(w)[-2:] == ["Selection (3 parts) -20 dB", "Select time range"]
    assert not w.undo_stack.canRedo()


def _distance_px(view, path, t: float, hz: float) -> float:
    """Screen pixels from (t, hz) to the nearest line of ``path`` (view coordinates)."""
    sec_px, oct_px = view.units_per_pixel()
    x, y = t / sec_px, math.log2(hz) / oct_px
    best = math.inf
    for polygon in path.toSubpathPolygons():
        points = [(p.x() / sec_px, p.y() / oct_px) for p in polygon]
        for (ax, ay), (bx, by) in itertools.pairwise(points + points[:1]):
            dx, dy = bx - ax, by - ay
            f = 0.0 if dx == dy == 0 else min(max(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0), 1.0)
            best = min(best, math.hypot(x - ax - f * dx, y - ay - f * dy))
    return best


def test_a_combined_selection_is_outlined_as_one_region_with_its_hole(qtbot, window):
    w, view = window, window.view
    w.tool_bar.set_tool("time")
    mouse_drag(view, screen_line(view, (0.3, 1000.0), (0.7, 1000.0), 6))
    w.tool_bar.set_tool("band")
    mouse_drag(view, screen_line(view, (1.5, 2000.0), (1.5, 8000.0), 6), modifiers=SHIFT)
    w.tool_bar.set_tool("lasso")
    triangle = [(0.95, 3000.0), (1.35, 3000.0), (1.15, 6000.0), (0.95, 3000.0)]  # inside the band
    points = [p for a, b in itertools.pairwise(triangle) for p in screen_line(view, a, b, 10)[:-1]]
    mouse_drag(view, [*points, view.widget_pos(*triangle[-1])], modifiers=CTRL)
    assert [op for _, op in view.selection.parts] == ["add", "add", "subtract"]

    items = view._selection_overlay.items
    assert len(items) == 1 and items[0].isVisible()
    path = items[0].path()

    def inside(t, hz):
        return path.contains(QPointF(t, math.log2(hz)))

    assert inside(0.5, 300.0) and inside(1.8, 4000.0) and inside(0.5, 4000.0)  # time range, band, both
    assert not inside(1.15, 3800.0)  # the subtracted triangle is a hole
    assert not inside(1.0, 500.0) and not inside(1.0, 12000.0)  # outside both
    # The outline is the region's boundary: along the band's edge beside the time range
    # and around the hole, but not across the inside where the time range and band overlap.
    assert _distance_px(view, path, 1.0, 2000.0) < 1.0
    assert _distance_px(view, path, 1.15, 3000.0) < 1.5
    assert _distance_px(view, path, 0.5, 2000.0) > 10.0
    assert _distance_px(view, path, 0.5, 8000.0) > 10.0
    # Undoing the subtraction closes the hole; the outline follows the selection.
    qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
    path = view._selection_overlay.items[0].path()
    assert inside(1.15, 3800.0)
