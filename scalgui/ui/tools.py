"""Editing tools of the scalogram view: pan, brush, rectangle and the selection tools.

A tool turns one mouse gesture into one :class:`~scalgui.dsp.edits.Edit` in seconds and
Hz (a brush drag becomes a ``Stroke``, a rectangle drag a ``Rectangle``), or into a shape
for the pending selection (:class:`~scalgui.ui.selection.Selected`): the lasso, time
range, frequency band and harmonic tools always select, the rectangle selects when Shift
(add) or Alt/Ctrl (subtract) is held. Sizes the user sets in screen pixels (brush radius,
feather) are converted to seconds and octaves when the gesture starts, at the zoom it
starts at. The view calls :meth:`Tool.begin`, :meth:`Tool.move` and :meth:`Tool.finish`
with positions in view coordinates: ``t`` in seconds and ``y`` in octaves (``log2(Hz)``),
and the selection operation the modifiers held at the start ask for.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QPainterPath, QPen
from PyQt6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem

from scalgui.dsp.edits import Band, Combined, Edit, Harmonic, Lasso, Rectangle, Stroke, TimeRange

from .selection import Selected, outline_item, shape_path

__all__ = [
    "MODES", "SELECTION_TOOLS", "TOOLS", "BandTool", "BrushTool", "HarmonicTool", "LassoTool", "PanTool",
    "RectangleTool", "SelectionTool", "TimeRangeTool", "Tool", "ToolSettings", "describe_edit", "make_tool",
]

#: Brush and selection modes, as shown in the tool options.
MODES = ("attenuate", "boost", "erase", "restore", "paint")
#: Tool names.
TOOLS = ("pan", "brush", "rectangle", "lasso", "time", "band", "harmonic")
#: Tools whose gestures make (or, for the rectangle with a modifier, may make) selections.
SELECTION_TOOLS = ("rectangle", "lasso", "time", "band", "harmonic")

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
        Feather of rectangle and selection edges in screen pixels.
    harmonic_count : int
        Harmonics of the harmonic selection (the fundamental counts as the first).
    harmonic_width_cents : float
        Width of each harmonic's band in cents.
    """

    mode: str = "attenuate"
    gain_db: float = 20.0
    paint_db: float = -30.0
    radius_px: float = 12.0
    hardness: float = 0.5
    feather_px: float = 4.0
    harmonic_count: int = 10
    harmonic_width_cents: float = 50.0

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


_SHAPE_NAMES = {"Stroke": "Brush", "TimeRange": "Time range", "Band": "Band", "Combined": "Selection"}


def describe_edit(edit: Edit) -> str:
    """Short text for the history panel: ``"Brush -20 dB"``, ``"Rectangle erase"``."""
    name = type(edit.shape).__name__
    shape = _SHAPE_NAMES.get(name, name)
    if isinstance(edit.shape, Combined):
        shape = f"Selection ({len(edit.shape.parts)} parts)"
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

    def begin(self, view, t: float, y: float, op: str = "replace") -> None:
        """A left-button drag starts at ``(t, y)``; ``op``: how a selection it makes joins."""

    def move(self, view, t: float, y: float) -> None:
        """The drag moved to ``(t, y)``."""

    def finish(self, view, t: float, y: float) -> Edit | Selected | None:
        """The drag ended at ``(t, y)``; the edit or selection it made, if any."""
        return None

    def click(self, view, t: float, y: float, op: str = "replace") -> Edit | Selected | None:
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

    def begin(self, view, t, y, op="replace"):
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

    def click(self, view, t, y, op="replace"):
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
    """One drag = one :class:`Rectangle` edit with the current mode and feathered edges.

    With Shift (add) or Alt/Ctrl (subtract) held at the start, the rectangle joins the
    pending selection instead.
    """

    name = "rectangle"
    draws = True
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._start: tuple[float, float] | None = None
        self._unit = (1.0, 1.0)
        self._op = "replace"
        self._preview: QGraphicsRectItem | None = None

    @property
    def active(self) -> bool:
        return self._start is not None

    def begin(self, view, t, y, op="replace"):
        self._unit = view.units_per_pixel()
        self._start = (t, y)
        self._op = op
        self._preview = QGraphicsRectItem()
        pen = _cosmetic_pen(QColor(255, 70, 70) if op == "subtract" else _OUTLINE, 2.0 if op == "subtract" else 1.5)
        if op != "replace":
            pen.setStyle(Qt.PenStyle.DashLine)
        self._preview.setPen(pen)
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
        if self._op != "replace":
            return Selected(shape, self._op)
        return Edit(shape, action, amount)

    def cancel(self, view):
        self._start = None
        if self._preview is not None:
            view.remove_preview(self._preview)
            self._preview = None


