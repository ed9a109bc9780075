"""``scalgui render``: a project to a file, and a project applied to a folder (--batch)."""
import os

import numpy as np
import pytest

from scalgui.app.document import Document
from scalgui.audio import audio_info, load_audio, save_audio
from scalgui.audio.effects import EffectChain, effect
from scalgui.cli import main
from scalgui.dsp import signals
from scalgui.dsp.edits import Edit, TimeRange
from scalgui.dsp.frame import FrameSettings
from scalgui.dsp.phase import RetrievalSettings

SR = 16000
ERASE = Edit(TimeRange(0.4, 0.6, feather_s=0.005), "erase")


def _sound(seconds, channels=1, rate=SR):
    return signals.example_sound(rate)[:channels, : int(seconds * rate)].copy() * 0.5


@pytest.fixture
def project(tmp_path):
    """A project on a 1 s mono sound: silence 0.4-0.6 s, then -6 dB through the render chain."""
    source = tmp_path / "take.wav"
    save_audio(source, _sound(1.0), SR, bit_depth=24)
    doc = Document.open(source, settings=FrameSettings(SR, 12, fmin=60.0), device="cpu")
    doc.push(ERASE)
    doc.set_effect_chain(EffectChain("render", (effect("Gain", gain_db=-6.0),)))
    doc.retrieval_settings = RetrievalSettings(method="fgla", init="original", iterations=4)
    return doc.save_project(tmp_path / "take.scalproj")


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def test_render_writes_the_projects_edits_and_chain(project, tmp_path, capsys):
    out = tmp_path / "out.flac"
    assert main(["render", str(project), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    rendered, source = load_audio(out), load_audio(tmp_path / "take.wav")
    assert rendered.frames == source.frames and rendered.sample_rate == SR
    inside = slice(int(0.45 * SR), int(0.55 * SR))
    # Erased (-20 dB or more: the lowpass and highpass atoms are not edited, and 4
    # iterations of phase retrieval leave some residue).
    assert _rms(rendered.samples[:, inside]) < 0.1 * _rms(source.samples[:, inside])
    outside = slice(int(0.1 * SR), int(0.3 * SR))
    ratio = _rms(rendered.samples[:, outside]) / _rms(source.samples[:, outside])
    assert abs(20 * np.log10(ratio) + 6.0) < 0.2  # the render chain's -6 dB


def test_render_never_overwrites_the_source_and_asks_for_a_moved_one(project, tmp_path, capsys):
    source = tmp_path / "take.wav"
    before = source.read_bytes()
    assert main(["render", str(project), "-o", str(source)]) == 2
    err = capsys.readouterr().err
    assert "overwrite the source" in err and err.count("\n") == 1
    assert source.read_bytes() == before
    moved = tmp_path / "moved.wav"
    os.rename(source, moved)
    assert main(["render", str(project), "-o", str(tmp_path / "o.wav")]) == 2
    assert "--source" in capsys.readouterr().err
    assert main(["render", str(project), "-o", str(tmp_path / "o.wav"), "--source", str(moved)]) == 0
    (tmp_path / "o.wav").unlink()
    save_audio(moved, _sound(1.0) * 0.9, SR, bit_depth=24)  # another sound now
    assert main(["render", str(project), "-o", str(tmp_path / "o.wav"), "--source", str(moved)]) == 2
    assert "--no-verify" in capsys.readouterr().err and not (tmp_path / "o.wav").exists()


def test_render_refuses_a_damaged_project(tmp_path, capsys):
    bad = tmp_path / "bad.scalproj"
    bad.write_bytes(b"not a zip at all")
    assert main(["render", str(bad), "-o", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err
    assert "bad.scalproj" in err and "damaged or truncated" in err and err.count("\n") == 1


def test_batch_renders_every_file_and_reports_the_bad_one(project, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    save_audio(folder / "a.wav", _sound(1.5, 2), SR, bit_depth=16)
    save_audio(folder / "b short.flac", _sound(0.3), SR)  # ends before the erased span
    save_audio(folder / "c.wav", _sound(1.0, 1, 22050), 22050)  # another sample rate
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (folder / "notes.txt").write_text("not audio, not an audio extension: skipped")
    outdir = tmp_path / "out"
    assert main(["render", str(project), "--batch", str(folder), "-o", str(outdir)]) == 1
    out = capsys.readouterr().out
    assert "rendered 3 of 4 file(s)" in out and "1 failed:" in out and "broken.wav: cannot read" in out
    assert sorted(p.name for p in outdir.iterdir()) == ["a.wav", "b short.flac", "c.wav"]
    a = load_audio(outdir / "a.wav")
    assert (a.channels, a.frames, audio_info(outdir / "a.wav")["sample_rate"]) == (2, int(1.5 * SR), SR)
    a_in = load_audio(folder / "a.wav")
    inside = slice(int(0.45 * SR), int(0.55 * SR))
    assert _rms(a.samples[:, inside]) < 0.1 * _rms(a_in.samples[:, inside])
    short_in, short_out = load_audio(folder / "b short.flac"), load_audio(outdir / "b short.flac")
    assert short_out.frames == short_in.frames
    # The erase lies beyond its end: only the render chain's -6 dB is left.
    assert abs(20 * np.log10(_rms(short_out.samples) / _rms(short_in.samples)) + 6.0) < 0.2
    c = load_audio(outdir / "c.wav")
    c_in, inside = load_audio(folder / "c.wav"), slice(int(0.45 * 22050), int(0.55 * 22050))
    assert c.sample_rate == 22050 and _rms(c.samples[:, inside]) < 0.1 * _rms(c_in.samples[:, inside])


def test_batch_all_good_exits_0_and_refuses_its_own_folder(project, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    save_audio(folder / "a.wav", _sound(0.8), SR)
    assert main(["render", str(project), "--batch", str(folder), "-o", str(tmp_path / "o"), "--format", "flac"]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.flac"]
    assert "rendered 1 of 1" in capsys.readouterr().out
    before = (folder / "a.wav").read_bytes()
    assert main(["render", str(project), "--batch", str(folder), "-o", str(folder)]) == 2
    assert "input folder" in capsys.readouterr().err and (folder / "a.wav").read_bytes() == before
    assert main(["render", str(project), "--batch", str(tmp_path / "none"), "-o", str(tmp_path / "o")]) == 2
