"""External-editor mode: ``scalgui --edit-in-place FILE`` writes the edit back over FILE in
its own format, rate and bit depth, after keeping a backup of the original."""
import numpy as np
import pytest

from scalgui.app.document import Document
from scalgui.app.in_place import InPlaceTarget, backup_path, write_back
from scalgui.audio import audio_info, load_audio, save_audio
from scalgui.audio.errors import AudioWriteError, UnsupportedFormat
from scalgui.cli import main
from scalgui.dsp.edits import Edit, Rectangle

SR = 48000
TONES_HZ = (300.0, 1000.0, 3000.0)
REGION = (0.7, 1.3, 700.0, 1500.0)  # seconds and Hz around the 1 kHz tone


def _tones(seconds=2.0):
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in TONES_HZ)
    return np.stack([x, x * 0.8]).astype(np.float32)


def _band_db(x, t0, t1, hz):
    """Level in dB of the partial at ``hz`` over ``t0..t1`` s (Hann-windowed FFT peak)."""
    seg = x[0, int(t0 * SR):int(t1 * SR)]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / SR)
    near = np.abs(freqs - hz) < 20
    return 20 * np.log10(spectrum[near].max() + 1e-12)


@pytest.fixture
def take(tmp_path):
    path = tmp_path / "take 1.wav"  # a space, as workstations name their takes
    save_audio(path, _tones(), SR, bit_depth=24)
    return path


def test_backup_names_never_replace_an_existing_backup(tmp_path):
    path = tmp_path / "a.flac"
    assert backup_path(path).name == "a.orig.flac"
    (tmp_path / "a.orig.flac").write_bytes(b"old")
    assert backup_path(path).name == "a.orig.1.flac"
    (tmp_path / "a.orig.1.flac").write_bytes(b"older")
    assert backup_path(path).name == "a.orig.2.flac"


def test_write_back_keeps_format_rate_bit_depth_and_one_backup(take):
    original = take.read_bytes()
    target = InPlaceTarget.of(take)
    assert (target.format, target.sample_rate, target.bit_depth) == ("wav", SR, 24)
    doc = Document.open(take, device="cpu")
    doc.push(Edit(Rectangle(*REGION), "gain", -30.0))
    doc.render()
    write_back(doc, target)
    assert target.backup == take.with_name("take 1.orig.wav")
    assert target.backup.read_bytes() == original
    info = audio_info(take)
    assert (info["format"], info["sample_rate"], info["bit_depth"], info["channels"]) == ("wav", SR, 24, 2)
    # A second save overwrites the file again and keeps the first backup (the original).
    doc.push(Edit(Rectangle(0.1, 0.4, 2500.0, 3500.0), "gain", -30.0))
    doc.render()
    write_back(doc, target)
    assert target.backup.read_bytes() == original
    assert sorted(p.name for p in take.parent.iterdir()) == ["take 1.orig.wav", "take 1.wav"]


def test_a_failed_backup_overwrites_nothing(take, monkeypatch):
    import scalgui.app.in_place as in_place

    original = take.read_bytes()
    doc = Document.open(take, device="cpu")
    doc.push(Edit(Rectangle(*REGION), "gain", -30.0))
    doc.render()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(in_place.shutil, "copy2", disk_full)
    with pytest.raises(AudioWriteError, match=r"cannot keep a backup .*No space left.*nothing was overwritten"):
        write_back(doc, InPlaceTarget.of(take))
    assert take.read_bytes() == original
    assert sorted(p.name for p in take.parent.iterdir()) == ["take 1.wav"]


def test_files_that_cannot_be_written_back_are_refused_before_editing(tmp_path, capsys):
    flac_named_wav = tmp_path / "x.wav"
    save_audio(tmp_path / "x.flac", _tones(0.2), SR)
    (tmp_path / "x.flac").rename(flac_named_wav)
    with pytest.raises(UnsupportedFormat, match=r"'.*x\.wav'.*holds flac audio under a \.wav name"):
        InPlaceTarget.of(flac_named_wav)
    assert main(["--edit-in-place", str(flac_named_wav)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scalgui: error: ") and "x.wav" in err[0]
    assert main(["--edit-in-place", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav': no such file" in capsys.readouterr().err


def test_ctrl_s_in_the_window_writes_the_edit_back(qtbot, take, tmp_path, monkeypatch):
    pytest.importorskip("pytestqt")
    import pyqtgraph as pg
    from PyQt6.QtCore import QSettings, Qt
    from PyQt6.QtGui import QAction

    from scalgui.ui.edit_in_place import install_edit_in_place
    from scalgui.ui.main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    errors = []
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *a: errors.append(a))
    original = take.read_bytes()
    before = load_audio(take).samples

    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    mode = install_edit_in_place(w, take)
    qtbot.waitUntil(lambda: w.document is not None, timeout=30000)
    assert "editing in place" in w.windowTitle() and "take 1.wav" in w.windowTitle()
    assert mode.save_action.isEnabled()
    owners = [a for a in w.findChildren(QAction) if "Ctrl+S" in [k.toString() for k in a.shortcuts()]]
    assert owners == [mode.save_action]  # Ctrl+S is not ambiguous: it writes the file back

    w.apply_edit(Edit(Rectangle(*REGION), "gain", -30.0))
    w.activateWindow()
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    backup = take.with_name("take 1.orig.wav")
    qtbot.waitUntil(lambda: not w.rendering and backup.exists() and take.read_bytes() != original, timeout=120000)
    assert errors == []

    assert backup.read_bytes() == original
    info = audio_info(take)
    assert (info["format"], info["sample_rate"], info["bit_depth"], info["channels"]) == ("wav", SR, 24, 2)
    after = load_audio(take).samples
    t0, t1 = REGION[0] + 0.1, REGION[1] - 0.1
    drop = _band_db(before, t0, t1, 1000.0) - _band_db(after, t0, t1, 1000.0)
    assert drop > 20.0
    # Outside the rectangle the sound is kept: the other partials and the time outside.
    assert abs(_band_db(before, t0, t1, 3000.0) - _band_db(after, t0, t1, 3000.0)) < 1.0
    assert abs(_band_db(before, 0.0, 0.4, 1000.0) - _band_db(after, 0.0, 0.4, 1000.0)) < 1.0
    assert not w.isWindowModified()
    w.set_document(None)
    assert not mode.save_action.isEnabled() and "editing in place" not in w.windowTitle()
    # Out of the mode, Ctrl+S is Save Project's again (where the window has projects).
    if getattr(w, "projects", None) is not None:
        assert [k.toString() for k in w.projects.save_action.shortcuts()] == ["Ctrl+S"]
        assert mode.save_action.shortcuts() == []
