"""Start the editor: ``scalgui`` (the bundled example) or ``scalgui FILE``."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import scalgui  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)

__all__ = ["FIRST_PICTURE_LOG", "apply_dark_palette", "clean_stale_temps_beside", "create_application",
           "log_first_picture", "main"]

#: Environment variable naming a file: when set, the editor appends one JSON line to it
#: when the first picture of a sound is on screen, and quits (how ``scalgui bench editor
#: --launch`` times the real program from its launch).
FIRST_PICTURE_LOG = "SCALGUI_FIRST_PICTURE_LOG"


def apply_dark_palette(app) -> None:
    """Fusion style with a dark palette, so the scalogram's colours read well."""
    from PyQt6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#24262b",
        QPalette.ColorRole.WindowText: "#dcdde1",
        QPalette.ColorRole.Base: "#1b1c20",
        QPalette.ColorRole.AlternateBase: "#2a2c31",
        QPalette.ColorRole.ToolTipBase: "#2f3137",
        QPalette.ColorRole.ToolTipText: "#e8e8ea",
        QPalette.ColorRole.Text: "#dcdde1",
        QPalette.ColorRole.Button: "#2f3137",
        QPalette.ColorRole.ButtonText: "#dcdde1",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#d9822b",
        QPalette.ColorRole.HighlightedText: "#111111",
        QPalette.ColorRole.Link: "#f0a35e",
        QPalette.ColorRole.PlaceholderText: "#888a90",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6d6f75"))
    app.setPalette(palette)


def create_application(argv: list[str] | None = None):
    """The QApplication (created once), configured for scalgui and pyqtgraph."""
    import pyqtgraph as pg
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        apply_dark_palette(app)
    app.setOrganizationName("scalgui")
    app.setApplicationName("scalgui")
    pg.setConfigOptions(imageAxisOrder="row-major")
    return app


def clean_stale_temps_beside(window) -> None:
    """From now on, remove the temp files a killed scalgui left in the folder of each
    sound and project ``window`` opens (once per folder)."""
    from scalgui.atomic import clean_stale_temps

    cleaned: set[Path] = set()

    def clean(doc) -> None:
        if doc is None:
            return
        for path in (doc.path, doc.project_path):
            folder = Path(path).resolve().parent if path is not None else None
            if folder is not None and folder not in cleaned:
                cleaned.add(folder)
                clean_stale_temps(folder)

    window.documentChanged.connect(clean)


def log_first_picture(window, log_path: str | Path, started: float, *, quit_after: bool = True) -> None:
    """Append to ``log_path``, once ``window`` shows the picture of the first sound it opens,
    one JSON line of wall-clock times (Unix seconds, ``time.time()``)::

        {"pid": 123, "main": ..., "window": ..., "document": ..., "picture": ..., "complete": ...,
         "file": "/path/song.wav"}

    ``main`` is ``started`` (when the editor's ``main`` began), ``window`` when the window
    was shown, ``document`` when the sound was set on the window, ``picture`` when its first
    picture was set on the view, ``complete`` when the picture of the shown layer was (later
    than ``picture`` when the source's stood in for it: see
    :attr:`~scalgui.ui.scalogram_view.ScalogramView.standing_in`). A program that launched
    the editor subtracts its own launch time from these. With ``quit_after`` the
    application quits once the line is written.
    """
    times: dict = {"pid": os.getpid(), "main": started}

    def document_set(doc) -> None:
        if doc is not None and "document" not in times:
            times["document"] = time.time()
            times["file"] = str(doc.project_path or doc.path or "")

    def picture_shown(_picture) -> None:
        if "document" not in times or "complete" in times:
            return
        times.setdefault("picture", time.time())
        if window.view.standing_in:
            return
        times["complete"] = time.time()
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(times) + "\n")
        if quit_after:
            from PyQt6.QtWidgets import QApplication

            QApplication.instance().quit()

    window.documentChanged.connect(document_set)
    window.view.pictureUpdated.connect(picture_shown)
    if window.isVisible():
        times["window"] = time.time()
    else:
        from PyQt6.QtCore import QTimer

        QTimer.singleShot(0, lambda: times.setdefault("window", time.time()))  # once the loop runs


def main(path: str | None = None, *, edit_in_place: str | None = None) -> int:
    """Open the editor on ``path`` (or the bundled example) and run until it is closed.

    With ``edit_in_place`` the window opens that file in external-editor mode instead:
    Save writes the result back over it (see :mod:`scalgui.ui.edit_in_place`).

    Either way, work left by an editor that crashed is offered first (the prompt says
    when it is work on the file being opened); recovered, it opens instead of the file.
    Temp files a killed scalgui left in the recovery folder and beside the files the
    editor opens are removed. With :data:`FIRST_PICTURE_LOG` set, the time of the first
    picture is logged and the editor quits (see :func:`log_first_picture`).
    """
    started = time.time()
    app = create_application()
    from .main_window import MainWindow

    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)  # threads stop however the loop ends
    clean_stale_temps_beside(window)
    if os.environ.get(FIRST_PICTURE_LOG):
        log_first_picture(window, os.environ[FIRST_PICTURE_LOG], started)
    window.show()
    given = edit_in_place if edit_in_place is not None else path
    opening = Path(given) if given is not None else None
    if edit_in_place is not None:
        from .edit_in_place import install_edit_in_place

        install_edit_in_place(window, edit_in_place, open_file=False)
    window.projects.start_autosave()  # into the per-user recovery folder (issue 6)
    if window.projects.offer_recovery(opening=opening):
        return int(app.exec())  # the recovered work opens instead of the file or the example
    if opening is None:
        from scalgui.resources import example_path

        try:
            opening = example_path()
        except FileNotFoundError as exc:
            window.statusBar().showMessage(str(exc))
    if opening is not None:
        # What File > Open does, with the stages of the opening shown on the view.
        window.projects.open_path(opening)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
