"""Helpers for driving the editor with real Qt events (pytest-qt tests, screenshot script).

Mouse and wheel events are sent to the view's viewport, so they travel the same path as
a user's: QGraphicsView, pyqtgraph's scene (drag detection), the ViewBox, the tool.
"""
from __future__ import annotations

from collections.abc import Iterable

from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QMouseEvent, QWheelEvent
from PyQt6.QtWidgets import QApplication

__all__ = ["mouse_click", "mouse_drag", "mouse_move", "mouse_press", "mouse_release", "wait_for_picture", "wheel"]


def _send_mouse(widget, kind, pos: QPointF, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QMouseEvent(kind, pos, global_pos, button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def mouse_move(view, pos: QPointF, buttons=Qt.MouseButton.NoButton) -> None:
    """Move the mouse to viewport position ``pos`` (with ``buttons`` held: part of a drag)."""
    _send_mouse(view.viewport(), QMouseEvent.Type.MouseMove, QPointF(pos), Qt.MouseButton.NoButton, buttons)
    QApplication.processEvents()


def mouse_press(view, pos: QPointF, button=Qt.MouseButton.LeftButton,
                modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Move to viewport position ``pos`` and press ``button`` there (the start of a drag)."""
    pos = QPointF(pos)
    viewport = view.viewport()
    _send_mouse(viewport, QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, modifiers)
    _send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, pos, button, button, modifiers)
    QApplication.processEvents()


def mouse_release(view, pos: QPointF, button=Qt.MouseButton.LeftButton,
                  modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Release ``button`` at viewport position ``pos``."""
    _send_mouse(view.viewport(), QMouseEvent.Type.MouseButtonRelease, QPointF(pos), button, Qt.MouseButton.NoButton,
                modifiers)
    QApplication.processEvents()


def mouse_drag(view, points: Iterable[QPointF], button=Qt.MouseButton.LeftButton,
               modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first viewport point, move through the others, release at the last."""
    points = [QPointF(p) for p in points]
    viewport = view.viewport()
    _send_mouse(viewport, QMouseEvent.Type.MouseMove, points[0], Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                modifiers)
    _send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, points[0], button, button, modifiers)
    for p in points[1:]:
        _send_mouse(viewport, QMouseEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers)
    _send_mouse(viewport, QMouseEvent.Type.MouseButtonRelease, points[-1], button, Qt.MouseButton.NoButton,
                modifiers)
    QApplication.processEvents()


def mouse_click(view, pos: QPointF, button=Qt.MouseButton.LeftButton,
                modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press and release at viewport position ``pos`` without moving (a click)."""
    pos = QPointF(pos)
    viewport = view.viewport()
    _send_mouse(viewport, QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, modifiers)
    _send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, pos, button, button, modifiers)
    _send_mouse(viewport, QMouseEvent.Type.MouseButtonRelease, pos, button, Qt.MouseButton.NoButton, modifiers)
    QApplication.processEvents()


def wheel(view, pos: QPointF, notches: float = 1.0, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Turn the mouse wheel by ``notches`` (positive: away from the user) at ``pos``."""
    viewport = view.viewport()
    pos = QPointF(pos)
    global_pos = QPointF(viewport.mapToGlobal(pos.toPoint()))
    event = QWheelEvent(pos, global_pos, QPoint(0, 0), QPoint(0, int(120 * notches)), Qt.MouseButton.NoButton,
                        modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)
    QApplication.processEvents()


def wait_for_picture(qtbot, view, timeout: int = 10000) -> None:
    """Wait until the view has drawn the picture for its current range and document state."""
    def settled():
        request = view._current_request()
        picture = view.picture
        assert request is not None and picture is not None
        assert not view.busy
        assert picture.request == request

    qtbot.waitUntil(settled, timeout=timeout)


def show_window(qtbot, window, document, size: tuple[int, int] = (1200, 800)):
    """Show ``window`` (a MainWindow), open ``document`` in it, wait for its picture and
    give the view the keyboard focus, as a person would find it."""
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    window.set_document(document)
    wait_for_picture(qtbot, window.view)
    window.activateWindow()
    window.view.setFocus()
    return window


def screen_line(view, start, end, steps: int) -> list:
    """Viewport points along a straight screen line between (t, Hz) ``start`` and ``end``."""
    a, b = view.widget_pos(*start), view.widget_pos(*end)
    return [a + (b - a) * (i / steps) for i in range(steps + 1)]


def level_at(doc, layer: str, t: float, hz: float, channel="left") -> float:
    """Level in dB of ``layer`` at time ``t`` (s) in the band nearest ``hz``."""
    import math

    import numpy as np

    raster = doc.raster(t - 0.005, t + 0.005, 1, channel=channel, layer=layer)
    row = int(np.argmin(np.abs(np.log2(raster.centre_hz) - math.log2(hz))))
    return float(raster.db[row, 0])
