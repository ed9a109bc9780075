"""Hostile input, part E (issue 20): writing files, temp files, crash recovery.

A write never replaces a read-only file (mode bits, so root is stopped too), a device or
a FIFO; it follows a symlink to its target and keeps the link; a new file gets the
umask's mode and a replaced one keeps its own. A scalgui killed in the middle of a write
leaves a temp file that the next start removes, and nothing else that merely looks like
one. Work left by an editor that crashed is offered at every start, also when the editor
is started with a file or as an audio workstation's external editor (``--edit-in-place``),
whose session autosaves and, recovered, writes back to its file again.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hostile import assert_refused, run_scalgui, snapshot
from scalgui.app.document import Document
from scalgui.app.in_place import InPlaceTarget, existing_backups, write_back
from scalgui.app.project import read_project
from scalgui.app.recovery import Autosaver, find_recoveries
from scalgui.atomic import ABANDONED_AFTER_S, STALE_AFTER_S, clean_stale_temps, temp_path, write_atomic
from scalgui.audio import load_audio, save_audio
from scalgui.audio.effects import EffectChain, effect, load_preset, save_preset
from scalgui.audio.errors import AudioWriteError, PresetError
from scalgui.cli import main
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.dsp.phase import RetrievalSettings

SR = 16000
EDIT = Edit(Rectangle(0.3, 0.6, 500.0, 3000.0), "gain", -30.0)
FAST_RENDER = RetrievalSettings(method="fgla", init="original", iterations=2)
CHAIN = EffectChain("source", (effect("Gain", gain_db=-6.0),))


def cli(argv, capsys):
    """Run ``scalgui`` in-process: (exit code, stderr lines)."""
    code = main([str(a) for a in argv])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def assert_one_line_error(code, err, *needles):
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("scalgui: error: "), err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])


def write_take(path: Path) -> Path:
    """One second of the example sound, 24-bit WAV at 16 kHz."""
    save_audio(path, signals.example_sound(SR)[:, :SR], SR, bit_depth=24)
    return path


def open_doc(path: Path) -> Document:
    doc = Document.open(path, device="cpu")
    doc.retrieval_settings = FAST_RENDER
    return doc


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def crash(autosaver: Autosaver) -> None:
    """Make ``autosaver``'s files look like those of an editor that died."""
    marker = json.loads(autosaver.marker.read_text())
    marker["pid"] = dead_pid()
    autosaver.marker.write_text(json.dumps(marker))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def temp_name_of(destination: Path, pid: int, *, suffix: str = "", host: str | None = None) -> Path:
    """The name scalgui gives a temp file of ``destination`` in process ``pid`` (on this
    machine, or the one with ``host`` tag)."""
    ours = temp_path(destination, suffix=suffix).name
    head, tail = ours.rsplit(".scalgui-", 1)
    our_host, _pid, rest = tail.split("-", 2)
    return destination.with_name(f"{head}.scalgui-{host or our_host}-{pid}-{rest}")


# --------------------------------------------------------------------------- read-only files


def test_fx_overwrite_input_refuses_a_read_only_input(tmp_path, capsys):
    source = write_take(tmp_path / "in.wav")
    original = load_audio(source).samples
    preset = save_preset(tmp_path / "gain.json", CHAIN)
    os.chmod(source, 0o444)
    before = snapshot(tmp_path)
    code, err = cli(["fx", source, "-o", source, "--preset", preset, "--overwrite-input"], capsys)
    assert_one_line_error(code, err, "in.wav", "read-only (mode 0444)", "make it writable")
    assert snapshot(tmp_path) == before  # same bytes, same mode, no temp file
    # The mode was the only obstacle: made writable, the same command replaces the file.
    os.chmod(source, 0o644)
    code, err = cli(["fx", source, "-o", source, "--preset", preset, "--overwrite-input"], capsys)
    assert code == 0, err
    assert np.allclose(load_audio(source).samples, original * 10 ** (-6 / 20), atol=1e-4)


def test_commands_refuse_a_read_only_output_before_any_work(tmp_path, capsys):
    source = write_take(tmp_path / "in.wav")
    for name in ("out.wav", "report.json"):
        (tmp_path / name).write_bytes(b"the user's")
        os.chmod(tmp_path / name, 0o440)  # read-only for its owner and group, as chmod a-w leaves it
    before = snapshot(tmp_path)
    code, err = cli(["invert", source, "-o", tmp_path / "out.wav", "--iters", 1], capsys)
    assert_one_line_error(code, err, "out.wav", "read-only (mode 0440)")
    code, err = cli(["analyze", source, "--json", tmp_path / "report.json"], capsys)
    assert_one_line_error(code, err, "report.json", "read-only (mode 0440)")
    assert snapshot(tmp_path) == before


