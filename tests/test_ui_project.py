"""Projects in the editor: Ctrl+S, opening a project, autosave after a render, recovery."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import QFileDialog

from scalgui.app.document import Document
from scalgui.app.recovery import Autosaver
from scalgui.audio import save_audio
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.dsp.frame import FrameSettings
from scalgui.dsp.phase import RetrievalSettings
from scalgui.ui.main_window import MainWindow
from scalgui.ui.project_actions import ProjectActions
from scalgui.ui.testing import wait_for_picture

SR = 16000
EDIT = Edit(Rectangle(0.3, 0.6, 500.0, 3000.0), "gain", -30.0)


def _open_doc(path):
    doc = Document.open(path, settings=FrameSettings(SR, 12, fmin=60.0), device="cpu")
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=2)
    return doc


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    questions, errors = [], []
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: questions.append(title) or True)
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *args: errors.append(args))
    source = tmp_path / "take.wav"
    save_audio(source, signals.example_sound(SR)[:, :SR], SR, bit_depth=24)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.questions, w.errors, w.source = questions, errors, source
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    w.set_document(_open_doc(source))
    wait_for_picture(qtbot, w.view)
    w.activateWindow()
    w.view.setFocus()
    yield w
    w.set_document(None)
    w.projects.shutdown()


def test_ctrl_s_writes_a_project_that_reopens_with_the_same_edits(qtbot, window, tmp_path, monkeypatch):
    w = window
    w.apply_edit(EDIT)
    target = tmp_path / "work"  # no extension typed: .scalproj is added
    dialogs = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: dialogs.append(a) or (str(target), "scalgui projects (*.scalproj)"))
    assert w.isWindowModified()
    qtbot.keyClick(w.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    saved = tmp_path / "work.scalproj"
    assert saved.exists() and len(dialogs) == 1 and not w.errors
    assert w.document.project_path == saved and w.projects.is_saved()
    assert not w.isWindowModified()
    reopened = Document.open_project(saved, device="cpu")
    assert reopened.edits == (EDIT,) and reopened.path == w.source.resolve()
    # Closing a saved project asks nothing, though the edit is not rendered.
    assert w._may_discard() and w.questions == []
    # A second Ctrl+S saves in place without a dialog.
    second = Edit(Rectangle(0.7, 0.8, 200.0, 400.0), "erase")
    w.apply_edit(second)
    assert not w.projects.is_saved()
    qtbot.keyClick(w.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert len(dialogs) == 1
    assert Document.open_project(saved, device="cpu").edits == (EDIT, second)

    # File > Open (here: open_file, as drag and drop does) opens the project.
    w.set_document(_open_doc(w.source))
    w.open_file(saved)
    qtbot.waitUntil(lambda: w._open_job is None and w.document.project_path == saved, timeout=20000)
    assert w.document.edits == (EDIT, second) and w.undo_stack.count() == 0
    assert str(saved.resolve()) in w.recent_files()


def test_opening_a_project_whose_sound_moved_asks_for_it(qtbot, window, tmp_path, monkeypatch):
    w = window
    w.document.push(EDIT)
    saved = w.document.save_project(tmp_path / "p.scalproj")
    moved = tmp_path / "moved.wav"
    w.source.rename(moved)
    asked = []
    monkeypatch.setattr(ProjectActions, "locate_file", lambda self, err: asked.append(err) or str(moved))
    w.set_document(None)
    w.open_file(saved)
    qtbot.waitUntil(lambda: w.document is not None and w._open_job is None, timeout=20000)
    assert len(asked) == 1 and w.document.path == moved and w.document.edits == (EDIT,)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recovery_is_offered_after_a_crash(qtbot, window, tmp_path, monkeypatch):
    w = window
    folder = tmp_path / "recovery"
    # A crashed editor: its autosave with the marker of a process that is gone.
    crashed_doc = _open_doc(w.source)
    crashed_doc.push(EDIT)
    crashed = Autosaver(folder)
    crashed.save(crashed_doc)
    marker = json.loads(crashed.marker.read_text())
    marker["pid"] = _dead_pid()
    crashed.marker.write_text(json.dumps(marker))

    w.projects.start_autosave(folder)
    offered = []
    monkeypatch.setattr(ProjectActions, "choose_recovery", lambda self, rec: offered.append(rec.title) or "recover")
    assert w.projects.offer_recovery()
    assert offered == ["take.wav"]
    qtbot.waitUntil(lambda: w.document.edits == (EDIT,) and w._open_job is None, timeout=20000)
    assert w.document.unsaved
    assert not crashed.project_file.exists() and not crashed.marker.exists()
    # The recovered work is autosaved at once by this session.
    qtbot.waitUntil(lambda: not w.projects.autosaving and w.projects.autosaver.project_file.exists(),
                    timeout=20000)
    assert w.projects.offer_recovery() is False  # our own autosave is not a crash
    w.projects.shutdown()  # a clean exit
    assert list(folder.iterdir()) == []


def test_discard_deletes_the_crashed_work(qtbot, window, tmp_path, monkeypatch):
    folder = tmp_path / "recovery"
    crashed = Autosaver(folder)
    crashed.save(_open_doc(window.source))
    marker = json.loads(crashed.marker.read_text())
    marker["pid"] = _dead_pid()
    crashed.marker.write_text(json.dumps(marker))
    monkeypatch.setattr(ProjectActions, "choose_recovery", lambda self, rec: "discard")
    assert window.projects.offer_recovery(folder) is False
    assert list(folder.iterdir()) == []


def test_autosave_after_a_render(qtbot, window, tmp_path):
    w = window
    folder = tmp_path / "recovery"
    w.projects.start_autosave(folder)
    assert w.projects.timer.isActive() and w.projects.timer.interval() == 3 * 60_000
    w.apply_edit(EDIT)
    with qtbot.waitSignal(w.renderFinished, timeout=60000):
        w.start_render()
    qtbot.waitUntil(lambda: w.projects.autosaver.project_file.exists() and not w.projects.autosaving, timeout=20000)
    recovered = Document.open_project(w.projects.autosaver.project_file, device="cpu")
    assert recovered.edits == (EDIT,) and recovered.rendered is not None
    assert w.document.project_path is None  # autosave is a copy, not the user's project
    assert w.projects.autosave() is False  # nothing changed since


def _click_menu_path(qtbot, window, *titles):
    """Click through the menu bar and its sub-menus as a person does, by the entries' texts."""
    def find(actions, title):
        return next(a for a in actions if a.text().replace("&", "") == title)

    bar = window.menuBar()
    entry = find(bar.actions(), titles[0])
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(entry).center())
    menu = entry.menu()
    qtbot.waitUntil(menu.isVisible, timeout=3000)
    for title in titles[1:]:
        entry = find(menu.actions(), title)
        qtbot.mouseMove(menu, menu.actionGeometry(entry).center())
        qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(entry).center())
        if entry.menu() is None:
            break
        menu = entry.menu()
        qtbot.waitUntil(menu.isVisible, timeout=3000)
    return entry


