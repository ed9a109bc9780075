"""Hostile input: effect presets, and projects or presets naming a VST3 plugin that is not
the user's.

Loading a VST3 runs the plugin library's code (its constructors run as soon as it is
opened, before any scan can fail). The bundle here is built by the test: a shared library
whose constructor writes a marker file, laid out as a VST3 bundle
(``Evil.vst3/Contents/<arch>-linux/Evil.so``). Every refusal is checked by the marker's
absence: nothing of the plugin may run unless the user trusted it (a trusted folder,
``--allow-plugin``, or the editor's question answered with "Load Plugin").
"""
import json
import os
import platform
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hostile import assert_refused, run_scalgui, snapshot
from scalgui.audio.effects import EffectChain, apply_chain, load_preset, vst3_effect
from scalgui.audio.errors import UntrustedPluginError
from scalgui.audio.vst3 import (
    allow_vst3,
    find_vst3_plugins,
    is_trusted_vst3,
    load_vst3,
    trusted_vst3_folders,
    untrusted_vst3,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or not platform.system() == "Linux",
                                reason="needs gcc on Linux to build the test's VST3 bundle")

CONSTRUCTOR_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void ran(void) {
    const char *marker = getenv("SCALGUI_TEST_MARKER");
    if (!marker) return;
    FILE *f = fopen(marker, "w");
    if (f) { fputs("the plugin's code ran\n", f); fclose(f); }
}
"""


def build_bundle(folder: Path, name: str = "Evil") -> Path:
    """A VST3 bundle whose library's constructor writes ``$SCALGUI_TEST_MARKER``."""
    bundle = folder / f"{name}.vst3"
    binary = bundle / "Contents" / f"{platform.machine()}-linux" / f"{name}.so"
    binary.parent.mkdir(parents=True)
    source = folder / f"{name}.c"
    source.write_text(CONSTRUCTOR_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(binary), str(source)], check=True)
    source.unlink()
    return bundle


@pytest.fixture
def shared(tmp_path):
    """A folder as a collaborator sends it: a preset naming ``Evil.vst3`` beside it."""
    folder = tmp_path / "from-a-stranger"
    folder.mkdir()
    build_bundle(folder)
    preset = {"format": "scalgui-effects", "version": 1,
              "chains": [{"placement": "render",
                          "effects": [{"type": "VST3", "path": "Evil.vst3", "params": {}}]}]}
    (folder / "preset.json").write_text(json.dumps(preset))
    return folder


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "marker.txt"
    monkeypatch.setenv("SCALGUI_TEST_MARKER", str(path))
    return path


def tone_wav(path: Path, seconds=0.5, sr=22050) -> Path:
    from scalgui.audio import save_audio

    t = np.arange(int(seconds * sr)) / sr
    save_audio(path, np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), sr, bit_depth=16)
    return path


def project_with_plugin(folder: Path, sound: Path) -> Path:
    """A project (made by the API, then given the stranger's chain) in ``folder``."""
    from scalgui.app.document import Document

    doc = Document.open(sound)
    project = folder / "mix.scalproj"
    doc.save_project(project)
    with zipfile.ZipFile(project) as archive:
        manifest = json.loads(archive.read("project.json"))
    manifest["effects"] = {"format": "scalgui-effects", "version": 1,
                           "chains": [{"placement": "source",
                                       "effects": [{"type": "VST3", "path": "Evil.vst3", "params": {}}]}]}
    with zipfile.ZipFile(project, "w") as archive:
        archive.writestr("project.json", json.dumps(manifest))
    return project


# --------------------------------------------------------------------------- presets


def deep_preset(path: Path, depth: int) -> Path:
    path.write_text('{"format": "scalgui-effects", "version": 1, "chains": ' + "[" * depth + "]" * depth + "}")
    return path


