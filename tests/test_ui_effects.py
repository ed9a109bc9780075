"""The Effects panel driven with real mouse and key events: build a chain, apply it to the
document (one undo step), preview it, save and load presets, report broken plugins."""
import json

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QUndoStack
from PyQt6.QtWidgets import QApplication, QLineEdit

from scalgui.app.document import Document
from scalgui.audio.effects import EffectChain, effect, load_preset, save_preset
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, Rectangle
from scalgui.ui.effects_panel import EffectsPanel, FloatControl

SR = 22050


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


@pytest.fixture
def doc():
    left = signals.chord((220.0, 330.0), 1.0, SR, amplitude=0.3)
    return Document(np.stack([left, 0.5 * left]), SR, device="cpu")


@pytest.fixture
def panel(qtbot, doc):
    p = EffectsPanel()
    p.undo_stack = QUndoStack(p)
    p.set_document(doc)
    qtbot.addWidget(p)
    p.resize(420, 760)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def click(qtbot, widget, pos=None):
    if pos is None:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
    else:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def click_check_box(qtbot, box):
    """Click on a check box's indicator (a box without text is not clickable elsewhere)."""
    from PyQt6.QtCore import QPoint
    from PyQt6.QtWidgets import QStyle

    width = box.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth, None, box)
    click(qtbot, box, QPoint(width // 2 + 1, box.height() // 2))


def choose_from_add_menu(qtbot, panel, path):
    """Click Add, then each menu entry of ``path`` (e.g. ("Utility", "Gain")) in turn."""
    click(qtbot, panel.add_button)
    menu = panel.add_menu
    qtbot.waitUntil(menu.isVisible)
    for text in path:
        action = next(a for a in menu.actions() if a.text() == text)
        centre = menu.actionGeometry(action).center()
        qtbot.mouseMove(menu, centre)
        click(qtbot, menu, centre)
        if action.menu() is not None:
            menu = action.menu()
            qtbot.waitUntil(menu.isVisible)
    qtbot.waitUntil(lambda: not panel.add_menu.isVisible())


def type_into_spin(qtbot, control: FloatControl, text: str):
    """Click into the spin box, select what is there, type ``text`` and press Enter."""
    line = control.spin.findChild(QLineEdit)
    click(qtbot, line)
    qtbot.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def apply_and_wait(qtbot, panel):
    with qtbot.waitSignal(panel.applied, timeout=20000):
        click(qtbot, panel.apply_button)
    qtbot.waitUntil(lambda: not panel.busy)


def test_building_a_source_chain_with_the_mouse_changes_the_documents_audio(qtbot, panel, doc):
    original = doc.samples.copy()
    doc.push(Edit(Rectangle(0.3, 0.6, 180, 260), "gain", -20))
    # The chain before analysis: picked with the keyboard in the combo box.
    panel.placement_combo.setFocus()
    qtbot.keyClick(panel.placement_combo, Qt.Key.Key_Up)
    assert panel.placement == "source"

    choose_from_add_menu(qtbot, panel, ("Utility", "Gain"))
    assert [s.type for s in panel.chain] == ["Gain"] and panel.effect_list.count() == 1
    type_into_spin(qtbot, panel.form.widgets["gain_db"], "6")
    assert panel.chain[0].params["gain_db"] == 6.0
    assert panel.form.widgets["gain_db"].spin.suffix() == " dB"

    choose_from_add_menu(qtbot, panel, ("Utility", "Invert"))
    click(qtbot, panel.up_button)  # Invert moves before Gain
    assert [s.type for s in panel.chain] == ["Invert", "Gain"]
    assert panel.effect_list.currentRow() == 0
    click(qtbot, panel.bypass_box)  # ...and is bypassed
    assert panel.chain[0].bypass and panel.effect_list.item(0).checkState() == Qt.CheckState.Unchecked
    np.testing.assert_array_equal(doc.samples, original)  # a draft: nothing applied yet
    assert panel.apply_button.isEnabled() and "not applied" in panel.status.text()

    apply_and_wait(qtbot, panel)
    np.testing.assert_allclose(doc.samples, original * 10 ** (6 / 20), rtol=1e-6, atol=1e-7)
    assert doc.effect_chain("source") == panel.chain and len(doc.edits) == 1 and doc.unrendered_edits
    assert not panel.apply_button.isEnabled()

    stack = panel.undo_stack
    assert stack.count() == 1 and stack.undoText().startswith("Effects: source chain")
    with qtbot.waitSignal(panel.restored, timeout=20000):  # undo re-analyses in a worker
        stack.undo()
    np.testing.assert_array_equal(doc.samples, original)
    assert len(panel.chain) == 0 and panel.effect_list.count() == 0  # the panel follows the document
    with qtbot.waitSignal(panel.restored, timeout=20000):
        stack.redo()
    np.testing.assert_allclose(doc.samples, original * 10 ** (6 / 20), rtol=1e-6, atol=1e-7)
    assert [s.type for s in panel.chain] == ["Invert", "Gain"]


def test_remove_with_the_delete_key_and_revert(qtbot, panel):
    choose_from_add_menu(qtbot, panel, ("Filters and EQ", "HighpassFilter"))
    choose_from_add_menu(qtbot, panel, ("Time and space", "Reverb"))
    item = panel.effect_list.item(0)
    click(qtbot, panel.effect_list.viewport(), panel.effect_list.visualItemRect(item).center())
    assert panel.effect_list.currentRow() == 0
    qtbot.keyClick(panel.effect_list, Qt.Key.Key_Delete)
    assert [s.type for s in panel.chain] == ["Reverb"]
    click(qtbot, panel.revert_button)
    assert len(panel.chain) == 0 and not panel.revert_button.isEnabled()


def test_parameter_widgets_come_from_the_registry(qtbot, panel):
    choose_from_add_menu(qtbot, panel, ("Filters and EQ", "LadderFilter"))
    form = panel.form
    assert set(form.widgets) == {"mode", "cutoff_hz", "resonance", "drive"}
    cutoff = form.widgets["cutoff_hz"]
    assert (cutoff.spin.minimum(), cutoff.spin.maximum(), cutoff.spin.suffix()) == (20.0, 20000.0, " Hz")
    # The slider is logarithmic for frequencies: its middle is the geometric mean.
    cutoff.slider.setFocus()
    qtbot.keyClick(cutoff.slider, Qt.Key.Key_End)
    assert panel.chain[0].params["cutoff_hz"] == pytest.approx(20000.0)
    cutoff.slider.setValue(500)
    assert panel.chain[0].params["cutoff_hz"] == pytest.approx((20 * 20000) ** 0.5, rel=0.01)
    mode = form.widgets["mode"]
    mode.setFocus()
    qtbot.keyClick(mode, Qt.Key.Key_Down)
    assert panel.chain[0].params["mode"] == "HPF12"
    choose_from_add_menu(qtbot, panel, ("Dynamics", "BrickwallLimiter"))
    true_peak = panel.form.widgets["true_peak"]
    click_check_box(qtbot, true_peak)
    assert panel.chain[1].params["true_peak"] is True


def test_convolution_asks_for_its_impulse_response(qtbot, panel, doc, tmp_path, monkeypatch):
    from scalgui.audio import save_audio

    ir = np.zeros((1, 400), np.float32)
    ir[0, 100] = 1.0  # a pure 100-sample delay
    ir_path = tmp_path / "delay.wav"
    save_audio(ir_path, ir, SR, bit_depth=32)
    monkeypatch.setattr(panel, "ask_open_path", lambda *a: str(ir_path))
    choose_from_add_menu(qtbot, panel, ("Time and space", "Convolution"))
    assert panel.chain[0].params["impulse_response"] == str(ir_path)
    assert panel.form.widgets["impulse_response"].line.text() == str(ir_path)
    click_check_box(qtbot, panel.form.widgets["normalize"])  # off: the impulse response's own level
    apply_and_wait(qtbot, panel)
    out = doc.output()
    np.testing.assert_allclose(out[:, 100:], doc.samples[:, :-100], atol=1e-5)


def test_preview_plays_the_draft_over_a_span_without_changing_the_document(qtbot, panel, doc):
    choose_from_add_menu(qtbot, panel, ("Utility", "Gain"))
    type_into_spin(qtbot, panel.form.widgets["gain_db"], "-20")
    with qtbot.waitSignal(panel.previewReady, timeout=20000) as blocker:
        click(qtbot, panel.preview_button)
    start, samples = blocker.args[0]
    assert start == 0.0 and samples.shape == (2, doc.frames + SR)  # the whole 1 s sound and a 1 s tail
    np.testing.assert_allclose(samples[:, :doc.frames], doc.samples * 0.1, rtol=1e-5, atol=1e-7)
    assert doc.effect_chain("render") == EffectChain("render")


def test_presets_save_and_load_through_the_panel(qtbot, panel, doc, tmp_path, monkeypatch):
    choose_from_add_menu(qtbot, panel, ("Modulation", "Chorus"))
    type_into_spin(qtbot, panel.form.widgets["rate_hz"], "3.5")
    path = tmp_path / "mine"
    monkeypatch.setattr(panel, "ask_save_path", lambda *a: str(path))
    click(qtbot, panel.save_button)
    saved = tmp_path / "mine.json"
    assert load_preset(saved) == (panel.chain,) and panel.chain[0].params["rate_hz"] == 3.5
    click(qtbot, panel.revert_button)
    assert len(panel.chain) == 0

    both = save_preset(tmp_path / "both.json", [EffectChain("source", (effect("Gain", gain_db=-6.0),)),
                                                EffectChain("render", (effect("Invert"),))])
    monkeypatch.setattr(panel, "ask_open_path", lambda *a: str(both))
    click(qtbot, panel.load_button)
    assert panel.placement == "source" and [s.type for s in panel.chain] == ["Gain"]
    assert panel.draft("render") == EffectChain("render", (effect("Invert"),))
    original = doc.samples.copy()
    apply_and_wait(qtbot, panel)  # both chains, one undo step
    np.testing.assert_allclose(doc.samples, original * 10 ** (-6 / 20), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(doc.output(), -doc.samples, atol=0)
    assert panel.undo_stack.count() == 1
    with qtbot.waitSignal(panel.restored, timeout=20000):
        panel.undo_stack.undo()
    assert doc.effect_chain("source") == EffectChain("source") and doc.effect_chain("render") == EffectChain("render")


def test_a_bad_preset_and_a_broken_plugin_are_reported_and_change_nothing(qtbot, panel, tmp_path, monkeypatch):
    choose_from_add_menu(qtbot, panel, ("Utility", "Gain"))
    before = panel.chain
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "scalgui-effects", "version": 9, "chains": []}))
    monkeypatch.setattr(panel, "ask_open_path", lambda *a: str(bad))
    with qtbot.waitSignal(panel.failed) as blocker:
        click(qtbot, panel.load_button)
    assert "bad.json" in blocker.args[0] and "version 9 is newer" in blocker.args[0]
    assert "bad.json" in panel.status.text()
    assert panel.chain == before

    fake = tmp_path / "Broken.vst3"
    fake.write_text("not a plugin")
    monkeypatch.setattr(panel, "ask_plugin_path", lambda: str(fake))
    with qtbot.waitSignal(panel.failed) as blocker:
        choose_from_add_menu(qtbot, panel, ("VST3 from File…",))
    assert "cannot load VST3 plugin" in blocker.args[0] and "Broken.vst3" in blocker.args[0]
    assert panel.chain == before
    # The boxes are closed so that nothing waits on them.
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and widget.windowTitle() in ("Cannot load preset", "Cannot load plugin"):
            widget.close()


