"""Opening a project or a sound says what it is doing, with a progress bar, until the picture is up.

The view is watched the whole time (a timer every few milliseconds, and every change of
its message): at no moment do blank axes show without a message over them.
"""
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QTimer

from scalgui.app.document import Document
from scalgui.audio import save_audio
from scalgui.dsp import signals
from scalgui.dsp.edits import Band, Edit, Rectangle
from scalgui.ui.project_actions import ProjectActions
from scalgui.ui.scalogram_view import DRAWING_TEXT, NO_SOUND_TEXT
from scalgui.ui.testing import wait_for_picture

SR = 44100
SECONDS = 6.0
EDITS = (Edit(Band(500.0, 2000.0), "gain", -30.0), Edit(Rectangle(1.0, 2.0, 3000.0, 6000.0), "erase"))


@pytest.fixture
def sound(tmp_path):
    """A 6 s stereo WAV (the example sound, repeated)."""
    example = signals.example_sound(SR, seed=0)
    samples = np.tile(example, (1, int(np.ceil(SECONDS * SR / example.shape[1]))))[:, : int(SECONDS * SR)]
    path = tmp_path / "take.wav"
    save_audio(path, samples, SR, bit_depth=24)
    return path


@pytest.fixture
def project(sound, tmp_path):
    """A project of :func:`sound` with a band edit over all of it and a rectangle."""
    doc = Document.open(sound, device="cpu")
    for edit in EDITS:
        doc.push(edit)
    return doc.save_project(tmp_path / "take.scalproj")


@pytest.fixture
def window(empty_window):
    """A shown window with nothing open, as the editor starts."""
    return empty_window


class Watcher:
    """Records the view's messages and checks, every few ms, that blank axes always say why."""

    def __init__(self, view) -> None:
        self.view = view
        self.messages = []  # (text, bar shown, bar maximum) at each change
        self.layers = []  # the layer of each picture shown
        self.blank_and_silent = 0
        self.checks = 0
        view.messageChanged.connect(self._message)
        view.pictureUpdated.connect(lambda picture: self.layers.append(picture.request.layer))
        self.timer = QTimer()
        self.timer.setInterval(3)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def _message(self, text: str) -> None:
        bar = self.view.progress_panel.bar
        self.messages.append((text, bar.isVisibleTo(self.view.progress_panel), bar.maximum()))

    def check(self) -> None:
        self.checks += 1
        view, panel = self.view, self.view.progress_panel
        if view.picture is None and not (panel.isVisible() and panel.label.text()):
            self.blank_and_silent += 1

    def texts(self) -> list:
        return [text for text, _, _ in self.messages]

    def stop(self) -> None:
        self.timer.stop()


def _index(texts, start: str) -> int:
    return next(i for i, text in enumerate(texts) if text.startswith(start))


def test_no_sound_open_says_how_to_open_one(window):
    panel = window.view.progress_panel
    assert window.document is None and window.view.picture is None
    assert panel.isVisible() and panel.label.text() == NO_SOUND_TEXT
    assert not panel.bar.isVisibleTo(panel)  # nothing is under way


def test_opening_a_project_shows_each_stage_then_the_picture(qtbot, window, project):
    w, view = window, window.view
    watcher = Watcher(view)
    w.open_file(project)
    assert view.progress_panel.isVisible() and view.message.startswith("Opening take.scalproj")
    qtbot.waitUntil(lambda: w.document is not None, timeout=60000)
    wait_for_picture(qtbot, view, timeout=60000)
    qtbot.waitUntil(lambda: not view.progress_panel.isVisible(), timeout=10000)
    watcher.stop()

    texts = watcher.texts()
    stages = ["Opening take.scalproj", "Reading the project take.scalproj", "Finding take.wav", "Reading take.wav",
              "Analysing 6.0 s of sound", "Restoring 2 edits", DRAWING_TEXT, "Drawing the 2 edits on the picture"]
    positions = [_index(texts, stage) for stage in stages]
    assert positions == sorted(positions), texts
    assert texts[-1] == ""  # the picture is up: nothing more to say
    # Every stage under way shows a progress bar; reading the sound shows how far it got.
    assert all(bar for text, bar, _ in watcher.messages if text and text != NO_SOUND_TEXT)
    reading = [maximum for text, _, maximum in watcher.messages if text.startswith("Reading take.wav")]
    assert reading and reading[0] > 0
    # The source's picture came first (what a bare file costs), then the edited target's.
    assert watcher.layers[0] == "source" and watcher.layers[-1] == "target"
    assert view.picture.request.layer == "target" and not view.standing_in
    assert watcher.checks > 10 and watcher.blank_and_silent == 0
    assert w.document.edits == EDITS and not w.errors


def test_opening_a_sound_shows_reading_then_analysing(qtbot, window, sound):
    w, view = window, window.view
    watcher = Watcher(view)
    w.projects.open_path(sound)
    qtbot.waitUntil(lambda: w.document is not None, timeout=60000)
    wait_for_picture(qtbot, view, timeout=60000)
    qtbot.waitUntil(lambda: not view.progress_panel.isVisible(), timeout=10000)
    watcher.stop()
    texts = watcher.texts()
    positions = [_index(texts, stage) for stage in ("Opening take.wav", "Reading take.wav", "Analysing take.wav",
                                                     DRAWING_TEXT)]
    assert positions == sorted(positions), texts
    assert texts[-1] == "" and watcher.layers == ["target"]  # no edits: nothing stands in
    assert watcher.blank_and_silent == 0 and not w.errors


def test_a_project_that_cannot_open_takes_its_progress_away(qtbot, window, tmp_path):
    w, view = window, window.view
    broken = tmp_path / "broken.scalproj"
    broken.write_bytes(b"not a zip archive")
    w.open_file(broken)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=20000)
    assert "Cannot open project" in w.errors[0][0]
    assert view.message == NO_SOUND_TEXT and not view.progress_panel.bar.isVisibleTo(view.progress_panel)


def test_a_sound_opened_over_another_shows_its_progress_above_the_old_picture(qtbot, window, project, sound,
                                                                              monkeypatch):
    w, view = window, window.view
    monkeypatch.setattr(ProjectActions, "is_saved", lambda self: True)  # nothing to confirm
    w.projects.open_path(sound)
    qtbot.waitUntil(lambda: w.document is not None, timeout=60000)
    wait_for_picture(qtbot, view, timeout=60000)
    watcher = Watcher(view)
    w.open_file(project)
    qtbot.waitUntil(lambda: w.document.project_path is not None, timeout=60000)
    wait_for_picture(qtbot, view, timeout=60000)
    watcher.stop()
    assert _index(watcher.texts(), "Reading the project") < _index(watcher.texts(), "Restoring 2 edits")
    assert watcher.blank_and_silent == 0
