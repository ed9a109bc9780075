"""Projects in the editor: File menu entries, the autosave timer, the recovery prompt.

The work itself is Qt-free (:mod:`scalgui.app.project`, :mod:`scalgui.app.recovery`);
this module only wires it to the window:

- File > Save Project (Ctrl+S; asks for a name the first time), Save Project As…
  (Ctrl+Shift+S), Open Project… (Ctrl+Shift+O; File > Open, Open Recent and drag and drop
  also open ``.scalproj`` files), and two switches for what a save embeds.
- Opening a project whose sound moved asks for the file; a file with another checksum
  is used only when the user says so.
- Autosave: every few minutes (File > Project Options > Autosave; QSettings
  ``autosaveMinutes``, default 3, 0 for off) and after every
  render, when the document changed since the last autosave, in a worker thread, into the
  per-user recovery folder. A clean exit removes this session's recovery files.
- At start-up, with or without a file, :meth:`ProjectActions.offer_recovery` offers work
  left by an editor that crashed: Recover or Discard (or decide next time); the prompt
  says when the work is on the very file being opened, and work edited in place
  (``--edit-in-place``) goes back to writing to its file.
- Opening, of a project or of a sound (:meth:`ProjectActions.open_path`), says on the view
  what it is doing (reading, checking, analysing, restoring the edits) with a progress bar
  until the picture is drawn.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QFileDialog, QMenu, QMessageBox

from scalgui.audio.vst3 import allow_vst3

from .plugin_trust import ask_trust_vst3
from .workers import Worker, start_worker

__all__ = ["OPEN_FILTER", "PROJECT_FILTER", "ProjectActions", "install_project_actions"]

PROJECT_FILTER = "scalgui projects (*.scalproj)"
OPEN_FILTER = ("Sounds and projects (*.wav *.flac *.ogg *.mp3 *.aiff *.aif *.scalproj);;"
               f"{PROJECT_FILTER};;Audio files (*.wav *.flac *.ogg *.mp3 *.aiff *.aif);;All files (*)")


#: The intervals File > Project Options > Autosave offers, in minutes (0: off).
AUTOSAVE_CHOICES_MIN = (1.0, 3.0, 5.0, 10.0, 0.0)


def _is_project(path: Path) -> bool:
    return path.suffix.lower() == ".scalproj"


def _opening_job(path: str | Path, **options) -> Callable:
    """The work of opening ``path``, a sound or a project (by its extension), for a thread:
    ``job(progress)`` returns the Document and calls ``progress((stage, fraction))`` as it
    goes (``fraction`` 0 to 1, or None where the stage has no share to tell). ``options``
    go to :func:`~scalgui.app.project.open_project` (projects only)."""
    path = Path(path)
    if _is_project(path):
        def open_a_project(progress):
            from scalgui.app.project import open_project

            return open_project(path, progress=lambda stage, fraction: progress((stage, fraction)), **options)

        return open_a_project

    def open_a_sound(progress):
        from scalgui.app.document import Document

        reading, analysing = f"Reading {path.name}", f"Analysing {path.name}"

        def frames(done: int, total: int) -> None:
            # The last report (done == total) ends decoding: the analysis follows at once.
            if total and done >= total:
                progress((analysing, None))
            else:
                progress((reading, done / total if total else None))

        progress((reading, 0.0))
        return Document.open(path, progress=frames)

    return open_a_sound


class ProjectActions(QObject):
    """The project actions of one :class:`~scalgui.ui.main_window.MainWindow`.

    Autosave is off until :meth:`start_autosave` (the editor's ``main`` starts it), so
    windows made by tests and scripts leave the user's recovery folder alone.
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.autosaver = None
        #: The file the editor is being started with, while recovery is offered.
        self.opening: Path | None = None
        self._autosave_job = None
        self._autosaved: tuple | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.autosave)
        w = window
        self.save_action = w._action("&Save Project", self.save, "Ctrl+S",
                                     tip="Save the edits, effects and settings as a .scalproj project")
        self.save_as_action = w._action("Save Project &As…", self.save_as, "Ctrl+Shift+S")
        self.open_action = w._action("Open &Project…", self.open_dialog, "Ctrl+Shift+O")
        self.embed_source_action = w._action("Embed Sound in Projects", self._remember_switches, checkable=True,
                                             tip="Store a copy of the sound in the project file")
        self.embed_render_action = w._action("Embed Last Render in Projects", self._remember_switches,
                                             checkable=True, tip="Store the last render in the project file")
        self.embed_source_action.setChecked(self._setting("projects/embedSource", False))
        self.embed_render_action.setChecked(self._setting("projects/embedRender", False))
        # The File menu is the one holding Export; the project entries go above Export.
        menu = next(a.menu() for a in w.menuBar().actions() if a.menu() and w.export_action in a.menu().actions())
        before = w.export_action
        for action in (self.open_action, self.save_action, self.save_as_action):
            menu.insertAction(before, action)
        self.options_menu = QMenu("Project &Options", menu)
        self.options_menu.addAction(self.embed_source_action)
        self.options_menu.addAction(self.embed_render_action)
        self.autosave_menu = self.options_menu.addMenu("&Autosave")
        self.autosave_actions = QActionGroup(self)
        for minutes in AUTOSAVE_CHOICES_MIN:
            text = "Off" if minutes == 0 else f"Every {minutes:g} Minute{'s' if minutes != 1 else ''}"
            action = QAction(text, self, checkable=True)
            action.setData(minutes)
            action.triggered.connect(lambda _on, m=minutes: self.set_interval_minutes(m))
            self.autosave_actions.addAction(action)
            self.autosave_menu.addAction(action)
        self._check_interval()
        menu.insertMenu(before, self.options_menu)
        menu.insertSeparator(before)
        w.renderFinished.connect(lambda _result: self.autosave())
        self.update_actions()
        w.documentChanged.connect(lambda _doc: self.update_actions())

    # ------------------------------------------------------------------ settings
    def _setting(self, key: str, default: bool) -> bool:
        value = self.window.settings.value(key, default)
        return value in (True, "true", "1", 1)

    def _remember_switches(self, _on: bool = False) -> None:
        self.window.settings.setValue("projects/embedSource", self.embed_source_action.isChecked())
        self.window.settings.setValue("projects/embedRender", self.embed_render_action.isChecked())

    def interval_minutes(self) -> float:
        """Minutes between autosaves (QSettings ``autosaveMinutes``, default 3); 0: off."""
        from scalgui.app.recovery import DEFAULT_INTERVAL_MIN

        try:
            minutes = float(self.window.settings.value("autosaveMinutes", DEFAULT_INTERVAL_MIN))
        except (TypeError, ValueError):
            return DEFAULT_INTERVAL_MIN
        return 0.0 if minutes <= 0 else max(minutes, 0.05)

    def set_interval_minutes(self, minutes: float) -> None:
        """Autosave every ``minutes`` from now on (0: not at all), remembered in the settings."""
        self.window.settings.setValue("autosaveMinutes", float(minutes))
        self._check_interval()
        if self.autosaver is not None:
            self._start_timer()

    def _check_interval(self) -> None:
        minutes = self.interval_minutes()
        for action in self.autosave_actions.actions():
            action.setChecked(action.data() == minutes)

    def _start_timer(self) -> None:
        minutes = self.interval_minutes()
        if minutes > 0:
            self.timer.start(int(minutes * 60_000))
        else:
            self.timer.stop()

    def update_actions(self) -> None:
        has_doc = self.window.document is not None
        self.save_action.setEnabled(has_doc)
        self.save_as_action.setEnabled(has_doc)

    def is_saved(self) -> bool:
        """Whether the open document is unchanged since its project was saved or opened."""
        from scalgui.app.project import is_saved

        return self.window.document is not None and is_saved(self.window.document)

    # ------------------------------------------------------------------ saving
    def save(self) -> bool:
        """Save to the document's project, or ask for a name when it has none."""
        doc = self.window.document
        if doc is None:
            return False
        if doc.project_path is None:
            return self.save_as()
        return self.save_to(doc.project_path)

    def save_as(self) -> bool:
        doc = self.window.document
        if doc is None:
            return False
        if doc.project_path is not None:
            start = str(doc.project_path)
        elif doc.path is not None:
            start = str(Path(doc.path).with_suffix(".scalproj"))
        else:
            start = str(Path.home() / "untitled.scalproj")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save Project", start, PROJECT_FILTER)
        if not path:
            return False
        path = Path(path)
        if path.suffix.lower() != ".scalproj":
            path = path.with_name(path.name + ".scalproj")
        return self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        """Save the open document as the project ``path`` (with the embedding switches)."""
        from scalgui.app.project import ProjectError

        doc, path = self.window.document, Path(path)
        try:
            doc.save_project(path, embed_source=self.embed_source_action.isChecked(),
                             embed_render=self.embed_render_action.isChecked())
        except (ProjectError, OSError) as exc:
            self.window.show_error("Save failed", f"Could not save {path.name}.", str(exc))
            return False
        self.window._remember(path)
        self.window.statusBar().showMessage(f"Saved project {path.name}", 6000)
        self.window._update_title()
        return True

    # ------------------------------------------------------------------ opening
    def open_path(self, path: str | Path) -> None:
        """Open a sound or a project (by its extension) in a worker thread, saying on the view
        what it is doing until its picture is drawn."""
        if _is_project(Path(path)):
            self.open(path)
        else:
            self.open_sound(path)

    def open_sound(self, path: str | Path) -> None:
        """Open the sound ``path`` in a worker thread, with its progress on the view."""
        w, path = self.window, Path(path)
        w.statusBar().showMessage(f"Opening {path.name}…")

        def failed(exc: Exception) -> None:
            w.view.clear_progress()
            w._open_failed(path, exc)

        self._start_opening(path, _opening_job(path), w._opened, failed)

    def _start_opening(self, path: Path, job, finished, failed) -> None:
        w = self.window
        w.view.show_progress(f"Opening {path.name}…")
        worker = Worker(job)
        worker.progress.connect(self._opening_progress)
        worker.finished.connect(finished)
        worker.failed.connect(failed)
        w._open_job = (worker, w._keep(start_worker(worker)))

    def _opening_progress(self, report) -> None:
        if self.window._open_job is None or not isinstance(report, tuple):
            return
        stage, fraction = report
        self.window.view.show_progress(f"{stage}…", fraction)

    def open_dialog(self) -> None:
        doc = self.window.document
        start = str(doc.project_path.parent) if doc is not None and doc.project_path else ""
        path, _ = QFileDialog.getOpenFileName(self.window, "Open Project", start, PROJECT_FILTER)
        if path:
            self.window.open_file(path)

    def open(self, path: str | Path, *, source: str | Path | None = None, verify: bool = True,
             recovery=None, bypass_untrusted: bool = False) -> None:
        """Open project ``path`` in a worker thread, with its progress on the view
        (``recovery``: a :class:`~scalgui.app.recovery.Recovery` to restore instead). A
        project naming VST3 plugins outside the trusted folders fails first; the user is
        then asked about each (:meth:`_open_failed`), and it opens again with the refused
        ones bypassed."""
        w = self.window
        path = Path(path)
        w.statusBar().showMessage(f"Opening {path.name}…")
        options = {"source": source, "verify": verify, "bypass_untrusted": bypass_untrusted}
        if recovery is not None:
            def job(progress):
                progress((f"Recovering {recovery.title}", None))
                return recovery.restore(**options)  # a Restored: see _recovered
        else:
            job = _opening_job(path, **options)
        self._start_opening(path, job, lambda doc: self._opened(doc, path, recovery),
                            lambda exc: self._open_failed(path, exc, recovery, options))

    def _opened(self, doc, path: Path, recovery) -> None:
        if recovery is not None:
            self._recovered(doc, recovery)
            return
        w = self.window
        w._opened(doc)
        w._remember(path)
        w.statusBar().showMessage(f"Opened project {path.name}", 6000)
        w._update_title()

    def _open_failed(self, path: Path, exc: Exception, recovery, options: dict) -> None:
        from scalgui.app.project import ProjectError, SourceMismatchError, SourceMissingError, UntrustedPluginsError

        w = self.window
        w._open_job = None
        w.statusBar().clearMessage()
        w.view.clear_progress()
        if isinstance(exc, UntrustedPluginsError):
            where = f"the project '{recovery.title if recovery is not None else path.name}'"
            refused = [p for p in exc.plugins if not self.ask_trust_plugin(p, where)]
            for plugin in set(exc.plugins) - set(refused):
                allow_vst3(plugin)
            self.open(path, recovery=recovery, **{**options, "bypass_untrusted": bool(refused)})
            return
        if isinstance(exc, SourceMissingError):
            chosen = self.locate_file(exc)
            if chosen:
                self.open(path, recovery=recovery, **{**options, "source": chosen})
            return
        if isinstance(exc, SourceMismatchError):
            if w.ask("Different sound file",
                     f"{exc.candidate.name} is not the sound this project was saved with (its checksum differs). "
                     "The edits are in seconds and Hz and will be applied to it anyway. Use it?"):
                self.open(path, recovery=recovery, **{**options, "source": exc.candidate, "verify": False})
            return
        text = str(exc) if isinstance(exc, ProjectError) else f"{type(exc).__name__}: {exc}"
        w.show_error("Cannot open project", f"Could not open {path.name}.", text)

    def ask_trust_plugin(self, path: Path, where: str) -> bool:
        """Whether to load the VST3 plugin at ``path`` that ``where`` names (patched in tests)."""
        return ask_trust_vst3(self.window, path, where)

    def locate_file(self, error) -> str | None:
        """Ask where the moved source sound is (``error``: a SourceMissingError)."""
        missing = error.source.path
        box = QMessageBox(QMessageBox.Icon.Question, "Sound not found",
                          f"The project's sound {missing.name if missing else ''} was moved or deleted.",
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel, self.window)
        box.setInformativeText(f"It was at {missing}. Locate it?" if missing else "Locate it?")
        if box.exec() != QMessageBox.StandardButton.Open:
            return None
        start = str(error.path.parent)
        path, _ = QFileDialog.getOpenFileName(self.window, f"Locate {missing.name if missing else 'the sound'}",
                                              start, "Audio files (*.wav *.flac *.ogg *.mp3 *.aiff *.aif);;"
                                                     "All files (*)")
        return path or None

    # ------------------------------------------------------------------ autosave and recovery
    def _recovered(self, restored, recovery) -> None:
        """Show recovered work (a :class:`~scalgui.app.recovery.Restored`); work edited in
        place writes back to its file again."""
        w = self.window
        if restored.in_place is not None:
            from .edit_in_place import EditInPlace

            mode = getattr(w, "edit_in_place", None)
            if mode is None:
                w.edit_in_place = EditInPlace(w, restored.in_place)
            else:
                mode.retarget(restored.in_place)
        w._opened(restored.doc)
        recovery.discard()  # the work now lives in this session, autosaved at once
        if restored.in_place is not None:
            where = f"; Save writes it back to {restored.in_place.path.name}"
        elif restored.problem:
            where = f"; it cannot be written back in place: {restored.problem}"
        else:
            where = ""
        w.statusBar().showMessage(f"Recovered {recovery.title} (autosaved {recovery.saved_at}){where}", 12000)
        self._autosaved = None
        self.autosave()
        w._update_title()

    def start_autosave(self, folder: str | Path | None = None) -> None:
        """Autosave into ``folder`` (default: the per-user recovery folder) from now on,
        after removing the temp files a killed scalgui left there."""
        from scalgui.app.recovery import Autosaver
        from scalgui.atomic import clean_stale_temps

        self.autosaver = Autosaver(folder)
        clean_stale_temps(self.autosaver.folder)
        self._start_timer()

    @property
    def autosaving(self) -> bool:
        """Whether an autosave is being written."""
        return self._autosave_job is not None

    def autosave(self) -> bool:
        """Save the open document into the recovery folder if it changed since the last
        autosave (in a worker thread); returns whether one was started."""
        from scalgui.app.project import state_key

        doc = self.window.document
        if self.autosaver is None or doc is None or self._autosave_job is not None or self.interval_minutes() == 0:
            return False
        in_place = self._in_place_target()
        state = (id(doc), state_key(doc), None if in_place is None else (in_place.path, in_place.backup))
        if state == self._autosaved:
            return False
        autosaver = self.autosaver

        def job(_progress):
            return autosaver.save(doc, in_place=in_place)

        worker = Worker(job)
        worker.finished.connect(lambda _path: self._autosaved_ok(state))
        worker.failed.connect(self._autosave_failed)
        self._autosave_job = (worker, self.window._keep(start_worker(worker)))
        return True

    def _in_place_target(self):
        """A copy of the file the window writes back to (``--edit-in-place``), when the
        open document is that file's; else None."""
        import dataclasses

        mode = getattr(self.window, "edit_in_place", None)
        if mode is None or not mode.active:
            return None
        return dataclasses.replace(mode.target)  # a write back may set its backup meanwhile

    def _autosaved_ok(self, state) -> None:
        self._autosave_job = None
        self._autosaved = state

    def _autosave_failed(self, exc: Exception) -> None:
        self._autosave_job = None
        # Not a dialog: autosave runs unasked, and the next one may well succeed.
        self.window.statusBar().showMessage(f"Autosave failed: {exc}", 10000)

    def recovery_text(self, recovery) -> tuple[str, str]:
        """The recovery prompt's text and its details: what the work is, and what Recover
        does, the file being opened (:attr:`opening`) included."""
        opening = self.opening
        on_opening = opening is not None and recovery.is_work_on(opening)
        what = f"{recovery.title}, the file you are opening," if on_opening else recovery.title
        text = f"scalgui did not close properly. Work on {what} was autosaved at {recovery.saved_at}."
        if recovery.in_place_path is not None:
            details = (f"It was edited in place for an audio workstation: Recover reopens it, and Save writes it "
                       f"back to {recovery.in_place_path.name} again.")
        else:
            details = "Recover opens the autosaved work."
        if on_opening:
            details += " The file as it is on disk opens only if you Discard the work or Decide Later."
        elif opening is not None:
            details += f" It opens instead of {opening.name}."
        return text, details

    def choose_recovery(self, recovery) -> str:
        """Ask what to do with work left by a crash: ``"recover"``, ``"discard"`` or ``"later"``."""
        text, details = self.recovery_text(recovery)
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work", text,
                          QMessageBox.StandardButton.NoButton, self.window)
        box.setInformativeText(details)
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Decide Later", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(recover)
        box.exec()
        clicked = box.clickedButton()
        return "recover" if clicked is recover else "discard" if clicked is discard else "later"

    def offer_recovery(self, folder: str | Path | None = None, *, opening: str | Path | None = None) -> bool:
        """Offer the work left by editors that crashed, newest first; returns whether one
        is being recovered (the window then opens it, instead of anything else).

        Parameters
        ----------
        folder : path, optional
            The recovery folder (default: the autosave's, else the per-user one).
        opening : path, optional
            The file the editor was started with: work on it is offered first, and the
            prompt says that it is that file.
        """
        from scalgui.app.recovery import find_recoveries

        if folder is None and self.autosaver is not None:
            folder = self.autosaver.folder
        self.opening = Path(opening) if opening is not None else None
        try:
            found = find_recoveries(folder)
            if self.opening is not None:  # a stable sort: newest first within each group
                found.sort(key=lambda recovery: not recovery.is_work_on(self.opening))
            for recovery in found:
                choice = self.choose_recovery(recovery)
                if choice == "recover":
                    self.open(recovery.project, recovery=recovery)
                    return True
                if choice == "discard":
                    recovery.discard()
            return False
        finally:
            self.opening = None

    def shutdown(self) -> None:
        """A clean exit: stop the timer, let an autosave finish, remove the recovery files."""
        from .workers import stop_threads

        self.timer.stop()
        if self._autosave_job is not None:
            # Not thread.wait(): the thread quits through a queued call to this (GUI)
            # thread, which a plain wait would block forever.
            stop_threads({self._autosave_job[1]})
            self._autosave_job = None
        if self.autosaver is not None:
            self.autosaver.discard()


def install_project_actions(window) -> ProjectActions:
    """Add the project actions to ``window``'s File menu; returns them."""
    return ProjectActions(window)
