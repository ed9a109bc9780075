"""The editor's main window: menus, tool bars, the scalogram view, history, render, export.

The window holds one :class:`~scalgui.app.document.Document` at a time. Edits from the
tools go through a QUndoStack (one command per edit, shown in the History panel);
opening a file and rendering run in worker threads, so the window never freezes.
"""
from __future__ import annotations

import math
from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QFontDatabase, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QUndoView,
)

from .commands import push_edit
from .freq_axis import note_name
from .scalogram_view import COLORMAPS, ScalogramView
from .toolbars import DisplayBar, ToolBar
from .tools import ToolSettings, make_tool
from .workers import Worker, start_worker

__all__ = ["AUDIO_FILTER", "EXPORT_FILTERS", "MainWindow"]

AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.mp3 *.aiff *.aif);;All files (*)"
EXPORT_FILTERS = {
    "WAV (*.wav)": ".wav",
    "FLAC (*.flac)": ".flac",
    "Ogg Vorbis (*.ogg)": ".ogg",
    "MP3 (*.mp3)": ".mp3",
    "AIFF (*.aiff)": ".aiff",
}
DB_RANGES = (60, 80, 90, 100, 120)
MAX_RECENT = 8


class DocumentBridge(QObject):
    """Re-emits a document's psygnal ``changed`` as a Qt signal.

    A render in a worker thread announces its result from that thread; Qt queues the
    signal to the GUI thread, where the window's slots run.
    """

    changed = pyqtSignal(str)

    def __init__(self, doc) -> None:
        super().__init__()
        self.doc = doc
        doc.events.changed.connect(self._forward)

    def _forward(self, kind: str) -> None:
        self.changed.emit(kind)

    def detach(self) -> None:
        self.doc.events.changed.disconnect(self._forward)


