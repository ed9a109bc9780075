"""The Plugins menu with real mouse and key events: the menu lists the plugins (broken ones
disabled, with why), a form built from the parameters applies one undoable edit to the
selection only, in a worker thread that keeps the window responsive, with progress and a
Cancel that leaves everything as it was; a plugin that fails leaves the document and
history unchanged."""
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg
import torch
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtWidgets import QApplication, QDialogButtonBox, QMenu

from scalgui.app.document import Document
from scalgui.dsp.edits import TimeRange
from scalgui.plugins import PluginCancelled, PluginEdit, Registry, plugin_run, run_plugin, set_default_registry
from scalgui.ui.main_window import MainWindow
from scalgui.ui.testing import mouse_drag, screen_line, show_window

ROOT = Path(__file__).resolve().parent.parent

FAILING = '''
from scalgui.plugins import Param, Plugin

def process(ctx):
    raise RuntimeError("out of ideas")

PLUGIN = Plugin("failing", "Failing", "Fails when run.", params=(Param("n", "int", 1),), process=process)
'''

SLOW = '''
import time
from scalgui.plugins import Param, Plugin

def process(ctx):
    steps = int(ctx.params["steps"])
    for i in range(steps):
        time.sleep(0.02)  # a long computation that releases the GIL, as torch does
        if ctx.params["cooperative"]:
            ctx.progress((i + 1) / steps, f"step {i + 1} of {steps}")
    for k in ctx.wavelets:
        ctx.band(k).mul_(0.5)
    return ctx.magnitudes

PLUGIN = Plugin("slow", "Slow", "Halves everything, slowly.",
                params=(Param("steps", "int", 40, minimum=1, maximum=100000), Param("cooperative", "bool", True)),
                process=process)
'''


@pytest.fixture
def registry(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.py").write_text("import scalgui_not_installed\n")
    (extra / "failing.py").write_text(textwrap.dedent(FAILING))
    (extra / "slow.py").write_text(textwrap.dedent(SLOW))
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
    with qtbot.waitSignal(w.plugin_runner.applied, timeout=20000):  # runs in a worker
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.analysing)
    _reactivate(qtbot, w)

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
    qtbot.waitUntil(lambda: not w.analysing)  # a redo runs the plugin again, in a worker
    assert doc.edits == (edit,)
    assert _band_ratio_db(doc, 640.0, t0 + 0.05, t1 - 0.05) == pytest.approx(-20.0, abs=0.01)


def test_without_a_selection_the_plugin_acts_on_the_whole_sound(qtbot, window):
    w = window
    _choose(qtbot, _open_plugins_menu(qtbot, w), "Transpose…")
    dialog = w.plugin_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert not dialog.selection_only.isChecked() and not dialog.selection_only.isEnabled()
    with qtbot.waitSignal(w.plugin_runner.applied, timeout=20000):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.analysing)
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
    with qtbot.waitSignal(w.plugin_runner.failed, timeout=20000):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.analysing)
    assert w.document.edits == () and w.undo_stack.count() == 0
    ((title, text, detail),) = w.errors
    assert title == "Plugin failed" and "Failing could not be applied" in text
    assert "failing" in detail and "RuntimeError: out of ideas" in detail
    assert w.view.editable and w.render_action.isEnabled()  # the window is free again


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


# --------------------------------------------------------------------------- in the background


def _apply_from_menu(qtbot, w, text, values=None):
    """Open the plugin's form from the menu, type ``values`` (by parameter name), press OK."""
    _choose(qtbot, _open_plugins_menu(qtbot, w), text)
    dialog = w.plugin_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    for name, value in (values or {}).items():
        editor = dialog.fields[name].editor
        if isinstance(value, bool):
            if editor.isChecked() != value:
                editor.setFocus()
                qtbot.keyClick(editor, Qt.Key.Key_Space)
            assert editor.isChecked() == value
        else:
            _type(qtbot, editor, str(value))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    _reactivate(qtbot, w)


def _reactivate(qtbot, w):
    # The offscreen platform leaves a hidden dialog the active window (a window manager
    # would hand activation back): the window's shortcuts (Ctrl+Z) need it active.
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)


