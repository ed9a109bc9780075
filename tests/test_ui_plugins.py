"""The Plugins menu with real mouse and key events: the menu lists the plugins (broken ones
disabled, with why), a form built from the parameters applies one undoable edit to the
selection only, and a plugin that fails leaves the document and history unchanged."""
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
import torch
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import QApplication, QDialogButtonBox, QMenu

from scalgui.app.document import Document
from scalgui.dsp.edits import TimeRange
from scalgui.plugins import PluginEdit, Registry, set_default_registry
from scalgui.ui.main_window import MainWindow
from scalgui.ui.testing import mouse_drag, screen_line, show_window

ROOT = Path(__file__).resolve().parent.parent

FAILING = '''
from scalgui.plugins import Param, Plugin

def process(ctx):
    raise RuntimeError("out of ideas")

PLUGIN = Plugin("failing", "Failing", "Fails when run.", params=(Param("n", "int", 1),), process=process)
'''


@pytest.fixture
def registry(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.py").write_text("import scalgui_not_installed\n")
    (extra / "failing.py").write_text(textwrap.dedent(FAILING))
    registry = Registry.discover(folders=[ROOT / "plugins", extra], entry_points=False)
    previous = set_default_registry(registry)
    yield registry
    set_default_registry(previous)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, registry, stereo_music, sample_rate):
    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    errors = []
    monkeypatch.setattr(MainWindow, "show_error", lambda self, title, text, detail: errors.append((title, text, detail)))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.errors = errors
    show_window(qtbot, w, Document.from_samples(stereo_music, sample_rate, device="cpu"))
    yield w
    w.set_document(None)


def _open_plugins_menu(qtbot, w) -> QMenu:
    bar = w.menuBar()
    (title,) = [a for a in bar.actions() if a.text().replace("&", "") == "Plugins"]
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(title).center())
    menu = title.menu()
    qtbot.waitUntil(menu.isVisible, timeout=3000)
    return menu


def _choose(qtbot, menu: QMenu, text: str):
    (action,) = [a for a in menu.actions() if a.text() == text]
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    return action


def _type(qtbot, editor, text: str) -> None:
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClicks(editor, text)


def _band_ratio_db(doc, hz, t0, t1):
    """Target over source in dB, channel 0, in the band nearest ``hz`` over [t0, t1] s."""
    b = doc.frame.bands
    k = int(b.wavelet_indices[np.argmin(np.abs(np.log2(b.centre_hz[b.wavelet_indices] / hz)))])
    t = doc.coefficients.times(k)
    inside = (t >= t0) & (t <= t1)
    target = doc.target().groups[b.group[k]][0, b.row[k]][inside]
    source = doc.coefficients.groups[b.group[k]][0, b.row[k]].abs()[inside]
    return float(20 * torch.log10(target.norm() / source.norm()))


def _band_power_db(doc, layer, hz, t0=0.2, t1=1.8):
    """Mean power in dB of channel 0 in the band nearest ``hz`` over [t0, t1] s."""
    b = doc.frame.bands
    k = int(b.wavelet_indices[np.argmin(np.abs(np.log2(b.centre_hz[b.wavelet_indices] / hz)))])
    t = doc.coefficients.times(k)
    coeffs = doc.target() if layer == "target" else doc.coefficients.map(torch.abs)
    values = coeffs.groups[b.group[k]][0, b.row[k]][(t >= t0) & (t <= t1)]
    return float(10 * torch.log10((values**2).mean()))


def test_the_menu_lists_plugins_and_shows_broken_ones_disabled_with_why(qtbot, window):
    menu = _open_plugins_menu(qtbot, window)
    texts = [a.text() for a in menu.actions() if a.text()]
    for title in ("Blur / Smear…", "Denoise…", "Freeze…", "Harmonic Enhance…", "Transpose…", "Failing…"):
        assert title in texts
    assert menu.toolTipsVisible()
    (broken,) = window.broken_plugin_actions
    assert broken.text() == "broken.py (could not be loaded)" and not broken.isEnabled()
    assert broken.toolTip() == "import failed: ModuleNotFoundError: No module named 'scalgui_not_installed'"
    assert window.plugin_actions["transpose"].toolTip().startswith("Shift the selection up or down by semitones")
    menu.close()


