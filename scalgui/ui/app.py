"""Start the editor: ``scalgui`` (the bundled example) or ``scalgui FILE``."""
from __future__ import annotations

import sys
from pathlib import Path

import scalgui  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)

__all__ = ["apply_dark_palette", "clean_stale_temps_beside", "create_application", "main"]


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


def main(path: str | None = None, *, edit_in_place: str | None = None) -> int:
    """Open the editor on ``path`` (or the bundled example) and run until it is closed.

    With ``edit_in_place`` the window opens that file in external-editor mode instead:
    Save writes the result back over it (see :mod:`scalgui.ui.edit_in_place`).

    Either way, work left by an editor that crashed is offered first (the prompt says
    when it is work on the file being opened); recovered, it opens instead of the file.
    Temp files a killed scalgui left in the recovery folder and beside the files the
    editor opens are removed.
    """
    app = create_application()
    from .main_window import MainWindow

    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)  # threads stop however the loop ends
    clean_stale_temps_beside(window)
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
        window.open_file(Path(opening))
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