class _TickGaps:
    """A 10 ms timer in the GUI thread: the longest gap between its ticks is how long the
    event loop was blocked."""

    def __init__(self):
        self.ticks = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:]))


def test_a_slow_plugin_runs_in_the_background_with_progress(qtbot, window):
    w = window
    doc = w.document
    before = doc.target().groups[3].clone()
    history = w.undo_stack.count()
    with qtbot.waitSignal(w.plugin_runner.applied, timeout=30000) as applied:
        _apply_from_menu(qtbot, w, "Slow…", {"steps": 60})  # 60 x 20 ms
        gaps = _TickGaps()
        qtbot.waitUntil(lambda: w.analysis_progress.maximum() == 100, timeout=5000)  # progress arrives
        assert w.analysis_progress.isVisible() and w.analysis_cancel_button.isVisible()
        assert "step" in w.analysis_label.text()
        # Nothing may race with it: no render, no edits, no undo, no second plugin.
        assert w.analysing and not w.render_action.isEnabled() and not w.start_render()
        assert not w.undo_action.isEnabled() and not w.view.editable
        assert not w.plugin_actions["transpose"].isEnabled()
        assert doc.edits == ()  # not yet
    longest = gaps.stop()
    assert longest < 0.1, f"the event loop stalled for {longest * 1000:.0f} ms"
    assert len(gaps.ticks) > 20
    (edit,) = doc.edits
    assert applied.args == [edit] and edit.plugin == "slow"
    assert w.undo_stack.count() == history + 1 and w.undo_stack.undoText().startswith("Slow")
    torch.testing.assert_close(doc.target().groups[3], 0.5 * before)
    qtbot.waitUntil(lambda: not w.analysing)
    assert not w.analysis_progress.isVisible() and not w.analysis_cancel_button.isVisible()
    assert w.render_action.isEnabled() and w.undo_action.isEnabled() and w.view.editable
    qtbot.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.edits == ()
    torch.testing.assert_close(doc.target().groups[3], before)
    # Redo runs the plugin again (the target is cached): in the background too.
    qtbot.waitUntil(lambda: not w.view.raster_busy)
    gaps = _TickGaps()
    qtbot.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert w.analysing and w.analysis_label.text() == "Redoing the plugin…"
    qtbot.waitUntil(lambda: not w.analysing, timeout=20000)
    assert gaps.stop() < 0.1
    assert doc.edits == (edit,) and w.undo_stack.index() == history + 1
    torch.testing.assert_close(doc.target().groups[3], 0.5 * before)


@pytest.mark.parametrize("cooperative", [True, False], ids=["checks", "never-checks"])
def test_cancel_leaves_the_document_and_history_unchanged(qtbot, window, cooperative):
    w = window
    doc = w.document
    before = [g.clone() for g in doc.target().groups]
    history = w.undo_stack.count()
    with qtbot.waitSignal(w.plugin_runner.cancelled, timeout=30000):
        _apply_from_menu(qtbot, w, "Slow…", {"steps": 100, "cooperative": cooperative})  # 2 s
        qtbot.waitUntil(lambda: w.analysis_cancel_button.isVisible(), timeout=5000)
        qtbot.wait(200)
        started = time.perf_counter()
        qtbot.mouseClick(w.analysis_cancel_button, Qt.MouseButton.LeftButton)
        assert w.analysis_label.text() == "Cancelling…" and not w.analysis_cancel_button.isEnabled()
    if cooperative:  # stops at its next check; one that never checks runs on, and its result is dropped
        assert time.perf_counter() - started < 0.5
    qtbot.waitUntil(lambda: not w.analysing)
    assert doc.edits == () and w.undo_stack.count() == history and w.errors == []
    assert "cancelled" in w.statusBar().currentMessage()
    for a, b in zip(doc.target().groups, before):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert w.render_action.isEnabled() and w.view.editable


