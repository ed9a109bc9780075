"""Tool bars: the tools and their options, and the display controls.

Each bar owns its widgets and says what changed through signals; the main window wires
them to the view. Values live in one place: tool options in a :class:`ToolSettings`
shared with the tools, display options in the view.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QSlider,
    QSpinBox,
    QToolBar,
    QWidget,
)

from .tools import MODES, TOOLS, ToolSettings

__all__ = ["CHANNEL_CHOICES", "LAYER_CHOICES", "DisplayBar", "ToolBar"]

#: Channel views for stereo files: (value, label).
CHANNEL_CHOICES = (
    ("mean", "Mix"),
    ("left", "Left"),
    ("right", "Right"),
    ("mid", "Mid (L+R)/2"),
    ("side", "Side (L-R)/2"),
)
#: Layers the view can show: (value, label).
LAYER_CHOICES = (
    ("target", "Edited"),
    ("source", "Original"),
    ("render", "Render"),
    ("difference", "Difference"),
)
_TOOL_LABELS = {
    "pan": ("Pan", "H", "Drag pans; a click places the play cursor"),
    "brush": ("Brush", "B", "Paint an edit with the current mode"),
    "rectangle": ("Rectangle", "R", "Drag a rectangle edit (Shift: add to the selection, Alt/Ctrl: subtract)"),
    "lasso": ("Lasso", "L", "Draw a free selection (Shift: add, Alt/Ctrl: subtract)"),
    "time": ("Time", "T", "Select a time range at all frequencies (Shift: add, Alt/Ctrl: subtract)"),
    "band": ("Band", "F", "Select a frequency band at all times (Shift: add, Alt/Ctrl: subtract)"),
    "harmonic": ("Harmonic", "K", "Press on a fundamental, drag for the time extent (Shift: add, Alt/Ctrl: subtract)"),
}
_MODE_LABELS = {
    "attenuate": "Attenuate",
    "boost": "Boost",
    "erase": "Erase",
    "restore": "Restore",
    "paint": "Paint",
}


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setContentsMargins(8, 0, 3, 0)
    return label


class ToolBar(QToolBar):
    """Tool choice and tool options (mode, dB, radius, hardness, feather, harmonics), Apply.

    Signals
    -------
    toolChanged(str)
        The tool picked, one of :data:`~scalgui.ui.tools.TOOLS`.
    settingsChanged()
        A value in :attr:`settings` changed.

    :attr:`apply_action` (apply the pending selection with the current mode) is connected
    by the window.
    """

    toolChanged = pyqtSignal(str)
    settingsChanged = pyqtSignal()

    def __init__(self, settings: ToolSettings, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("tools")
        self.settings = settings
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for name in TOOLS:
            text, key, tip = _TOOL_LABELS[name]
            action = QAction(text, self, checkable=True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{text} ({key}): {tip}")
            action.triggered.connect(lambda _=False, n=name: self.toolChanged.emit(n))
            group.addAction(action)
            self.addAction(action)
            self.tool_actions[name] = action
        self.tool_actions["pan"].setChecked(True)
        self.addSeparator()

        self.mode = QComboBox()
        for mode in MODES:
            self.mode.addItem(_MODE_LABELS[mode], mode)
        self.mode.setToolTip("What the brush and selections do")
        self.gain = self._spin(QDoubleSpinBox(), 0.0, 120.0, settings.gain_db, " dB", "Attenuate or boost by this much")
        self.paint = self._spin(QDoubleSpinBox(), -120.0, 0.0, settings.paint_db, " dBFS", "Level of painted magnitude")
        self.radius = self._spin(QSpinBox(), 1, 400, int(settings.radius_px), " px", "Brush radius on screen")
        self.hardness = self._spin(QDoubleSpinBox(), 0.0, 1.0, settings.hardness, "", "Share of the radius at full strength")
        self.hardness.setSingleStep(0.1)
        self.feather = self._spin(QSpinBox(), 0, 200, int(settings.feather_px), " px", "Feather of selection edges")
        self.harmonics = self._spin(QSpinBox(), 1, 64, int(settings.harmonic_count), "",
                                    "Harmonics in a harmonic selection (the fundamental is the first)")
        self.width_cents = self._spin(QSpinBox(), 5, 1200, int(settings.harmonic_width_cents), " ¢",
                                      "Width of each harmonic's band, cents")
        self._gain_label = _label("by")
        self._paint_label = _label("level")
        self._option_actions: dict[str, list[QAction]] = {}
        for key, label, widget in (
            ("mode", _label("Mode"), self.mode),
            ("gain", self._gain_label, self.gain),
            ("paint", self._paint_label, self.paint),
            ("radius", _label("Radius"), self.radius),
            ("hardness", _label("Hardness"), self.hardness),
            ("feather", _label("Feather"), self.feather),
            ("harmonics", _label("Harmonics"), self.harmonics),
            ("width", _label("Width"), self.width_cents),
        ):
            self._option_actions[key] = [self.addWidget(label), self.addWidget(widget)]
        self.addSeparator()
        self.apply_action = QAction("Apply", self)
        self.apply_action.setToolTip("Apply the mode to the selection (Enter); Escape clears the selection")
        self.apply_action.setEnabled(False)
        self.addAction(self.apply_action)
        self.mode.currentIndexChanged.connect(self._changed)
        for spin in (self.gain, self.paint, self.radius, self.hardness, self.feather, self.harmonics, self.width_cents):
            spin.valueChanged.connect(self._changed)
        self.toolChanged.connect(self._set_tool_widgets)
        self._set_mode_widgets()
        self._set_tool_widgets("pan")

    @staticmethod
    def _spin(spin, low, high, value, suffix, tip):
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        return spin

    def set_tool(self, name: str) -> None:
        """Check the action of tool ``name`` and announce it."""
        self.tool_actions[name].setChecked(True)
        self.toolChanged.emit(name)

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(MODES.index(mode))

    def _set_tool_widgets(self, name: str) -> None:
        """Show the options the tool uses (the bar would not fit them all)."""
        shown = {
            "radius": name == "brush",
            "hardness": name == "brush",
            "feather": name in ("rectangle", "lasso", "time", "band", "harmonic"),
            "harmonics": name == "harmonic",
            "width": name == "harmonic",
        }
        for key, visible in shown.items():
            for action in self._option_actions[key]:
                action.setVisible(visible)

    def option_visible(self, key: str) -> bool:
        """Whether option ``key`` (``"radius"``, ``"feather"``, ``"harmonics"``, ...) is shown."""
        return self._option_actions[key][1].isVisible()

    def _set_mode_widgets(self) -> None:
        mode = self.settings.mode
        self.gain.setEnabled(mode in ("attenuate", "boost"))
        self.paint.setEnabled(mode == "paint")

    def _changed(self, *_):
        s = self.settings
        s.mode = self.mode.currentData()
        s.gain_db = float(self.gain.value())
        s.paint_db = float(self.paint.value())
        s.radius_px = float(self.radius.value())
        s.hardness = float(self.hardness.value())
        s.feather_px = float(self.feather.value())
        s.harmonic_count = int(self.harmonics.value())
        s.harmonic_width_cents = float(self.width_cents.value())
        self._set_mode_widgets()
        self.settingsChanged.emit()


class DisplayBar(QToolBar):
    """Layer, channel, colour range in dB and the edit overlay.

    Signals
    -------
    layerChanged(str), channelChanged(str), levelsChanged(float, float),
    overlayChanged(bool, float)
    """

    layerChanged = pyqtSignal(str)
    channelChanged = pyqtSignal(str)
    levelsChanged = pyqtSignal(float, float)
    overlayChanged = pyqtSignal(bool, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Display", parent)
        self.setObjectName("display")
        self.layer = QComboBox()
        for value, text in LAYER_CHOICES:
            self.layer.addItem(text, value)
        self.layer.setToolTip("Edited target, original, last render, or where the render missed the target")
        self.channel = QComboBox()
        self.channel.setToolTip("Channel view of a stereo file")
        self.floor = self._db_spin(-100, "Bottom of the colour range")
        self.top = self._db_spin(-10, "Top of the colour range")
        self.overlay = QCheckBox("Edits")
        self.overlay.setChecked(True)
        self.overlay.setToolTip("Show where edits act and how strongly")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.opacity.setFixedWidth(80)
        self.opacity.setToolTip("Opacity of the edit overlay")
        for label, widget in (
            (_label("Show"), self.layer),
            (_label("Channel"), self.channel),
            (_label("Range"), self.floor),
            (_label("to"), self.top),
            (_label(""), self.overlay),
            (None, self.opacity),
        ):
            if label is not None:
                self.addWidget(label)
            self.addWidget(widget)
        self.set_channels(1)
        self.layer.currentIndexChanged.connect(lambda _: self.layerChanged.emit(self.layer.currentData()))
        self.channel.currentIndexChanged.connect(self._channel_changed)
        self.floor.valueChanged.connect(self._levels_changed)
        self.top.valueChanged.connect(self._levels_changed)
        self.overlay.toggled.connect(self._overlay_changed)
        self.opacity.valueChanged.connect(self._overlay_changed)

    @staticmethod
    def _db_spin(value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(-200, 60)
        spin.setValue(value)
        spin.setSuffix(" dB")
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        return spin

    def set_channels(self, channels: int) -> None:
        """Offer the channel views of a file with ``channels`` channels."""
        self.channel.blockSignals(True)
        self.channel.clear()
        if channels >= 2:
            for value, text in CHANNEL_CHOICES:
                self.channel.addItem(text, value)
        else:
            self.channel.addItem("Mono", "mean")
        self.channel.setEnabled(channels >= 2)
        self.channel.blockSignals(False)

    def set_levels(self, low: float, high: float) -> None:
        """Show a colour range set elsewhere (the colour bar), without echoing it."""
        for spin, value in ((self.floor, low), (self.top, high)):
            spin.blockSignals(True)
            spin.setValue(round(value))
            spin.blockSignals(False)

    def set_layer(self, layer: str) -> None:
        index = self.layer.findData(layer)
        if index >= 0:
            self.layer.setCurrentIndex(index)

    def enable_render_layers(self, enabled: bool) -> None:
        """Enable the Render and Difference choices (once there is a render)."""
        model = self.layer.model()
        for value in ("render", "difference"):
            model.item(self.layer.findData(value)).setEnabled(enabled)
        if not enabled and self.layer.currentData() in ("render", "difference"):
            self.set_layer("target")

    def _channel_changed(self, _index: int) -> None:
        self.channelChanged.emit(self.channel.currentData())

    def _levels_changed(self, _value: int) -> None:
        low, high = self.floor.value(), self.top.value()
        if high <= low:
            return
        self.levelsChanged.emit(float(low), float(high))

    def _overlay_changed(self, *_):
        self.opacity.setEnabled(self.overlay.isChecked())
        self.overlayChanged.emit(self.overlay.isChecked(), self.opacity.value() / 100.0)
