"""The Plugins menu: one entry per discovered plugin, a form generated from its parameters.

:func:`install_plugin_menu` adds the menu to a main window. Each plugin opens a
:class:`PluginDialog` whose fields come from the plugin's declared :class:`Param`\\ s
(numbers as spin boxes with their range and unit, switches as check boxes, choices as
combo boxes, files with a Browse button, time ranges with a "From selection" button). OK
applies the plugin to the pending selection (or to the whole sound) as one undoable edit,
in a worker thread (:func:`apply_plugin`): the status bar shows its progress and a Cancel
button, and the edit reaches the undo stack only when the plugin has succeeded. Plugin
files that could not be loaded are listed disabled, their problem as the tooltip.
"""
from __future__ import annotations

import math
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QUndoCommand
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from scalgui.plugins import Param, Plugin, PluginCancelled, PluginEdit, PluginError, default_registry, plugin_run

__all__ = ["PluginCommand", "PluginDialog", "PluginRunner", "apply_plugin", "install_plugin_menu",
           "open_plugin_dialog"]

#: Spin boxes need finite limits; parameters without bounds get these.
_UNBOUNDED = 1e9


class PluginCommand(QUndoCommand):
    """One plugin edit on the undo stack.

    The edit is pushed to the document (and the plugin run, in a worker) *before* the
    command goes on the stack, so a plugin that fails or is cancelled never reaches the
    stack: an exception inside a Qt virtual such as ``redo`` would abort the application.
    The first ``redo`` (the one ``QUndoStack.push`` makes) therefore does nothing; later
    ones redo the document's edit, which re-runs the plugin: through ``run(doc)`` (the
    runner's, in a worker) when given and it starts, else here.
    """

    def __init__(self, doc, edit: PluginEdit, text: str, run=None) -> None:
        super().__init__(text)
        self.doc = doc
        self.edit = edit
        self._applied = True
        self._run = run

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        if self._run is None or not self._run(self.doc):
            self.doc.redo()

    def undo(self) -> None:
        self.doc.undo()


# --------------------------------------------------------------------------- the form


def _decimals(param: Param) -> int:
    step = param.step or 0.0
    if step and step < 1:
        return min(6, max(2, int(math.ceil(-math.log10(step))) + 1))
    return 3


