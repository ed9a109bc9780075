"""The pending selection: shapes added and subtracted, outlined, applied as one edit.

Selection tools (lasso, time range, frequency band, harmonic; the rectangle with Shift or
Alt/Ctrl held) do not edit at once: each drag joins a shape to the pending selection —
replacing it (no modifier), adding to it (Shift) or subtracting from it (Alt or Ctrl).
:meth:`Selection.shape` is the single shape, or a
:class:`~scalgui.dsp.edits.Combined` of the parts, which the window applies with the
current mode as one :class:`~scalgui.dsp.edits.Edit` (one undo step).

Every change of the selection — select, add, subtract, deselect — is an undo step too
(:class:`SelectionCommand`, "Select lasso", "Add band to selection", "Deselect"), on
the same QUndoStack as the edits, as in RX or Photoshop: Ctrl+Z walks back through
selections and edits in the order they were made. The selection is view state, not
document data (a script edits with shapes directly), so it and its commands live here.

The overlay draws one outline: the boundary of the region the parts make together
(:func:`selection_path`: added parts united, subtracted parts cut out, holes included).
Shapes are in seconds and Hz; outlines are drawn in the view's coordinates, seconds and
octaves (``log2(Hz)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from PyQt6.QtCore import QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF, QUndoCommand
from PyQt6.QtWidgets import QGraphicsPathItem

from scalgui.dsp.edits import Band, Combined, Harmonic, Lasso, Rectangle, TimeRange

__all__ = [
    "OPS", "Selected", "Selection", "SelectionCommand", "SelectionOverlay", "outline_item", "selection_path",
    "shape_bounds", "shape_name", "shape_path",
]

#: How a gesture joins the pending selection: replace it, add to it, subtract from it.
OPS = ("replace", "add", "subtract")

_ADD_PEN = QColor(255, 255, 255, 230)
_ADD_FILL = QColor(255, 255, 255, 28)
_SUB_PEN = QColor(255, 70, 70, 255)
_SUB_FILL = QColor(255, 80, 80, 36)


@dataclass(frozen=True)
class Selected:
    """What a selection tool's gesture produced: ``shape`` joined with ``op`` (one of :data:`OPS`)."""

    shape: object
    op: str = "replace"


def shape_bounds(shape) -> tuple[float, float, float, float]:
    """``(t0, t1, f0, f1)`` in seconds and Hz around a shape's selected area (not its feather).

    Unbounded sides are infinite: a time range spans ``0..inf`` Hz, a band ``-inf..inf`` s.
    A combined selection's bounds are those of its added parts.
    """
    if isinstance(shape, Rectangle):
        return shape.t0, shape.t1, shape.f0, shape.f1
    if isinstance(shape, TimeRange):
        return shape.t0, shape.t1, 0.0, math.inf
    if isinstance(shape, Band):
        return -math.inf, math.inf, shape.f0, shape.f1
    if isinstance(shape, Lasso):
        times = [t for t, _ in shape.points]
        freqs = [f for _, f in shape.points]
        return min(times), max(times), min(freqs), max(freqs)
    if isinstance(shape, Harmonic):
        half = 2.0 ** (shape.width_cents / 2400.0)
        return shape.t0, shape.t1, shape.f0 / half, shape.count * shape.f0 * half
    if isinstance(shape, Combined):
        boxes = [shape_bounds(part) for part, op in shape.parts if op == "add"]
        return (min(b[0] for b in boxes), max(b[1] for b in boxes),
                min(b[2] for b in boxes), max(b[3] for b in boxes))
    if hasattr(shape, "points"):  # a brush stroke: its path's box
        times = [t for t, _ in shape.points]
        freqs = [f for _, f in shape.points]
        return min(times), max(times), min(freqs), max(freqs)
    raise TypeError(f"no bounds for {type(shape).__name__}")


def _y(freq_hz: float) -> float:
    return math.log2(max(freq_hz, 1e-3))