def test_project_and_preset_saves_refuse_a_read_only_file(tmp_path):
    from scalgui.app.project import ProjectError

    doc = open_doc(write_take(tmp_path / "take.wav"))
    doc.save_project(tmp_path / "mix.scalproj")
    save_preset(tmp_path / "fx.json", CHAIN)
    for name in ("mix.scalproj", "fx.json"):
        os.chmod(tmp_path / name, 0o444)
    before = snapshot(tmp_path)
    doc.push(EDIT)
    with pytest.raises(ProjectError, match=r"mix\.scalproj': it is read-only \(mode 0444\); make it writable"):
        doc.save_project(tmp_path / "mix.scalproj")
    with pytest.raises(PresetError, match=r"fx\.json.*it is read-only \(mode 0444\)"):
        save_preset(tmp_path / "fx.json", EffectChain("render"))
    assert snapshot(tmp_path) == before


def test_in_place_write_back_refuses_a_read_only_target(tmp_path, capsys):
    take = write_take(tmp_path / "take.wav")
    os.chmod(take, 0o444)
    with pytest.raises(AudioWriteError, match=r"take\.wav': it is read-only \(mode 0444\)"):
        InPlaceTarget.of(take)
    code, err = cli(["--edit-in-place", take], capsys)  # refused before any window opens
    assert_one_line_error(code, err, "take.wav", "read-only (mode 0444)")

    # Made read-only while it is edited: the write back is refused before the backup.
    os.chmod(take, 0o644)
    target = InPlaceTarget.of(take)
    doc = open_doc(take)
    doc.push(EDIT)
    os.chmod(take, 0o444)
    before = snapshot(tmp_path)
    with pytest.raises(AudioWriteError, match=r"read-only \(mode 0444\)"):
        write_back(doc, target)
    assert snapshot(tmp_path) == before and existing_backups(take) == [] and target.backup is None


# --------------------------------------------------------------------------- symlinks and modes


def test_project_and_preset_saves_write_a_symlinks_target_and_keep_the_link(tmp_path):
    take = write_take(tmp_path / "take.wav")
    store = tmp_path / "store"
    store.mkdir()
    doc = open_doc(take)
    doc.save_project(store / "mix.scalproj")
    (tmp_path / "mix.scalproj").symlink_to("store/mix.scalproj")
    doc.push(EDIT)
    doc.save_project(tmp_path / "mix.scalproj")
    assert os.readlink(tmp_path / "mix.scalproj") == "store/mix.scalproj"
    assert read_project(store / "mix.scalproj").edits == (EDIT,)

    save_preset(store / "fx.json", EffectChain("render"))
    (tmp_path / "fx.json").symlink_to(store / "fx.json")
    save_preset(tmp_path / "fx.json", CHAIN)
    assert (tmp_path / "fx.json").is_symlink() and load_preset(store / "fx.json") == (CHAIN,)
    # A dangling link: its target is created, the link stays.
    (tmp_path / "new.json").symlink_to(store / "new.json")
    save_preset(tmp_path / "new.json", CHAIN)
    assert (tmp_path / "new.json").is_symlink() and load_preset(store / "new.json") == (CHAIN,)
    assert sorted(p.name for p in store.iterdir()) == ["fx.json", "mix.scalproj", "new.json"]  # no temp left


def test_a_fifo_or_device_is_never_written_nor_replaced(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "null.json").symlink_to(os.devnull)
    for name in ("pipe.json", "null.json"):
        with pytest.raises(PresetError, match=f"{name}.*not a regular file"):
            save_preset(tmp_path / name, CHAIN)
        with pytest.raises(OSError, match="not a regular file"):
            write_atomic(tmp_path / name, lambda handle: handle.write("{}"))
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe.json").st_mode)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.json", "pipe.json"]


