"""The scalogram view: image, log-frequency axis, colour bar, edit overlay, waveform overview.

View coordinates are physical: x in seconds, y in octaves (``log2(Hz)``), so the image's
rows — bands at geometric centre frequencies — sit at equal steps. Whenever the visible
range or the widget's size changes, the view asks the document for a new raster at exactly
the visible range and pixel size (throttled to one request per ~20 ms; computed in a
raster thread, the latest request wins), so zooming in re-renders detail instead of
scaling pixels up.

Mouse: the wheel zooms time around the cursor (Shift+wheel: frequency), a left drag pans
with the pan tool or paints/selects with the brush, rectangle and selection tools (Shift
held: add to the pending selection; Alt or Ctrl: subtract from it), a middle drag always
pans. A click with the pan or a selection tool, or on the waveform, places the play
cursor. Keys: ``+``/``-`` zoom, arrows pan, Home fits the whole sound, Enter applies the
pending selection, Escape abandons a gesture or clears the selection.

The view never shows blank axes without saying why: with no sound it says how to open
one; while a sound is being opened the opener's stage and progress show over the plot
(:meth:`ScalogramView.show_progress`); until the first picture is drawn it says so. The
first picture of a freshly analysed sound with edits (or a render) is the source's, which
costs what a bare file's costs, shown while the layer's own picture is drawn: the edited
target of a long sound, drawn from scratch, costs several times more (every coefficient
edited, then drawn from the edited magnitudes).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QFrame, QLabel, QProgressBar, QVBoxLayout

from .freq_axis import LogFrequencyAxis
from .picture import Picture, PictureRequest, band_extent, channel_mix, envelope
from .selection import Selected, Selection, SelectionOverlay
from .tools import PanTool, SelectionTool, Tool, ToolSettings
from .workers import RasterWorker

__all__ = ["COLORMAPS", "DIFFERENCE_COLORMAP", "ScalogramView", "selection_op"]

#: Perceptual colour maps offered for the scalogram.
COLORMAPS = ("magma", "inferno", "viridis", "plasma", "cividis")
#: Diverging map of the difference layer (target minus render, dB).
DIFFERENCE_COLORMAP = "CET-D4"
REFRESH_MS = 20  # at most 50 pictures a second while the view moves
WHEEL_ZOOM_PER_NOTCH = 0.8  # view width factor for one wheel notch forward
_OVERLAY_RGB = (120, 230, 255)
_PLAYHEAD = QColor(255, 213, 79)
_CURSOR = QColor(140, 220, 255, 200)
#: What the view says when no sound is open.
NO_SOUND_TEXT = "No sound open: File > Open (Ctrl+O), or drop a sound or project here"
DRAWING_TEXT = "Drawing the scalogram…"


def selection_op(modifiers) -> str:
    """The selection operation the keyboard modifiers of a gesture ask for."""
    if modifiers & Qt.KeyboardModifier.ShiftModifier:
        return "add"
    if modifiers & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ControlModifier):
        return "subtract"
    return "replace"


def _overlay_lut() -> np.ndarray:
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = _OVERLAY_RGB
    lut[:, 3] = np.linspace(0, 255, 256).astype(np.uint8)
    return lut


class _ScalogramViewBox(pg.ViewBox):
    """ViewBox that zooms time with the wheel and hands left drags to the active tool."""

    def __init__(self, owner: ScalogramView) -> None:
        super().__init__(enableMenu=False, defaultPadding=0.0)
        self._owner = owner

    def wheelEvent(self, ev, axis=None):
        notches = ev.delta() / 120.0
        if notches == 0:
            ev.ignore()
            return
        if ev.orientation() == Qt.Orientation.Horizontal:  # sideways scrolling pans time
            self._owner.pan_time(-0.1 * notches)
            ev.accept()
            return
        factor = WHEEL_ZOOM_PER_NOTCH**notches
        centre = self.mapToView(ev.pos())
        if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._owner.zoom_frequency(factor, centre.y())
        else:
            self._owner.zoom_time(factor, centre.x())
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):
        tool = self._owner.tool
        if ev.button() == Qt.MouseButton.LeftButton and tool.draws and self._owner.editable:
            ev.accept()
            if ev.isStart():
                start = self.mapToView(ev.buttonDownPos(Qt.MouseButton.LeftButton))
                tool.begin(self._owner, start.x(), start.y(), selection_op(ev.modifiers()))
            if not tool.active:
                return
            p = self.mapToView(ev.pos())
            if ev.isFinish():
                self._owner._emit_edit(tool.finish(self._owner, p.x(), p.y()))
            else:
                tool.move(self._owner, p.x(), p.y())
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):
        owner, tool = self._owner, self._owner.tool
        if ev.button() != Qt.MouseButton.LeftButton or owner.document is None:
            super().mouseClickEvent(ev)
            return
        ev.accept()
        p = self.mapToView(ev.pos())
        op = selection_op(ev.modifiers())
        result = None
        if tool.draws and owner.editable:
            result = tool.click(owner, p.x(), p.y(), op)
            owner._emit_edit(result)
        if result is None and (not tool.draws or isinstance(tool, SelectionTool)):
            # A plain click with the pan or a selection tool places the play cursor (and,
            # with a selection tool, drops the selection, as in most editors).
            if op == "replace" and isinstance(tool, SelectionTool):
                owner.selection.clear()
            owner.cursorPlaced.emit(min(max(float(p.x()), 0.0), owner.document.duration))


class _OverviewViewBox(pg.ViewBox):
    """The overview's ViewBox: fixed range; a click centres the main view there."""

    def __init__(self, owner: ScalogramView) -> None:
        super().__init__(enableMenu=False, defaultPadding=0.0)
        self._owner = owner
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, ev):
        owner = self._owner
        if ev.button() == Qt.MouseButton.LeftButton and owner.document is not None:
            ev.accept()
            t = min(max(float(self.mapToView(ev.pos()).x()), 0.0), owner.document.duration)
            x0, x1 = owner.visible_range()
            if not x0 <= t <= x1:
                owner.centre_on(t)
            owner.cursorPlaced.emit(t)

    def mouseDragEvent(self, ev, axis=None):
        ev.ignore()

    def wheelEvent(self, ev, axis=None):
        ev.ignore()


