"""The Effects panel: build, preview and apply the document's effect chains.

The panel edits a *draft* of each of the document's two chains (``source``: before
analysis, ``render``: after resynthesis; the combo box at the top picks which one is
shown). Adding, removing, reordering, bypassing and changing parameters edit the draft
only: a source chain re-analyses the whole sound, far too slow to follow a slider. Preview
plays the shown draft over the selection (or four seconds from the play cursor); Apply
puts every changed draft into the document, in a worker thread, as ONE undo step on the
window's QUndoStack; undoing and redoing it run in a worker too (a source chain
re-analyses the whole sound). In a window these jobs go through
:meth:`MainWindow.start_document_job`, like a change of the analysis settings: pictures
and edits pause and no render can start on the old analysis meanwhile. The parameter widgets are generated from the registry
(:mod:`scalgui.audio.effect_registry`), or from ``plugin.parameters`` for a VST3 plugin.
"""
from __future__ import annotations

import math
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence, QUndoCommand
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from scalgui.audio.effect_registry import CATEGORIES, EFFECTS, ParamSpec
from scalgui.audio.effects import PLACEMENTS, EffectChain, effect, load_preset, save_preset, vst3_effect
from scalgui.audio.errors import EffectError

from .bridge import DocumentBridge
from .plugin_trust import Vst3FoldersDialog, ask_trust_vst3, confirm_untrusted
from .workers import Worker, keep_thread, main_thread_calls, start_worker, stop_threads

__all__ = ["EffectsCommand", "EffectsPanel", "ParamForm", "make_effects_dock"]

PLACEMENT_LABELS = {"source": "Source: before analysis", "render": "Render: after resynthesis"}
PRESET_FILTER = "Effect presets (*.json);;All files (*)"
IR_FILTER = "Audio files (*.wav *.flac *.aiff *.aif *.ogg *.mp3);;All files (*)"
VST3_FILTER = "VST3 plugins (*.vst3);;All files (*)"
PREVIEW_SECONDS = 4.0
_SLIDER_STEPS = 1000
_SUFFIX = {"": "", ":1": ":1", "semitones": " st"}


# --------------------------------------------------------------------------- undo


class EffectsCommand(QUndoCommand):
    """One change of the document's chains: ``before`` and ``after`` map placement -> chain.

    Made after the change was applied (in a worker), so the first ``redo`` (QUndoStack.push
    calls it) does nothing. Later undo and redo hand the chains to ``run(chains)`` (the
    panel's, which sets them in a worker, after any job still running); without one they
    are set here, in the calling thread.
    """

    def __init__(self, doc, before: dict, after: dict, text: str, on_error=None, run=None) -> None:
        super().__init__(text)
        self.doc, self.before, self.after = doc, dict(before), dict(after)
        self._skip_first = True
        self._on_error = on_error
        self._run = run

    def _set(self, chains: dict) -> None:
        if self._run is not None:
            self._run(self.doc, chains)
            return
        try:
            # Render first: it cannot fail half-way through a re-analysis.
            for placement in sorted(chains, key=lambda p: p != "render"):
                self.doc.set_effect_chain(chains[placement])
        except EffectError as exc:
            if self._on_error is not None:
                self._on_error(exc)

    def redo(self) -> None:
        if self._skip_first:
            self._skip_first = False
            return
        self._set(self.after)

    def undo(self) -> None:
        self._set(self.before)


# --------------------------------------------------------------------------- parameter widgets


