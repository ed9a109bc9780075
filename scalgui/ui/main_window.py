"""The editor's main window: menus, tool bars, the scalogram view, history, render, export,
selections, playback and the analysis settings.

The window holds one :class:`~scalgui.app.document.Document` at a time. Edits from the
tools go through a QUndoStack (one command per edit, shown in the History panel); a
pending selection is applied with the current mode as one edit, and every change of the
selection is a step of the same history. Opening a file,
re-analysing and rendering run in worker threads, so the window never freezes.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QFontDatabase, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QUndoView,
)

from .analysis_dialog import AnalysisSettingsDialog
from .bridge import DocumentBridge
from .commands import EditCommand, push_edit
from .convergence import ConvergencePlot
from .effects_panel import make_effects_dock
from .export_dialog import ExportOptionsDialog
from .freq_axis import note_name
from .plugin_menu import install_plugin_menu
from .project_actions import OPEN_FILTER, install_project_actions
from .render_status import convergence_text, progress_text, result_text
from .scalogram_view import COLORMAPS, ScalogramView
from .toolbars import DisplayBar, ToolBar
from .tools import ToolSettings, make_tool
from .transport import Player, TransportBar
from .workers import Worker, keep_thread, main_thread_calls, start_worker, stop_threads

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


@dataclass(frozen=True)
class _Draft:
    """A span of a running render that is final: ``samples`` from ``start_s`` seconds."""

    start_s: float
    samples: object


class MainWindow(QMainWindow):
    """The scalgui editor window.

    Parameters
    ----------
    settings : QSettings, optional
        Where recent files are kept (default: the user's scalgui settings).
    """

    documentChanged = pyqtSignal(object)
    renderFinished = pyqtSignal(object)
    previewFinished = pyqtSignal(object)  # (start_s, samples, seconds)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("scalgui", "scalgui")
        self.document = None
        self._bridge: DocumentBridge | None = None
        self._threads: set = set()
        main_thread_calls()  # workers may need the GUI thread (VST3 plugins are made there)
        self._open_job = None
        self._render_job = None
        self._render_cancel = None
        self._after_render = None
        self._render_prepared = None  # the document whose render plans are built
        self._draft = None  # the running render's spans done so far, over the last render
        self._analysis_job = None
        self.last_render = None
        self._preview_job = None
        self._preview_cancel = None
        self.last_preview = None
        self.export_options_dialog: ExportOptionsDialog | None = None
        self.settings_dialog: AnalysisSettingsDialog | None = None
        self.play_cursor = 0.0
        self._resume_s: float | None = None
        self._pausing = False
        self._last_play_position: float | None = None

        self.tool_settings = ToolSettings()
        self.view = ScalogramView(self)
        self.setCentralWidget(self.view)
        self.undo_stack = QUndoStack(self)
        # Selection changes are undo steps too, in one history with the edits.
        self.view.selection.set_undo_stack(self.undo_stack)
        self.tool_bar = ToolBar(self.tool_settings, self)
        self.display_bar = DisplayBar(self)
        self.transport = TransportBar(self)
        self.player = Player(self)
        self.addToolBar(self.tool_bar)
        self.addToolBarBreak()
        self.addToolBar(self.display_bar)
        self.addToolBar(self.transport)
        self._build_history()
        self._build_convergence()
        self.effects_dock = make_effects_dock(self)  # sets self.effects_panel
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.effects_dock)
        self.tabifyDockWidget(self.history_dock, self.effects_dock)
        self.history_dock.raise_()
        self._build_status_bar()
        self._build_menus()
        install_plugin_menu(self)  # Plugins menu, before Render (issue 5)
        self.projects = install_project_actions(self)  # Save/Open Project, autosave, recovery (issue 6)
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

    def _build_convergence(self) -> None:
        self.convergence = ConvergencePlot()
        self.convergence_dock = QDockWidget("Render Convergence", self)
        self.convergence_dock.setObjectName("convergence")
        self.convergence_dock.setWidget(self.convergence)
        self.convergence_dock.setMinimumWidth(200)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.convergence_dock)
        self.resizeDocks([self.history_dock, self.convergence_dock], [3, 1], Qt.Orientation.Vertical)

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
        self.analysis_label = QLabel("")
        self.analysis_progress = QProgressBar()
        self.analysis_progress.setRange(0, 0)  # busy: no percentage to show
        self.analysis_progress.setFixedWidth(120)
        self.analysis_cancel_button = QPushButton("Cancel")  # shown for jobs that can stop (plugins)
        self.analysis_cancel_button.clicked.connect(self.cancel_document_job)
        self._analysis_cancel = None
        for widget in (self.render_label, self.render_progress, self.render_cancel_button,
                       self.analysis_label, self.analysis_progress, self.analysis_cancel_button):
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
        self.export_action = self._action("&Export…", self.export_dialog, "Ctrl+Shift+E",
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
        edit_menu.addSeparator()
        self.apply_selection_action = self.tool_bar.apply_action
        self.apply_selection_action.triggered.connect(self.apply_selection)
        self.clear_selection_action = self._action("Clear &Selection", self.view.selection.clear,
                                                   tip="Drop the pending selection (Escape in the view)")
        for action in (self.apply_selection_action, self.clear_selection_action):
            edit_menu.addAction(action)
        edit_menu.addSeparator()
        self.preview_action = self._action("&Preview", self._preview_toggled, "P", checkable=True,
                                           tip="After each edit, play a quick preview of the edited span")
        self.preview_action.setToolTip("Play a quick preview after each edit (P)")
        edit_menu.addAction(self.preview_action)
        self.tool_bar.addSeparator()
        self.tool_bar.addAction(self.preview_action)

        view_menu = menu.addMenu("&View")
        self.zoom_in_action = self._action("Zoom &In", lambda: self.view.zoom_time(1 / 1.5), ["Ctrl+=", "Ctrl++"])
        self.zoom_out_action = self._action("Zoom &Out", lambda: self.view.zoom_time(1.5), "Ctrl+-")
        self.fit_action = self._action("&Fit Whole Sound", self.view.fit, "Ctrl+0")
        self.zoom_selection_action = self._action("Zoom to &Selection", self.zoom_to_selection, "Ctrl+E")
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.zoom_selection_action):
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
        self.analysis_action = self._action("&Analysis Settings…", self.analysis_settings_dialog,
                                            tip="Voices per octave, frequency range, oversampling")
        view_menu.addAction(self.analysis_action)
        view_menu.addSeparator()
        view_menu.addAction(self.history_dock.toggleViewAction())
        view_menu.addAction(self.convergence_dock.toggleViewAction())
        view_menu.addAction(self.effects_dock.toggleViewAction())

        play_menu = menu.addMenu("&Play")
        bar = self.transport
        bar.play_action.triggered.connect(self.toggle_play)
        bar.stop_action.triggered.connect(self.stop_playback)
        bar.loop_action.toggled.connect(self._playback_options_changed)
        bar.band_action.toggled.connect(self._band_only_toggled)
        bar.a_action.toggled.connect(self._playback_options_changed)
        self.ab_switch_action = self._action("Switch &A/B", self.switch_ab, "Ctrl+B",
                                             tip="Play the original or the render")
        for action in (bar.play_action, bar.stop_action, bar.loop_action, bar.band_action, bar.a_action,
                       bar.b_action, self.ab_switch_action):
            self.addAction(action)  # shortcuts work with the transport bar hidden too
            play_menu.addAction(action)

        render_menu = menu.addMenu("&Render")
        self.render_action = self._action("&Render", lambda: self.start_render(), "Ctrl+R",
                                          tip="Resynthesise the edited spans by phase retrieval")
        self.refine_render_action = self._action(
            "Re&fine Render", lambda: self.start_render(refine=True), "Ctrl+Shift+R",
            tip="Render every edited span again from the last render, with no time budget")
        self.cancel_render_action = self._action("&Cancel Render", self.cancel_render)
        render_menu.addAction(self.render_action)
        render_menu.addAction(self.refine_render_action)
        render_menu.addAction(self.cancel_render_action)

    def _connect(self) -> None:
        self.view.editRequested.connect(self.apply_edit)
        self.view.applyRequested.connect(self.apply_selection)
        self.view.cursorPlaced.connect(self.set_play_cursor)
        self.view.statusMessage.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.view.selection.changed.connect(self._selection_changed)
        self.player.positionChanged.connect(self._play_position)
        self.player.stateChanged.connect(self._play_state)
        self.player.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.view.cursorMoved.connect(self._show_readout)
        self.view.cursorLeft.connect(self.readout.clear)
        self.view.levelsChanged.connect(self.display_bar.set_levels)
        self.tool_bar.toolChanged.connect(self.set_tool)
        self.display_bar.layerChanged.connect(self._layer_changed)
        self.display_bar.channelChanged.connect(self.view.set_channel)
        self.display_bar.levelsChanged.connect(self.view.set_levels)
        self.display_bar.overlayChanged.connect(self._overlay_changed)
        self.undo_stack.indexChanged.connect(self._history_moved)
        # The stack re-enables Undo/Redo as it changes: keep them off while a job changes the document.
        # Bound methods, not lambdas: Qt drops them when the window goes, while a lambda
        # would still run as the stack is torn down and reach deleted objects.
        self.undo_stack.canUndoChanged.connect(self._guard_history)
        self.undo_stack.canRedoChanged.connect(self._guard_history)

    # ------------------------------------------------------------------ documents
    def open_dialog(self) -> None:
        start = str(self.document.path.parent) if self.document is not None and self.document.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open Sound", start, OPEN_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> None:
        """Load and analyse ``path`` in a worker thread, then show it."""
        if self._open_job is not None:
            return
        if self.rendering or self.analysing:
            self.statusBar().showMessage("The sound is busy (render or analysis): open when it has finished", 6000)
            return
        if not self._may_discard():
            return
        self.projects.open_path(path)  # a sound or a project, with its progress on the view

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
        from scalgui.dsp.memory import AnalysisMemoryError

        known = isinstance(exc, (AudioError, AnalysisMemoryError))  # one line that names the problem
        text = str(exc) if known else f"{type(exc).__name__}: {exc}"
        self.show_error("Cannot open sound", f"Could not open {path.name}.", text)

    def set_document(self, doc) -> None:
        """Show ``doc`` in the window (replacing the current one, with a fresh history)."""
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None
        self.undo_stack.clear()
        self.cancel_preview()
        self.player.stop()
        self.document = doc
        self.last_render = None
        self.play_cursor, self._resume_s = 0.0, None
        self.transport.a_action.setChecked(True)
        self.transport.band_action.setChecked(False)
        self.transport.set_time(0.0)
        self.convergence.reset()
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
        if doc is not None:
            self.view.set_cursor_line(0.0)
            self.player.set_audio(doc.samples, doc.sample_rate)
        else:
            self.player.set_audio(None)
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
        if kind == "edits" and self.rendering:
            self._edits_changed_while_rendering()
        if kind == "edits" and self.document is not None and self._render_prepared is not self.document:
            # The first edit: the render that follows it need not build its plans.
            self._render_prepared = self.document
            threading.Thread(target=self.document.prepare_render, name="scalgui-prepare-render", daemon=True).start()
        if kind == "render":
            self._update_player_audio()
        if kind == "effects":  # a source chain changes what A plays, a render chain what B plays
            self._update_player_audio()
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
        if self.preview_action.isChecked():
            self.start_preview()

    # ------------------------------------------------------------------ quick preview
    @property
    def previewing(self) -> bool:
        return self._preview_job is not None

    def _preview_toggled(self, on: bool) -> None:
        if not on:
            self.cancel_preview()
        self.statusBar().showMessage("Preview on: each edit is played at once" if on else "Preview off", 4000)

    def cancel_preview(self) -> None:
        """Drop a preview still being computed (its result is ignored)."""
        if self._preview_cancel is not None:
            self._preview_cancel.cancel()
        self._preview_cancel = None
        self._preview_job = None

    def start_preview(self) -> bool:
        """Re-invert the last edit's span quickly in a worker, then play it (the document is unchanged)."""
        doc = self.document
        if doc is None or not doc.edits:
            return False
        import time

        from scalgui.dsp.phase import CancelToken

        self.cancel_preview()
        cancel = CancelToken()
        self._preview_cancel = cancel
        started = time.perf_counter()

        def job(_progress):
            start_s, samples = doc.preview(cancel=cancel)
            return start_s, samples, time.perf_counter() - started

        worker = Worker(job)
        worker.finished.connect(lambda result, c=cancel, d=doc: self._preview_finished(result, c, d))
        worker.failed.connect(lambda exc, c=cancel: self._preview_failed(exc, c))
        self._preview_job = (worker, self._keep(start_worker(worker)))
        self.statusBar().showMessage("Preview…")
        return True

    def _preview_finished(self, result, cancel, doc) -> None:
        if cancel is not self._preview_cancel or cancel.cancelled or doc is not self.document:
            return  # superseded by a newer edit, cancelled, or another document
        self._preview_job = None
        self._preview_cancel = None
        start_s, samples, seconds = result
        self.last_preview = result
        self.play_preview(start_s, samples)
        self.statusBar().showMessage(f"preview ready in {seconds:.1f} s", 8000)
        self.previewFinished.emit(result)

    def _preview_failed(self, exc: Exception, cancel) -> None:
        if cancel is not self._preview_cancel:
            return
        self._preview_job = None
        self._preview_cancel = None
        self.statusBar().showMessage(f"Preview failed: {type(exc).__name__}: {exc}", 8000)

    def play_preview(self, start_s: float, samples) -> None:
        """Play ``samples`` [channels, frames] as the stretch of the sound from ``start_s``; the
        playhead moves over that span and playing stops at its end."""
        import numpy as np

        doc = self.document
        if doc is None:
            return
        samples = np.asarray(samples, dtype=np.float32)
        lo = round(start_s * doc.sample_rate)
        # Silence before the span (zeros cost no memory until touched): positions stay
        # seconds in the sound, and the player stops where the span ends.
        buffer = np.zeros((samples.shape[0], lo + samples.shape[1]), dtype=np.float32)
        buffer[:, lo:] = samples
        self.player.stop()
        self._resume_s = None
        self.player.set_audio(buffer, doc.sample_rate)
        self._last_play_position = None
        self.player.play(lo / doc.sample_rate)

    # ------------------------------------------------------------------ selection
    def apply_selection(self) -> bool:
        """Apply the current mode to the pending selection as one edit (one undo step).

        The selection stays, so it can be applied again, looped or listened to.
        """
        shape = self.view.selection.shape()
        if self.document is None or shape is None or not self.view.editable:
            return False
        from scalgui.dsp.edits import Edit

        action, amount = self.tool_settings.action()
        self.apply_edit(Edit(shape, action, amount))
        return True

    def zoom_to_selection(self) -> None:
        if not self.view.zoom_to_selection():
            self.statusBar().showMessage("No selection to zoom to", 4000)

    def _selection_changed(self) -> None:
        self._update_selection_actions()
        if self.player.playing and (self.transport.loop_action.isChecked() or self.transport.band_action.isChecked()):
            self._playback_options_changed()  # loop or band follow the new selection

    def _update_selection_actions(self) -> None:
        has = bool(self.view.selection)
        self.apply_selection_action.setEnabled(has and self.document is not None and self.view.editable)
        self.clear_selection_action.setEnabled(has)
        self.zoom_selection_action.setEnabled(has)

    def keyPressEvent(self, ev):
        # Enter and Escape that no widget took (focus on a tool bar button, a combo box):
        # the view's keys. A spin box keeps its Enter.
        focus = self.focusWidget()
        typing = focus is not None and (isinstance(focus, QAbstractSpinBox)
                                        or isinstance(focus.parentWidget(), QAbstractSpinBox))
        key = ev.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not typing and self.view.selection:
            self.apply_selection()
            ev.accept()
        elif key == Qt.Key.Key_Escape and self.view.selection:
            self.view.selection.clear()
            ev.accept()
        else:
            super().keyPressEvent(ev)

    # ------------------------------------------------------------------ playback
    def set_play_cursor(self, t: float) -> None:
        """Put the play cursor (where Play starts) at ``t`` seconds."""
        if self.document is None:
            return
        self.play_cursor = min(max(float(t), 0.0), self.document.duration)
        self._resume_s = None
        self.view.set_cursor_line(self.play_cursor)
        if self.player.playing:
            self._play_from(self.play_cursor)
        else:
            self.transport.set_time(self.play_cursor)

    def toggle_play(self) -> None:
        """Play from the cursor (or where it was paused); pause when playing."""
        if self.document is None:
            return
        if self.player.playing:
            self._pausing = True
            self._resume_s = self.player.stop()
            self._pausing = False
            return
        start = self._resume_s if self._resume_s is not None else self.play_cursor
        self._resume_s = None
        self._play_from(start)

    def stop_playback(self) -> None:
        """Stop and go back to the cursor."""
        self.player.stop()
        self._resume_s = None
        self.view.set_playhead(None)
        self.transport.set_time(self.play_cursor)

    def switch_ab(self) -> None:
        """Switch between the original (A) and the render (B)."""
        bar = self.transport
        if bar.a_action.isChecked() and bar.b_action.isEnabled():
            bar.b_action.setChecked(True)
        else:
            bar.a_action.setChecked(True)

    def loop_range(self) -> tuple[float, float] | None:
        """The time range playing loops over: the selection's, or the whole sound; None: no loop."""
        if not self.transport.loop_action.isChecked() or self.document is None:
            return None
        bounds = self.view.selection_bounds()
        if bounds is not None:
            return bounds[0], bounds[1]
        return 0.0, self.document.duration

    def playback_audio(self):
        """The samples playing uses: source (A) or render (B), band-limited when asked and possible."""
        doc = self.document
        if doc is None:
            return None
        draft = self._draft
        use_render = self.transport.b_action.isChecked() and (doc.rendered is not None or draft is not None)
        samples = doc.rendered if use_render else doc.samples
        if use_render and draft is not None:
            samples = draft  # a render under way: its spans done so far
        elif use_render and hasattr(doc, "output"):  # the render passes through the render effect chain
            try:
                samples = doc.output()
            except Exception as exc:  # noqa: BLE001 - a failing effect must not stop playback
                self.statusBar().showMessage(f"Render effects skipped: {exc}", 8000)
        bounds = self.view.selection_bounds()
        band_audio = getattr(doc, "band_audio", None)
        if self.transport.band_action.isChecked() and bounds is not None and band_audio is not None:
            samples = band_audio(bounds[2], bounds[3], layer="render" if use_render else "source")
        return samples

    def _play_from(self, start: float) -> None:
        doc = self.document
        if doc is None:
            return
        self.player.set_audio(self.playback_audio(), doc.sample_rate)
        self._last_play_position = None
        self.player.play(start, self.loop_range())

    def _update_player_audio(self) -> None:
        doc = self.document
        if doc is not None:
            self.player.set_audio(self.playback_audio(), doc.sample_rate)

    def _playback_options_changed(self, *_):
        if self.player.playing:
            self._play_from(self.player.position)  # a new loop or source, from where it is
        else:
            self._update_player_audio()

    def _band_only_toggled(self, on: bool) -> None:
        if on and self.document is not None and getattr(self.document, "band_audio", None) is None:
            self.transport.band_action.setChecked(False)
            self.statusBar().showMessage(
                "Band-only playback is not available yet: the document cannot band-limit audio", 6000)
            return
        if on and self.view.selection_bounds() is None:
            self.statusBar().showMessage("Band only plays the selection's band: select a band first", 6000)
        self._playback_options_changed()

    def _play_position(self, t: float) -> None:
        self.view.set_playhead(t)
        self.transport.set_time(t)
        # Follow the playhead: when it runs off the visible range, page the view.
        x0, x1 = self.view.visible_range()
        last, self._last_play_position = self._last_play_position, t
        if last is not None and x0 <= last <= x1 and not x0 <= t <= x1:
            width = x1 - x0
            self.view.show_time_range(t - 0.02 * width, t + 0.98 * width)

    def _play_state(self, state: str) -> None:
        playing = state == "playing"
        self.transport.set_playing(playing)
        if not playing and not self._pausing:  # stopped, or played to the end
            self.view.set_playhead(None)
            self.transport.set_time(self.play_cursor)

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

    # ------------------------------------------------------------------ analysis settings
    @property
    def analysing(self) -> bool:
        return self._analysis_job is not None

    def analysis_settings_dialog(self) -> None:
        """Open the Analysis Settings dialog (non-blocking); OK re-analyses in a worker."""
        doc = self.document
        if doc is None:
            return
        if self.rendering or self.analysing:
            self.statusBar().showMessage("The sound is busy (render or analysis): change the analysis after it", 6000)
            return
        dialog = AnalysisSettingsDialog(doc.settings, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda d=dialog, doc=doc: self.reanalyse(d.result_settings, doc))
        self.settings_dialog = dialog
        dialog.open()

    def reanalyse(self, settings, doc=None) -> bool:
        """Re-analyse the document with ``settings`` (a FrameSettings) in a worker thread.

        Edits are kept (they are in seconds and Hz); the picture is redrawn when it is done.
        """
        doc = doc or self.document
        if doc is None or doc is not self.document or settings is None or self.rendering or self.analysing:
            return False
        if settings == doc.settings:
            self.statusBar().showMessage("Analysis settings unchanged", 4000)
            return False
        self._analysis_job = "waiting"
        self.view.set_suspended(True)
        self.analysis_label.setText(
            f"Analysing: {settings.voices_per_octave} voices/octave, from {settings.fmin:g} Hz…")
        for widget in (self.analysis_label, self.analysis_progress):
            widget.setVisible(True)
        self._update_actions()
        self._when_pictures_idle(lambda: self._start_analysis(doc, settings))
        return True

    def _when_pictures_idle(self, fn) -> None:
        # The raster thread reads the analysis: let its picture finish before it changes.
        if self.view.raster_busy:
            QTimer.singleShot(10, lambda: self._when_pictures_idle(fn))
        else:
            fn()

    def _start_analysis(self, doc, settings) -> None:
        if doc is not self.document:
            self._analysis_done()
            return

        def job(_progress):
            doc.set_settings(settings)
            return settings

        worker = Worker(job)
        worker.finished.connect(self._analysed)
        worker.failed.connect(self._analysis_failed)
        self._analysis_job = (worker, self._keep(start_worker(worker)))

    def _analysis_done(self) -> None:
        self._analysis_job = None
        self._analysis_cancel = None
        self.analysis_progress.setRange(0, 0)
        for widget in (self.analysis_label, self.analysis_progress, self.analysis_cancel_button):
            widget.setVisible(False)
        self.view.set_suspended(False)
        self._update_actions()

    def _analysed(self, settings) -> None:
        self._analysis_done()
        bands = len(self.document.frame.bands.wavelet_indices) if self.document is not None else 0
        self.statusBar().showMessage(
            f"Re-analysed: {settings.voices_per_octave} voices per octave, {bands} bands; edits kept", 6000)

    def _analysis_failed(self, exc: Exception) -> None:
        self._analysis_done()
        self.show_error("Analysis failed", "The sound could not be analysed with these settings.",
                        f"{type(exc).__name__}: {exc}")

    def start_document_job(self, text: str, job, finished, failed, *, cancel=None) -> bool:
        """Change the document in a worker the way re-analysis does: ``job(progress)`` runs
        in a thread while pictures and edits pause, Undo/Redo wait and renders are refused
        (:attr:`analysing` is true); then ``finished(result)`` or ``failed(exc)`` runs here.

        Used for source effect chains (apply, undo, redo) and plugins. ``job`` may call
        ``progress((fraction or None, text))``; with ``cancel`` (a callable) the status bar
        offers Cancel. Returns False, starting nothing, when the window is busy.
        """
        doc = self.document
        if doc is None or self.rendering or self.analysing:
            return False
        self._analysis_job = "waiting"
        self._analysis_cancel = cancel
        self.view.set_suspended(True)
        self.analysis_label.setText(text)
        self.analysis_progress.setRange(0, 0)
        for widget in (self.analysis_label, self.analysis_progress):
            widget.setVisible(True)
        self.analysis_cancel_button.setVisible(cancel is not None)
        self.analysis_cancel_button.setEnabled(True)
        self._update_actions()
        self._when_pictures_idle(lambda: self._start_document_job(doc, job, finished, failed))
        return True

    def _start_document_job(self, doc, job, finished, failed) -> None:
        if doc is not self.document:
            self._analysis_done()
            return

        def done(result):
            self._analysis_done()
            finished(result)

        def error(exc):
            self._analysis_done()
            failed(exc)

        worker = Worker(job)
        worker.progress.connect(self._document_job_progress)
        worker.finished.connect(done)
        worker.failed.connect(error)
        self._analysis_job = (worker, self._keep(start_worker(worker)))

    def _document_job_progress(self, report) -> None:
        if self._analysis_job is None or not isinstance(report, tuple):
            return
        fraction, text = report
        if fraction is None:
            self.analysis_progress.setRange(0, 0)
        else:
            self.analysis_progress.setRange(0, 100)
            self.analysis_progress.setValue(int(round(100 * fraction)))
        if text and self._analysis_cancel is not None and self.analysis_cancel_button.isEnabled():
            self.analysis_label.setText(text)

    def cancel_document_job(self) -> None:
        """Ask a cancellable document job (a plugin) to stop; its result is dropped."""
        if self._analysis_cancel is not None and self.analysis_cancel_button.isEnabled():
            self._analysis_cancel()
            self.analysis_cancel_button.setEnabled(False)
            self.analysis_label.setText("Cancelling…")

    def _guard_history(self, _changed: bool = False) -> None:
        busy = self.analysing
        self.undo_action.setEnabled(not busy and self.undo_stack.canUndo())
        self.redo_action.setEnabled(not busy and self.undo_stack.canRedo())
        self.history.setEnabled(not busy)

    # ------------------------------------------------------------------ render
    @property
    def rendering(self) -> bool:
        return self._render_job is not None

    def start_render(self, then=None, *, refine: bool = False) -> bool:
        """Render the pending edits in a worker thread (``refine``: every edited span, with
        no time budget: see ``Document.render``); ``then(result)`` runs once after it, with
        a cancelled result when the render is cancelled."""
        doc = self.document
        if doc is None or self._render_job is not None or self.analysing:
            return False
        from scalgui.dsp.phase import CancelToken

        cancel = CancelToken()
        self._render_cancel = cancel
        self._after_render = then
        self._draft = None
        # What the user hears or looks at renders first, and is heard as soon as it is done.
        if self.player.playing:
            focus_s = self.player.position
        else:
            focus_s = sum(self.view.visible_range()) / 2

        def job(progress):
            def draft(start_s, samples):
                progress(_Draft(start_s, samples))

            # A draft would play without the render chain's effects: none while there are some.
            with_draft = draft if not doc.effect_chain("render").active else None
            return doc.render(progress=progress, cancel=cancel, focus_s=focus_s, draft=with_draft, refine=refine)

        worker = Worker(job)
        worker.progress.connect(lambda p, c=cancel: self._render_progress(p, c))
        worker.finished.connect(lambda result, c=cancel, d=doc: self._render_finished(result, c, d))
        worker.failed.connect(lambda exc, c=cancel: self._render_failed(exc, c))
        self._render_job = (worker, self._keep(start_worker(worker)))
        self.render_progress.setValue(0)
        self.render_label.setText(progress_text(None))
        self.convergence.reset("rendering…")
        self.convergence_dock.setVisible(True)
        for widget in (self.render_label, self.render_progress, self.render_cancel_button):
            widget.setVisible(True)
        self._update_actions()
        return True

    def _let_go_of_render(self) -> None:
        """Stop waiting for the running render: its token is set (the worker stops at its
        next check, and a cancelled render changes nothing in the document) and its
        reports and result are dropped from now on."""
        self._render_cancel.cancel()
        self._after_render = None
        self._render_done()

    def cancel_render(self) -> None:
        """Cancel the render at once: the previous render and the edits stay as they were."""
        if self._render_job is None:
            return
        then = self._after_render
        self._let_go_of_render()
        cancelled = self._cancelled_result()
        self.convergence.reset("render cancelled")
        self.statusBar().showMessage(result_text(cancelled), 6000)
        if then is not None:
            then(cancelled)

    @staticmethod
    def _cancelled_result():
        from scalgui.dsp.phase import RetrievalResult

        return RetrievalResult(None, math.nan, 0, 0.0, True, stopped="cancelled")

    def _edits_changed_while_rendering(self) -> None:
        """A new edit (or an undo) during a render: render again with the new edit list
        at once, instead of finishing a render of the old one (an export waiting for the
        render waits for the new one)."""
        then = self._after_render
        self._let_go_of_render()
        self.start_render(then)
        self.statusBar().showMessage("The edits changed during the render: rendering them", 4000)

    def _render_progress(self, p, cancel) -> None:
        if cancel is not self._render_cancel:
            return  # a render the window let go of
        if isinstance(p, _Draft):
            self._render_draft(p)
            return
        if math.isfinite(p.fraction):
            self.render_progress.setValue(int(round(100 * p.fraction)))
        if p.stage == "iterating":
            self.convergence.add(p)
        self.render_label.setText(progress_text(p))

    def _render_draft(self, draft) -> None:
        """A span of the running render is final: B plays it from now on (with the rest as
        it was), before the whole render ends."""
        doc = self.document
        # A new array each time: the player may be reading the last one on its own thread.
        self._draft = (self._draft if self._draft is not None else
                       doc.rendered if doc.rendered is not None else doc.samples).copy()
        lo = int(round(draft.start_s * doc.sample_rate))
        self._draft[:, lo : lo + draft.samples.shape[1]] = draft.samples
        self.transport.b_action.setEnabled(True)
        if self.transport.b_action.isChecked():
            self._update_player_audio()

    def _render_done(self) -> None:
        self._render_job = None
        self._render_cancel = None
        drafted, self._draft = self._draft is not None, None
        if drafted:
            self._update_player_audio()  # back to the render as it is (the new one, or the last)
        for widget in (self.render_label, self.render_progress, self.render_cancel_button):
            widget.setVisible(False)
        self._update_actions()
        self._update_title()

    def _render_finished(self, result, cancel, doc) -> None:
        then = None
        if cancel is self._render_cancel:
            then, self._after_render = self._after_render, None
            self._render_done()
        elif result.cancelled or doc is not self.document or self.rendering:
            # A render let go of: dropped (unless it had finished before the cancel could
            # stop it: then the document has it, and the window says so below).
            return
        self.last_render = result
        self.convergence.finish(result)
        self.statusBar().showMessage(result_text(result), 8000)
        if not result.cancelled and math.isfinite(result.spectral_convergence_db):
            self._note_render_in_history(result)
        self.renderFinished.emit(result)
        if then is not None:
            then(result)

    def _note_render_in_history(self, result) -> None:
        """Write the render's convergence beside the History step it rendered."""
        note = f"rendered {convergence_text(result.spectral_convergence_db)}"
        for index in range(self.undo_stack.index() - 1, -1, -1):
            command = self.undo_stack.command(index)
            if isinstance(command, EditCommand):
                command.note(note)
                self.history.viewport().update()
                return
        self.history.setEmptyLabel(f"Opened — {note}")

    def _render_failed(self, exc: Exception, cancel) -> None:
        if cancel is not self._render_cancel:
            return
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
        dialog = ExportOptionsDialog(path, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda d=dialog, p=path: self.export_to(p, **d.options()))
        self.export_options_dialog = dialog
        dialog.open()

    def export_to(self, path: str | Path, *, bit_depth: int | None = None, quality: str | None = None) -> None:
        """Export to ``path`` (with ``bit_depth`` / ``quality``, None: the format's default).

        With edits the last render does not include, asks first, without blocking: render
        them and then write, write the last render, or cancel (see
        :class:`~scalgui.ui.export_flow.PendingEditsExport`, kept as ``pending_export``).
        """
        doc = self.document
        if doc is None:
            return
        path = Path(path)
        options = {"bit_depth": bit_depth, "quality": quality}
        if doc.unrendered_edits:
            from .export_flow import PendingEditsExport

            self.pending_export = PendingEditsExport(self, path, options)
            return
        self._write(path, **options)

    def _write(self, path: Path, clip: str = "error", *, bit_depth: int | None = None,
               quality: str | None = None) -> bool:
        """Write the last render (not rendering anything) to ``path``; whether it was written."""
        from scalgui.audio import AudioError, ClippingError

        doc = self.document
        try:
            report = doc.export(path, clip=clip, render_first=False, bit_depth=bit_depth, quality=quality)
        except ClippingError as exc:
            if self.ask("Export would clip", f"{exc}\n\nNormalise the peak to -0.1 dBFS and export?"):
                return self._write(path, clip="normalize", bit_depth=bit_depth, quality=quality)
            return False
        except (AudioError, OSError, ValueError) as exc:
            self.show_error("Export failed", f"Could not write {path.name}.", str(exc))
            return False
        bits = f", {report.bit_depth}-bit" if report.bit_depth else ""
        self.statusBar().showMessage(f"Exported {path.name} ({report.format}{bits}, peak {report.peak_dbfs:.1f} dBFS)",
                                     8000)
        self._update_title()
        return True

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
        if doc is None or self.projects.is_saved() or not (doc.unsaved or doc.unrendered_edits):
            return True
        what = "edits that are not rendered" if doc.unrendered_edits else "a render that is not exported"
        return self.ask("Discard changes?", f"This sound has {what}. Discard them?")

    # ------------------------------------------------------------------ state
    def _keep(self, thread):
        """Hold a reference to a worker thread until it has finished."""
        return keep_thread(self._threads, thread)

    def _update_actions(self) -> None:
        has_doc = self.document is not None
        self.export_action.setEnabled(has_doc and not self.analysing)
        self.render_action.setEnabled(has_doc and not self.rendering and not self.analysing)
        self.refine_render_action.setEnabled(has_doc and not self.rendering and not self.analysing
                                             and bool(self.document.edits) and self.document.rendered is not None)
        self.cancel_render_action.setEnabled(self.rendering)
        self.analysis_action.setEnabled(has_doc and not self.rendering and not self.analysing)
        rendered = has_doc and self.document.rendered is not None
        self.display_bar.enable_render_layers(rendered)
        self.difference_action.setEnabled(rendered)
        self.transport.b_action.setEnabled(rendered)
        if not rendered and self.transport.b_action.isChecked():
            self.transport.a_action.setChecked(True)
        for action in (self.transport.play_action, self.transport.stop_action):
            action.setEnabled(has_doc)
        self._guard_history()
        for action in getattr(self, "plugin_actions", {}).values():
            action.setEnabled(not self.analysing)
        self._update_selection_actions()

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle("scalgui")
            return
        name = Path(doc.path).name if doc.path else "untitled"
        note = getattr(self, "title_note", "")  # e.g. "editing in place: x.wav" (ui/edit_in_place.py)
        self.setWindowTitle(f"{name}[*] — {note + ' — ' if note else ''}scalgui")
        self.setWindowModified(bool(doc.unsaved or doc.unrendered_edits) and not self.projects.is_saved())

    def closeEvent(self, ev):
        if not self._may_discard():
            ev.ignore()
            return
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop background work: cancel a render, wait for the threads, stop the view's."""
        self.player.stop()
        if self._render_cancel is not None:
            self._render_cancel.cancel()
        if self._analysis_cancel is not None:  # a plugin stops at its next check
            self._analysis_cancel()
        self.cancel_preview()
        self.effects_panel.shutdown()
        self.projects.shutdown()  # a clean exit removes its recovery files
        stop_threads(self._threads)
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge = None
        self.view.shutdown()