def test_the_autosave_interval_is_chosen_in_the_file_menu_and_kept(qtbot, window, tmp_path):
    w = window
    w.projects.start_autosave(tmp_path / "recovery")
    assert w.projects.timer.interval() == 3 * 60_000
    checked = [a.text() for a in w.projects.autosave_actions.actions() if a.isChecked()]
    assert checked == ["Every 3 Minutes"]

    _click_menu_path(qtbot, w, "File", "Project Options", "Autosave", "Every 1 Minute")
    assert w.projects.timer.isActive() and w.projects.timer.interval() == 60_000
    assert float(w.settings.value("autosaveMinutes")) == 1.0

    _click_menu_path(qtbot, w, "File", "Project Options", "Autosave", "Off")
    assert not w.projects.timer.isActive()
    w.apply_edit(EDIT)
    assert w.projects.autosave() is False  # off: not even after a change
    assert not w.projects.autosaver.project_file.exists()

    # A new window (the next start of the editor) finds the choice where it was left.
    again = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert [a.text() for a in again.projects.autosave_actions.actions() if a.isChecked()] == ["Off"]
    again.projects.start_autosave(tmp_path / "recovery-2")
    assert not again.projects.timer.isActive()
    again.projects.shutdown()

    _click_menu_path(qtbot, w, "File", "Project Options", "Autosave", "Every 5 Minutes")
    assert w.projects.timer.isActive() and w.projects.timer.interval() == 5 * 60_000
    assert w.projects.autosave() is True  # on again: the change is saved
    qtbot.waitUntil(lambda: w.projects.autosaver.project_file.exists() and not w.projects.autosaving, timeout=20000)