def shape_path(shape, duration: float, extent: tuple[float, float]) -> QPainterPath:
    """Outline of ``shape`` in view coordinates (seconds, octaves).

    ``duration`` (seconds) and ``extent`` (the octave range of the bands) close the sides
    that a time range or a band leaves open.
    """
    path = QPainterPath()
    lo, hi = extent
    if isinstance(shape, Rectangle):
        path.addRect(QRectF(shape.t0, _y(shape.f0), shape.t1 - shape.t0, _y(shape.f1) - _y(shape.f0)))
    elif isinstance(shape, TimeRange):
        path.addRect(QRectF(shape.t0, lo, shape.t1 - shape.t0, hi - lo))
    elif isinstance(shape, Band):
        path.addRect(QRectF(0.0, _y(shape.f0), duration, _y(shape.f1) - _y(shape.f0)))
    elif isinstance(shape, Lasso):
        path.addPolygon(QPolygonF([QPointF(t, _y(f)) for t, f in shape.points]))
        path.closeSubpath()
    elif isinstance(shape, Harmonic):
        half = shape.width_cents / 2400.0
        for k in range(1, shape.count + 1):
            centre = _y(k * shape.f0)
            if centre - half > hi:
                break
            path.addRect(QRectF(shape.t0, centre - half, shape.t1 - shape.t0, 2 * half))
    elif isinstance(shape, Combined):
        path.addPath(selection_path(shape.parts, duration, extent))
    return path


def selection_path(parts, duration: float, extent: tuple[float, float]) -> QPainterPath:
    """One outline of the region a selection covers, in view coordinates (seconds, octaves).

    The added parts' outlines (:func:`shape_path`) are united and the subtracted ones
    taken away, as :class:`~scalgui.dsp.edits.Combined` weighs them (whatever the order
    of the parts): overlaps merge, a subtracted part inside an added one is a hole, one
    across its edge bites it off. Feathers are not drawn, as for a single shape.

    Parameters
    ----------
    parts : sequence of (shape, op)
        ``op`` is ``"add"`` or ``"subtract"``.
    duration : float
        Seconds; closes bands at the ends of the sound.
    extent : (float, float)
        Octaves; closes time ranges at the lowest and highest band.
    """
    added, removed = QPainterPath(), QPainterPath()
    for shape, op in parts:
        path = shape_path(shape, duration, extent)
        if op == "subtract":
            removed = removed.united(path)
        elif added.isEmpty():
            added = path
        else:
            added = added.united(path)
    # Qt's path clipper works on the polygons' edges, not on a raster: the outline is
    # as sharp at any zoom as the single shapes', and is not redrawn when zooming.
    return added.subtracted(removed) if not removed.isEmpty() else added


_SHAPE_WORDS = {Rectangle: "rectangle", TimeRange: "time range", Band: "band", Lasso: "lasso",
                Harmonic: "harmonics", Combined: "selection"}


def shape_name(shape) -> str:
    """A word for a shape in the history panel: ``"lasso"``, ``"time range"``..."""
    return _SHAPE_WORDS.get(type(shape), type(shape).__name__.lower())


def outline_item(op: str = "add") -> QGraphicsPathItem:
    """A path item styled for an added (white) or subtracted (red, dashed) part."""
    item = QGraphicsPathItem()
    pen = QPen(_SUB_PEN if op == "subtract" else _ADD_PEN)
    pen.setCosmetic(True)
    pen.setWidthF(1.5)
    if op == "subtract":
        pen.setWidthF(2.0)
        pen.setStyle(Qt.PenStyle.DashLine)
    item.setPen(pen)
    item.setBrush(QBrush(_SUB_FILL if op == "subtract" else _ADD_FILL))
    return item