@pytest.mark.parametrize("case", ["nested 100,000 deep", "/dev/zero", "a FIFO", "a folder", "2 MB", "1e400"])
def test_a_bad_preset_is_one_line_at_once(tmp_path, case, capsys):
    from scalgui.cli import main

    sound = tone_wav(tmp_path / "in.wav")
    if case == "nested 100,000 deep":
        preset, needle = deep_preset(tmp_path / "deep.json", 100_000), "nested 100001 levels deep"
    elif case == "/dev/zero":
        preset, needle = Path("/dev/zero"), "not a regular file"
    elif case == "a FIFO":
        preset, needle = tmp_path / "fifo.json", "not a regular file"
        os.mkfifo(preset)  # nothing ever writes to it: reading it would wait for ever
    elif case == "a folder":
        preset, needle = tmp_path, "is a folder"
    elif case == "2 MB":
        preset, needle = tmp_path / "big.json", "larger than a preset can be"
        preset.write_text(" " * (2 << 20) + "{}")
    else:
        preset, needle = tmp_path / "inf.json", "out of range"
        preset.write_text('{"format": "scalgui-effects", "version": 1, "chains": [{"placement": "render", '
                          '"effects": [{"type": "Gain", "params": {"gain_db": 1e400}}]}]}')
    code = main(["fx", str(sound), "-o", str(tmp_path / "out.wav"), "--preset", str(preset)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("scalgui: error: "), err
    assert needle in err[0] and str(preset) in err[0], err
    assert not (tmp_path / "out.wav").exists()


# --------------------------------------------------------------------------- trust rules


def test_only_trusted_folders_and_allowed_files_are_trusted(tmp_path, shared, monkeypatch):
    bundle = shared / "Evil.vst3"
    assert not is_trusted_vst3(bundle)
    # ".." and links do not lead out of a trusted folder: the real path decides.
    trusted = tmp_path / "my-vst3"
    (trusted / "vendor").mkdir(parents=True)
    monkeypatch.setenv("SCALGUI_VST3_PATH", str(trusted))
    assert trusted in trusted_vst3_folders()
    assert not is_trusted_vst3(trusted / ".." / "from-a-stranger" / "Evil.vst3")
    (trusted / "vendor" / "escape").symlink_to(shared, target_is_directory=True)
    assert not is_trusted_vst3(trusted / "vendor" / "escape" / "Evil.vst3")
    # A bundle the user linked into a trusted folder is theirs.
    (trusted / "Linked.vst3").symlink_to(bundle, target_is_directory=True)
    assert is_trusted_vst3(bundle)
    assert "Linked.vst3" in [p.name for p in find_vst3_plugins()]
    (trusted / "Linked.vst3").unlink()
    assert not is_trusted_vst3(bundle)
    allow_vst3(shared / "." / "Evil.vst3")
    assert is_trusted_vst3(bundle)
    assert untrusted_vst3([EffectChain("render", (vst3_effect(bundle),))]) == []


def test_the_users_settings_add_trusted_folders(shared, monkeypatch):
    from scalgui.user_settings import settings_path, write_settings

    assert not is_trusted_vst3(shared / "Evil.vst3")
    write_settings({"vst3_folders": [str(shared)]})
    assert settings_path().is_file()
    assert is_trusted_vst3(shared / "Evil.vst3")
    settings_path().write_text("{not json")  # a damaged settings file trusts nothing
    assert not is_trusted_vst3(shared / "Evil.vst3")


def test_a_preset_cannot_load_a_plugin_from_its_own_folder(shared, marker):
    chains = load_preset(shared / "preset.json")
    assert chains[0][0].path == str(shared / "Evil.vst3")  # relative to the preset, as documented
    assert untrusted_vst3(chains) == [shared / "Evil.vst3"]
    with pytest.raises(UntrustedPluginError) as caught:
        apply_chain(chains[0], np.zeros((2, 100), np.float32), 22050)
    assert "outside the VST3 folders you trust" in str(caught.value) and str(shared / "Evil.vst3") in str(caught.value)
    with pytest.raises(UntrustedPluginError):
        load_vst3(shared / "Evil.vst3")
    assert not marker.exists()
    bypassed = chains[0].with_bypassed([shared / "Evil.vst3"])
    assert bypassed[0].bypass and untrusted_vst3([bypassed]) == []


# --------------------------------------------------------------------------- command line


def test_fx_refuses_the_presets_plugin_and_allow_plugin_loads_it(tmp_path, shared, marker):
    sound = tone_wav(tmp_path / "in.wav")
    before = snapshot(tmp_path)
    outcome = run_scalgui(["fx", sound, "-o", tmp_path / "out.wav", "--preset", shared / "preset.json"],
                          env={"SCALGUI_TEST_MARKER": str(marker)})
    assert_refused(outcome, "preset.json", str(shared / "Evil.vst3"), "--allow-plugin")
    assert not marker.exists()
    assert snapshot(tmp_path) == before
    # Named by the user, it is loaded (and then fails pedalboard's scan: it is no real plugin).
    outcome = run_scalgui(["fx", sound, "-o", tmp_path / "out.wav", "--preset", shared / "preset.json",
                           "--allow-plugin", shared / "Evil.vst3"], env={"SCALGUI_TEST_MARKER": str(marker)})
    assert outcome.code == 2 and marker.exists()
    assert not (tmp_path / "out.wav").exists()


def test_render_refuses_the_projects_plugin_before_any_work(tmp_path, shared, marker):
    project = project_with_plugin(shared, tone_wav(tmp_path / "take.wav"))
    before = snapshot(tmp_path)
    outcome = run_scalgui(["render", project, "-o", tmp_path / "out.wav"], env={"SCALGUI_TEST_MARKER": str(marker)})
    assert_refused(outcome, "mix.scalproj", str(shared / "Evil.vst3"), "--allow-plugin")
    outdir = tmp_path / "batch-out"
    outcome = run_scalgui(["render", project, "--batch", tmp_path, "-o", outdir],
                          env={"SCALGUI_TEST_MARKER": str(marker)})
    assert_refused(outcome, "mix.scalproj", "--allow-plugin")
    assert not marker.exists() and not outdir.exists()
    assert snapshot(tmp_path) == before


def test_opening_a_project_through_the_api_refuses_its_plugin(tmp_path, shared, marker):
    from scalgui.app.document import Document
    from scalgui.app.project import ProjectError

    project = project_with_plugin(shared, tone_wav(tmp_path / "take.wav"))
    with pytest.raises(ProjectError) as caught:
        Document.open_project(project)
    message = str(caught.value)
    assert "mix.scalproj" in message and str(shared / "Evil.vst3") in message and "\n" not in message
    assert not marker.exists()
    # Opened with the plugin bypassed: the work is there, nothing ran, the chain keeps it.
    doc = Document.open_project(project, bypass_untrusted=True)
    kept = doc.effect_chain("source")
    assert len(kept) == 1 and kept[0].bypass and kept[0].path == str(shared / "Evil.vst3")
    assert not marker.exists()


# --------------------------------------------------------------------------- the editor


def test_the_effects_panel_asks_before_a_presets_plugin_runs(qtbot, tmp_path, shared, marker):
    from scalgui.app.document import Document
    from scalgui.ui.effects_panel import EffectsPanel

    panel = EffectsPanel()
    qtbot.addWidget(panel)
    panel.set_document(Document.open(tone_wav(tmp_path / "in.wav")))
    asked = []
    panel.ask_trust_plugin = lambda path, where: asked.append((path, where)) or False
    assert panel.load_preset_file(shared / "preset.json")
    assert asked == [(shared / "Evil.vst3", "the preset 'preset.json'")]
    assert panel.draft("render")[0].bypass  # kept, bypassed
    assert "kept bypassed" in panel.status.text()
    # Switched on again and applied: asked again, refused again, nothing ran.
    panel.set_placement("render")
    panel.set_chain(panel.chain.replaced(0, panel.chain[0].with_bypass(False)), select=0)
    panel.apply()
    assert len(asked) == 2 and panel.draft("render")[0].bypass
    assert not marker.exists()


def test_answering_load_plugin_trusts_that_file_for_the_session(qtbot, tmp_path, shared, marker):
    from scalgui.ui.effects_panel import EffectsPanel

    panel = EffectsPanel()
    qtbot.addWidget(panel)
    panel.ask_trust_plugin = lambda path, where: True
    assert panel.load_preset_file(shared / "preset.json")
    assert not panel.draft("render")[0].bypass and is_trusted_vst3(shared / "Evil.vst3")


def test_vst3_folders_dialog_keeps_the_users_folders(qtbot, tmp_path, shared):
    from scalgui.ui.plugin_trust import Vst3FoldersDialog

    dialog = Vst3FoldersDialog()
    qtbot.addWidget(dialog)
    dialog.ask_folder = lambda: str(shared)
    dialog.add_button.click()
    assert dialog.user_folders() == [str(shared)]
    dialog.accept()
    assert shared in trusted_vst3_folders() and is_trusted_vst3(shared / "Evil.vst3")
    again = Vst3FoldersDialog()
    qtbot.addWidget(again)
    assert again.user_folders() == [str(shared)]
    again.folder_list.setCurrentRow(again.folder_list.count() - 1)
    again.remove_button.click()
    again.accept()
    assert not is_trusted_vst3(shared / "Evil.vst3")


@pytest.mark.parametrize("answer", [False, True])
def test_the_editor_asks_before_a_projects_plugin_runs(qtbot, make_window, tmp_path, shared, marker, answer):
    window = make_window()
    project = project_with_plugin(shared, tone_wav(tmp_path / "take.wav"))
    asked = []
    window.projects.ask_trust_plugin = lambda path, where: asked.append((path, where)) or answer
    before = window.document
    window.open_file(str(project))
    if answer:  # trusted and loaded: its code ran, and pedalboard then refuses it (no real plugin)
        qtbot.waitUntil(lambda: bool(window.errors), timeout=30000)
        assert marker.exists() and "scan" in str(window.errors[-1])
        assert window.document is before
    else:  # kept bypassed: the project is open, nothing of the plugin ran
        qtbot.waitUntil(lambda: window.document is not before, timeout=30000)
        kept = window.document.effect_chain("source")
        assert kept[0].bypass and kept[0].path == str(shared / "Evil.vst3")
        assert not marker.exists() and not window.errors
    assert asked == [(shared / "Evil.vst3", "the project 'mix.scalproj'")]