def test_a_chain_that_fails_on_apply_leaves_the_document_alone(qtbot, panel, doc):
    from scalgui.audio.effects import vst3_effect

    panel.set_chain(EffectChain("render", (vst3_effect("/nowhere/Gone.vst3"),)))
    with qtbot.waitSignal(panel.failed, timeout=20000) as blocker:
        click(qtbot, panel.apply_button)
    qtbot.waitUntil(lambda: not panel.busy)
    assert "Gone.vst3" in blocker.args[0]
    assert doc.effect_chain("render") == EffectChain("render") and panel.undo_stack.count() == 0
    assert panel.apply_button.isEnabled()  # the draft is still there to fix


def test_the_window_has_an_effects_dock_and_undo_reaches_it(qtbot, tmp_path, monkeypatch, doc):
    import pyqtgraph as pg

    from scalgui.ui.main_window import MainWindow
    from scalgui.ui.testing import show_window

    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    show_window(qtbot, window, doc)
    panel = window.effects_panel
    assert panel.document is doc and panel.undo_stack is window.undo_stack
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    toggle = next(a for a in view_menu.actions() if a.text() == "Effects")
    assert toggle.isCheckable() and toggle.isChecked()  # open, as a tab beside History
    window.effects_dock.raise_()
    qtbot.waitUntil(lambda: panel.isVisible())

    original = doc.samples.copy()
    panel.set_placement("source")
    choose_from_add_menu(qtbot, panel, ("Utility", "Invert"))
    apply_and_wait(qtbot, panel)
    np.testing.assert_array_equal(doc.samples, -original)
    np.testing.assert_array_equal(window.player.samples, -original)  # A plays the processed source
    assert window.undo_stack.count() == 1
    window.view.setFocus()
    with qtbot.waitSignal(panel.restored, timeout=20000):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.analysing)
    np.testing.assert_array_equal(doc.samples, original)
    np.testing.assert_array_equal(window.player.samples, original)
    window.set_document(None)


