"""`scalgui.ui.app.main`: the entry point the CLI calls opens the window and a file.

Run in a fresh process: ``main`` runs the application's event loop to its end, which a
test must not do to the QApplication that pytest-qt shares between tests.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from scalgui.ui import app as app_module
from scalgui.ui.main_window import MainWindow

application = app_module.create_application()

def poll():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    w = windows[0] if windows else None
    if w is not None and w.document is not None and w.view.picture is not None:
        print("opened", w.document.path.name, w.view.picture.image.shape, flush=True)
        w.close()
        return
    QTimer.singleShot(50, poll)

QTimer.singleShot(50, poll)
QTimer.singleShot(60000, QApplication.quit)  # never hang
code = app_module.main(sys.argv[1] if len(sys.argv) > 1 else None)
print("exit", code, flush=True)
"""


def _run(tmp_path, *args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run([sys.executable, "-c", DRIVER, *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_main_opens_the_example_and_returns_when_the_window_closes(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "opened example.flac" in result.stdout
    assert "exit 0" in result.stdout
    assert "Traceback" not in result.stderr
