"""Exporting with edits the last render does not include: ask first, then do what was chosen.

File > Export writes the render. When the document has edits that are not rendered yet,
the window (:meth:`~scalgui.ui.main_window.MainWindow.export_to`) makes a
:class:`PendingEditsExport`, which asks with a window-modal question, opened without
blocking:

- **Render Now** renders them (the status bar shows the render's progress, with Cancel)
  and writes the file when the render has finished. A cancelled or failed render writes
  nothing, and the status bar says so. A render already running is waited for first;
  edits it leaves (made while it ran) are rendered after it.
- **Export Last Render** writes the last render as it is, without the pending edits.
  When nothing was rendered yet there is no render to write: the choice is then **Export
  Without Edits**, the sound as it was opened (through the render effects), which is
  what the render would be with no edits. Writing it says so in the status bar.
- **Cancel** writes nothing.

The script API's :meth:`Document.export <scalgui.app.document.Document.export>` keeps
rendering first; this is the editor's question only.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QMessageBox

__all__ = ["PendingEditsExport", "pending_seconds"]

#: How often a render being waited for is checked on, ms (a failed render calls nothing back).
WATCH_MS = 100


def pending_seconds(doc) -> float:
    """Seconds of ``doc`` that its pending edits cover (overlapping spans counted once)."""
    spans = sorted((max(a, 0.0), min(b, doc.duration)) for a, b in doc.pending_spans)
    total, end = 0.0, 0.0
    for lo, hi in spans:
        lo = max(lo, end)
        if hi > lo:
            total += hi - lo
            end = hi
    return total


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


class PendingEditsExport(QObject):
    """One export of a document with unrendered edits: the question, then what was chosen.

    Parameters
    ----------
    window : MainWindow
        The window exporting; its :meth:`start_render` renders, its ``_write`` writes.
    path : Path
        The file to write.
    options : dict
        ``bit_depth`` and ``quality`` for the file (see ``Document.export``).

    Attributes
    ----------
    question : QMessageBox
        Open (window-modal, not blocking) until answered.
    render_button, last_render_button, cancel_button : QPushButton
        Its buttons. ``last_render_button`` says "Export Without Edits" when nothing was
        rendered yet.
    outcome : str or None
        None until it is over; then ``"written"``, ``"declined"`` (Cancel), ``"render
        cancelled"``, ``"render failed"``, ``"not written"`` (the write failed or was
        declined, or the window was busy or showed another sound).

    Signals
    -------
    finished(str)
        The outcome, once.
    """

    finished = pyqtSignal(str)

    def __init__(self, window, path: str | Path, options: dict) -> None:
        super().__init__(window)
        self.window = window
        self.doc = window.document
        self.path = Path(path)
        self.options = dict(options)
        self.outcome: str | None = None
        self._rendering = False  # our own render runs, and has not called back yet
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self._check_render)

        doc = self.doc
        rendered_before = doc.rendered is not None
        box = QMessageBox(QMessageBox.Icon.Question, "Export with unrendered edits",
                          f"Edits over {_duration(pending_seconds(doc))} of the sound are not rendered yet.",
                          QMessageBox.StandardButton.NoButton, window)
        details = [(f"Render Now renders them, with the render's progress in the status bar, and then writes "
                    f"{self.path.name}.")]
        if window.rendering:
            details.append("A render is running: it is waited for first.")
        if rendered_before:
            details.append("Export Last Render writes the last render as it is, without them.")
        else:
            details.append("Nothing has been rendered yet: Export Without Edits writes the sound as it was opened "
                           "(through the render effects).")
        box.setInformativeText("\n\n".join(details))
        self.render_button = box.addButton("Render Now", QMessageBox.ButtonRole.AcceptRole)
        self.last_render_button = box.addButton("Export Last Render" if rendered_before else "Export Without Edits",
                                                QMessageBox.ButtonRole.ActionRole)
        self.cancel_button = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(self.render_button)
        box.setEscapeButton(self.cancel_button)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.buttonClicked.connect(self._answered)
        self.question = box
        box.open()

    # ------------------------------------------------------------------ the answer
    def _answered(self, button) -> None:
        if button is self.render_button:
            self.render_now()
        elif button is self.last_render_button:
            self.export_last_render()
        else:
            self._say("Export cancelled: nothing was written")
            self._finish("declined")

    def _finish(self, outcome: str) -> None:
        self._watch.stop()
        self._rendering = False
        if self.outcome is None:
            self.outcome = outcome
            self.finished.emit(outcome)

    def _say(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _same_document(self) -> bool:
        if self.window.document is self.doc:
            return True
        self._say(f"Export of {self.path.name} cancelled: another sound is open now; nothing was written")
        self._finish("not written")
        return False

    def export_last_render(self) -> None:
        """Write the last render (or, with none, the opened sound) without the pending edits."""
        if not self._same_document():
            return
        rendered = self.doc.rendered is not None
        if self.window._write(self.path, **self.options):
            if not rendered:
                written = self.window.statusBar().currentMessage()
                self._say(f"{written}: the sound as it was opened, without the edits (nothing was rendered yet)",
                          12000)
            self._finish("written")
        else:
            self._finish("not written")

    def render_now(self) -> None:
        """Render the pending edits (after a render already running), then write the file."""
        if not self._same_document():
            return
        w = self.window
        if w.rendering:  # someone else's render: once it is over, look again at what is left
            self._say(f"Waiting for the running render, then rendering and exporting {self.path.name}…", 0)
            self._watch.start()
            return
        if not self.doc.unrendered_edits:
            self._write_render()
            return
        if not w.start_render(self._rendered):
            self._say(f"Export of {self.path.name} not started: the sound is busy (an analysis or an effect); "
                      "export again when it has finished")
            self._finish("not written")
            return
        self._rendering = True
        self._say(f"Rendering the edits, then exporting {self.path.name}…", 0)
        self._watch.start()

    def _check_render(self) -> None:
        if self.window.rendering:
            return
        self._watch.stop()
        if self._rendering:  # it ended without calling back: it failed (the window showed why)
            self._say(f"Export of {self.path.name} cancelled: the render failed; nothing was written")
            self._finish("render failed")
        elif self.outcome is None:
            self.render_now()  # the render waited for is over

    def _rendered(self, result) -> None:
        if not self._rendering:
            return
        self._rendering = False
        self._watch.stop()
        if result.cancelled:
            self._say(f"Export of {self.path.name} cancelled with the render: nothing was written")
            self._finish("render cancelled")
            return
        if self._same_document():
            self._write_render()

    def _write_render(self) -> None:
        late = self.doc.unrendered_edits  # edits made while the render ran
        if not self.window._write(self.path, **self.options):
            self._finish("not written")
            return
        if late:
            self._say(f"Exported {self.path.name}; edits made during the render are not in it (render and "
                      "export again to include them)", 12000)
        self._finish("written")