def test_a_fifo_as_a_commands_output_is_refused_without_hanging(tmp_path):
    source = write_take(tmp_path / "in.wav")
    os.mkfifo(tmp_path / "summary.json")
    before = snapshot(tmp_path)
    outcome = run_scalgui(["analyze", source, "--json", tmp_path / "summary.json"], cwd=tmp_path, timeout=60)
    assert_refused(outcome, "summary.json", "not a regular file")
    assert snapshot(tmp_path) == before
    print(f"analyze --json FIFO: {outcome.seconds:.1f} s, peak {outcome.peak_mb:.0f} MB")


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o002, 0o664)])
def test_new_files_get_the_umasks_mode_and_replaced_files_keep_theirs(tmp_path, capsys, umask, expected):
    take = write_take(tmp_path / "take.wav")
    doc = open_doc(take)
    project, preset, report = tmp_path / "p.scalproj", tmp_path / "fx.json", tmp_path / "summary.json"
    recovery = tmp_path / "recovery"
    previous = os.umask(umask)
    try:
        doc.save_project(project)
        save_preset(preset, CHAIN)
        code, err = cli(["analyze", take, "--json", report], capsys)
        assert code == 0, err
        autosaver = Autosaver(recovery)
        autosaver.save(doc)
        made = {path: mode_of(path) for path in (project, preset, report, autosaver.project_file, autosaver.marker)}
        for path in (project, preset, report):
            os.chmod(path, 0o640)
        doc.push(EDIT)
        doc.save_project(project)
        save_preset(preset, EffectChain("render"))
        code, err = cli(["analyze", take, "--json", report], capsys)
        assert code == 0, err
    finally:
        os.umask(previous)
    assert made == dict.fromkeys(made, expected)
    assert mode_of(recovery) == 0o700  # the recovery folder keeps the autosaves private
    assert [mode_of(p) for p in (project, preset, report)] == [0o640] * 3
    assert read_project(project).edits == (EDIT,)


