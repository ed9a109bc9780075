"""`scalgui plugins` lists what discovery found (broken plugins with their problem);
`scalgui apply` runs a plugin on a file headless, renders it and writes the result."""
import json
import math
import textwrap

import numpy as np
import pytest
import torch

from scalgui.cli import main
from scalgui.plugins import ENV_VAR, set_default_registry

SR = 22050

FAILING = '''
from scalgui.plugins import Plugin

def process(ctx):
    raise ValueError("no luck today")

PLUGIN = Plugin("unlucky", "Unlucky", "Always fails when run.", process=process)
'''


@pytest.fixture
def extra_plugins(tmp_path, monkeypatch):
    """A plugin folder on SCALGUI_PLUGIN_PATH with a broken file and a plugin that fails when run."""
    folder = tmp_path / "more-plugins"
    folder.mkdir()
    (folder / "broken.py").write_text("def oops(:\n")
    (folder / "unlucky.py").write_text(textwrap.dedent(FAILING))
    monkeypatch.setenv(ENV_VAR, str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    previous = set_default_registry(None)  # discover again, with this environment
    yield folder
    set_default_registry(previous)


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _write_wav(path, samples):
    from pedalboard.io import AudioFile

    samples = np.atleast_2d(samples).astype(np.float32)
    with AudioFile(str(path), "w", SR, samples.shape[0], bit_depth=32) as f:
        f.write(samples)


def _read(path):
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        return f.read(f.frames)


@pytest.fixture
def a440(tmp_path):
    t = np.arange(SR) / SR
    path = tmp_path / "a440.wav"
    _write_wav(path, 0.3 * np.sin(2 * np.pi * 440 * t))
    return path


def _peak_hz(samples, t0=0.2, t1=0.8):
    from scalgui.dsp.frame import FrameSettings, WaveletFrame

    frame = WaveletFrame(FrameSettings(SR), device="cpu")
    coeffs = frame.analyze(torch.from_numpy(np.ascontiguousarray(samples[0])))
    b = frame.bands
    energy = []
    for k in b.wavelet_indices:
        t = coeffs.times(k)
        energy.append(float((coeffs.band(k).abs()[(t > t0) & (t < t1)] ** 2).mean()))
    # Refined by a parabola through log energy in log frequency: 880 Hz lies between bands.
    i = int(np.argmax(energy))
    y = np.log(energy[i - 1: i + 2])
    offset = 0.5 * (y[0] - y[2]) / (y[0] - 2 * y[1] + y[2])
    return float(b.centre_hz[b.wavelet_indices[i]] * 2 ** (offset / frame.settings.voices_per_octave))


def test_plugins_lists_builtins_with_parameters_and_broken_files_with_why(extra_plugins, capsys):
    code, out, err = _run(["plugins"], capsys)
    assert code == 0 and err == ""
    for name in ("transpose", "harmonics", "denoise", "blur", "freeze", "unlucky"):
        assert any(line.startswith(f"{name}  ") for line in out.splitlines()), name
    assert "--param semitones (float, -48..48, semitones; default 12 semitones)" in out
    assert "1 plugin file(s) could not be loaded and were skipped:" in out
    assert f"{extra_plugins / 'broken.py'}: syntax error at line 1" in out
    assert f"{extra_plugins} (env)" in out and "(user, missing)" in out

    code, out, _ = _run(["plugins", "--json"], capsys)
    listing = json.loads(out)
    assert code == 0
    assert {p["name"] for p in listing["plugins"]} >= {"transpose", "unlucky"}
    assert listing["problems"][0]["source"] == str(extra_plugins / "broken.py")
    (transpose,) = [p for p in listing["plugins"] if p["name"] == "transpose"]
    assert transpose["params"][0] == {"name": "semitones", "kind": "float", "default": 12.0, "unit": "semitones",
                                      "minimum": -48.0, "maximum": 48.0, "choices": [],
                                      "description": transpose["params"][0]["description"]}

    code, out, _ = _run(["plugins", "denoise"], capsys)
    assert code == 0 and out.startswith("denoise  Denoise:") and "transpose" not in out


def test_apply_transposes_a_file_and_writes_the_render(a440, tmp_path, capsys):
    out_path = tmp_path / "a880.wav"
    code, out, err = _run(["apply", "transpose", a440, "-o", out_path, "--param", "semitones=12"], capsys)
    assert code == 0, err
    assert f"wrote {out_path}" in out and "apply: transpose (semitones=12 semitones)" in err
    result = _read(out_path)
    assert result.shape == (1, SR)
    assert abs(12 * math.log2(_peak_hz(result) / 880.0)) < 0.25
    assert abs(12 * math.log2(_peak_hz(_read(a440)) / 440.0)) < 0.25  # and the input is untouched


def test_apply_to_a_selection_changes_only_its_span(tmp_path, capsys):
    t = np.arange(3 * SR) / SR
    source = tmp_path / "long.wav"
    _write_wav(source, 0.3 * np.sin(2 * np.pi * 440 * t))
    out_path = tmp_path / "cut.wav"
    code, _, err = _run(["apply", "harmonics", source, "-o", out_path, "--time", "2.4:2.6", "--freq", "300:600",
                         "--param", "fundamental_hz=440", "--param", "gain_db=-30", "--iters", "8"], capsys)
    assert code == 0, err
    before, after = _read(source)[0], _read(out_path)[0]
    level = lambda x, a, b: 20 * np.log10(np.sqrt(np.mean(x[int(a * SR):int(b * SR)] ** 2)))  # noqa: E731
    assert level(after, 2.45, 2.55) - level(before, 2.45, 2.55) < -15.0
    # Beyond the atoms' reach from the span (0.6 s here): the input's samples, to the
    # output's 24-bit resolution.
    assert np.abs(after[: SR] - before[: SR]).max() <= 2.0**-21  # a few 24-bit steps


@pytest.mark.parametrize("argv, message", [
    (["apply", "nothing-like-it", "{IN}", "-o", "{OUT}"], "no plugin named 'nothing-like-it'"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--param", "semitones=99"], "above the maximum 48"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--param", "octaves=1"], "unknown parameter(s) octaves"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--param", "semitones"], "expected NAME=VALUE"),
    (["apply", "transpose", "{IN}", "-o", "{IN}"], "it is the input file"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--time", "2:1"], "--time '2:1': needs finite numbers with A < B"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--time", "3:4"], "the selection lies outside"),
    (["apply", "transpose", "{IN}", "-o", "{OUT}", "--freq", "0:100"], "frequencies must be above 0 Hz"),
    (["apply", "transpose", "{DIR}/missing.wav", "-o", "{OUT}"], "missing.wav"),
    (["apply", "unlucky", "{IN}", "-o", "{OUT}"], "unlucky ({PLUGINS}/unlucky.py) failed: ValueError: no luck today"),
    (["apply", "broken", "{IN}", "-o", "{OUT}"], "plugin 'broken' could not be loaded"),
])
def test_apply_errors_are_one_line_and_write_nothing(extra_plugins, a440, tmp_path, capsys, argv, message):
    out_path = tmp_path / "out.wav"
    names = {"IN": a440, "OUT": out_path, "DIR": tmp_path, "PLUGINS": extra_plugins}
    code, out, err = _run([a.format(**names) for a in argv], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("scalgui: error: ") and message.format(**names) in lines[-1]
    assert "Traceback" not in err
    assert not out_path.exists()