class MainWindow(QMainWindow):
    """The scalgui editor window.

    Parameters
    ----------
    settings : QSettings, optional
        Where recent files are kept (default: the user's scalgui settings).
    """

    documentChanged = pyqtSignal(object)
    renderFinished = pyqtSignal(object)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("scalgui", "scalgui")
        self.document = None
        self._bridge: DocumentBridge | None = None
        self._threads: set = set()
        self._open_job = None
        self._render_job = None
        self._render_cancel = None
        self._after_render = None
        self.last_render = None

        self.tool_settings = ToolSettings()
        self.view = ScalogramView(self)
        self.setCentralWidget(self.view)
        self.undo_stack = QUndoStack(self)
        self.tool_bar = ToolBar(self.tool_settings, self)
        self.display_bar = DisplayBar(self)
        self.addToolBar(self.tool_bar)
        self.addToolBarBreak()
        self.addToolBar(self.display_bar)
        self._build_history()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.setWindowTitle("scalgui")
        self.resize(1400, 900)
        self._update_actions()

    # ------------------------------------------------------------------ construction
    def _build_history(self) -> None:
        self.history = QUndoView(self.undo_stack)
        self.history.setEmptyLabel("Opened")
        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("history")
        self.history_dock.setWidget(self.history)
        self.history_dock.setMinimumWidth(190)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.readout = QLabel("")
        self.readout.setMinimumWidth(440)
        self.readout.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.render_label = QLabel("")
        self.render_progress = QProgressBar()
        self.render_progress.setRange(0, 100)
        self.render_progress.setFixedWidth(180)
        self.render_cancel_button = QPushButton("Cancel")
        self.render_cancel_button.clicked.connect(self.cancel_render)
        for widget in (self.render_label, self.render_progress, self.render_cancel_button):
            bar.addPermanentWidget(widget)
            widget.setVisible(False)
        bar.addPermanentWidget(self.readout)  # permanent: messages on the left never hide it

    def _action(self, text: str, slot, shortcut=None, checkable: bool = False, tip: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.export_action = self._action("&Export…", self.export_dialog, "Ctrl+E",
                                          tip="Write the render to an audio file")
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        file_menu.addAction(self.quit_action)

        edit_menu = menu.addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            self.addAction(action)
            edit_menu.addAction(action)

        view_menu = menu.addMenu("&View")
        self.zoom_in_action = self._action("Zoom &In", lambda: self.view.zoom_time(1 / 1.5), ["Ctrl+=", "Ctrl++"])
        self.zoom_out_action = self._action("Zoom &Out", lambda: self.view.zoom_time(1.5), "Ctrl+-")
        self.fit_action = self._action("&Fit Whole Sound", self.view.fit, "Ctrl+0")
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action):
            view_menu.addAction(action)
        view_menu.addSeparator()
        colour_menu = view_menu.addMenu("&Colour Map")
        group = QActionGroup(self)
        self.colormap_actions = {}
        for name in COLORMAPS:
            action = QAction(name, self, checkable=True)
            action.triggered.connect(lambda _=False, n=name: self.view.set_colormap(n))
            group.addAction(action)
            colour_menu.addAction(action)
            self.colormap_actions[name] = action
        self.colormap_actions[self.view.colormap].setChecked(True)
        range_menu = view_menu.addMenu("dB &Range")
        for db in DB_RANGES:
            action = QAction(f"{db} dB below the top", self)
            action.triggered.connect(lambda _=False, d=db: self._set_db_range(d))
            range_menu.addAction(action)
        view_menu.addSeparator()
        self.notes_action = self._action("&Note Names on Axis", self.view.set_note_axis, checkable=True)
        self.overlay_action = self._action("Edit &Overlay", self.display_bar.overlay.setChecked, checkable=True)
        self.overlay_action.setChecked(True)
        self.difference_action = self._action("Show &Difference", self._show_difference, "Ctrl+D", checkable=True,
                                              tip="Where the render could not reach the painted target")
        for action in (self.notes_action, self.overlay_action, self.difference_action):
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.history_dock.toggleViewAction())

        render_menu = menu.addMenu("&Render")
        self.render_action = self._action("&Render", lambda: self.start_render(), "Ctrl+R",
                                          tip="Resynthesise the edited spans by phase retrieval")
        self.cancel_render_action = self._action("&Cancel Render", self.cancel_render)
        render_menu.addAction(self.render_action)
        render_menu.addAction(self.cancel_render_action)

    def _connect(self) -> None:
        self.view.editRequested.connect(self.apply_edit)
        self.view.cursorMoved.connect(self._show_readout)
        self.view.cursorLeft.connect(self.readout.clear)
        self.view.levelsChanged.connect(self.display_bar.set_levels)
        self.tool_bar.toolChanged.connect(self.set_tool)
        self.display_bar.layerChanged.connect(self._layer_changed)
        self.display_bar.channelChanged.connect(self.view.set_channel)
        self.display_bar.levelsChanged.connect(self.view.set_levels)
        self.display_bar.overlayChanged.connect(self._overlay_changed)
        self.undo_stack.indexChanged.connect(self._history_moved)

    # ------------------------------------------------------------------ documents
    def open_dialog(self) -> None:
        start = str(self.document.path.parent) if self.document is not None and self.document.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open Sound", start, AUDIO_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> None:
        """Load and analyse ``path`` in a worker thread, then show it."""
        if self._open_job is not None:
            return
        if self.rendering:
            self.statusBar().showMessage("A render is running: cancel it or let it finish, then open", 6000)
            return
        if not self._may_discard():
            return
        path = Path(path)
        self.statusBar().showMessage(f"Opening {path.name}…")

        def job(_progress):
            from scalgui.app.document import Document

            return Document.open(path)

        worker = Worker(job)
        worker.finished.connect(lambda doc: self._opened(doc))
        worker.failed.connect(lambda exc: self._open_failed(path, exc))
        self._open_job = (worker, self._keep(start_worker(worker)))

    def _opened(self, doc) -> None:
        self._open_job = None
        self.set_document(doc)
        self.statusBar().showMessage(
            f"{Path(doc.path).name if doc.path else 'sound'}: {doc.duration:.2f} s, {doc.sample_rate:g} Hz, "
            f"{doc.channels} channel{'s' if doc.channels > 1 else ''}", 6000)

    def _open_failed(self, path: Path, exc: Exception) -> None:
        self._open_job = None
        self.statusBar().clearMessage()
        from scalgui.audio import AudioError

        text = str(exc) if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"
        self.show_error("Cannot open sound", f"Could not open {path.name}.", text)

    def set_document(self, doc) -> None:
        """Show ``doc`` in the window (replacing the current one, with a fresh history)."""
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None
        self.undo_stack.clear()
        self.document = doc
        self.last_render = None
        if doc is not None:
            self._bridge = DocumentBridge(doc)
            self._bridge.changed.connect(self._document_changed)
            if doc.path is not None:
                self._remember(doc.path)
            self.display_bar.set_channels(doc.channels)
        self.display_bar.set_layer("target")
        self.view.set_layer("target")
        self.view.set_channel(self.display_bar.channel.currentData())
        self.view.set_document(doc)
        self.undo_stack.setClean()
        self._update_actions()
        self._update_title()
        self.view.setFocus()
        self.documentChanged.emit(doc)

    def _history_moved(self, _index: int) -> None:
        self._update_actions()
        self._update_title()

    def _document_changed(self, kind: str) -> None:
        self.view.document_changed(kind)
        self._update_actions()
        self._update_title()

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path) -> None:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recentFiles", files[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, ev):
        if any(url.isLocalFile() for url in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        files = [url.toLocalFile() for url in ev.mimeData().urls() if url.isLocalFile()]
        if files:
            ev.acceptProposedAction()
            self.open_file(files[0])

    # ------------------------------------------------------------------ editing
    def set_tool(self, name: str) -> None:
        self.view.set_tool(make_tool(name, self.tool_settings))

    def apply_edit(self, edit) -> None:
        """Apply ``edit`` to the document as one undo step."""
        if self.document is None:
            return
        push_edit(self.undo_stack, self.document, edit)

    def _show_readout(self, t: float, hz: float, level_db: float) -> None:
        note, cents = note_name(hz)
        level = "" if math.isnan(level_db) else f"{level_db:6.1f} dB"
        if self.view.layer == "difference" and level:
            level = f"{level_db:+6.1f} dB (target - render)"
        self.readout.setText(f"{t:8.3f} s   {hz:8.1f} Hz   {note} {cents:+d}¢   {level}")

    # ------------------------------------------------------------------ display
    def _layer_changed(self, layer: str) -> None:
        self.view.set_layer(layer)
        self.difference_action.blockSignals(True)
        self.difference_action.setChecked(layer == "difference")
        self.difference_action.blockSignals(False)

    def _show_difference(self, on: bool) -> None:
        if on and self.document is not None and self.document.rendered is None:
            self.difference_action.setChecked(False)
            self.statusBar().showMessage("Render first: the difference compares the target with the render", 5000)
            return
        self.display_bar.set_layer("difference" if on else "target")

    def _overlay_changed(self, visible: bool, opacity: float) -> None:
        self.view.set_overlay(visible, opacity)
        self.overlay_action.blockSignals(True)
        self.overlay_action.setChecked(visible)
        self.overlay_action.blockSignals(False)

    def _set_db_range(self, db: float) -> None:
        _, top = self.view.levels
        self.view.set_levels(top - db, top)

    # ------------------------------------------------------------------ render
    @property
    def rendering(self) -> bool:
        return self._render_job is not None

    def start_render(self, then=None) -> bool:
        """Render the pending edits in a worker thread; ``then(result)`` runs after it."""
        doc = self.document
        if doc is None or self._render_job is not None:
            return False
        from scalgui.dsp.phase import CancelToken

        self._render_cancel = CancelToken()
        self._after_render = then
        cancel = self._render_cancel

        def job(progress):
            return doc.render(progress=progress, cancel=cancel)

        worker = Worker(job)
        worker.progress.connect(self._render_progress)
        worker.finished.connect(self._render_finished)
        worker.failed.connect(self._render_failed)
        self._render_job = (worker, self._keep(start_worker(worker)))
        self.render_progress.setValue(0)
        self.render_label.setText("Rendering…")
        for widget in (self.render_label, self.render_progress, self.render_cancel_button):
            widget.setVisible(True)
        self._update_actions()
        return True

    def cancel_render(self) -> None:
        """Ask the render to stop after its current iteration (it keeps its best result)."""
        if self._render_cancel is not None:
            self._render_cancel.cancel()
            self.render_label.setText("Cancelling…")

    def _render_progress(self, p) -> None:
        if self._render_job is None:
            return
        self.render_progress.setValue(int(100 * p.iteration / max(p.iterations, 1)))
        self.render_label.setText(
            f"Render {p.iteration}/{p.iterations}   convergence {p.spectral_convergence_db:.1f} dB   "
            f"{p.eta_s:.1f} s left")

    def _render_done(self) -> None:
        self._render_job = None
        self._render_cancel = None
        for widget in (self.render_label, self.render_progress, self.render_cancel_button):
            widget.setVisible(False)
        self._update_actions()
        self._update_title()

    def _render_finished(self, result) -> None:
        then, self._after_render = self._after_render, None
        self._render_done()
        self.last_render = result
        if result.iterations == 0 and not result.cancelled:
            self.statusBar().showMessage("Nothing to render: no edits since the last render", 5000)
        elif result.cancelled:
            self.statusBar().showMessage(
                f"Render cancelled after {result.iterations} iterations; kept the best so far "
                f"({result.spectral_convergence_db:.1f} dB)", 8000)
        else:
            self.statusBar().showMessage(
                f"Rendered in {result.seconds:.1f} s: spectral convergence {result.spectral_convergence_db:.1f} dB",
                8000)
        self.renderFinished.emit(result)
        if then is not None:
            then(result)

    def _render_failed(self, exc: Exception) -> None:
        self._after_render = None
        self._render_done()
        self.show_error("Render failed", "The render stopped with an error.", f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ export
    def export_dialog(self) -> None:
        doc = self.document
        if doc is None:
            return
        stem = Path(doc.path).stem if doc.path else "sound"
        folder = Path(doc.path).parent if doc.path else Path.home()
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export Render", str(folder / f"{stem}-edited.wav"), ";;".join(EXPORT_FILTERS))
        if not path:
            return
        path = Path(path)
        if not path.suffix and chosen in EXPORT_FILTERS:
            path = path.with_suffix(EXPORT_FILTERS[chosen])
        self.export_to(path)

    def export_to(self, path: str | Path) -> None:
        """Export to ``path``: render pending edits first (in the worker), then write."""
        doc = self.document
        if doc is None:
            return
        path = Path(path)
        if doc.unrendered_edits:
            if self.rendering:
                self.statusBar().showMessage("A render is running; export again when it has finished", 6000)
                return

            def then(result):
                if result.cancelled:
                    self.statusBar().showMessage("Export cancelled with the render", 6000)
                else:
                    self._write(path)

            self.start_render(then)
            return
        self._write(path)

    def _write(self, path: Path, clip: str = "error") -> None:
        from scalgui.audio import AudioError, ClippingError

        doc = self.document
        try:
            report = doc.export(path, clip=clip, render_first=False)
        except ClippingError as exc:
            if self.ask("Export would clip", f"{exc}\n\nNormalise the peak to -0.1 dBFS and export?"):
                self._write(path, clip="normalize")
            return
        except (AudioError, OSError, ValueError) as exc:
            self.show_error("Export failed", f"Could not write {path.name}.", str(exc))
            return
        bits = f", {report.bit_depth}-bit" if report.bit_depth else ""
        self.statusBar().showMessage(f"Exported {path.name} ({report.format}{bits}, peak {report.peak_dbfs:.1f} dBFS)",
                                     8000)
        self._update_title()

    # ------------------------------------------------------------------ dialogs (patched in tests)
    def show_error(self, title: str, text: str, detail: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(detail)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self._error_box = box

    def ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _may_discard(self) -> bool:
        doc = self.document
        if doc is None or not (doc.unsaved or doc.unrendered_edits):
            return True
        what = "edits that are not rendered" if doc.unrendered_edits else "a render that is not exported"
        return self.ask("Discard changes?", f"This sound has {what}. Discard them?")

    # ------------------------------------------------------------------ state
    def _keep(self, thread):
        """Hold a reference to a worker thread until it has finished."""
        self._threads.add(thread)
        thread.finished.connect(lambda t=thread: self._threads.discard(t))
        return thread

    def _update_actions(self) -> None:
        has_doc = self.document is not None
        self.export_action.setEnabled(has_doc)
        self.render_action.setEnabled(has_doc and not self.rendering)
        self.cancel_render_action.setEnabled(self.rendering)
        rendered = has_doc and self.document.rendered is not None
        self.display_bar.enable_render_layers(rendered)
        self.difference_action.setEnabled(rendered)

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle("scalgui")
            return
        name = Path(doc.path).name if doc.path else "untitled"
        self.setWindowTitle(f"{name}[*] — scalgui")
        self.setWindowModified(bool(doc.unsaved or doc.unrendered_edits))

    def closeEvent(self, ev):
        if not self._may_discard():
            ev.ignore()
            return
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop background work: cancel a render, wait for the threads, stop the view's."""
        if self._render_cancel is not None:
            self._render_cancel.cancel()
        for thread in list(self._threads):
            thread.quit()
            thread.wait()
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None
        self.view.shutdown()

