"""Editing tools of the scalogram view: pan, brush and rectangle.

A tool turns one mouse gesture into one :class:`~scalgui.dsp.edits.Edit` in seconds and
Hz: a brush drag becomes a ``Stroke``, a rectangle drag a ``Rectangle``. Sizes the user
sets in screen pixels (brush radius, feather) are converted to seconds and octaves when
the gesture starts, at the zoom it starts at. The view calls :meth:`Tool.begin`,
:meth:`Tool.move` and :meth:`Tool.finish` with positions in view coordinates:
``t`` in seconds and ``y`` in octaves (``log2(Hz)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QPen
from PyQt6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem

from scalgui.dsp.edits import Edit, Rectangle, Stroke

__all__ = ["MODES", "TOOLS", "BrushTool", "PanTool", "RectangleTool", "Tool", "ToolSettings", "describe_edit", "make_tool"]

#: Brush and selection modes, as shown in the tool options.
MODES = ("attenuate", "boost", "erase", "restore", "paint")
#: Tool names.
TOOLS = ("pan", "brush", "rectangle")

_PREVIEW = QColor(255, 255, 255, 80)
_OUTLINE = QColor(255, 255, 255, 200)


@dataclass
class ToolSettings:
    """What the tool options bar sets; shared by all tools.

    Attributes
    ----------
    mode : str
        One of :data:`MODES`.
    gain_db : float
        N in "attenuate/boost by N dB" (positive).
    paint_db : float
        Level of painted magnitude, dB full scale.
    radius_px : float
        Brush radius in screen pixels (converted to seconds and octaves at stroke start).
    hardness : float
        Share of the brush radius at full strength, in [0, 1].
    feather_px : float
        Feather of rectangle edges in screen pixels.
    """

    mode: str = "attenuate"
    gain_db: float = 20.0
    paint_db: float = -30.0
    radius_px: float = 12.0
    hardness: float = 0.5
    feather_px: float = 4.0

    def action(self) -> tuple[str, float]:
        """The edit action and amount in dB for the current mode."""
        if self.mode == "attenuate":
            return "gain", -abs(self.gain_db)
        if self.mode == "boost":
            return "gain", abs(self.gain_db)
        if self.mode in ("erase", "restore"):
            return self.mode, 0.0
        if self.mode == "paint":
            return "paint", float(self.paint_db)
        raise ValueError(f"unknown mode {self.mode!r}; choose one of: {', '.join(MODES)}")


def describe_edit(edit: Edit) -> str:
    """Short text for the history panel: ``"Brush -20 dB"``, ``"Rectangle erase"``."""
    shape = type(edit.shape).__name__
    shape = "Brush" if shape == "Stroke" else shape
    if edit.action == "gain":
        return f"{shape} {edit.amount_db:+g} dB"
    if edit.action == "paint":
        return f"{shape} paint {edit.amount_db:g} dBFS"
    return f"{shape} {edit.action}"


def _cosmetic_pen(color: QColor, width: float = 1.0) -> QPen:
    pen = QPen(color)
    pen.setCosmetic(True)
    pen.setWidthF(width)
    return pen


class Tool:
    """Base tool: does nothing with the left button (the view pans)."""

    name = "pan"
    draws = False
    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, settings: ToolSettings) -> None:
        self.settings = settings

    def begin(self, view, t: float, y: float) -> None:
        """A left-button drag starts at ``(t, y)``."""

    def move(self, view, t: float, y: float) -> None:
        """The drag moved to ``(t, y)``."""

    def finish(self, view, t: float, y: float) -> Edit | None:
        """The drag ended at ``(t, y)``; the edit it made, if any."""
        return None

    def click(self, view, t: float, y: float) -> Edit | None:
        """A click without a drag at ``(t, y)``."""
        return None

    def cancel(self, view) -> None:
        """Abandon a gesture in progress (Escape)."""

    def hover(self, view, t: float, y: float) -> None:
        """The mouse moved over the view without a button."""

    def leave(self, view) -> None:
        """The mouse left the view, or the tool is being replaced."""

    @property
    def active(self) -> bool:
        """Whether a gesture is in progress."""
        return False


class PanTool(Tool):
    """Drag pans, the wheel zooms (the view's default behaviour)."""


class BrushTool(Tool):
    """One drag = one :class:`Stroke` edit with the current mode."""

    name = "brush"
    draws = True
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._points: list[tuple[float, float]] | None = None
        self._unit = (1.0, 1.0)  # seconds and octaves per screen pixel at stroke start
        self._preview: pg.PlotCurveItem | None = None
        self._ring: QGraphicsEllipseItem | None = None

    @property
    def active(self) -> bool:
        return self._points is not None

    def radii(self, view) -> tuple[float, float]:
        """Brush radius in seconds and octaves at the view's current zoom."""
        sec_px, oct_px = view.units_per_pixel()
        r = float(self.settings.radius_px)
        return r * sec_px, r * oct_px

    def begin(self, view, t, y):
        self._unit = view.units_per_pixel()
        self._points = [(t, y)]
        pen = pg.mkPen(_PREVIEW, width=2 * self.settings.radius_px)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self._preview = pg.PlotCurveItem(pen=pen)
        view.add_preview(self._preview)
        self._update_preview()
        self.hover(view, t, y)

    def move(self, view, t, y):
        if self._points is None:
            return
        last_t, last_y = self._points[-1]
        dx = (t - last_t) / self._unit[0]
        dy = (y - last_y) / self._unit[1]
        if math.hypot(dx, dy) >= 1.0:  # a point per screen pixel of travel at most
            self._points.append((t, y))
            self._update_preview()
        self.hover(view, t, y)

    def finish(self, view, t, y):
        if self._points is None:
            return None
        self.move(view, t, y)
        points, self._points = self._points, None
        self._remove_preview(view)
        return self._edit(points)

    def click(self, view, t, y):
        self._unit = view.units_per_pixel()
        return self._edit([(t, y)])

    def cancel(self, view):
        self._points = None
        self._remove_preview(view)

    def hover(self, view, t, y):
        rs, ro = self.radii(view) if self._points is None else (
            self.settings.radius_px * self._unit[0], self.settings.radius_px * self._unit[1])
        if self._ring is None:
            self._ring = QGraphicsEllipseItem()
            self._ring.setPen(_cosmetic_pen(_OUTLINE, 1.2))
            view.add_preview(self._ring)
        self._ring.setRect(QRectF(t - rs, y - ro, 2 * rs, 2 * ro))
        self._ring.setVisible(True)

    def leave(self, view):
        if self._ring is not None:
            view.remove_preview(self._ring)
            self._ring = None

    def _edit(self, points: list[tuple[float, float]]) -> Edit:
        r = float(self.settings.radius_px)
        action, amount = self.settings.action()
        stroke = Stroke(
            points=tuple((t, 2.0**y) for t, y in points),
            radius_s=r * self._unit[0],
            radius_oct=r * self._unit[1],
            hardness=float(self.settings.hardness),
        )
        return Edit(stroke, action, amount)

    def _update_preview(self) -> None:
        if self._preview is not None and self._points:
            t = [p[0] for p in self._points]
            y = [p[1] for p in self._points]
            if len(t) == 1:  # a dot: a zero-length segment draws the round cap
                t, y = t * 2, y * 2
            self._preview.setData(t, y)

    def _remove_preview(self, view) -> None:
        if self._preview is not None:
            view.remove_preview(self._preview)
            self._preview = None


class RectangleTool(Tool):
    """One drag = one :class:`Rectangle` edit with the current mode and feathered edges."""

    name = "rectangle"
    draws = True
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._start: tuple[float, float] | None = None
        self._unit = (1.0, 1.0)
        self._preview: QGraphicsRectItem | None = None

    @property
    def active(self) -> bool:
        return self._start is not None

    def begin(self, view, t, y):
        self._unit = view.units_per_pixel()
        self._start = (t, y)
        self._preview = QGraphicsRectItem()
        self._preview.setPen(_cosmetic_pen(_OUTLINE, 1.5))
        self._preview.setBrush(QBrush(QColor(255, 255, 255, 40)))
        view.add_preview(self._preview)
        self.move(view, t, y)

    def move(self, view, t, y):
        if self._start is None or self._preview is None:
            return
        t0, y0 = self._start
        self._preview.setRect(QRectF(min(t0, t), min(y0, y), abs(t - t0), abs(y - y0)))

    def finish(self, view, t, y):
        if self._start is None:
            return None
        (t0, y0), self._start = self._start, None
        if self._preview is not None:
            view.remove_preview(self._preview)
            self._preview = None
        if abs(t - t0) < 2 * self._unit[0] or abs(y - y0) < 2 * self._unit[1]:
            return None  # a click or a sliver: no edit
        f = float(self.settings.feather_px)
        action, amount = self.settings.action()
        shape = Rectangle(
            t0=min(t0, t), t1=max(t0, t), f0=2.0 ** min(y0, y), f1=2.0 ** max(y0, y),
            feather_s=f * self._unit[0], feather_oct=f * self._unit[1],
        )
        return Edit(shape, action, amount)

    def cancel(self, view):
        self._start = None
        if self._preview is not None:
            view.remove_preview(self._preview)
            self._preview = None


def make_tool(name: str, settings: ToolSettings) -> Tool:
    """A tool by name (one of :data:`TOOLS`)."""
    classes = {"pan": PanTool, "brush": BrushTool, "rectangle": RectangleTool}
    if name not in classes:
        raise ValueError(f"unknown tool {name!r}; choose one of: {', '.join(TOOLS)}")
    return classes[name](settings)