class SelectionTool(Tool, ABC):
    """A drag makes a shape for the pending selection (replace, add or subtract).

    Subclasses say which shape a drag from the start point to ``(t, y)`` makes
    (:meth:`shape_for`); the outline follows the drag. A click makes nothing (the view
    then clears the selection and places the play cursor).
    """

    draws = True
    cursor = Qt.CursorShape.CrossCursor
    min_drag_px = 2.0

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._start: tuple[float, float] | None = None
        self._unit = (1.0, 1.0)
        self._op = "replace"
        self._preview = None

    @property
    def active(self) -> bool:
        return self._start is not None

    def feather(self) -> tuple[float, float]:
        """Feather in seconds and octaves at the zoom the gesture started at."""
        f = float(self.settings.feather_px)
        return f * self._unit[0], f * self._unit[1]

    def begin(self, view, t, y, op="replace"):
        self._unit = view.units_per_pixel()
        self._start = (t, y)
        self._op = op
        self._preview = outline_item("subtract" if op == "subtract" else "add")
        view.add_preview(self._preview)
        self.move(view, t, y)

    def move(self, view, t, y):
        if self._start is None or self._preview is None:
            return
        shape = self._shape_or_none(view, t, y)
        doc = view.document
        if shape is None or doc is None:
            self._preview.setPath(QPainterPath())
        else:
            self._preview.setPath(shape_path(shape, doc.duration, view.octave_extent()))

    def finish(self, view, t, y):
        if self._start is None:
            return None
        shape = self._shape_or_none(view, t, y)
        self.cancel(view)
        return None if shape is None else Selected(shape, self._op)

    def cancel(self, view):
        self._start = None
        if self._preview is not None:
            view.remove_preview(self._preview)
            self._preview = None

    def _shape_or_none(self, view, t, y):
        try:
            return self.shape_for(view, t, y)
        except ValueError:  # a degenerate shape (zero width, too few points)
            return None

    def _dragged(self, dt: float = 0.0, dy: float = 0.0) -> bool:
        """Whether a drag by ``dt`` seconds and ``dy`` octaves is more than a click."""
        return abs(dt) >= self.min_drag_px * self._unit[0] or abs(dy) >= self.min_drag_px * self._unit[1]

    @abstractmethod
    def shape_for(self, view, t: float, y: float):
        """The shape (seconds, Hz) dragged from the press point to ``(t, y)``."""


class TimeRangeTool(SelectionTool):
    """A horizontal drag selects a time range at all frequencies (:class:`TimeRange`)."""

    name = "time"
    cursor = Qt.CursorShape.SizeHorCursor

    def shape_for(self, view, t, y):
        t0 = self._start[0]
        if not self._dragged(dt=t - t0):
            return None
        return TimeRange(min(t0, t), max(t0, t), feather_s=self.feather()[0])


class BandTool(SelectionTool):
    """A vertical drag selects a frequency band at all times (:class:`Band`)."""

    name = "band"
    cursor = Qt.CursorShape.SizeVerCursor

    def shape_for(self, view, t, y):
        y0 = self._start[1]
        if not self._dragged(dy=y - y0):
            return None
        return Band(2.0 ** min(y0, y), 2.0 ** max(y0, y), feather_oct=self.feather()[1])


class LassoTool(SelectionTool):
    """A drag draws a free polygon, closed automatically (:class:`Lasso`)."""

    name = "lasso"

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._points: list[tuple[float, float]] = []

    def begin(self, view, t, y, op="replace"):
        self._points = [(t, y)]
        super().begin(view, t, y, op)

    def move(self, view, t, y):
        if self._start is None:
            return
        last_t, last_y = self._points[-1]
        if math.hypot((t - last_t) / self._unit[0], (y - last_y) / self._unit[1]) >= 1.0:
            self._points.append((t, y))  # a point per screen pixel of travel at most
        super().move(view, t, y)

    def shape_for(self, view, t, y):
        points = self._points
        if len(points) < 3:
            return None
        # A polygon that encloses less than a few square pixels is a slip, not a selection.
        xs = [p[0] / self._unit[0] for p in points]
        ys = [p[1] / self._unit[1] for p in points]
        area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))
        if area < 4.0:
            return None
        fs, fo = self.feather()
        return Lasso(tuple((pt, 2.0**py) for pt, py in points), feather_s=fs, feather_oct=fo)


class HarmonicTool(SelectionTool):
    """Press on a fundamental; the horizontal drag sets the time extent (:class:`Harmonic`).

    The harmonic count and the width of each harmonic's band (cents) come from the tool
    options. A click selects the fundamental's series over the visible time range.
    """

    name = "harmonic"

    def _harmonic(self, f0: float, t0: float, t1: float) -> Harmonic:
        return Harmonic(
            f0=f0, t0=t0, t1=t1, count=max(int(self.settings.harmonic_count), 1),
            width_cents=float(self.settings.harmonic_width_cents), feather_s=self.feather()[0],
        )

    def shape_for(self, view, t, y):
        t0, y0 = self._start
        if not self._dragged(dt=t - t0):
            return None
        return self._harmonic(2.0**y0, min(t0, t), max(t0, t))

    def click(self, view, t, y, op="replace"):
        self._unit = view.units_per_pixel()
        x0, x1 = view.visible_range()
        doc = view.document
        if doc is not None:
            x0, x1 = max(x0, 0.0), min(x1, doc.duration)
        try:
            return Selected(self._harmonic(2.0**y, x0, x1), op)
        except ValueError:
            return None


def make_tool(name: str, settings: ToolSettings) -> Tool:
    """A tool by name (one of :data:`TOOLS`)."""
    classes = {
        "pan": PanTool, "brush": BrushTool, "rectangle": RectangleTool, "lasso": LassoTool,
        "time": TimeRangeTool, "band": BandTool, "harmonic": HarmonicTool,
    }
    if name not in classes:
        raise ValueError(f"unknown tool {name!r}; choose one of: {', '.join(TOOLS)}")
    return classes[name](settings)
