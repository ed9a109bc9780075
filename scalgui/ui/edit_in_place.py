"""External-editor mode of the main window: ``scalgui --edit-in-place FILE``.

The window opens FILE; File > Save (Ctrl+S) renders the pending edits (in the render
worker) and writes the result back over FILE in its own format, sample rate and bit depth
(:func:`scalgui.app.in_place.write_back`), keeping a backup of the original next to it
before the first write. The title says the window edits the file in place, and Ctrl+S, Save
Project elsewhere, is this Save while it does (Save Project keeps its menu entry). Opening
another sound in the same window leaves the mode: Save is then disabled, since it would
overwrite a file that was not handed over for editing.

The session autosaves like any other (``ui/project_actions.py``), with the file and its
backup named in the recovery marker: recovered after a crash, the work is back in this
mode, writing to the same file and keeping the same backup.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject
from PyQt6.QtGui import QKeySequence

__all__ = ["EditInPlace", "install_edit_in_place"]

TITLE_NOTE = "editing in place"


def _save_tip(target) -> str:
    return f"Render and write over {target.path.name} ({target.describe()}), keeping a backup of the original"


class EditInPlace(QObject):
    """Ties a :class:`MainWindow` to one file it writes back to.

    Parameters
    ----------
    window : MainWindow
    target : InPlaceTarget
        The file, checked to be writable in its own format.
    """

    def __init__(self, window, target) -> None:
        super().__init__(window)
        self.window = window
        self.target = target
        self.save_action = window._action("&Save (write back to the file)", self.save, QKeySequence.StandardKey.Save,
                                          tip=_save_tip(target))
        file_menu = window.menuBar().actions()[0].menu()  # File, built first by MainWindow
        file_menu.insertAction(window.export_action, self.save_action)
        # Ctrl+S is also Save Project (ui/project_actions.py). A workstation that handed a
        # file over expects Ctrl+S to write that file, so the project action gives the key
        # up while the window edits in place, and gets it back when it no longer does.
        self._project_save = getattr(getattr(window, "projects", None), "save_action", None)
        self._project_keys = self._project_save.shortcuts() if self._project_save is not None else []
        self._save_keys = self.save_action.shortcuts()
        window.documentChanged.connect(self._document_changed)
        self._document_changed(window.document)

    def retarget(self, target) -> None:
        """Write back to ``target`` (an :class:`~scalgui.app.in_place.InPlaceTarget`) from
        now on: recovered work edited in place goes back to its own file."""
        self.target = target
        self.save_action.setToolTip(_save_tip(target))
        self._document_changed(self.window.document)

    @property
    def active(self) -> bool:
        """Whether the window shows the file handed over for editing."""
        doc = self.window.document
        if doc is None or doc.path is None:
            return False
        from scalgui.audio.save import same_file

        return same_file(Path(doc.path), self.target.path)

    def _document_changed(self, _doc) -> None:
        active = self.active
        self.window.title_note = f"{TITLE_NOTE}: {self.target.path.name}" if active else ""
        self.save_action.setEnabled(active)
        if self._project_save is not None:
            self._project_save.setShortcuts([] if active else self._project_keys)
        self.save_action.setShortcuts(self._save_keys if active else [])
        self.window._update_title()

    def save(self) -> None:
        """Render pending edits, then write the file back (Ctrl+S)."""
        window, doc = self.window, self.window.document
        if not self.active:
            return
        if doc.unrendered_edits:
            if window.rendering:
                window.statusBar().showMessage("A render is running; save again when it has finished", 6000)
                return

            def then(result):
                if result.cancelled:
                    window.statusBar().showMessage("Save cancelled with the render; the file is unchanged", 6000)
                else:
                    self._write()

            window.start_render(then)
            return
        self._write()

    def _write(self, clip: str = "error") -> None:
        from scalgui.app.in_place import write_back
        from scalgui.audio import AudioError, ClippingError

        window = self.window
        first = self.target.backup is None
        try:
            report = write_back(window.document, self.target, clip=clip)
        except ClippingError as exc:
            if window.ask("Saving would clip", f"{exc}\n\nNormalise the peak to -0.1 dBFS and save?"):
                self._write(clip="normalize")
            return
        except (AudioError, OSError, ValueError) as exc:
            window.show_error("Save failed", f"Could not write {self.target.path.name}; it is unchanged.", str(exc))
            return
        backup = f"; the original is kept as {self.target.backup.name}" if first else ""
        window.statusBar().showMessage(
            f"Saved {self.target.path.name} ({self.target.describe()}, peak {report.peak_dbfs:.1f} dBFS){backup}",
            10000)
        window._update_title()
        projects = getattr(window, "projects", None)
        if first and projects is not None:
            projects.autosave()  # the recovery marker must name the backup: the file now holds a render


def install_edit_in_place(window, path: str | Path, *, open_file: bool = True) -> EditInPlace:
    """Put ``window`` in external-editor mode for ``path`` and open it (unless
    ``open_file`` is False: the editor's start offers recovered work first).

    Raises
    ------
    AudioError
        ``path`` cannot be read, or cannot be written back in its own format (checked
        before the window shows anything, so the caller can report it and stop).
    """
    from scalgui.app.in_place import InPlaceTarget

    target = InPlaceTarget.of(path)
    mode = EditInPlace(window, target)
    window.edit_in_place = mode
    if open_file:
        window.open_file(target.path)
    return mode