class SelectionCommand(QUndoCommand):
    """One change of a :class:`Selection` as an undo step: redo sets ``after``, undo ``before``.

    Parameters
    ----------
    selection : Selection
    before, after : tuple of (shape, op)
        The parts before and after the change.
    text : str
        What the history panel shows.
    """

    def __init__(self, selection: "Selection", before, after, text: str) -> None:
        super().__init__(text)
        self.selection = selection
        self.before = tuple(before)
        self.after = tuple(after)

    def redo(self) -> None:
        self.selection._set(self.after)

    def undo(self) -> None:
        self.selection._set(self.before)


class Selection(QObject):
    """The pending selection of a view: ``(shape, "add" | "subtract")`` parts.

    With an undo stack (:meth:`set_undo_stack`), :meth:`combine` and :meth:`clear` push a
    :class:`SelectionCommand` (one history step each); without one they change it at once.

    Signals
    -------
    changed()
        Parts were added, subtracted or cleared (also by undo and redo).
    """

    changed = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._parts: list[tuple[object, str]] = []
        self._stack = None

    def set_undo_stack(self, stack) -> None:
        """Record every change as a :class:`SelectionCommand` on ``stack`` (a QUndoStack, or None)."""
        self._stack = stack

    @property
    def parts(self) -> tuple[tuple[object, str], ...]:
        return tuple(self._parts)

    def __bool__(self) -> bool:
        return bool(self._parts)

    def combine(self, shape, op: str = "replace") -> bool:
        """Join ``shape`` with ``op``; False when there is nothing to subtract from."""
        if op not in OPS:
            raise ValueError(f"unknown selection operation {op!r}; choose one of: {', '.join(OPS)}")
        if op == "subtract" and not self._parts:
            return False
        name = shape_name(shape)
        if op == "replace":
            parts, text = [(shape, "add")], f"Select {name}"
        elif op == "add":
            parts, text = [*self._parts, (shape, "add")], f"Add {name} to selection"
        else:
            parts, text = [*self._parts, (shape, "subtract")], f"Subtract {name} from selection"
        self._change(parts, text)
        return True

    def clear(self) -> None:
        """Deselect (an undo step when there was a selection)."""
        if self._parts:
            self._change((), "Deselect")

    def reset(self) -> None:
        """Drop the selection without an undo step (another document, another history)."""
        if self._parts:
            self._set(())

    def _change(self, parts, text: str) -> None:
        if self._stack is None:
            self._set(parts)
        else:
            self._stack.push(SelectionCommand(self, self._parts, parts, text))  # push runs redo()

    def _set(self, parts) -> None:
        self._parts = list(parts)
        self.changed.emit()

    def shape(self):
        """The selection as one shape (``None`` when empty): the part itself, or a Combined."""
        if not self._parts:
            return None
        if len(self._parts) == 1:
            return self._parts[0][0]
        return Combined(tuple(self._parts))

    def bounds(self, duration: float, freq_range: tuple[float, float]) -> tuple[float, float, float, float] | None:
        """``(t0, t1, f0, f1)`` of the added parts, clipped to the sound and ``freq_range`` (Hz)."""
        shape = self.shape()
        if shape is None:
            return None
        t0, t1, f0, f1 = shape_bounds(shape)
        t0, t1 = max(t0, 0.0), min(t1, duration)
        f0, f1 = max(f0, freq_range[0]), min(f1, freq_range[1])
        if t1 <= t0 or f1 <= f0:
            return None
        return t0, t1, f0, f1


class SelectionOverlay:
    """Draws a :class:`Selection` on a view: one outline of the region it covers."""

    def __init__(self, view) -> None:
        self._view = view
        self._items: list[QGraphicsPathItem] = []

    def update(self, selection: Selection) -> None:
        view = self._view
        for item in self._items:
            view.remove_preview(item)
        self._items = []
        doc = view.document
        if doc is None or not selection:
            return
        item = outline_item("add")
        item.setPath(selection_path(selection.parts, doc.duration, view.octave_extent()))
        view.add_preview(item, z=12)
        self._items.append(item)

    @property
    def items(self) -> list[QGraphicsPathItem]:
        return list(self._items)
