"""Projects (.scalproj): edits as JSON, save/open round trips, moved and changed sources,
damaged and newer files, atomic saves, autosave and recovery, the guide's Python API example."""
import json
import math
import os
import re
import subprocess
import sys
import typing
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scalgui.app import project as proj
from scalgui.app.document import Document
from scalgui.app.project import (
    ProjectError,
    SourceMismatchError,
    SourceMissingError,
    edit_from_json,
    edit_to_json,
    open_project,
    read_project,
)
from scalgui.app.recovery import Autosaver, find_recoveries, pid_running
from scalgui.audio import save_audio
from scalgui.audio.effects import EffectChain, effect
from scalgui.dsp import edits as dsp_edits
from scalgui.dsp import signals
from scalgui.dsp.edits import Band, Combined, Edit, Harmonic, Lasso, Rectangle, Stroke, TimeRange
from scalgui.dsp.frame import FrameSettings
from scalgui.dsp.phase import RetrievalSettings
from scalgui.plugins import EVERYWHERE, PluginEdit

SR = 16000
ROOT = Path(__file__).resolve().parent.parent

SHAPES = [
    Rectangle(0.5, 1.25, 300.0, 3000.0, feather_s=0.02, feather_oct=0.1),
    TimeRange(0.1, 0.9, feather_s=0.0),
    Band(100.0, 200.0),
    Lasso(((0.1, 200.0), (0.5, 2000.0), (0.9, 300.0)), feather_s=0.03),
    Harmonic(220.0, 0.2, 0.8, count=6, width_cents=30.0),
    Stroke(((0.1, 440.0), (0.4, 880.5), (0.7, 660.25)), radius_s=0.02, radius_oct=1 / 12, hardness=0.8),
    Combined(((Rectangle(0.1, 0.5, 100.0, 1000.0), "add"), (Band(300.0, 400.0), "subtract"),
              (Combined(((TimeRange(0.6, 0.7), "add"),)), "add"))),
]
EDITS = (
    [Edit(shape, action, amount) for shape in SHAPES for action, amount in [("gain", -12.5)]]
    + [Edit(SHAPES[0], "erase", 0.0), Edit(SHAPES[2], "restore", 0.0), Edit(SHAPES[5], "paint", -18.0)]
    + [
        PluginEdit("transpose", {"semitones": 7.0}, None),
        PluginEdit("denoise", {"noise": (0.0, 0.5), "threshold_db": 6, "mode": "p90", "on": True}, SHAPES[0]),
        PluginEdit("image", {"path": "pics/a.png", "gamma": 1.5}, SHAPES[6]),
        PluginEdit("whatever", {}, EVERYWHERE),  # infinite times: strict JSON still
    ]
)


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: f"{type(e).__name__}-{type(e.shape).__name__}")
def test_every_edit_type_round_trips_through_strict_json(edit):
    text = json.dumps(edit_to_json(edit), allow_nan=False)
    back = edit_from_json(json.loads(text))
    assert back == edit and type(back.shape) is type(edit.shape)


def test_every_shape_type_of_dsp_edits_is_covered():
    covered = {type(s) for s in SHAPES}
    assert set(typing.get_args(dsp_edits.Shape)) == covered
    nested = {type(s) for s, _ in SHAPES[6].parts}
    assert Combined in nested  # a selection inside a selection


@pytest.mark.parametrize("data, words", [
    ({"type": "Edit", "action": "gain", "amount_db": -3, "shape": {"type": "Circle", "r": 1}}, "unknown shape type"),
    ({"type": "Edit", "action": "boost", "amount_db": 3, "shape": {"type": "Band", "f0": 1, "f1": 2}}, "boost"),
    ({"type": "Edit", "shape": {"type": "Band", "f0": 1, "f1": 2, "colour": 3}}, "unknown field"),
    ({"type": "Edit", "shape": {"type": "Band", "f0": "1", "f1": 2}}, "must be a number"),
    ({"type": "Edit", "shape": {"type": "Rectangle", "t0": 2, "t1": 1, "f0": 1, "f1": 2}}, "t0 < t1"),
    ({"type": "Magic"}, "unknown edit type"),
])
def test_bad_edit_json_says_what_is_wrong(data, words):
    with pytest.raises(ValueError, match=words):
        edit_from_json(data, "edits[3]")


# --------------------------------------------------------------------------- documents


def _sound(seconds=1.2, channels=2):
    return signals.example_sound(SR)[:channels, : int(seconds * SR)].copy()