class _ProgressPanel(QFrame):
    """A line of text and a progress bar over the plot (mouse events pass through it)."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.setObjectName("progressPanel")
        self.setStyleSheet("#progressPanel { background: rgba(21, 22, 26, 225); border: 1px solid #3b3d44; "
                           "border-radius: 6px; }")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        self.label = QLabel("")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(280)
        self.bar.setFixedHeight(14)
        self.bar.setTextVisible(False)
        layout.addWidget(self.label)
        layout.addWidget(self.bar, alignment=Qt.AlignmentFlag.AlignHCenter)
        self.hide()

    def set_state(self, text: str, fraction: float | None, bar: bool) -> None:
        self.label.setText(text)
        self.bar.setVisible(bar)
        if fraction is None:
            self.bar.setRange(0, 0)  # busy: no share of the work to show
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        self.adjustSize()


class ScalogramView(pg.GraphicsLayoutWidget):
    """The document's scalogram with tools, overlay and overview.

    Signals
    -------
    cursorMoved(t_s, freq_hz, level_db)
        The mouse is over the image (``level_db`` is NaN where there is no picture).
    cursorLeft()
        The mouse left the image.
    editRequested(Edit)
        A tool finished a gesture; the window pushes the edit through its undo stack.
    pictureUpdated(Picture)
        A new picture is on screen.
    levelsChanged(low_db, high_db)
        The colour bar's range changed (dragged on the bar, or set).
    applyRequested()
        Enter was pressed with a pending selection.
    cursorPlaced(t_s)
        A click asked for the play cursor at ``t_s`` seconds.
    statusMessage(str)
        Something to tell the user (e.g. a subtraction from an empty selection).
    messageChanged(str)
        The text said over the plot changed (opening, drawing, no sound); ``""``: none.
    """

    cursorMoved = pyqtSignal(float, float, float)
    cursorLeft = pyqtSignal()
    editRequested = pyqtSignal(object)
    pictureUpdated = pyqtSignal(object)
    levelsChanged = pyqtSignal(float, float)
    applyRequested = pyqtSignal()
    cursorPlaced = pyqtSignal(float)
    statusMessage = pyqtSignal(str)
    messageChanged = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("#15161a")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # let file drops reach the main window
        self._doc = None
        self._revision = 0
        self._first_revision = 0
        self._channel: str | int = "mean"
        self._layer = "target"
        self._levels = {"level": (-100.0, -10.0), "difference": (-30.0, 30.0)}
        self._colormap = COLORMAPS[0]
        self._overlay_on = True
        self._auto_levels = False
        self._extent = (math.log2(20.0), math.log2(20000.0))
        self._last_request: PictureRequest | None = None
        self._syncing_region = False
        self._suspended = False
        self.editable = True
        self.picture: Picture | None = None
        self.tool: Tool = PanTool(ToolSettings())
        self._progress: tuple[str, float | None] | None = None  # what an opener is doing
        self._stand_in = False  # the next picture is the source's, standing in for the layer's own
        self._standing_in = False  # the picture on screen is such a stand-in
        self._failure: str | None = None
        self._message = ""

        layout = self.ci
        layout.setContentsMargins(4, 6, 4, 4)
        layout.setSpacing(2)
        self.freq_axis = LogFrequencyAxis("left")
        self.freq_axis.setWidth(56)
        self.viewbox = _ScalogramViewBox(self)
        self.plot = layout.addPlot(row=0, col=0, viewBox=self.viewbox, axisItems={"left": self.freq_axis})
        self.plot.setLabel("left", "frequency (Hz)")
        self.plot.setLabel("bottom", "time (s)")
        self.plot.hideButtons()
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)

        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setLookupTable(_overlay_lut())
        self.overlay.setLevels((0.0, 1.0))
        self.overlay.setOpacity(0.4)
        self.overlay.setZValue(5)
        self.plot.addItem(self.overlay)
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(_PLAYHEAD, width=1.5))
        self.playhead.setZValue(20)
        self.playhead.setVisible(False)
        self.plot.addItem(self.playhead, ignoreBounds=True)
        self.cursor_line = pg.InfiniteLine(angle=90, movable=False,
                                           pen=pg.mkPen(_CURSOR, width=1, style=Qt.PenStyle.DashLine))
        self.cursor_line.setZValue(19)
        self.cursor_line.setVisible(False)
        self.plot.addItem(self.cursor_line, ignoreBounds=True)

        self.colorbar = pg.ColorBarItem(
            values=self._levels["level"], colorMap=self._colormap, label="level (dB)",
            interactive=True, width=14, colorMapMenu=False,
        )
        self.colorbar.setImageItem(self.image)
        layout.addItem(self.colorbar, row=0, col=1)
        self.colorbar.sigLevelsChangeFinished.connect(self._colorbar_levels_changed)

        self.overview_box = _OverviewViewBox(self)
        self.overview = layout.addPlot(row=1, col=0, viewBox=self.overview_box)
        self.overview.hideButtons()
        self.overview.setMaximumHeight(90)
        self.overview.setMinimumHeight(60)
        ov_left = self.overview.getAxis("left")
        ov_left.setWidth(56)
        ov_left.setStyle(showValues=False)
        ov_left.setTicks([[]])
        self.overview.getAxis("bottom").enableAutoSIPrefix(False)
        self.overview_source = pg.PlotCurveItem(pen=pg.mkPen((120, 130, 150), width=1), connect="pairs")
        self.overview_render = pg.PlotCurveItem(pen=pg.mkPen((255, 170, 90, 220), width=1), connect="pairs")
        self.overview.addItem(self.overview_source)
        self.overview.addItem(self.overview_render)
        self.region = pg.LinearRegionItem(
            values=(0.0, 1.0), brush=pg.mkBrush(255, 255, 255, 30), pen=pg.mkPen(255, 255, 255, 140),
        )
        self.region.setZValue(10)
        self.overview.addItem(self.region, ignoreBounds=True)
        self.overview_playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(_PLAYHEAD, width=1.5))
        self.overview_playhead.setVisible(False)
        self.overview.addItem(self.overview_playhead, ignoreBounds=True)
        self.overview_cursor = pg.InfiniteLine(angle=90, movable=False,
                                               pen=pg.mkPen(_CURSOR, width=1, style=Qt.PenStyle.DashLine))
        self.overview_cursor.setVisible(False)
        self.overview.addItem(self.overview_cursor, ignoreBounds=True)
        layout.layout.setRowStretchFactor(0, 5)
        layout.layout.setRowStretchFactor(1, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._request_picture)
        self._raster = RasterWorker()
        self._raster.finished.connect(self._show_picture)
        self._raster.failed.connect(self._picture_failed)
        self.viewbox.sigRangeChanged.connect(self._range_changed)
        self.overview_box.sigResized.connect(self._update_overview)
        self.region.sigRegionChanged.connect(self._region_moved)
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.selection = Selection(self)
        self._selection_overlay = SelectionOverlay(self)
        self.selection.changed.connect(self._selection_changed)
        self.progress_panel = _ProgressPanel(self)
        self.viewbox.sigResized.connect(self._place_message)
        self._update_message()

    # ------------------------------------------------------------------ document
    @property
    def document(self):
        return self._doc

    def set_document(self, doc) -> None:
        """Show ``doc`` (or nothing with ``None``), fitted to the whole sound."""
        if self.tool.active:
            self.tool.cancel(self)
        self.selection.reset()  # not an undo step: the window starts a new history
        self._doc = doc
        self._revision += 1
        self._first_revision = self._revision  # pictures of an earlier document are dropped
        self.picture = None
        self._progress = None  # the opener is done: drawing is what is left
        self._failure = None
        self._standing_in = False
        self._stand_in = self._wants_stand_in()
        self.image.clear()
        self.overlay.clear()
        self.set_cursor_line(None)
        self.set_playhead(None)
        self._update_message()
        if doc is None:
            self.overview_source.setData([], [])
            self.overview_render.setData([], [])
            return
        self._auto_levels = True
        self._update_extent()
        self.fit()
        self._update_overview()
        self.refresh()

    def document_changed(self, kind: str) -> None:
        """The document announced a change: ``"analysis"``, ``"edits"`` or ``"render"``."""
        if self._doc is None:
            return
        self._revision += 1
        if kind == "analysis":
            before, visible = self._extent, self.visible_octaves()
            self._update_extent()
            lo, hi = self._extent
            y0, y1 = max(visible[0], lo), min(visible[1], hi)
            whole = abs(visible[0] - before[0]) < 1e-6 and abs(visible[1] - before[1]) < 1e-6
            if whole or y1 - y0 < 0.25:
                y0, y1 = lo, hi  # whole range shown before (or nothing left of it): show all
            self.viewbox.setYRange(y0, y1, padding=0.0)
            self._selection_overlay.update(self.selection)
            # Every picture is drawn again from the new analysis: the source's first.
            self._stand_in = self._wants_stand_in()
        if kind in ("render", "analysis"):
            self._update_overview()
        self.refresh()

    def _wants_stand_in(self) -> bool:
        """Whether the next picture should be the source's: the layer's own needs more than
        the analysis (the edited target, the render's analysis) and nothing is drawn yet."""
        doc = self._doc
        if doc is None or self._layer == "source":
            return False
        if self._layer == "target":
            return bool(doc.edits)
        return getattr(doc, "rendered", None) is not None

    def _update_extent(self) -> None:
        bands = self._doc.frame.bands
        octaves = np.log2(np.asarray(bands.centre_hz[bands.wavelet_indices], dtype=np.float64))
        self._extent = band_extent(octaves)
        duration = self._doc.duration
        y0, y1 = self._extent
        self.viewbox.setLimits(
            xMin=0.0, xMax=duration, yMin=y0, yMax=y1,
            minXRange=min(duration, 64.0 / self._doc.sample_rate), minYRange=min(y1 - y0, 0.25),
        )
        self.overview_box.setRange(xRange=(0.0, duration), yRange=(-1.0, 1.0), padding=0.0)
        self.region.setBounds((0.0, duration))

    # ------------------------------------------------------------------ display options
    @property
    def channel(self) -> str | int:
        return self._channel

    def set_channel(self, channel: str | int) -> None:
        self._channel = channel
        self._update_overview()
        self.refresh()

    @property
    def layer(self) -> str:
        return self._layer

    def set_layer(self, layer: str) -> None:
        """Show the document layer ``"target"``, ``"source"``, ``"render"`` or ``"difference"``."""
        was_difference = self._layer == "difference"
        self._layer = layer
        if (layer == "difference") != was_difference:
            self._apply_colours()
        if self._standing_in and self.picture is not None and self.picture.request.layer == layer:
            self._standing_in = False  # the stand-in is this layer's own picture
            self._update_message()
        self.refresh()

    def _level_key(self) -> str:
        return "difference" if self._layer == "difference" else "level"

    @property
    def levels(self) -> tuple[float, float]:
        """Colour range of the level layers, dB (low, high)."""
        return self._levels["level"]

    def set_levels(self, low: float, high: float) -> None:
        """Colour range of the level layers in dB."""
        if high <= low:
            high = low + 1.0
        self._auto_levels = False
        self._levels["level"] = (float(low), float(high))
        if self._layer != "difference":
            self.colorbar.setLevels((low, high))
        self.levelsChanged.emit(float(low), float(high))

    def set_difference_range(self, db: float) -> None:
        """Colour range of the difference layer: ``-db`` to ``+db``."""
        self._levels["difference"] = (-abs(db), abs(db))
        if self._layer == "difference":
            self.colorbar.setLevels(self._levels["difference"])

    @property
    def colormap(self) -> str:
        return self._colormap

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self._apply_colours()

    def _apply_colours(self) -> None:
        difference = self._layer == "difference"
        self.colorbar.setColorMap(DIFFERENCE_COLORMAP if difference else self._colormap)
        self.colorbar.setLevels(self._levels[self._level_key()])
        self.colorbar.getAxis("left").setLabel("target - render (dB)" if difference else "level (dB)")

    def _colorbar_levels_changed(self, bar) -> None:
        low, high = bar.levels()
        self._levels[self._level_key()] = (float(low), float(high))
        if self._layer != "difference":
            self._auto_levels = False
            self.levelsChanged.emit(float(low), float(high))

    @property
    def overlay_visible(self) -> bool:
        return self._overlay_on

    def set_overlay(self, visible: bool | None = None, opacity: float | None = None) -> None:
        """Show or hide the edit overlay and set its opacity (0 to 1)."""
        if opacity is not None:
            self.overlay.setOpacity(float(opacity))
        if visible is not None and bool(visible) != self._overlay_on:
            self._overlay_on = bool(visible)
            self.overlay.setVisible(self._overlay_on)
            self.refresh()

    def set_note_axis(self, on: bool) -> None:
        """Label the frequency axis with note names instead of Hz."""
        self.freq_axis.set_notes(on)

    def set_playhead(self, t: float | None) -> None:
        """Show the playhead at ``t`` seconds (``None`` hides it)."""
        visible = t is not None
        for line in (self.playhead, self.overview_playhead):
            line.setVisible(visible)
            if visible:
                line.setValue(float(t))

    def set_cursor_line(self, t: float | None) -> None:
        """Show the play cursor (where playing starts) at ``t`` seconds (``None`` hides it)."""
        visible = t is not None
        for line in (self.cursor_line, self.overview_cursor):
            line.setVisible(visible)
            if visible:
                line.setValue(float(t))

    @property
    def suspended(self) -> bool:
        """Whether pictures and editing are paused (while the document re-analyses)."""
        return self._suspended

    def set_suspended(self, on: bool) -> None:
        """Pause (or resume) picture requests and editing, e.g. while the document re-analyses."""
        self._suspended = bool(on)
        self.editable = not on
        if on and self.tool.active:
            self.tool.cancel(self)
        if not on:
            self._last_request = None
            self.refresh()

    # ------------------------------------------------------------------ what the view says
    def show_progress(self, text: str, fraction: float | None = None) -> None:
        """Say over the plot what is being prepared (e.g. a sound being opened): ``text`` and a
        progress bar at ``fraction`` (0 to 1; None: busy, no share to show). Shown until
        :meth:`clear_progress` or the next :meth:`set_document`."""
        self._progress = (str(text), None if fraction is None else float(fraction))
        self._update_message()

    def clear_progress(self) -> None:
        """Stop saying what :meth:`show_progress` said (e.g. opening failed)."""
        if self._progress is not None:
            self._progress = None
            self._update_message()

    @property
    def message(self) -> str:
        """The text shown over the plot, ``""`` when none."""
        return self._message

    @property
    def standing_in(self) -> bool:
        """Whether the picture on screen is another layer's (the source's, first), shown while
        the layer's own is drawn."""
        return self._standing_in

    def _stand_in_text(self) -> str:
        if self._layer == "target" and self.picture is not None and self.picture.request.layer == "source":
            count = len(self._doc.edits) if self._doc is not None else 0
            return f"Drawing the {count} edit{'s' if count != 1 else ''} on the picture…"
        names = {"target": "edited sound", "source": "source"}
        return f"Drawing the {names.get(self._layer, self._layer)}…"

    def _update_message(self) -> None:
        """Show what the view is waiting for, or nothing when its picture is on screen."""
        state = None  # (text, fraction, with a bar)
        if self._progress is not None:
            state = (*self._progress, True)
        elif self._doc is None:
            state = (NO_SOUND_TEXT, None, False)
        elif self._failure and (self.picture is None or self._standing_in):
            state = (self._failure, None, False)
        elif self.picture is None:
            state = (DRAWING_TEXT, None, True)
        elif self._standing_in:
            state = (self._stand_in_text(), None, True)
        panel = self.progress_panel
        if state is None:
            panel.hide()
        else:
            panel.set_state(*state)
            panel.show()
            panel.raise_()
            self._place_message()
        text = "" if state is None else state[0]
        if text != self._message:
            self._message = text
            self.messageChanged.emit(text)

    def _place_message(self, *_) -> None:
        """Centre the message over the plot; at its top while a picture is shown under it."""
        panel = self.progress_panel
        if panel.isHidden():
            return
        area = self.mapFromScene(self.viewbox.sceneBoundingRect()).boundingRect()
        if area.width() < 10 or area.height() < 10:
            area = self.rect()
        panel.setMaximumWidth(max(area.width() - 20, 120))
        panel.adjustSize()
        x = area.center().x() - panel.width() // 2
        y = area.top() + 12 if self.picture is not None else area.center().y() - panel.height() // 2
        panel.move(max(x, 0), max(y, 0))

    # ------------------------------------------------------------------ tools
    def set_tool(self, tool: Tool) -> None:
        if self.tool.active:
            self.tool.cancel(self)
        self.tool.leave(self)
        self.tool = tool
        self.viewport().setCursor(tool.cursor)

    def add_preview(self, item, z: float = 15) -> None:
        """Add a tool's preview item in view coordinates (seconds, octaves)."""
        item.setZValue(z)
        self.viewbox.addItem(item, ignoreBounds=True)

    def remove_preview(self, item) -> None:
        self.viewbox.removeItem(item)

    def _emit_edit(self, result) -> None:
        """Route what a gesture made: an edit to the window, a shape to the selection."""
        if result is None:
            return
        if isinstance(result, Selected):
            if not self.selection.combine(result.shape, result.op):
                self.statusMessage.emit("Nothing to subtract from: select something first (drag without Alt/Ctrl)")
            return
        self.editRequested.emit(result)

    def _selection_changed(self) -> None:
        self._selection_overlay.update(self.selection)

    def selection_bounds(self) -> tuple[float, float, float, float] | None:
        """``(t0, t1, f0, f1)`` of the pending selection within the sound and bands, or None."""
        if self._doc is None:
            return None
        lo, hi = self._extent
        return self.selection.bounds(self._doc.duration, (2.0**lo, 2.0**hi))

    def zoom_to_selection(self) -> bool:
        """Show the pending selection's bounds; False when there is no selection."""
        bounds = self.selection_bounds()
        if bounds is None:
            return False
        t0, t1, f0, f1 = bounds
        self.viewbox.setRange(xRange=(t0, t1), yRange=(math.log2(f0), math.log2(f1)), padding=0.0)
        return True

    # ------------------------------------------------------------------ coordinates
    def visible_range(self) -> tuple[float, float]:
        """Visible time range in seconds."""
        (x0, x1), _ = self.viewbox.viewRange()
        return float(x0), float(x1)

    def visible_octaves(self) -> tuple[float, float]:
        """Visible frequency range in octaves (log2 Hz)."""
        _, (y0, y1) = self.viewbox.viewRange()
        return float(y0), float(y1)

    def octave_extent(self) -> tuple[float, float]:
        """The octave range the document's bands cover."""
        return self._extent

    def units_per_pixel(self) -> tuple[float, float]:
        """Seconds and octaves per screen pixel at the current zoom."""
        (x0, x1), (y0, y1) = self.viewbox.viewRange()
        w = max(self.viewbox.width(), 1.0)
        h = max(self.viewbox.height(), 1.0)
        return (x1 - x0) / w, (y1 - y0) / h

    def widget_pos(self, t: float, freq_hz: float) -> QPointF:
        """Viewport position (pixels) of time ``t`` and frequency ``freq_hz``."""
        scene = self.viewbox.mapViewToScene(QPointF(t, math.log2(freq_hz)))
        return QPointF(self.mapFromScene(scene))

    def overview_widget_pos(self, t: float) -> QPointF:
        """Viewport position (pixels) of time ``t`` on the waveform overview, mid-height."""
        (_, _), (y0, y1) = self.overview_box.viewRange()
        scene = self.overview_box.mapViewToScene(QPointF(t, (y0 + y1) / 2))
        return QPointF(self.mapFromScene(scene))

    def view_pos(self, pos: QPointF) -> tuple[float, float]:
        """Time (s) and frequency (Hz) at viewport position ``pos``."""
        p = self.viewbox.mapSceneToView(self.mapToScene(pos.toPoint()))
        return float(p.x()), float(2.0 ** p.y())

    # ------------------------------------------------------------------ zoom and pan
    def fit(self) -> None:
        """Show the whole sound and every band."""
        if self._doc is None:
            return
        self.viewbox.setRange(xRange=(0.0, self._doc.duration), yRange=self._extent, padding=0.0)

    def zoom_time(self, factor: float, centre: float | None = None) -> None:
        """Scale the visible time range by ``factor`` (< 1 zooms in) around ``centre`` seconds."""
        x0, x1 = self.visible_range()
        c = (x0 + x1) / 2 if centre is None else centre
        self.viewbox.setXRange(c + (x0 - c) * factor, c + (x1 - c) * factor, padding=0.0)

    def zoom_frequency(self, factor: float, centre: float | None = None) -> None:
        """Scale the visible octave range by ``factor`` around ``centre`` octaves."""
        y0, y1 = self.visible_octaves()
        c = (y0 + y1) / 2 if centre is None else centre
        self.viewbox.setYRange(c + (y0 - c) * factor, c + (y1 - c) * factor, padding=0.0)

    def pan_time(self, fraction: float) -> None:
        """Move the visible time range by ``fraction`` of its width."""
        x0, x1 = self.visible_range()
        d = (x1 - x0) * fraction
        self.viewbox.setXRange(x0 + d, x1 + d, padding=0.0)

    def pan_frequency(self, fraction: float) -> None:
        y0, y1 = self.visible_octaves()
        d = (y1 - y0) * fraction
        self.viewbox.setYRange(y0 + d, y1 + d, padding=0.0)

    def show_time_range(self, t0: float, t1: float) -> None:
        self.viewbox.setXRange(t0, t1, padding=0.0)

    def centre_on(self, t: float) -> None:
        x0, x1 = self.visible_range()
        half = (x1 - x0) / 2
        self.viewbox.setXRange(t - half, t + half, padding=0.0)

    def keyPressEvent(self, ev):
        key = ev.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_time(1 / 1.5)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_time(1.5)
        elif key == Qt.Key.Key_Left:
            self.pan_time(-0.1)
        elif key == Qt.Key.Key_Right:
            self.pan_time(0.1)
        elif key == Qt.Key.Key_Up:
            self.pan_frequency(0.1)
        elif key == Qt.Key.Key_Down:
            self.pan_frequency(-0.1)
        elif key == Qt.Key.Key_Home:
            self.fit()
        elif key == Qt.Key.Key_Escape and self.tool.active:
            self.tool.cancel(self)
        elif key == Qt.Key.Key_Escape and self.selection:
            self.selection.clear()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selection:
            self.applyRequested.emit()
        else:
            super().keyPressEvent(ev)
            return
        ev.accept()

    # ------------------------------------------------------------------ pictures
    def refresh(self) -> None:
        """Ask for a new picture: at once after a pause, then at most one request per
        REFRESH_MS while changes keep coming (the timer's end asks for the last state)."""
        if self._timer.isActive():
            return
        self._request_picture()
        self._timer.start()

    @property
    def busy(self) -> bool:
        """Whether a picture is scheduled or being computed."""
        return self._timer.isActive() or self._raster.busy

    @property
    def raster_busy(self) -> bool:
        """Whether the raster thread is computing (or about to compute) a picture."""
        return self._raster.busy

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if hasattr(self, "_timer"):  # pyqtgraph resizes during construction
            self.refresh()
        if hasattr(self, "progress_panel"):
            self._place_message()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._place_message()  # laid out only now that it is shown

    def _range_changed(self, *_):
        x0, x1 = self.visible_range()
        if not self._syncing_region:
            self._syncing_region = True
            self.region.setRegion((x0, x1))
            self._syncing_region = False
        self.refresh()

    def _region_moved(self) -> None:
        if self._syncing_region:
            return
        self._syncing_region = True
        t0, t1 = self.region.getRegion()
        if t1 > t0:
            self.viewbox.setXRange(t0, t1, padding=0.0)
        self._syncing_region = False

    def _current_request(self) -> PictureRequest | None:
        doc = self._doc
        if doc is None:
            return None
        (x0, x1), (y0, y1) = self.viewbox.viewRange()
        t0, t1 = max(x0, 0.0), min(x1, doc.duration)
        ya, yb = max(y0, self._extent[0]), min(y1, self._extent[1])
        w, h = self.viewbox.width(), self.viewbox.height()
        if t1 <= t0 or yb <= ya or w < 2 or h < 2:
            return None
        dpr = self.devicePixelRatioF()
        width = int(min(max(round(w * dpr * (t1 - t0) / (x1 - x0)), 1), 8192))
        height = int(min(max(round(h * dpr * (yb - ya) / (y1 - y0)), 1), 4096))
        return PictureRequest(
            start_s=t0, end_s=t1, y0=ya, y1=yb, width=width, height=height, channel=self._channel,
            layer="source" if self._stand_in else self._layer, mask=self._overlay_on and bool(doc.edits),
            revision=self._revision,
        )

    def _request_picture(self) -> None:
        if self._suspended:
            return
        request = self._current_request()
        if request is None or request == self._last_request:
            return
        self._last_request = request
        self._raster.submit(self._doc, request)

    def _show_picture(self, picture: Picture) -> None:
        r = picture.request
        if self._doc is None or r.revision < self._first_revision:
            return
        self.picture = picture
        self._failure = None
        # Another layer's picture (the source's standing in, or one asked for before the
        # layer changed) is shown until the layer's own arrives.
        self._standing_in = r.layer != self._layer
        if self._stand_in and r.layer == "source":
            self._stand_in = False  # shown: the next request asks for the layer's own picture
        if self._auto_levels and r.layer != "difference":
            top = float(np.nanmax(picture.db)) if picture.db.size else 0.0
            top = 5.0 * math.ceil(top / 5.0)
            self.set_levels(top - 90.0, top)
            self._auto_levels = True  # keep following until the user sets a range
        levels = self._levels["difference" if r.layer == "difference" else "level"]
        rect = QRectF(r.start_s, r.y0, r.end_s - r.start_s, r.y1 - r.y0)
        self.image.setImage(picture.image, autoLevels=False, levels=levels)
        self.image.setRect(rect)
        if picture.mask is not None and self._overlay_on:
            self.overlay.setImage(picture.mask, autoLevels=False, levels=(0.0, 1.0))
            self.overlay.setRect(rect)
            self.overlay.setVisible(True)
        else:
            self.overlay.setVisible(False)
        self._update_message()
        self.pictureUpdated.emit(picture)
        if self._standing_in:
            self.refresh()

    def _picture_failed(self, exc: Exception) -> None:
        self._last_request = None
        self._failure = f"Could not draw the scalogram: {exc}"
        self._update_message()
        window = self.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(f"could not draw the scalogram: {exc}", 8000)

    # ------------------------------------------------------------------ overview
    def _update_overview(self) -> None:
        doc = self._doc
        if doc is None:
            return
        width = max(int(self.overview_box.width()), 16)
        for curve, samples in ((self.overview_source, doc.samples), (self.overview_render, doc.rendered)):
            if samples is None:
                curve.setData([], [])
                continue
            lo, hi = envelope(channel_mix(samples, self._channel), width)
            t = (np.arange(len(lo)) + 0.5) * (doc.duration / len(lo))
            x = np.repeat(t, 2)
            y = np.empty(2 * len(lo), dtype=np.float32)
            y[0::2], y[1::2] = lo, hi
            curve.setData(x, y)
        peak = max(float(np.max(np.abs(doc.samples))), 1e-6)
        self.overview_box.setXRange(0.0, doc.duration, padding=0.0)
        self.overview_box.setYRange(-peak, peak, padding=0.05)

    # ------------------------------------------------------------------ mouse read-out
    def _mouse_moved(self, scene_pos) -> None:
        if self._doc is None or not self.viewbox.sceneBoundingRect().contains(scene_pos):
            if not self.tool.active:
                self.tool.leave(self)
            self.cursorLeft.emit()
            return
        p = self.viewbox.mapSceneToView(scene_pos)
        t, y = float(p.x()), float(p.y())
        level = self.picture.value_at(t, y) if self.picture is not None else math.nan
        if self.tool.draws and not self.tool.active and self.editable:
            self.tool.hover(self, t, y)
        self.cursorMoved.emit(t, 2.0**y, level)

    def leaveEvent(self, ev):
        super().leaveEvent(ev)
        if not self.tool.active:
            self.tool.leave(self)
        self.cursorLeft.emit()

    # ------------------------------------------------------------------ lifetime
    def shutdown(self) -> None:
        """Stop the raster thread (call before the widget goes away)."""
        self._timer.stop()
        self._raster.stop()