class FloatControl(QWidget):
    """A slider and a spin box (with the unit) for one float parameter."""

    valueChanged = pyqtSignal(float)

    def __init__(self, spec: ParamSpec, value: float, parent=None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, _SLIDER_STEPS)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(max(spec.decimals, 0))
        self.spin.setRange(spec.minimum, spec.maximum)
        self.spin.setSingleStep(spec.step)
        self.spin.setSuffix(_SUFFIX.get(spec.unit, f" {spec.unit}"))
        self.spin.setKeyboardTracking(False)  # a typed value counts on Enter, not per key
        self.spin.setMinimumWidth(96)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self._syncing = False
        self.set_value(value)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)

    def _log(self) -> bool:
        return self.spec.log and self.spec.minimum > 0

    def _to_slider(self, value: float) -> int:
        lo, hi = self.spec.minimum, self.spec.maximum
        if hi <= lo:
            return 0
        if self._log():
            frac = math.log(value / lo) / math.log(hi / lo)
        else:
            frac = (value - lo) / (hi - lo)
        return int(round(min(max(frac, 0.0), 1.0) * _SLIDER_STEPS))

    def _from_slider(self, position: int) -> float:
        lo, hi = self.spec.minimum, self.spec.maximum
        frac = position / _SLIDER_STEPS
        return lo * (hi / lo) ** frac if self._log() else lo + frac * (hi - lo)

    def value(self) -> float:
        return float(self.spin.value())

    def set_value(self, value: float) -> None:
        self._syncing = True
        self.spin.setValue(float(value))
        self.slider.setValue(self._to_slider(float(value)))
        self._syncing = False

    def _slider_moved(self, position: int) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.spin.setValue(self._from_slider(position))
        self._syncing = False
        self.valueChanged.emit(self.value())

    def _spin_changed(self, value: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.slider.setValue(self._to_slider(value))
        self._syncing = False
        self.valueChanged.emit(float(value))


class FileControl(QWidget):
    """A read-only path and a Browse… button (the convolution's impulse response)."""

    valueChanged = pyqtSignal(object)

    def __init__(self, spec: ParamSpec, value, ask_path, parent=None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._ask_path = ask_path
        self.line = QLineEdit()
        self.line.setReadOnly(True)
        self.line.setPlaceholderText("no file chosen")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line, 1)
        layout.addWidget(self.browse)
        self.set_value(value)

    def set_value(self, value) -> None:
        self.line.setText("" if value is None else str(value))
        self.line.setToolTip("" if value is None else str(value))

    def _browse(self) -> None:
        path = self._ask_path(f"Choose the {self.spec.label}", self.line.text(), IR_FILTER)
        if path:
            self.set_value(path)
            self.valueChanged.emit(str(path))


class ParamForm(QWidget):
    """Widgets generated from :class:`ParamSpec` rows; emits ``valueChanged(name, value)``.

    float: slider + spin box with the unit; bool: check box; choice: combo box; file: a
    path with Browse…; text: a line edit.
    """

    valueChanged = pyqtSignal(str, object)

    def __init__(self, specs, values: dict, ask_path=None, parent=None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in specs:
            value = values.get(spec.name, spec.default)
            widget = self._make(spec, value, ask_path)
            tip = spec.doc or spec.label
            widget.setToolTip(tip)
            label = QLabel(spec.label or spec.name)
            label.setToolTip(tip)
            layout.addRow(label, widget)
            self.widgets[spec.name] = widget
        if not specs:
            layout.addRow(QLabel("No parameters."))

    def _make(self, spec: ParamSpec, value, ask_path) -> QWidget:
        name = spec.name
        if spec.kind == "float":
            widget = FloatControl(spec, float(value))
            widget.valueChanged.connect(lambda v, n=name: self.valueChanged.emit(n, float(v)))
        elif spec.kind == "bool":
            widget = QCheckBox()
            widget.setChecked(bool(value))
            widget.toggled.connect(lambda v, n=name: self.valueChanged.emit(n, bool(v)))
        elif spec.kind == "choice":
            widget = QComboBox()
            widget.addItems(list(spec.choices))
            widget.setCurrentText(str(value))
            widget.currentTextChanged.connect(lambda v, n=name: self.valueChanged.emit(n, str(v)))
        elif spec.kind == "file":
            widget = FileControl(spec, value, ask_path)
            widget.valueChanged.connect(lambda v, n=name: self.valueChanged.emit(n, v))
        else:
            widget = QLineEdit(str(value))
            widget.editingFinished.connect(lambda w=widget, n=name: self.valueChanged.emit(n, w.text()))
        return widget


# --------------------------------------------------------------------------- the panel


class EffectsPanel(QWidget):
    """Edit, preview and apply a document's effect chains.

    Parameters
    ----------
    window : MainWindow, optional
        Gives the document (it follows ``documentChanged``), the undo stack, the selection
        and play cursor for previews, playback, and error boxes. Without one, call
        :meth:`set_document` and set :attr:`undo_stack` yourself.
    """

    previewReady = pyqtSignal(object)  # (start_s, samples)
    applied = pyqtSignal(object)  # {placement: chain}
    restored = pyqtSignal(object)  # {placement: chain} an undo or redo set
    failed = pyqtSignal(str)

    def __init__(self, window=None, parent=None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.undo_stack = getattr(window, "undo_stack", None)
        self.document = None
        self._bridge: DocumentBridge | None = None
        self._drafts = {p: EffectChain(p) for p in PLACEMENTS}
        self._applied = dict(self._drafts)
        self._form_index: int | None = None
        self._job = None
        self._queue: list[tuple] = []  # (doc, chains) from undo and redo, set one after another
        self._threads: set = set()
        main_thread_calls()  # workers may need the GUI thread (VST3 plugins are made there)
        self._message = ""
        self._vst3_cache: dict = {}
        self._build()
        if window is not None:
            window.documentChanged.connect(self.set_document)
            self.set_document(window.document)
        else:
            self._update_state()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.placement_combo = QComboBox()
        for placement in PLACEMENTS:
            self.placement_combo.addItem(PLACEMENT_LABELS[placement], placement)
        self.placement_combo.setCurrentIndex(PLACEMENTS.index("render"))
        self.placement_combo.setToolTip("Which chain to edit: the source runs before analysis (the picture shows "
                                        "its result), the render after resynthesis (what is played and exported)")
        self.placement_combo.currentIndexChanged.connect(lambda _=0: self._show_chain())

        self.effect_list = QListWidget()
        self.effect_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.effect_list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.effect_list.setToolTip("Drag to reorder; untick to bypass; Delete removes")
        self.effect_list.currentRowChanged.connect(self._select)
        self.effect_list.itemChanged.connect(self._item_changed)
        self.effect_list.model().rowsMoved.connect(lambda *_: self._order_from_list())
        delete = QAction("Remove Effect", self.effect_list)
        delete.setShortcut(QKeySequence(Qt.Key.Key_Delete))
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.remove_selected)
        self.effect_list.addAction(delete)

        self.add_menu = QMenu("Add", self)
        self.effect_actions: dict[str, QAction] = {}
        for category in CATEGORIES:
            sub = self.add_menu.addMenu(category)
            for kind in EFFECTS.values():
                if kind.category == category:
                    action = sub.addAction(kind.name)
                    action.setToolTip(kind.description)
                    action.triggered.connect(lambda _=False, n=kind.name: self.add_effect(n))
                    self.effect_actions[kind.name] = action
        self.add_menu.addSeparator()
        self.vst3_file_action = self.add_menu.addAction("VST3 from File…")
        self.vst3_file_action.triggered.connect(self.add_vst3_dialog)
        self.vst3_menu = self.add_menu.addMenu("VST3 Plugins")
        self.vst3_menu.aboutToShow.connect(self._fill_vst3_menu)
        self.add_menu.addAction("VST3 Folders…").triggered.connect(lambda: Vst3FoldersDialog(self).exec())

        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add an effect at the end of the chain")
        self.add_button.clicked.connect(self._popup_add_menu)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button = QPushButton("Up")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton("Down")
        self.down_button.clicked.connect(lambda: self.move_selected(+1))

        self.bypass_box = QCheckBox("Bypass")
        self.bypass_box.setToolTip("Keep the effect in the chain without running it")
        self.bypass_box.toggled.connect(self._bypass_toggled)
        self.editor_button = QPushButton("Plugin Window…")
        self.editor_button.setToolTip("Open the VST3 plugin's own editor (where the platform allows)")
        self.editor_button.clicked.connect(self.open_plugin_window)
        self.effect_title = QLabel("")
        self.effect_title.setWordWrap(True)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.form: ParamForm | None = None

        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Play the shown chain over the selection, or 4 s from the play cursor")
        self.preview_button.clicked.connect(self.preview)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Put the changed chains into the document (one undo step)")
        self.apply_button.clicked.connect(self.apply)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Drop the changes not applied yet")
        self.revert_button.clicked.connect(self.revert)
        self.load_button = QPushButton("Load Preset…")
        self.load_button.clicked.connect(self.load_preset_dialog)
        self.save_button = QPushButton("Save Preset…")
        self.save_button.clicked.connect(self.save_preset_dialog)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Chain:"))
        top.addWidget(self.placement_combo, 1)
        layout.addLayout(top)
        layout.addWidget(self.effect_list, 2)
        row = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            row.addWidget(button)
        layout.addLayout(row)
        effect_row = QHBoxLayout()
        effect_row.addWidget(self.effect_title, 1)
        effect_row.addWidget(self.bypass_box)
        effect_row.addWidget(self.editor_button)
        layout.addLayout(effect_row)
        layout.addWidget(self.form_area, 3)
        row = QHBoxLayout()
        for button in (self.preview_button, self.apply_button, self.revert_button):
            row.addWidget(button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        layout.addWidget(self.status)

    # ------------------------------------------------------------------ dialogs (patched in tests)
    def ask_open_path(self, title: str, start: str, filter_: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, title, start, filter_)
        return path

    def ask_save_path(self, title: str, start: str, filter_: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, start, filter_)
        return path

    def ask_plugin_path(self) -> str:
        # A .vst3 is a folder on Linux and macOS, a file (or folder) on Windows: accept either.
        path, _ = QFileDialog.getOpenFileName(self, "Load VST3 Plugin", "", VST3_FILTER)
        return path

    def ask_trust_plugin(self, path: Path, where: str) -> bool:
        return ask_trust_vst3(self, path, where)

    def show_error(self, title: str, text: str) -> None:
        self.note(text)
        self.failed.emit(text)
        if self.window_ is not None and hasattr(self.window_, "show_error"):
            self.window_.show_error(title, f"{title}.", text)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self._error_box = box

    # ------------------------------------------------------------------ document
    def set_document(self, doc) -> None:
        """Show ``doc``'s chains (drafts not applied to the previous document are dropped)."""
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None
        self.document = doc
        if doc is not None:
            self._bridge = DocumentBridge(doc)
            self._bridge.changed.connect(self._document_changed)
            self._applied = {p: doc.effect_chain(p) for p in PLACEMENTS}
        else:
            self._applied = {p: EffectChain(p) for p in PLACEMENTS}
        self._drafts = dict(self._applied)
        self._show_chain()

    def _document_changed(self, kind: str) -> None:
        if kind != "effects" or self.document is None:
            return
        for placement in PLACEMENTS:
            new = self.document.effect_chain(placement)
            if new != self._applied[placement]:
                if self._drafts[placement] == self._applied[placement]:
                    self._drafts[placement] = new  # no changes pending here: follow the document
                self._applied[placement] = new
        self._show_chain()

    # ------------------------------------------------------------------ the shown chain
    @property
    def placement(self) -> str:
        return self.placement_combo.currentData()

    def set_placement(self, placement: str) -> None:
        self.placement_combo.setCurrentIndex(PLACEMENTS.index(placement))

    @property
    def chain(self) -> EffectChain:
        """The draft of the shown chain."""
        return self._drafts[self.placement]

    def draft(self, placement: str) -> EffectChain:
        return self._drafts[placement]

    @property
    def pending(self) -> dict:
        """Drafts that differ from the document's chains: {placement: chain}."""
        return {p: d for p, d in self._drafts.items() if d != self._applied[p]}

    def set_chain(self, chain: EffectChain, select: int | None = None) -> None:
        """Replace the draft at ``chain.placement`` (not applied until :meth:`apply`)."""
        self._drafts[chain.placement] = chain
        self._message = ""
        if chain.placement != self.placement:
            self.set_placement(chain.placement)  # shows it
        self._show_chain(select)

    def _show_chain(self, select: int | None = None) -> None:
        chain = self.chain
        row = self.effect_list.currentRow() if select is None else select
        self.effect_list.blockSignals(True)
        self.effect_list.clear()
        for i, spec in enumerate(chain.effects):
            item = QListWidgetItem(spec.label)
            item.setData(Qt.ItemDataRole.UserRole, i)
            flags = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
                     | Qt.ItemFlag.ItemIsDragEnabled)
            item.setFlags(flags)
            item.setCheckState(Qt.CheckState.Unchecked if spec.bypass else Qt.CheckState.Checked)
            item.setToolTip(f"{spec.label}{' (bypassed)' if spec.bypass else ''}: untick to bypass")
            self.effect_list.addItem(item)
        row = min(row, len(chain) - 1)
        self.effect_list.setCurrentRow(row)
        self.effect_list.blockSignals(False)
        self._form_index = None
        self._select(row)
        self._update_state()

    def _update_state(self) -> None:
        row = self.effect_list.currentRow()
        has_doc = self.document is not None
        busy = self.busy
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < len(self.chain) - 1)
        self.preview_button.setEnabled(has_doc and not busy and bool(self.chain.active))
        pending = self.pending
        self.apply_button.setEnabled(has_doc and not busy and bool(pending))
        self.revert_button.setEnabled(bool(pending) and not busy)
        self.status.setText(self._message or self._state_text(pending))

    def note(self, text: str) -> None:
        """Show ``text`` under the buttons until the chain changes again."""
        self._message = text
        self.status.setText(text or self._state_text(self.pending))

    def _state_text(self, pending: dict) -> str:
        if not pending:
            return "Chains as applied." if self.document is not None else "No sound open."
        names = " and ".join(pending)
        return f"Changes to the {names} chain not applied yet (Apply)."

    def _select(self, row: int) -> None:
        chain = self.chain
        if self._form_index == row and self.form is not None:
            return
        self._form_index = row
        if not 0 <= row < len(chain):
            self.form = None
            self.form_area.setWidget(QLabel("Add an effect to the chain." if not len(chain) else ""))
            self.effect_title.setText("")
            self.bypass_box.setEnabled(False)
            self.editor_button.setVisible(False)
            self._update_state()
            return
        spec = chain[row]
        self.bypass_box.setEnabled(True)
        self.bypass_box.blockSignals(True)
        self.bypass_box.setChecked(spec.bypass)
        self.bypass_box.blockSignals(False)
        self.editor_button.setVisible(spec.is_vst3)
        if spec.is_vst3:
            specs = self._vst3_specs(spec)
            self.effect_title.setText(f"{spec.label}\n{spec.path}")
        else:
            kind = EFFECTS[spec.type]
            specs = kind.params
            self.effect_title.setText(spec.label)
            self.effect_title.setToolTip(kind.description)
        self.form = ParamForm(specs, dict(spec.params), ask_path=self.ask_open_path)
        self.form.valueChanged.connect(self._param_changed)
        self.form_area.setWidget(self.form)
        self._update_state()

    def _vst3_specs(self, spec) -> tuple:
        from scalgui.audio.vst3 import load_vst3, vst3_parameter_specs

        key = (spec.path, spec.plugin_name)
        if key not in self._vst3_cache:
            try:
                self._vst3_cache[key] = vst3_parameter_specs(load_vst3(spec.path, spec.plugin_name))
            except EffectError as exc:
                self.note(f"Cannot show the parameters: {exc}")
                return ()
        return self._vst3_cache[key]

    # ------------------------------------------------------------------ editing the draft
    def _popup_add_menu(self) -> None:
        self.add_menu.popup(self.add_button.mapToGlobal(self.add_button.rect().bottomLeft()))

    def _fill_vst3_menu(self) -> None:
        from scalgui.audio.vst3 import find_vst3_plugins

        self.vst3_menu.clear()
        plugins = find_vst3_plugins()
        for path in plugins:
            action = self.vst3_menu.addAction(path.stem)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.add_vst3(p))
        if not plugins:
            self.vst3_menu.addAction("(none in your VST3 folders)").setEnabled(False)

    def add_effect(self, type_name: str, *, ask: bool = True) -> None:
        """Append a built-in effect with its default settings to the shown chain.

        An effect that needs a file (the convolution's impulse response) asks for it when
        ``ask`` is true; without one it is added and waits for a file.
        """
        spec = effect(type_name)
        if ask:
            for p in EFFECTS[type_name].params:
                if p.kind == "file":
                    path = self.ask_open_path(f"Choose the {p.label}", "", IR_FILTER)
                    if path:
                        spec = spec.with_params(**{p.name: path})
        chain = self.chain.added(spec)
        self.set_chain(chain, select=len(chain) - 1)

    def add_vst3_dialog(self) -> None:
        from scalgui.audio.vst3 import allow_vst3

        path = self.ask_plugin_path()
        if path:
            allow_vst3(path)  # chosen by the user: trusted for this session
            self.add_vst3(path)

    def add_vst3(self, path, plugin_name: str | None = None) -> bool:
        """Load the plugin at ``path`` (to check it and read its parameters) and append it.

        A plugin that cannot be loaded is reported and the chain is left as it was.
        """
        from scalgui.audio.vst3 import load_vst3, vst3_parameter_specs

        try:
            plugin = load_vst3(path, plugin_name)
            self._vst3_cache[(str(path), plugin_name)] = vst3_parameter_specs(plugin)
        except EffectError as exc:
            self.show_error("Cannot load plugin", str(exc))
            return False
        chain = self.chain.added(vst3_effect(path, plugin_name=plugin_name))
        self.set_chain(chain, select=len(chain) - 1)
        return True

    def remove_selected(self) -> None:
        row = self.effect_list.currentRow()
        if 0 <= row < len(self.chain):
            self.set_chain(self.chain.removed(row), select=max(0, row - 1))

    def move_selected(self, delta: int) -> None:
        row = self.effect_list.currentRow()
        to = row + delta
        if 0 <= row < len(self.chain) and 0 <= to < len(self.chain):
            self.set_chain(self.chain.moved(row, to), select=to)

    def _order_from_list(self) -> None:
        # A drag in the list moved rows: read the new order back from the items.
        order = [self.effect_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.effect_list.count())]
        if None in order or sorted(order) != list(range(len(self.chain))):
            return
        effects = tuple(self.chain[i] for i in order)
        current = self.effect_list.currentRow()
        QTimer.singleShot(0, lambda: self.set_chain(EffectChain(self.placement, effects), select=current))

    def _item_changed(self, item: QListWidgetItem) -> None:
        row = self.effect_list.row(item)
        if 0 <= row < len(self.chain):
            bypass = item.checkState() != Qt.CheckState.Checked
            if bypass != self.chain[row].bypass:
                chain = self.chain.replaced(row, self.chain[row].with_bypass(bypass))
                # Later: the list is rebuilt, which must not happen inside its own signal.
                QTimer.singleShot(0, lambda: self.set_chain(chain, select=row))

    def _bypass_toggled(self, on: bool) -> None:
        row = self.effect_list.currentRow()
        if 0 <= row < len(self.chain):
            self.set_chain(self.chain.replaced(row, self.chain[row].with_bypass(on)), select=row)

    def _param_changed(self, name: str, value) -> None:
        row = self._form_index
        if row is None or not 0 <= row < len(self.chain):
            return
        try:
            spec = self.chain[row].with_params(**{name: value})
        except EffectError as exc:
            self.note(f"Error: {exc}")
            return
        # Only the draft changes; the form stays (rebuilding it would steal the focus).
        self._drafts[self.placement] = self.chain.replaced(row, spec)
        self._message = ""
        self._update_state()

    def revert(self) -> None:
        """Drop the changes that were not applied."""
        self._drafts = dict(self._applied)
        self._message = ""
        self._show_chain()

    def open_plugin_window(self) -> None:
        """Open the selected VST3 plugin's own editor (blocks until it is closed), then
        take its parameter values into the draft."""
        from scalgui.audio.vst3 import load_vst3, set_vst3_parameters, vst3_parameter_values

        row = self.effect_list.currentRow()
        if not 0 <= row < len(self.chain) or not self.chain[row].is_vst3:
            return
        spec = self.chain[row]
        try:
            plugin = load_vst3(spec.path, spec.plugin_name)
            set_vst3_parameters(plugin, spec.params, label=spec.label)
            plugin.show_editor()
            values = vst3_parameter_values(plugin)
        except Exception as exc:  # noqa: BLE001 - no display, no editor, or the plugin failed
            self.show_error("Plugin window", f"Cannot open the window of {spec.label}: {exc}")
            return
        self.set_chain(self.chain.replaced(row, spec.with_params(**values)), select=row)

    # ------------------------------------------------------------------ presets
    def save_preset_file(self, path) -> bool:
        """Save the drafts (every non-empty chain, or the shown one) as a JSON preset."""
        chains = [d for d in self._drafts.values() if len(d)] or [self.chain]
        try:
            save_preset(path, chains)
        except EffectError as exc:
            self.show_error("Cannot save preset", str(exc))
            return False
        self.note(f"Saved preset {Path(path).name}.")
        return True

    def load_preset_file(self, path) -> bool:
        """Load a preset into the drafts (Apply puts it into the document)."""
        try:
            chains = load_preset(path)
        except EffectError as exc:
            self.show_error("Cannot load preset", str(exc))
            return False
        chains, refused = confirm_untrusted(chains, f"the preset '{Path(path).name}'", self.ask_trust_plugin)
        for chain in chains:
            self._drafts[chain.placement] = chain
        if chains:
            self.set_placement(chains[0].placement)
        self._message = ""
        self._show_chain(0)
        kept = f" ({len(refused)} VST3 plugin(s) kept bypassed)" if refused else ""
        self.note(f"Loaded preset {Path(path).name}{kept}: press Apply to use it.")
        return True

    def save_preset_dialog(self) -> None:
        path = self.ask_save_path("Save Effects Preset", "effects.json", PRESET_FILTER)
        if path:
            if not Path(path).suffix:
                path = str(Path(path).with_suffix(".json"))
            self.save_preset_file(path)

    def load_preset_dialog(self) -> None:
        path = self.ask_open_path("Load Effects Preset", "", PRESET_FILTER)
        if path:
            self.load_preset_file(path)

    # ------------------------------------------------------------------ preview and apply
    def _busy_window(self) -> bool:
        window = self.window_
        return window is not None and (getattr(window, "rendering", False) or getattr(window, "analysing", False))

    def _preview_span(self) -> tuple[float, float]:
        window = self.window_
        if window is not None:
            bounds = window.view.selection_bounds() if hasattr(window, "view") else None
            if bounds is not None:
                return bounds[0], bounds[1]
            start = float(getattr(window, "play_cursor", 0.0))
            return start, start + PREVIEW_SECONDS
        return 0.0, PREVIEW_SECONDS

    def preview(self) -> bool:
        """Run the shown draft over a short span in a worker; play it and emit previewReady."""
        doc = self.document
        if doc is None or self._job is not None:
            return False
        chain = self.chain
        start, end = self._preview_span()
        if start >= doc.duration:
            start, end = 0.0, PREVIEW_SECONDS

        def job(_progress):
            return doc.preview_effects(chain, start, end)

        self.note("Preview…")
        self._run(job, self._previewed, lambda exc: self._job_failed("Preview failed", exc))
        return True

    def _previewed(self, result) -> None:
        self._job_done()
        start_s, samples = result
        self.note(f"Preview: {samples.shape[1] / self.document.sample_rate:.1f} s from {start_s:.2f} s.")
        if self.window_ is not None and hasattr(self.window_, "play_preview"):
            self.window_.play_preview(start_s, samples)
        self.previewReady.emit(result)

    def apply(self) -> bool:
        """Put every changed draft into the document, in a worker thread, as one undo step."""
        doc = self.document
        changes = self.pending
        if doc is None or not changes or self.busy:
            return False
        if self._busy_window():
            self.note("The sound is busy (render or analysis): apply when it has finished.")
            return False
        checked, refused = confirm_untrusted(changes.values(), "the effect chain", self.ask_trust_plugin)
        if refused:  # switched on in the panel, then refused: it stays bypassed
            changes = {chain.placement: chain for chain in checked}
            self._drafts.update(changes)
            self._show_chain()
        before = {p: doc.effect_chain(p) for p in changes}
        text = "Applying effects…" + (" (re-analysing the source)" if "source" in changes else "")
        if not self._start_change(doc, changes, before, text, lambda result: self._applied_done(doc, before, result),
                                  self._apply_failed):
            self.note("The sound is busy: apply when it has finished.")
            return False
        self.note(text)
        return True

    @staticmethod
    def _chains_job(doc, changes: dict, before: dict):
        def job(_progress):
            done = []
            try:
                for placement in sorted(changes, key=lambda p: p != "render"):
                    doc.set_effect_chain(changes[placement])
                    done.append(placement)
            except BaseException:
                for placement in done:  # all or nothing
                    doc.set_effect_chain(before[placement])
                raise
            return changes

        return job

    def _start_change(self, doc, changes: dict, before: dict, text: str, finished, failed) -> bool:
        """Set ``changes`` in a worker: the window's document job (as re-analysis: pictures
        and edits pause, renders wait) or, without a window, the panel's own worker."""
        job = self._chains_job(doc, changes, before)
        window = self.window_
        if window is not None and hasattr(window, "start_document_job"):
            self._job = "window"
            if not window.start_document_job(text, job, finished, failed):
                self._job = None
                return False
            self._update_state()
            return True
        self._run(job, finished, failed)
        return True

    def _set_in_background(self, doc, chains: dict) -> None:
        """Undo or redo of an :class:`EffectsCommand`: set ``chains`` in a worker, after
        any job running (a render, an analysis, an apply, an earlier undo)."""
        self._queue.append((doc, dict(chains)))
        self._update_state()
        self._next_queued()

    def _next_queued(self) -> None:
        if not self._queue or self._job is not None:
            return
        if self._busy_window():
            QTimer.singleShot(50, self._next_queued)
            return
        doc, chains = self._queue.pop(0)
        if doc is None or doc is not self.document:
            self._next_queued()
            return
        before = {p: doc.effect_chain(p) for p in chains}
        changes = {p: c for p, c in chains.items() if c != before[p]}
        if not changes:
            self._next_queued()
            return
        text = "Restoring effects…" + (" (re-analysing the source)" if "source" in changes else "")
        if self._start_change(doc, changes, before, text, self._restored, self._restore_failed):
            self.note(text)
        else:
            self._queue.insert(0, (doc, chains))
            QTimer.singleShot(50, self._next_queued)

    def _restored(self, after: dict) -> None:
        self._job_done()
        self._message = f"Restored the {' and '.join(after)} chain."
        self._show_chain()
        self.restored.emit(after)

    def _restore_failed(self, exc: Exception) -> None:
        self._job_done()
        self._undo_failed(exc)

    def _applied_done(self, doc, before: dict, after: dict) -> None:
        self._job_done()
        for placement, chain in after.items():
            self._applied[placement] = chain
        names = " and ".join(after)
        text = f"Effects: {names} chain " + "; ".join(after[p].describe() for p in after)
        if self.undo_stack is not None and doc is self.document:
            self.undo_stack.push(EffectsCommand(doc, before, after, text[:120], on_error=self._undo_failed,
                                                run=self._set_in_background))
        self._message = f"Applied the {names} chain."
        self._show_chain()
        self.applied.emit(after)

    def _apply_failed(self, exc: Exception) -> None:
        self._job_done()
        self._report("Effects not applied", exc)

    def _undo_failed(self, exc: Exception) -> None:
        self.show_error("Effects", f"Cannot restore the effect chain: {exc}")

    def _job_failed(self, title: str, exc: Exception) -> None:
        self._job_done()
        self._report(title, exc)

    def _report(self, title: str, exc: Exception) -> None:
        text = str(exc) if isinstance(exc, (EffectError, ValueError)) else f"{type(exc).__name__}: {exc}"
        self.show_error(title, f"Error: {text}")

    def _run(self, job, finished, failed) -> None:
        worker = Worker(job)
        worker.finished.connect(finished)
        worker.failed.connect(failed)
        thread = start_worker(worker)
        keep_thread(self._threads, thread)
        self._job = worker
        self._update_state()

    def _job_done(self) -> None:
        self._job = None
        self._update_state()
        if self._queue:
            QTimer.singleShot(0, self._next_queued)

    @property
    def busy(self) -> bool:
        """Whether a preview, an apply, or an undo or redo of one is running or waiting."""
        return self._job is not None or bool(self._queue)

    def shutdown(self) -> None:
        """Wait for a preview or an apply still running, close a message still shown, and
        stop following the document."""
        self._queue.clear()
        box = getattr(self, "_error_box", None)
        if box is not None:
            # A window-modal box outliving its panel kept blocking input to other windows.
            box.done(0)
            box.deleteLater()
            self._error_box = None
        stop_threads(self._threads)
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None


def make_effects_dock(window) -> QDockWidget:
    """The Effects panel in a dock widget for ``window`` (a MainWindow); the caller adds it."""
    dock = QDockWidget("Effects", window)
    dock.setObjectName("effects")
    window.effects_panel = EffectsPanel(window, dock)
    dock.setWidget(window.effects_panel)
    dock.setMinimumWidth(260)
    return dock