@pytest.fixture
def take(tmp_path):
    path = tmp_path / "audio" / "take.wav"
    path.parent.mkdir()
    save_audio(path, _sound(), SR, bit_depth=24)
    return path


def _doc(path, **kw):
    return Document.open(path, settings=FrameSettings(SR, 12, fmin=60.0, oversampling=2.0), device="cpu", **kw)


def _edited(doc):
    doc.push(Edit(Rectangle(0.3, 0.6, 300, 3000), "gain", -20))
    doc.push(Edit(Stroke(((0.7, 500.0), (0.9, 800.0)), radius_s=0.03, radius_oct=1 / 12), "paint", -20))
    doc.push(PluginEdit("blur", {"time_s": 0.05, "semitones": 0.0}, Band(200, 400)))
    doc.set_effect_chain(EffectChain("source", (effect("Gain", gain_db=-2.0),)))
    doc.set_effect_chain(EffectChain("render", (effect("HighpassFilter", cutoff_frequency_hz=40.0),
                                                effect("Reverb", room_size=0.3, bypass=True))))
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=3, momentum=0.9)
    doc.export_options = {"bit_depth": 16, "clip": "limit"}
    return doc


def test_document_round_trip_keeps_settings_edits_chains_and_render_settings(take, tmp_path):
    doc = _edited(_doc(take))
    path = doc.save_project(tmp_path / "p.scalproj")
    assert doc.project_path == path and proj.is_saved(doc) and not doc.unsaved
    back = Document.open_project(path, device="cpu")
    assert back.edits == doc.edits
    assert back.settings == doc.settings
    assert back.effect_chain("source") == doc.effect_chain("source")
    assert back.effect_chain("render") == doc.effect_chain("render")
    assert back.retrieval_settings == doc.retrieval_settings
    assert back.export_options == {"bit_depth": 16, "quality": None, "clip": "limit"}
    assert back.path == take.resolve() and back.project_path == path
    np.testing.assert_array_equal(back.original_samples, doc.original_samples)
    np.testing.assert_array_equal(back.samples, doc.samples)  # the source chain ran again
    assert back.unrendered_edits and back.rendered is None  # no render was embedded
    assert proj.is_saved(back)
    back.push(Edit(Band(100, 200)))
    assert not proj.is_saved(back)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["project.json"]
        manifest = json.loads(archive.read("project.json"))
    assert manifest["source"]["relative"] == os.path.join("audio", "take.wav")
    assert len(manifest["source"]["sha256"]) == 64


def test_embedded_render_and_pending_spans_come_back(take, tmp_path):
    doc = _doc(take)
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=2)
    doc.push(Edit(Rectangle(0.3, 0.6, 300, 3000), "gain", -20))
    doc.render()
    doc.push(Edit(Rectangle(0.8, 0.9, 300, 3000), "erase"))  # after the render: pending
    path = doc.save_project(tmp_path / "r.scalproj", embed_render=True)
    back = open_project(path, device="cpu")
    np.testing.assert_array_equal(back.rendered, doc.rendered)
    assert back.pending_spans == doc.pending_spans and len(back.pending_spans) == 1
    assert open_project(path, device="cpu", load_render=False).rendered is None


@pytest.mark.parametrize("how", ["npy", "flac"])
def test_embedded_source_opens_without_the_file(take, tmp_path, how):
    doc = _edited(_doc(take))
    path = doc.save_project(tmp_path / "e.scalproj", embed_source=how)
    take.unlink()
    back = open_project(path, device="cpu")
    assert back.path is None and back.edits == doc.edits
    if how == "npy":
        np.testing.assert_array_equal(back.original_samples, doc.original_samples)
    else:  # 24-bit FLAC: within one step of 2^-23
        np.testing.assert_allclose(back.original_samples, doc.original_samples, atol=2.0**-22)


def test_a_sound_without_a_file_is_always_embedded(tmp_path):
    doc = Document.from_samples(_sound(0.5, 1), SR, device="cpu")
    doc.push(Edit(TimeRange(0.1, 0.2), "erase"))
    path = doc.save_project(tmp_path / "gen.scalproj")
    info = read_project(path).source
    assert info.path is None and info.sha256 is None and info.embedded == "source.npy"
    np.testing.assert_array_equal(open_project(path, device="cpu").samples, doc.samples)