def test_the_recovery_folder_is_private(tmp_path, monkeypatch):
    doc = open_doc(write_take(tmp_path / "take.wav"))
    # The default folder, left open to others by an older scalgui, is narrowed to 0700.
    monkeypatch.delenv("SCALGUI_RECOVERY_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    default = tmp_path / "state" / "scalgui" / "recovery"
    default.mkdir(parents=True, mode=0o755)
    os.chmod(default, 0o755)
    Autosaver().save(doc)
    assert Autosaver().folder == default and mode_of(default) == 0o700
    # A folder the user named is created 0700, but one that exists is theirs to set.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    monkeypatch.setenv("SCALGUI_RECOVERY_DIR", str(shared))
    Autosaver().save(doc)
    Autosaver(tmp_path / "new").save(doc)
    assert (mode_of(shared), mode_of(tmp_path / "new")) == (0o755, 0o700)


# --------------------------------------------------------------------------- killed writes

WRITER = r"""
import sys, threading, time
import scalgui.audio._atomic as audio_atomic
from scalgui.atomic import write_atomic
from scalgui.audio import save_audio
import numpy as np

folder = sys.argv[1]
ready = threading.Barrier(3)

def stall():
    ready.wait()
    time.sleep(600)  # killed long before

def long_project_write(handle):
    handle.write(b"PK" + bytes(1 << 20))
    handle.flush()
    stall()

def long_encode(fh, *args):
    fh.write(b"RIFF" + bytes(1 << 20))
    fh.flush()
    stall()

audio_atomic.encode = long_encode
threading.Thread(target=write_atomic, args=(folder + "/mix.scalproj", long_project_write),
                 kwargs={"binary": True}, daemon=True).start()
threading.Thread(target=save_audio, args=(folder + "/out.wav", np.zeros((1, 1600), np.float32), 16000),
                 daemon=True).start()
ready.wait()
print("writing", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def killed_writes(tmp_path_factory):
    """A folder where a scalgui process was killed (SIGKILL) while it wrote a project and
    a sound over the user's old ones: ``(folder, pid)``."""
    folder = tmp_path_factory.mktemp("killed")
    (folder / "mix.scalproj").write_bytes(b"the user's old project")
    (folder / "out.wav").write_bytes(b"the user's old sound")
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    with child:
        ready, _, _ = select.select([child.stdout], [], [], 120)  # a hang detector, not a timing
        line = child.stdout.readline() if ready else b""
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert line == b"writing\n", child.stderr.read().decode()
    return folder, child.pid


@pytest.fixture
def after_a_kill(killed_writes, tmp_path):
    """A copy of :func:`killed_writes`' folder, its temp files old enough to be stale,
    plus files of the user's named like temp files, and the temp file of a live process:
    ``(folder, stale temps, files that must survive)``."""
    source, pid = killed_writes
    folder = tmp_path / "work"
    shutil.copytree(source, folder, symlinks=True)
    stale = sorted(p for p in folder.iterdir() if f"-{pid}-" in p.name)
    for path in stale:
        age(path, STALE_AFTER_S + 60)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live_temp = temp_name_of(folder / "out.wav", live.pid, suffix=".wav")
        live_temp.write_bytes(b"being written")
        alike = [
            folder / ".out.wav.1a2b3c4d.tmp.wav",  # an older scheme, or another program's
            folder / ".out.wav.scalgui-notes.tmp",
            folder / temp_name_of(folder / "out.wav", pid).name[1:],  # not hidden: not a temp of scalgui's
            temp_name_of(folder / "out.wav", pid, suffix=".wav", host="ffffff"),  # another machine's
        ]
        for path in alike:
            path.write_bytes(b"the user's")
        link = temp_name_of(folder / "mix.scalproj", pid)
        link.symlink_to(folder / "mix.scalproj")  # named like a stale temp, but a link
        for path in [live_temp, *alike, link]:
            age(path, STALE_AFTER_S + 60)
        yield folder, stale, [live_temp, *alike, link]
    finally:
        live.kill()
        live.wait()


def test_a_killed_write_leaves_the_destination_and_one_temp_file(killed_writes):
    folder, pid = killed_writes
    assert (folder / "mix.scalproj").read_bytes() == b"the user's old project"
    assert (folder / "out.wav").read_bytes() == b"the user's old sound"
    temps = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    assert len(temps) == 2 and all(".scalgui-" in name and f"-{pid}-" in name for name in temps), temps
    assert temps[0].startswith(".mix.scalproj.") and temps[0].endswith(".tmp")
    assert temps[1].startswith(".out.wav.") and temps[1].endswith(".tmp.wav")
    # A temp file this young is kept: on a folder shared between machines, its process
    # may be running elsewhere.
    assert clean_stale_temps(folder) == []


def test_the_next_write_to_a_destination_removes_its_stale_temp_and_nothing_else(after_a_kill, capsys):
    folder, stale, survivors = after_a_kill
    stale_project, stale_sound = stale
    source = write_take(folder.parent / "in.wav")
    preset = save_preset(folder.parent / "gain.json", CHAIN)
    code, err = cli(["fx", source, "-o", folder / "out.wav", "--preset", preset], capsys)
    assert code == 0, err
    assert not stale_sound.exists() and stale_project.exists()  # only out.wav's own temp
    doc = open_doc(source)
    doc.save_project(folder / "mix.scalproj")
    assert not stale_project.exists()
    assert all(os.path.lexists(path) for path in survivors)
    assert (folder / "mix.scalproj").read_bytes() != b"the user's old project"


def test_a_temp_file_abandoned_for_a_day_is_removed_whoever_made_it(after_a_kill):
    folder, stale, survivors = after_a_kill
    other_machine = next(p for p in survivors if "-ffffff-" in p.name)
    age(other_machine, ABANDONED_AFTER_S + 60)
    removed = clean_stale_temps(folder)
    assert sorted(removed) == sorted([*stale, other_machine])
    assert all(os.path.lexists(path) for path in survivors if path != other_machine)


def test_the_editor_start_cleans_the_recovery_folder_and_the_opened_files_folder(after_a_kill, make_window):
    from scalgui.ui.app import clean_stale_temps_beside

    folder, stale, survivors = after_a_kill
    recovery = folder.parent / "recovery"
    recovery.mkdir()
    stale_autosave = temp_name_of(recovery / "autosave-1-abcdef.scalproj", dead_pid())
    stale_autosave.write_bytes(b"PK")
    age(stale_autosave, STALE_AFTER_S + 60)
    user_file = recovery / ".autosave-notes.scalgui-mine.tmp"
    user_file.write_bytes(b"the user's")

    window = make_window()
    window.projects.start_autosave(recovery)
    assert not stale_autosave.exists() and user_file.exists()
    clean_stale_temps_beside(window)
    take = write_take(folder / "take.wav")
    window.set_document(open_doc(take))
    assert not any(path.exists() for path in stale)
    assert all(os.path.lexists(path) for path in survivors)
    window.projects.shutdown()


# --------------------------------------------------------------------------- recovery


def start_editor(monkeypatch, qtbot, tmp_path, **kwargs):
    """Run :func:`scalgui.ui.app.main` as ``scalgui FILE`` or ``scalgui --edit-in-place
    FILE`` would, up to the event loop; returns its window."""
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from scalgui.ui import app, main_window

    windows = []
    real = main_window.MainWindow

    def make_window():  # the settings (recent files) in tmp_path, not the user's
        window = real(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(window)
        windows.append(window)
        return window

    monkeypatch.setattr(main_window, "MainWindow", make_window)
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    assert app.main(**kwargs) == 0
    return windows[0]


@pytest.fixture
def editor_env(tmp_path, monkeypatch):
    """Questions answered yes, errors collected; the recovery folder in ``tmp_path``."""
    pytest.importorskip("pytestqt")
    import pyqtgraph as pg

    from scalgui.ui.main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    errors = []
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *args: errors.append(args))
    folder = tmp_path / "recovery"
    monkeypatch.setenv("SCALGUI_RECOVERY_DIR", str(folder))
    prompts = []

    def choose(self, recovery):
        prompts.append(self.recovery_text(recovery))
        return "recover"

    from scalgui.ui.project_actions import ProjectActions

    monkeypatch.setattr(ProjectActions, "choose_recovery", choose)
    return folder, prompts, errors


def test_a_crash_is_offered_when_the_editor_starts_with_that_file(qtbot, tmp_path, monkeypatch, editor_env):
    folder, prompts, errors = editor_env
    take = write_take(tmp_path / "take.wav")
    crashed_doc = open_doc(take)
    crashed_doc.push(EDIT)
    crashed = Autosaver(folder)
    crashed.save(crashed_doc)
    crash(crashed)

    window = start_editor(monkeypatch, qtbot, tmp_path, path=str(take))
    assert len(prompts) == 1
    text, details = prompts[0]
    assert "take.wav, the file you are opening," in text
    assert "opens only if you Discard" in details
    qtbot.waitUntil(lambda: window.document is not None and window._open_job is None, timeout=60000)
    assert window.document.edits == (EDIT,) and window.document.unsaved  # the work, not the file
    assert Path(window.document.path) == take and errors == []
    assert not crashed.project_file.exists()
    window.shutdown()


def test_an_edit_in_place_session_autosaves_its_target(qtbot, tmp_path, monkeypatch, editor_env):
    folder, prompts, errors = editor_env
    take = write_take(tmp_path / "take.wav")
    window = start_editor(monkeypatch, qtbot, tmp_path, edit_in_place=str(take))
    assert prompts == []  # nothing to recover
    qtbot.waitUntil(lambda: window.document is not None and window._open_job is None, timeout=60000)
    assert window.edit_in_place.active
    window.apply_edit(EDIT)
    assert window.projects.autosave()
    qtbot.waitUntil(lambda: not window.projects.autosaving, timeout=60000)
    autosaver = window.projects.autosaver
    assert autosaver.folder == folder
    marker = json.loads(autosaver.marker.read_text())
    assert marker["in_place"] == {"path": str(take.resolve()), "backup": None}
    assert read_project(autosaver.project_file).edits == (EDIT,)
    window.shutdown()
    assert list(folder.iterdir()) == []  # a clean exit leaves nothing to recover


SECOND = Edit(Rectangle(0.1, 0.2, 200.0, 400.0), "gain", -20.0)


def crash_an_in_place_session(take: Path, folder: Path) -> bytes:
    """An editor on ``take`` in place: edited, written back once (``take.orig.wav`` keeps
    the original), edited again, autosaved, killed. Returns the bytes written back."""
    doc = open_doc(take)
    target = InPlaceTarget.of(take)
    doc.push(EDIT)
    doc.render()
    write_back(doc, target)
    doc.push(SECOND)
    crashed = Autosaver(folder)
    crashed.save(doc, in_place=target)
    crash(crashed)
    return take.read_bytes()


def test_recovered_in_place_work_writes_back_to_its_file_from_the_original_sound(qtbot, tmp_path, monkeypatch,
                                                                                 editor_env):
    folder, prompts, errors = editor_env
    take = write_take(tmp_path / "take.wav")
    original = load_audio(take).samples
    written = crash_an_in_place_session(take, folder)

    window = start_editor(monkeypatch, qtbot, tmp_path, edit_in_place=str(take))
    text, details = prompts[0]
    assert "the file you are opening" in text and "writes it back to take.wav" in details
    qtbot.waitUntil(lambda: window.document is not None and window._open_job is None, timeout=60000)
    doc = window.document
    assert doc.edits == (EDIT, SECOND) and Path(doc.path) == take
    # The edits apply to the original sound, not again to the render written back.
    assert np.array_equal(doc.samples, original)
    mode = window.edit_in_place
    assert mode.active and mode.target.backup == take.with_name("take.orig.wav")
    assert "editing in place: take.wav" in window.windowTitle()
    mode.save()
    qtbot.waitUntil(lambda: not window.rendering and take.read_bytes() != written, timeout=120000)
    assert errors == []
    assert existing_backups(take) == [take.with_name("take.orig.wav")]  # no second backup
    assert np.array_equal(load_audio(take.with_name("take.orig.wav")).samples, original)
    window.shutdown()


def test_in_place_work_recovered_by_a_plain_start_goes_back_to_its_file(qtbot, tmp_path, monkeypatch, editor_env):
    folder, prompts, errors = editor_env
    take = write_take(tmp_path / "take.wav")
    crash_an_in_place_session(take, folder)
    window = start_editor(monkeypatch, qtbot, tmp_path)  # `scalgui`, no file
    assert "writes it back to take.wav" in prompts[0][1]
    qtbot.waitUntil(lambda: window.document is not None and window._open_job is None, timeout=60000)
    assert window.document.edits == (EDIT, SECOND) and errors == []
    assert window.edit_in_place.active and window.edit_in_place.target.path == take
    assert "editing in place: take.wav" in window.windowTitle()
    qtbot.waitUntil(lambda: not window.projects.autosaving, timeout=60000)
    marker = json.loads(window.projects.autosaver.marker.read_text())  # autosaved at once, in place
    assert marker["in_place"] == {"path": str(take.resolve()), "backup": str(take.with_name("take.orig.wav"))}
    window.shutdown()


def test_in_place_work_written_back_after_its_last_autosave_is_recovered_onto_the_backup(tmp_path):
    take = write_take(tmp_path / "take.wav")
    original = load_audio(take).samples
    doc = open_doc(take)
    target = InPlaceTarget.of(take)
    doc.push(EDIT)
    doc.render()
    crashed = Autosaver(tmp_path / "recovery")
    crashed.save(doc, in_place=target)  # before the write back: the marker names no backup
    write_back(doc, target)
    crash(crashed)
    (recovery,) = find_recoveries(tmp_path / "recovery")
    restored = recovery.restore(device="cpu")
    assert np.array_equal(restored.doc.samples, original)
    assert restored.doc.rendered is not None  # the backup is the very sound: the render is kept
    assert restored.in_place.path == take and restored.in_place.backup == take.with_name("take.orig.wav")


# --------------------------------------------------------------------------- a hostile recovery folder

# The child's own peak (VmHWM): ru_maxrss starts at the parent's size at the fork.
FIND = r"""
import sys
from scalgui.app.recovery import find_recoveries
found = find_recoveries(sys.argv[1])
print(sorted(r.project.name for r in found), [r.title for r in found if r.project.name == "autosave-odd.scalproj"])
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024)
"""


def test_a_hostile_recovery_folder_is_listed_without_hanging_or_reading_it_all(tmp_path):
    folder = tmp_path / "recovery"
    folder.mkdir()
    for name, marker in [("fifo", None), ("huge", None), ("odd", {"pid": 10**30, "host": None, "saved_at": 1,
                                                                   "source_path": ["a"], "in_place": "x"})]:
        (folder / f"autosave-{name}.scalproj").write_bytes(b"PK")
        if marker is not None:
            (folder / f"autosave-{name}.json").write_text(json.dumps(marker))
    os.mkfifo(folder / "autosave-fifo.json")  # reading it would wait for a writer forever
    with open(folder / "autosave-huge.json", "wb") as f:
        f.truncate(8 * 2**30)  # sparse: 8 GiB that read_text would try to hold
    (folder / "autosave-dir.scalproj").mkdir()
    (folder / "autosave-zero.scalproj").symlink_to("/dev/zero")
    before = snapshot(folder)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", FIND, str(folder)], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    listed, peak_mb = done.stdout.splitlines()
    assert listed == "['autosave-fifo.scalproj', 'autosave-huge.scalproj', 'autosave-odd.scalproj'] " \
                     "['an unsaved sound']"
    assert int(peak_mb) < 1024
    assert snapshot(folder) == before
    print(f"find_recoveries on a hostile folder: {seconds:.1f} s, peak {peak_mb} MB")