class _Parameter:
    def __init__(self, name, type_, lo=None, hi=None, label="", values=()):
        self.name, self.type, self.min_value, self.max_value, self.label = name, type_, lo, hi, label
        self.valid_values, self.step_size, self.approximate_step_size = list(values), 0.1, None


class _FakeVST3:
    """Stands in for a loaded pedalboard.VST3Plugin (no plugin exists on the test machines)."""

    def __init__(self):
        self.parameters = {"mix": _Parameter("Mix", float, 0.0, 100.0, "%"),
                           "tail": _Parameter("Tail", bool),
                           "mode": _Parameter("Mode", str, values=("Room", "Hall"))}
        self.mix, self.tail, self.mode = 100.0, False, "Room"

    def process(self, x, sample_rate, buffer_size=8192, reset=True):
        return x * np.float32(self.mix / 100.0)

    def show_editor(self):
        raise RuntimeError("no display to show the editor on")


def test_a_vst3_plugin_gets_a_generic_form_and_runs_with_its_settings(qtbot, panel, doc, monkeypatch):
    from scalgui.audio import vst3

    monkeypatch.setattr(vst3, "load_vst3", lambda path, name=None: _FakeVST3())
    monkeypatch.setattr(panel, "ask_plugin_path", lambda: "/plugins/Fader.vst3")
    choose_from_add_menu(qtbot, panel, ("VST3 from File…",))
    assert panel.chain[0].is_vst3 and panel.effect_list.item(0).text() == "VST3 'Fader'"
    form = panel.form
    assert set(form.widgets) == {"mix", "tail", "mode"}
    assert (form.widgets["mix"].spin.maximum(), form.widgets["mix"].spin.suffix()) == (100.0, " %")
    assert form.widgets["mode"].count() == 2
    type_into_spin(qtbot, form.widgets["mix"], "25")
    assert dict(panel.chain[0].params) == {"mix": 25.0}
    apply_and_wait(qtbot, panel)
    np.testing.assert_allclose(doc.output(), doc.samples * 0.25, rtol=1e-6)

    assert panel.editor_button.isVisible()
    with qtbot.waitSignal(panel.failed) as blocker:
        click(qtbot, panel.editor_button)
    assert "Cannot open the window of VST3 'Fader'" in blocker.args[0] and "no display" in blocker.args[0]
    assert dict(panel.chain[0].params) == {"mix": 25.0}