def test_moved_project_folder_finds_the_source_by_its_relative_path(take, tmp_path):
    _edited(_doc(take)).save_project(tmp_path / "p.scalproj")
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    os.rename(tmp_path, moved)
    try:
        back = open_project(moved / "p.scalproj", device="cpu")
        assert back.path == moved / "audio" / "take.wav" and len(back.edits) == 3
    finally:
        os.rename(moved, tmp_path)


def test_moved_source_raises_then_locate_or_source_opens_it(take, tmp_path):
    doc = _edited(_doc(take))
    path = doc.save_project(tmp_path / "p.scalproj")
    elsewhere = tmp_path / "elsewhere.wav"
    os.rename(take, elsewhere)
    with pytest.raises(SourceMissingError) as caught:
        open_project(path, device="cpu")
    assert "take.wav" in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.source.path == take.resolve()
    asked = []
    back = open_project(path, device="cpu", locate=lambda err: asked.append(err) or elsewhere)
    assert isinstance(asked[0], SourceMissingError) and back.path == elsewhere and back.edits == doc.edits
    assert open_project(path, device="cpu", source=elsewhere).edits == doc.edits
    with pytest.raises(SourceMissingError):
        open_project(path, device="cpu", locate=lambda err: None)  # the user cancelled


def test_a_different_file_is_refused_unless_verify_is_off(take, tmp_path):
    doc = _edited(_doc(take))
    doc.render()
    path = doc.save_project(tmp_path / "p.scalproj", embed_render=True)
    other = tmp_path / "other.wav"
    save_audio(other, _sound()[:, ::-1].copy(), SR, bit_depth=24)
    with pytest.raises(SourceMismatchError, match="checksum differs") as caught:
        open_project(path, device="cpu", source=other)
    assert caught.value.candidate == other and caught.value.actual_sha256 != caught.value.source.sha256
    back = open_project(path, device="cpu", source=other, verify=False)
    assert back.path == other and back.edits == doc.edits
    assert back.rendered is None  # the embedded render was made from the other sound
    # The recorded file changed in place: the same error, naming it.
    save_audio(take, _sound() * 0.5, SR, bit_depth=24)
    with pytest.raises(SourceMismatchError, match="take.wav"):
        open_project(path, device="cpu")


def _manifest_zip(path, manifest_text):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", manifest_text)
    return path


def test_newer_format_version_is_refused_with_one_line(take, tmp_path):
    good = _doc(take).save_project(tmp_path / "p.scalproj")
    with zipfile.ZipFile(good) as archive:
        manifest = json.loads(archive.read("project.json"))
    manifest.update(version=proj.VERSION + 1, scalgui="9.0")
    bad = _manifest_zip(tmp_path / "new.scalproj", json.dumps(manifest))
    with pytest.raises(ProjectError) as caught:
        read_project(bad)
    text = str(caught.value)
    assert "new.scalproj" in text and "newer scalgui (9.0" in text and "update scalgui" in text and "\n" not in text


@pytest.mark.parametrize("damage, words", [
    ("garbage", "damaged or truncated"),
    ("truncated", "damaged or truncated"),
    ("empty", "empty file"),
    ("bad json", "not valid JSON"),
    ("not ours", "not a scalgui project"),
    ("no manifest", "project.json is missing"),
    ("bad edit", "edits[0].shape: unknown shape type"),
    ("bad array", "render.npy is not a valid array"),
])
def test_damaged_projects_give_a_clear_one_line_error(take, tmp_path, damage, words):
    doc = _doc(take)
    doc.retrieval_settings = RetrievalSettings(iterations=1, init="original")
    doc.push(Edit(Band(100, 200)))
    doc.render()
    good = doc.save_project(tmp_path / "good.scalproj", embed_render=True)
    path = tmp_path / "bad.scalproj"
    data = good.read_bytes()
    manifest = json.loads(zipfile.ZipFile(good).read("project.json"))
    if damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "bad json":
        _manifest_zip(path, '{"format": "scalgui-project", "version": 1,')
    elif damage == "not ours":
        _manifest_zip(path, '{"format": "something-else"}')
    elif damage == "no manifest":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "hi")
    elif damage == "bad edit":
        manifest["edits"][0]["shape"]["type"] = "Hexagon"
        _manifest_zip(path, json.dumps(manifest))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("project.json", json.dumps(manifest))
            archive.writestr("render.npy", b"\x93NUMPY not really")
    with pytest.raises(ProjectError) as caught:
        open_project(path, device="cpu")
    text = str(caught.value)
    assert words in text and "bad.scalproj" in text and "\n" not in text