def test_a_plugin_after_a_failed_one_lands_alone(qtbot, window):
    w = window
    with qtbot.waitSignal(w.plugin_runner.failed, timeout=20000):
        _apply_from_menu(qtbot, w, "Failing…")
    qtbot.waitUntil(lambda: not w.analysing)
    with qtbot.waitSignal(w.plugin_runner.applied, timeout=20000):
        _apply_from_menu(qtbot, w, "Slow…", {"steps": 1})
    qtbot.waitUntil(lambda: not w.analysing)
    (edit,) = w.document.edits
    assert edit.plugin == "slow" and w.undo_stack.count() == 1 and len(w.errors) == 1


def test_the_host_stops_a_cancelled_plugin_between_and_inside_its_steps(registry, stereo_music, sample_rate):
    from scalgui.dsp.phase import CancelToken

    doc = Document.from_samples(stereo_music[:, :22050], sample_rate, device="cpu")
    slow = registry.get("slow")
    token = CancelToken()
    reports = []

    def progress(fraction, text):
        reports.append((fraction, text))
        if len(reports) == 3:
            token.cancel()

    with plugin_run(cancel=token, progress=progress):
        with pytest.raises(PluginCancelled):
            run_plugin(slow, doc.coefficients, params={"steps": 1000})
        with pytest.raises(PluginCancelled):  # replaying an edit list never turns it into a warning
            doc.push(PluginEdit.create(slow, {"steps": 5}))
    assert len(reports) == 3 and reports[0] == (pytest.approx(0.001), "step 1 of 1000")
    assert doc.edits == ()
    # Outside plugin_run the checks do nothing.
    out = run_plugin(slow, doc.coefficients, params={"steps": 2})
    torch.testing.assert_close(out[3], 0.5 * doc.coefficients.groups[3].abs())


def test_texture_synthesis_reports_each_evaluation_and_can_be_stopped():
    import importlib.util

    spec = importlib.util.spec_from_file_location("texture_plugin", ROOT / "plugins" / "texture.py")
    texture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(texture)
    reference = np.random.default_rng(0).standard_normal((1, 2048)).astype(np.float32)
    seen = []

    def step(i, n):
        seen.append((i, n))
        if i == 2:
            raise PluginCancelled("texture: cancelled")

    with pytest.raises(PluginCancelled):
        texture.synthesise(reference, 2048, J=6, Q=2, iterations=100, seed=1, step=step)
    assert seen == [(0, 126), (1, 126), (2, 126)]


def test_source_chain_apply_and_undo_run_in_the_background(qtbot, window, monkeypatch):
    import threading

    from scalgui.audio.effects import EffectChain, effect

    w = window
    doc, panel = w.document, w.effects_panel
    threads = []
    set_chain = doc.set_effect_chain

    def slow_set(chain):  # a long sound: re-analysis takes a while
        threads.append(threading.current_thread())
        for _ in range(25):
            time.sleep(0.02)
        set_chain(chain)

    monkeypatch.setattr(doc, "set_effect_chain", slow_set)
    original = doc.samples.copy()
    panel.set_chain(EffectChain("source", (effect("Gain", gain_db=-6.0),)))
    w.effects_dock.raise_()
    qtbot.waitUntil(panel.isVisible)
    gaps = _TickGaps()
    with qtbot.waitSignal(panel.applied, timeout=20000):
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
        assert w.analysing and w.analysis_label.text().startswith("Applying effects")
        assert not w.render_action.isEnabled() and not w.start_render()  # never on the old analysis
        assert not w.plugin_runner.start(PluginEdit("slow"))
    qtbot.waitUntil(lambda: not w.analysing)
    np.testing.assert_allclose(doc.samples, original * 10 ** (-6 / 20), rtol=1e-6, atol=1e-7)
    w.view.setFocus()
    with qtbot.waitSignal(panel.restored, timeout=20000):
        qtbot.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert w.analysing and not w.undo_action.isEnabled() and not w.redo_action.isEnabled()
        assert w.analysis_label.text().startswith("Restoring effects")
    qtbot.waitUntil(lambda: not w.analysing)
    longest = gaps.stop()
    assert longest < 0.1, f"the event loop stalled for {longest * 1000:.0f} ms"
    np.testing.assert_array_equal(doc.samples, original)
    assert threads and threading.main_thread() not in threads
    assert w.redo_action.isEnabled() and w.render_action.isEnabled()