def test_a_plugin_form_applies_one_undoable_edit_to_the_selection_only(qtbot, window):
    w, view = window, window.view
    qtbot.keyClick(view, Qt.Key.Key_T)  # time-range selection tool
    mouse_drag(view, screen_line(view, (0.6, 300.0), (1.2, 2000.0), 8))
    (selection, _), = view.selection.parts
    assert isinstance(selection, TimeRange) and w.document.edits == ()
    history = w.undo_stack.count()  # selections may have their own history entries

    _choose(qtbot, _open_plugins_menu(qtbot, w), "Harmonic Enhance…")
    dialog = w.plugin_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert set(dialog.fields) == {"fundamental_hz", "gain_db", "width_cents", "count"}
    assert dialog.fields["gain_db"].editor.suffix() == " dB"
    assert dialog.fields["gain_db"].editor.minimum() == -60 and dialog.fields["gain_db"].editor.maximum() == 24
    assert dialog.selection_only.isChecked() and dialog.selection_only.isEnabled()
    _type(qtbot, dialog.fields["fundamental_hz"].editor, "320")  # a band centre: its harmonics are too
    _type(qtbot, dialog.fields["gain_db"].editor, "-20")
    _type(qtbot, dialog.fields["count"].editor, "3")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)

    doc = w.document
    (edit,) = doc.edits
    assert isinstance(edit, PluginEdit) and edit.plugin == "harmonics" and edit.selection == selection
    assert edit.values == {"fundamental_hz": 320.0, "gain_db": -20.0, "width_cents": 50.0, "count": 3}
    assert w.undo_stack.count() == history + 1
    assert w.undo_stack.text(history) == "Harmonic Enhance (count 3, fundamental_hz 320 Hz, gain_db -20 dB, " \
                                   "width_cents 50 cents) on selection"
    # The harmonics of 320 Hz change inside the selection, and nothing changes outside it.
    t0, t1 = selection.t0 + selection.feather_s, selection.t1 - selection.feather_s
    before = selection.t0 - selection.feather_s - 0.05
    after = selection.t1 + selection.feather_s + 0.05
    assert _band_ratio_db(doc, 640.0, t0 + 0.05, t1 - 0.05) == pytest.approx(-20.0, abs=0.01)
    assert _band_ratio_db(doc, 640.0, 0.05, before) == pytest.approx(0.0, abs=1e-6)
    assert _band_ratio_db(doc, 640.0, after, 1.95) == pytest.approx(0.0, abs=1e-6)
    assert _band_ratio_db(doc, 1280.0, t0 + 0.05, t1 - 0.05) == pytest.approx(0.0, abs=1e-6)  # 4th: count is 3
    assert _band_ratio_db(doc, 453.0, t0 + 0.05, t1 - 0.05) == pytest.approx(0.0, abs=1e-6)  # between harmonics

    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.edits == () and w.undo_stack.index() == history
    assert _band_ratio_db(doc, 640.0, t0 + 0.05, t1 - 0.05) == pytest.approx(0.0, abs=1e-6)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.edits == (edit,)
    assert _band_ratio_db(doc, 640.0, t0 + 0.05, t1 - 0.05) == pytest.approx(-20.0, abs=0.01)


def test_without_a_selection_the_plugin_acts_on_the_whole_sound(qtbot, window):
    w = window
    _choose(qtbot, _open_plugins_menu(qtbot, w), "Transpose…")
    dialog = w.plugin_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert not dialog.selection_only.isChecked() and not dialog.selection_only.isEnabled()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    (edit,) = w.document.edits
    assert edit.selection is None and edit.values == {"semitones": 12.0}
    # Each band now holds what the band an octave (12 bands) below held.
    doc = w.document
    for hz in (300.0, 1000.0):
        assert _band_power_db(doc, "target", 2 * hz) == pytest.approx(_band_power_db(doc, "source", hz), abs=0.5)


def test_a_failing_plugin_reports_and_leaves_document_and_history_alone(qtbot, window):
    w = window
    _choose(qtbot, _open_plugins_menu(qtbot, w), "Failing…")
    dialog = w.plugin_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert w.document.edits == () and w.undo_stack.count() == 0
    ((title, text, detail),) = w.errors
    assert title == "Plugin failed" and "Failing could not be applied" in text
    assert "failing" in detail and "RuntimeError: out of ideas" in detail
    assert QApplication.overrideCursor() is None  # the wait cursor is gone


def test_a_form_with_a_missing_file_says_so_and_stays_open(qtbot, window):
    from scalgui.plugins import Param, Plugin
    from scalgui.ui.plugin_menu import PluginDialog

    plugin = Plugin("pic", "Picture", "Needs a file.",
                    params=(Param("image", "file", filter="Images (*.png)"), Param("span", "range", unit="s"),
                            Param("mode", "choice", "soft", choices=("hard", "soft")), Param("on", "bool", True)),
                    process=lambda ctx: ctx.magnitudes)
    dialog = PluginDialog(plugin, TimeRange(0.5, 0.9, feather_s=0.0), 2.0, window)
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.fields["mode"].editor.currentText() == "soft" and dialog.fields["on"].editor.isChecked()
    qtbot.mouseClick(dialog.fields["span"].from_selection, Qt.MouseButton.LeftButton)
    assert dialog.values()["span"] == pytest.approx((0.5, 0.9))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "parameter 'image' needs a file" in dialog.error.text()
    _type(qtbot, dialog.fields["image"].editor, "/tmp/picture.png")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert dialog.edit().values == {"image": "/tmp/picture.png", "span": (0.5, 0.9), "mode": "soft", "on": True}
