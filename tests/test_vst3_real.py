"""The VST3 success path against a real plugin binary.

No VST3 plugin comes with Debian, so ``scripts/build_test_vst3.sh`` builds one from
Debian's ``dpf-plugins`` source: DISTRHO "Ping Pong Pan", a stereo auto-panner (an LFO at
``frequency`` / 100 Hz moves the sound between the channels by ``width`` per cent).
``.ci/run`` runs the script (best effort); these tests use the bundle it leaves in
``~/.cache/scalgui/test-vst3`` (or the one ``SCALGUI_TEST_VST3`` names) and are skipped,
with the reason, where there is none. What they rely on from the plugin: ``width = 0``
passes stereo audio through bit for bit, its output is the same on every run, and at its
defaults (0.5 Hz, 75 %) the left channel is 0.25x the input half a second in.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from scalgui.audio import load_audio, save_audio
from scalgui.audio.effects import EffectChain, apply_chain, load_preset, save_preset, vst3_effect
from scalgui.audio.vst3 import (
    find_vst3_plugins,
    load_vst3,
    set_vst3_parameters,
    vst3_parameter_specs,
    vst3_parameter_values,
)
from scalgui.cli import main

from test_ui_effects import doc, panel  # noqa: F401  (the Effects panel's fixtures)

SR = 48000
DEFAULT_BUNDLE = Path.home() / ".cache" / "scalgui" / "test-vst3" / "PingPongPan.vst3"


def _bundle() -> Path | None:
    path = Path(os.environ.get("SCALGUI_TEST_VST3") or DEFAULT_BUNDLE)
    return path if path.exists() else None


pytestmark = pytest.mark.skipif(
    _bundle() is None,
    reason=f"no real VST3 plugin at {DEFAULT_BUNDLE} (or $SCALGUI_TEST_VST3): build one with "
           "scripts/build_test_vst3.sh (Debian)",
)


@pytest.fixture(scope="module")
def bundle() -> Path:
    return _bundle()


@pytest.fixture(autouse=True)
def trusted_bundle_folder(monkeypatch):
    """The test plugin's folder is one of the user's VST3 folders, as an installed plugin's
    would be (plugins elsewhere are not loaded: tests/test_hostile_vst3.py)."""
    monkeypatch.setenv("SCALGUI_VST3_PATH", str(_bundle().parent))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """One second of stereo noise at 48 kHz, RMS 0.1 (peaks well below full scale)."""
    return (0.1 * np.random.default_rng(7).standard_normal((2, SR))).astype(np.float32)


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def test_loads_and_describes_its_parameters(bundle):
    plugin = load_vst3(bundle)
    specs = {s.name: s for s in vst3_parameter_specs(plugin)}
    assert {"frequency", "width"} <= set(specs)
    width = specs["width"]
    assert (width.kind, width.minimum, width.maximum, width.default, width.unit) == ("float", 0.0, 100.0, 75.0, "%")
    assert (specs["frequency"].minimum, specs["frequency"].maximum) == (0.0, 100.0)
    set_vst3_parameters(plugin, {"width": 20.0, "frequency": 10.0})
    values = vst3_parameter_values(plugin)
    assert values["width"] == pytest.approx(20.0, abs=0.01) and values["frequency"] == pytest.approx(10.0, abs=0.01)


def test_processing_follows_its_parameters(bundle, noise):
    through = apply_chain([vst3_effect(bundle, params={"width": 0.0})], noise, SR)
    np.testing.assert_array_equal(through, noise)

    panned = apply_chain([vst3_effect(bundle)], noise, SR)
    assert panned.shape == noise.shape
    assert rms(panned - noise) > 0.3 * rms(noise)
    # Half a second in, the LFO (0.5 Hz) puts the left channel at 1 - 0.75 of the input.
    middle = slice(SR // 2 - 240, SR // 2 + 240)
    assert rms(panned[0, middle]) / rms(noise[0, middle]) == pytest.approx(0.25, abs=0.02)
    np.testing.assert_array_equal(apply_chain([vst3_effect(bundle)], noise, SR), panned)  # same every run
    faster = apply_chain([vst3_effect(bundle, params={"frequency": 10.0})], noise, SR)
    assert rms(faster - panned) > 0.1 * rms(noise)


def test_mono_audio_is_refused_with_a_clear_message(bundle, tmp_path, capsys):
    mono = tmp_path / "mono.wav"
    save_audio(mono, (0.1 * np.random.default_rng(1).standard_normal(SR // 4)).astype(np.float32), SR)
    save_preset(tmp_path / "pan.json", [EffectChain("render", (vst3_effect(bundle),))])
    code = main(["fx", str(mono), "-o", str(tmp_path / "out.wav"), "--preset", str(tmp_path / "pan.json")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "Ping Pong Pan" in err or "PingPongPan" in err
    assert "unchanged" in err or "channel" in err
    assert not (tmp_path / "out.wav").exists()


def test_preset_round_trip_and_fx_command(bundle, noise, tmp_path, capsys):
    source = tmp_path / "in.wav"
    save_audio(source, noise, SR, bit_depth=32)
    chains = [EffectChain("render", (vst3_effect(bundle, params={"width": 100.0, "frequency": 100.0}),))]
    preset = save_preset(tmp_path / "pan.json", chains)
    assert load_preset(preset) == tuple(chains)

    out = tmp_path / "out.wav"
    assert main(["fx", str(source), "-o", str(out), "--preset", str(preset)]) == 0, capsys.readouterr().err
    result = load_audio(out)
    expected = apply_chain(chains[0], noise, SR)
    np.testing.assert_allclose(result.samples, expected, atol=1e-6)
    assert rms(result.samples - noise) > 0.3 * rms(noise)


def test_found_in_a_plugin_folder(bundle, tmp_path):
    folder = tmp_path / "VST3"
    (folder / "Vendor").mkdir(parents=True)
    (folder / "Vendor" / bundle.name).symlink_to(bundle, target_is_directory=True)
    found = find_vst3_plugins([folder])
    assert [p.name for p in found] == [bundle.name]
    assert load_vst3(found[0]).name == "Ping Pong Pan"


def test_the_effects_panel_drives_the_real_plugin(qtbot, bundle, monkeypatch, panel, doc):
    from PyQt6.QtCore import Qt

    from test_ui_effects import apply_and_wait, click, type_into_spin

    monkeypatch.setattr(panel, "ask_plugin_path", lambda: str(bundle))
    errors = []
    panel.failed.connect(errors.append)
    # Picked with the keyboard: a mouse release on a menu right after other tests'
    # menus was sometimes not taken as a click (Qt keeps which menu saw a press).
    click(qtbot, panel.add_button)
    qtbot.waitUntil(panel.add_menu.isVisible)
    for _ in range(len(panel.add_menu.actions())):
        qtbot.keyClick(panel.add_menu, Qt.Key.Key_Down)
        if panel.add_menu.activeAction() is panel.vst3_file_action:
            break
    qtbot.keyClick(panel.add_menu, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(panel.chain) == 1 or bool(errors))
    assert len(panel.chain) == 1, errors
    assert panel.chain[0].is_vst3 and panel.effect_list.item(0).text() == "VST3 'PingPongPan'"
    width = panel.form.widgets["width"]
    assert (width.spin.minimum(), width.spin.maximum(), width.spin.suffix()) == (0.0, 100.0, " %")

    type_into_spin(qtbot, width, "0")
    apply_and_wait(qtbot, panel)
    np.testing.assert_array_equal(doc.output(), doc.samples)  # width 0: the plugin passes audio through

    type_into_spin(qtbot, panel.form.widgets["width"], "100")
    apply_and_wait(qtbot, panel)
    assert dict(panel.chain[0].params)["width"] == 100.0
    assert rms(doc.output() - doc.samples) > 0.3 * rms(doc.samples)
    with qtbot.waitSignal(panel.restored, timeout=20000):  # undo runs the chain in a worker too
        panel.undo_stack.undo()
    qtbot.waitUntil(lambda: not panel.busy)
    np.testing.assert_array_equal(doc.output(), doc.samples)

    # This build has no editor of its own (and the tests no display): a message, not a crash.
    assert panel.editor_button.isVisible()
    with qtbot.waitSignal(panel.failed) as blocker:
        click(qtbot, panel.editor_button)
    assert "Cannot open the window of VST3 'PingPongPan'" in blocker.args[0]