def test_a_failed_save_leaves_the_previous_project_intact(take, tmp_path, monkeypatch):
    doc = _edited(_doc(take))
    path = doc.save_project(tmp_path / "p.scalproj")
    before = path.read_bytes()
    doc.push(Edit(Band(1000, 2000), "erase"))

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full_disk)
    with pytest.raises(ProjectError, match="No space left"):
        doc.save_project(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "p.scalproj"]  # no temp file left
    assert not proj.is_saved(doc)
    monkeypatch.undo()
    doc.save_project(path)
    assert len(open_project(path, device="cpu").edits) == 4


def test_a_project_is_never_saved_over_its_source(take):
    doc = _doc(take)
    with pytest.raises(ProjectError, match="source sound"):
        doc.save_project(take)
    assert _doc(take).samples.shape == doc.samples.shape


def test_settings_for_another_rate_keep_hz():
    s = FrameSettings(48000, 24, fmin=30.0, fmax=20000.0)
    t = proj.settings_for_rate(s, 22050)
    assert (t.sample_rate, t.voices_per_octave, t.fmin, t.fmax) == (22050, 24, 30.0, None)
    assert proj.settings_for_rate(replace(s, fmax=8000.0), 22050).fmax == 8000.0


# --------------------------------------------------------------------------- recovery


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_autosave_recovery_and_clean_exit(take, tmp_path):
    folder = tmp_path / "recovery"
    doc = _edited(_doc(take))
    saver = Autosaver(folder)
    saver.save(doc)
    assert saver.project_file.exists() and saver.marker.exists()
    assert doc.project_path is None  # an autosave is a copy
    assert find_recoveries(folder) == []  # this process is alive: not a crash
    saver.discard()
    assert list(folder.iterdir()) == []

    crashed = Autosaver(folder)
    crashed.save(doc)
    marker = json.loads(crashed.marker.read_text())
    marker["pid"] = _dead_pid()
    crashed.marker.write_text(json.dumps(marker))
    assert not pid_running(marker["pid"])
    found = find_recoveries(folder)
    assert [r.project for r in found] == [crashed.project_file]
    assert found[0].title == "take.wav"
    back = found[0].open(device="cpu")
    assert back.edits == doc.edits and back.unsaved
    found[0].discard()
    assert find_recoveries(folder) == [] and list(folder.iterdir()) == []


def test_a_reused_pid_does_not_hide_a_crash(tmp_path):
    doc = Document.from_samples(_sound(0.3, 1), SR, device="cpu")
    saver = Autosaver(tmp_path)
    saver.save(doc)
    marker = json.loads(saver.marker.read_text())
    if marker["process_start"] is None:
        pytest.skip("process start times are not readable here (no /proc)")
    marker["process_start"] = str(int(marker["process_start"]) + 12345)  # our PID, another process
    saver.marker.write_text(json.dumps(marker))
    assert len(find_recoveries(tmp_path)) == 1


# --------------------------------------------------------------------------- the guide


def test_the_guides_python_api_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "projects.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "save_project" in code and "PluginEdit" in code and "render()" in code
    save_audio(tmp_path / "take.wav", _sound(1.6), SR, bit_depth=24)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/projects.md", "exec"), {})
    back = Document.open_project(tmp_path / "take.scalproj", device="cpu")
    assert len(back.edits) == 2 and isinstance(back.edits[1], PluginEdit)
    assert back.rendered is not None and not back.unrendered_edits
    assert (tmp_path / "take-edited.flac").exists()
    assert math.isclose(back.duration, 1.6)


def test_a_project_saved_with_the_old_fixed_render_opens_with_the_editors_render(take, tmp_path):
    from scalgui.app.document import DEFAULT_RENDER, FIXED_RENDER

    doc = _doc(take)
    doc.push(Edit(Rectangle(0.3, 0.6, 300, 3000), "gain", -20))
    doc.retrieval_settings = FIXED_RENDER  # what every project saved before the stopping rule holds
    old = Document.open_project(doc.save_project(tmp_path / "old.scalproj"), device="cpu")
    assert old.retrieval_settings == DEFAULT_RENDER
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=32, momentum=0.9)
    own = Document.open_project(doc.save_project(tmp_path / "own.scalproj"), device="cpu")
    assert own.retrieval_settings == doc.retrieval_settings  # the user's own settings stay