def _spin(param: Param, value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(_decimals(param))
    box.setRange(param.minimum if param.minimum is not None else -_UNBOUNDED,
                 param.maximum if param.maximum is not None else _UNBOUNDED)
    lo, hi = param.minimum, param.maximum
    box.setSingleStep(param.step or ((hi - lo) / 100 if lo is not None and hi is not None and hi > lo else 0.1))
    if param.unit:
        box.setSuffix(f" {param.unit}")
    box.setValue(float(value))
    return box


class _Field:
    """One parameter's widget(s): ``widget`` for the form, ``value()`` to read it back."""

    def __init__(self, param: Param, dialog: "PluginDialog") -> None:
        self.param = param
        value = param.default
        kind = param.kind
        if kind == "float":
            self.editor = _spin(param, value)
            self.widget = self.editor
        elif kind == "int":
            self.editor = QSpinBox()
            self.editor.setRange(int(param.minimum) if param.minimum is not None else -(2**31) + 1,
                                 int(param.maximum) if param.maximum is not None else 2**31 - 1)
            self.editor.setSingleStep(int(param.step or 1))
            if param.unit:
                self.editor.setSuffix(f" {param.unit}")
            self.editor.setValue(int(value))
            self.widget = self.editor
        elif kind == "bool":
            self.editor = QCheckBox()
            self.editor.setChecked(bool(value))
            self.widget = self.editor
        elif kind == "choice":
            self.editor = QComboBox()
            self.editor.addItems(list(param.choices))
            self.editor.setCurrentText(str(value))
            self.widget = self.editor
        elif kind in ("file", "text"):
            self.editor = QLineEdit(str(value))
            self.widget = self.editor
            if kind == "file":
                self.widget = QWidget()
                row = QHBoxLayout(self.widget)
                row.setContentsMargins(0, 0, 0, 0)
                browse = QPushButton("Browse…")
                browse.clicked.connect(lambda: self._browse(dialog))
                row.addWidget(self.editor, 1)
                row.addWidget(browse)
                self.browse = browse
        else:  # range
            self.lo, self.hi = _spin(param, value[0]), _spin(param, value[1])
            self.editor = self.lo
            self.widget = QWidget()
            row = QHBoxLayout(self.widget)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(self.lo, 1)
            row.addWidget(QLabel("to"))
            row.addWidget(self.hi, 1)
            if param.unit == "s":
                self.from_selection = QPushButton("From selection")
                self.from_selection.setToolTip("The pending selection's time span")
                self.from_selection.setEnabled(dialog.selection is not None)
                self.from_selection.clicked.connect(lambda: self._fill_from_selection(dialog))
                row.addWidget(self.from_selection)
        tip = param.description
        if tip:
            self.widget.setToolTip(tip)
            self.editor.setToolTip(tip)

    def _browse(self, dialog: "PluginDialog") -> None:
        path, _ = QFileDialog.getOpenFileName(dialog, self.param.label, self.editor.text(),
                                              self.param.filter or "All files (*)")
        if path:
            self.editor.setText(path)

    def _fill_from_selection(self, dialog: "PluginDialog") -> None:
        if dialog.selection is None:
            return
        lo, hi = dialog.selection.span()
        lo = max(lo, 0.0)
        if dialog.duration:
            hi = min(hi, dialog.duration)
        if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            self.lo.setValue(lo)
            self.hi.setValue(hi)

    def value(self):
        kind = self.param.kind
        if kind in ("float", "int"):
            return self.editor.value()
        if kind == "bool":
            return self.editor.isChecked()
        if kind == "choice":
            return self.editor.currentText()
        if kind in ("file", "text"):
            return self.editor.text()
        return (self.lo.value(), self.hi.value())


class PluginDialog(QDialog):
    """A form for one plugin's parameters, generated from its declaration.

    Parameters
    ----------
    plugin : Plugin
    selection : Shape or None
        The pending selection: "Apply to the selection only" is offered (and checked)
        when there is one.
    duration : float
        Length of the sound in seconds (clips "From selection").
    """

    def __init__(self, plugin: Plugin, selection=None, duration: float = 0.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plugin = plugin
        self.selection = selection
        self.duration = duration
        self.setWindowTitle(plugin.title)
        layout = QVBoxLayout(self)
        about = QLabel(plugin.description)
        about.setWordWrap(True)
        layout.addWidget(about)
        form = QFormLayout()
        self.fields: dict[str, _Field] = {}
        for param in plugin.params:
            field = _Field(param, self)
            self.fields[param.name] = field
            form.addRow(param.label, field.widget)
        layout.addLayout(form)
        self.selection_only = QCheckBox("Apply to the selection only")
        self.selection_only.setChecked(selection is not None)
        self.selection_only.setEnabled(selection is not None)
        if selection is None:
            self.selection_only.setToolTip("No selection: the plugin acts on the whole sound")
        layout.addWidget(self.selection_only)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._check_and_accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def values(self) -> dict:
        """The form's values by parameter name (not yet validated)."""
        return {name: field.value() for name, field in self.fields.items()}

    def chosen_selection(self):
        """The selection to apply to, or ``None`` for everything."""
        return self.selection if self.selection_only.isChecked() else None

    def edit(self) -> PluginEdit:
        """The plugin edit the form describes; raises PluginError for invalid values."""
        return PluginEdit.create(self.plugin, self.values(), self.chosen_selection())

    def _check_and_accept(self) -> None:
        try:
            self.edit()
        except PluginError as exc:  # e.g. a file parameter left empty: say so, keep the dialog
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()


# --------------------------------------------------------------------------- actions


class PluginRunner(QObject):
    """Applies plugin edits to a window's document in a worker thread, one at a time.

    The run goes through :meth:`MainWindow.start_document_job` (as a re-analysis does:
    pictures and edits pause, Undo/Redo and renders wait, the status bar shows progress and
    Cancel). Inside the worker, :func:`scalgui.plugins.plugin_run` hands the plugin a
    cancel token and a progress callback (``ctx.progress``/``ctx.check``); a plugin that
    never checks is still stopped between its steps, and the host drops the result of a
    run cancelled while it was in the plugin's code. The edit goes on the undo stack only
    when the run succeeded; a failure shows its message and changes nothing.

    Signals: ``applied(edit)``, ``failed(message)``, ``cancelled(edit)``.
    """

    applied = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self._cancel = None

    @property
    def busy(self) -> bool:
        """Whether a plugin is being applied."""
        return self._cancel is not None

    def start(self, edit: PluginEdit, plugin: Plugin | None = None) -> bool:
        """Run ``edit`` on the window's document in a worker; False (and a status message)
        when there is no document or the window is busy."""
        from scalgui.dsp.phase import CancelToken

        window, doc = self.window, self.window.document
        if doc is None or self.busy:
            return False
        title = plugin.title if plugin is not None else edit.plugin
        cancel = CancelToken()

        def job(progress):
            with plugin_run(cancel=cancel, progress=lambda f, text: progress((f, text or f"{title}…"))):
                doc.push(edit)
            return edit

        started = window.start_document_job(
            f"{title}…", job,
            lambda _edit: self._finished(doc, edit, plugin, cancel),
            lambda exc: self._failed(edit, title, exc),
            cancel=cancel.cancel,
        )
        if not started:
            window.statusBar().showMessage(
                "The sound is busy (render, analysis or a plugin): apply the plugin when it has finished", 6000)
            return False
        self._cancel = cancel
        return True

    def cancel(self) -> None:
        """Ask the running plugin to stop; the document stays as it was."""
        if self._cancel is not None:
            self.window.cancel_document_job()

    def _finished(self, doc, edit: PluginEdit, plugin, cancel) -> None:
        self._cancel = None
        window = self.window
        if doc is not window.document:
            return
        window.undo_stack.push(PluginCommand(doc, edit, edit.describe(plugin), run=self.redo_in_background))
        if cancel.cancelled:  # it finished before it saw the request: keep it, it is on the stack
            window.statusBar().showMessage("The plugin finished before it could be cancelled (Ctrl+Z undoes it)",
                                           8000)
        preview = getattr(window, "preview_action", None)
        if preview is not None and preview.isChecked():
            window.start_preview()
        self.applied.emit(edit)

    def redo_in_background(self, doc) -> bool:
        """Redo ``doc``'s last undone edit (a plugin edit: it runs again) in a worker, as
        :meth:`start` does; False, doing nothing, when the window is busy (a render): the
        caller then redoes it itself."""
        window = self.window
        if doc is not window.document or self.busy:
            return False
        return window.start_document_job("Redoing the plugin…", lambda _progress: doc.redo(),
                                         lambda _edit: None, self._redo_failed)

    def _redo_failed(self, exc: Exception) -> None:
        self.window.show_error("Plugin failed", "The plugin edit could not be redone.", f"{type(exc).__name__}: {exc}")

    def _failed(self, edit: PluginEdit, title: str, exc: Exception) -> None:
        self._cancel = None
        window = self.window
        if isinstance(exc, PluginCancelled):
            window.statusBar().showMessage(f"{title} cancelled; the sound is unchanged", 6000)
            self.cancelled.emit(edit)
            return
        detail = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
        window.show_error("Plugin failed", f"{title} could not be applied; the sound is unchanged.", detail)
        self.failed.emit(detail)


def apply_plugin(window, edit: PluginEdit, plugin: Plugin | None = None) -> bool:
    """Start applying ``edit`` to the window's document in a worker thread.

    Returns whether it started. The edit reaches the undo stack when the plugin has
    succeeded (``window.plugin_runner.applied``); a plugin that fails shows its message and
    one that is cancelled a status message, and the document and history stay unchanged.
    """
    runner = getattr(window, "plugin_runner", None)
    if runner is None:
        runner = window.plugin_runner = PluginRunner(window)
    return runner.start(edit, plugin)


def open_plugin_dialog(window, plugin: Plugin) -> PluginDialog | None:
    """Open ``plugin``'s form (window-modal, not blocking); OK applies it."""
    if window.document is None:
        window.statusBar().showMessage("Open a sound first", 4000)
        return None
    selection = window.view.selection.shape() if window.view.selection else None
    dialog = PluginDialog(plugin, selection, window.document.duration, window)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)

    def accepted() -> None:
        apply_plugin(window, dialog.edit(), plugin)

    dialog.accepted.connect(accepted)
    window.plugin_dialog = dialog
    dialog.open()
    return dialog


def _fill(window, menu: QMenu, registry) -> None:
    menu.clear()
    window.plugin_actions = {}
    for plugin in registry:
        action = QAction(f"{plugin.title}…", window)
        action.setToolTip(plugin.description)
        action.setStatusTip(plugin.description)
        action.triggered.connect(lambda _=False, p=plugin: open_plugin_dialog(window, p))
        menu.addAction(action)
        window.plugin_actions[plugin.name] = action
    if not len(registry):
        menu.addAction("(no plugins found)").setEnabled(False)
    window.broken_plugin_actions = []
    if registry.problems:
        menu.addSeparator()
        for problem in registry.problems:
            action = QAction(f"{Path(problem.source).name} (could not be loaded)", window)
            action.setEnabled(False)
            action.setToolTip(problem.problem)
            action.setStatusTip(str(problem))
            menu.addAction(action)
            window.broken_plugin_actions.append(action)
    menu.addSeparator()
    rescan = QAction("Rescan Plugins", window)
    rescan.setToolTip("Look for plugins again (new or changed files)")
    rescan.triggered.connect(lambda: _fill(window, menu, default_registry(refresh=True)))
    menu.addAction(rescan)


def install_plugin_menu(window, registry=None) -> QMenu:
    """Add the Plugins menu to ``window`` (a MainWindow) before its Render menu.

    Parameters
    ----------
    window : MainWindow
        Needs ``menuBar()``, ``document``, ``view.selection``, ``undo_stack`` and
        ``show_error``.
    registry : Registry, optional
        Default: :func:`scalgui.plugins.default_registry`.

    Returns
    -------
    QMenu
        Also kept as ``window.plugin_menu``; the plugins' actions are in
        ``window.plugin_actions`` by id.
    """
    registry = registry if registry is not None else default_registry()
    menu = QMenu("Plu&gins", window)
    menu.setToolTipsVisible(True)  # descriptions, and why a broken plugin is disabled
    bar = window.menuBar()
    render = next((a for a in bar.actions() if a.text().replace("&", "") == "Render"), None)
    if render is not None:
        bar.insertMenu(render, menu)
    else:
        bar.addMenu(menu)
    _fill(window, menu, registry)
    window.plugin_menu = menu
    window.plugin_runner = PluginRunner(window)
    return menu
