"""Tests of the `scalgui` command line: `analyze`, the editor fallback and `bench analyze`."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from scalgui.cli import main
from scalgui.dsp import signals

SR = 44100
SUMMARY_KEYS = {
    "file", "sample_rate", "channels", "frames", "duration_s", "voices_per_octave", "fmin_hz", "fmax_hz",
    "oversampling", "bands", "atoms", "coefficients_per_sample", "analysis_seconds", "reconstruction_error",
    "synthesis_seconds", "peak_dbfs", "device",
}


def _write_wav(path, samples: np.ndarray, sample_rate: int = SR) -> None:
    from pedalboard.io import AudioFile

    samples = np.atleast_2d(samples).astype(np.float32)
    with AudioFile(str(path), "w", sample_rate, samples.shape[0]) as f:
        f.write(samples)


@pytest.fixture(scope="module")
def stereo_signal() -> np.ndarray:
    """1 s of stereo: a chirp on the left, a chord on the right; float32 [2, 44100]."""
    left = signals.exponential_chirp(100.0, 8000.0, 1.0, SR, amplitude=0.4)
    right = signals.chord((220.0, 330.0), 1.0, SR, amplitude=0.3)
    return np.stack([left, right])


@pytest.fixture
def wav(tmp_path, stereo_signal):
    path = tmp_path / "tone.wav"
    _write_wav(path, stereo_signal)  # pedalboard writes float32 WAV for float32 input: exact
    return path


def _expected_bands(voices: int, fmin: float, fmax: float) -> int:
    return int(math.floor(voices * math.log2(fmax / fmin) + 1e-6)) + 1


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_writes_png_and_json(tmp_path, wav, stereo_signal, capsys):
    import matplotlib.image

    png, js = tmp_path / "out.png", tmp_path / "out.json"
    code, out, err = _run(["analyze", wav, "--png", png, "--json", js, "--device", "cpu"], capsys)
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    assert "wrote" in out

    image = matplotlib.image.imread(png)
    height, width = image.shape[:2]
    assert 300 <= height <= 2000 and 600 <= width <= 3000
    assert float(image[..., :3].var()) > 0

    summary = json.loads(js.read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["file"] == str(wav)
    assert summary["sample_rate"] == SR
    assert summary["channels"] == 2
    assert summary["frames"] == stereo_signal.shape[1]
    assert summary["duration_s"] == pytest.approx(1.0)
    assert summary["voices_per_octave"] == 12 and summary["fmin_hz"] == 20.0 and summary["oversampling"] == 1.0
    assert 10000 < summary["fmax_hz"] < SR / 2
    assert summary["bands"] == _expected_bands(12, 20.0, summary["fmax_hz"])
    assert summary["atoms"] == summary["bands"] + 2  # plus the lowpass and highpass atoms
    assert 1.0 < summary["coefficients_per_sample"] < 40.0
    assert summary["reconstruction_error"] < 1e-5
    assert 0 < summary["analysis_seconds"] < 60 and 0 < summary["synthesis_seconds"] < 60
    assert summary["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(stereo_signal).max()), abs=1e-3)
    assert summary["device"] == "cpu"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("fmax", [None, 10240.0])
def test_more_voices_doubles_bands(tmp_path, wav, capsys, fmax):
    bands = {}
    for q in (12, 24):
        js = tmp_path / f"q{q}.json"
        extra = [] if fmax is None else ["--fmax", fmax]
        code, _, err = _run(["analyze", wav, "--voices", q, "--json", js, "--device", "cpu", *extra], capsys)
        assert code == 0, err
        summary = json.loads(js.read_text())
        assert summary["voices_per_octave"] == q
        assert summary["reconstruction_error"] < 1e-5
        assert summary["bands"] == _expected_bands(q, 20.0, summary["fmax_hz"])
        bands[q] = summary["bands"]
    if fmax is None:  # the top band may differ: narrower atoms fit closer to Nyquist
        assert 1.9 < (bands[24] - 1) / (bands[12] - 1) < 2.1
    else:  # 20 Hz .. 10240 Hz is exactly 9 octaves: 12 * 9 + 1 and 24 * 9 + 1 bands
        assert (bands[12], bands[24]) == (109, 217)


def test_frequency_options_and_text_summary(wav, capsys):
    code, out, err = _run(["analyze", wav, "--fmin", 100, "--fmax", 5000, "--oversampling", 2,
                           "--device", "cpu"], capsys)
    assert code == 0, err
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert SUMMARY_KEYS <= lines.keys()
    assert lines["sample_rate"] == "44100"
    assert lines["bands"] == str(_expected_bands(12, 100.0, 5000.0))
    assert lines["fmin_hz"].startswith("100.0")


def test_mono_file_and_channel_views(tmp_path, stereo_signal, capsys):
    mono = tmp_path / "mono.wav"
    _write_wav(mono, stereo_signal[0])
    for view in ("side", "0"):
        png = tmp_path / f"{view}.png"
        code, _, err = _run(["analyze", mono, "--channel", view, "--png", png, "--width", 200,
                             "--device", "cpu"], capsys)
        assert code == 0, err
        assert png.stat().st_size > 1000
    code, _, err = _run(["analyze", mono, "--channel", 1, "--device", "cpu"], capsys)
    assert code == 2 and "mono.wav" in err and "1 channel" in err


def test_example_keyword(tmp_path, capsys):
    js = tmp_path / "example.json"
    code, _, err = _run(["analyze", "example", "--json", js, "--device", "cpu"], capsys)
    assert code == 0, err
    summary = json.loads(js.read_text())
    assert summary["file"].endswith("example.flac")
    assert summary["channels"] == 2 and summary["duration_s"] == pytest.approx(signals.EXAMPLE_DURATION_S)
    assert summary["peak_dbfs"] == pytest.approx(signals.EXAMPLE_PEAK_DBFS, abs=0.1)
    assert summary["reconstruction_error"] < 1e-5


def _bad_cases(tmp_path, wav):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    return {
        "missing file": (["analyze", tmp_path / "nothere.wav"], "nothere.wav"),
        "text named .wav": (["analyze", text], "notes.wav"),
        "fmin above Nyquist": (["analyze", wav, "--fmin", 30000], "tone.wav"),
        "png in missing folder": (["analyze", wav, "--png", tmp_path / "no" / "pic.png"], "pic.png"),
        "json in missing folder": (["analyze", wav, "--json", tmp_path / "no" / "s.json"], "s.json"),
        "output is a folder": (["analyze", wav, "--json", tmp_path], str(tmp_path)),
    }


@pytest.mark.parametrize("case", ["missing file", "text named .wav", "fmin above Nyquist", "png in missing folder",
                                  "json in missing folder", "output is a folder"])
def test_bad_input_is_one_line_and_exit_code_2(case, tmp_path, wav, capsys):
    argv, name = _bad_cases(tmp_path, wav)[case]
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("scalgui: error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert name in err
    assert "Traceback" not in err and "Traceback" not in out


def test_usage_errors_exit_2(capsys):
    code, _, err = _run(["analyze", "x.wav", "--voices", "zero"], capsys)
    assert code == 2 and "--voices" in err and "Traceback" not in err
    code, _, err = _run(["analyze", "x.wav", "--channel", "centre"], capsys)
    assert code == 2 and "--channel" in err


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys; from scalgui.cli import main\n"
            "for argv in (['--help'], ['analyze', '--help'], ['bench', 'analyze', '--help']):\n"
            "    assert main(argv) == 0\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))] + sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("NO-TORCH")
    assert "analyze" in done.stdout and "bench" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ssqueezepy") is None, reason="ssqueezepy is not installed")
def test_bench_analyze_tiny_run(tmp_path, capsys):
    js = tmp_path / "bench.json"
    code, out, err = _run(["bench", "analyze", "--seconds", 0.5, "--no-song", "--quick", "--voices", 12,
                           "--json", js], capsys)
    assert code == 0, err
    assert "| generated mix" in out and "cwt ratio" in out
    assert "Targets:" in out and "torch" in out
    result = json.loads(js.read_text())
    row = result["signals"][0]
    assert row["signal"] == "generated mix" and row["seconds"] == pytest.approx(0.5)
    assert row["ours"]["error"] < 1e-5 and row["ours"]["analyze_s"] > 0
    assert row["ssq"]["cwt_s"] > 0 and row["ssq"]["scales"] > 50
    ratio = row["ssq"]["cwt_s"] / row["ours"]["analyze_s"]
    assert f"{ratio:.1f}x" in out
    methods = {m["method"]: m["memory"] for m in result["memory"]}
    assert set(methods) == {"scalgui", "ssqueezepy"}
    for memory in methods.values():
        # a fresh interpreter: the peak is its own, above its baseline, well below the parent's
        assert 0 < memory["interpreter"] <= memory["baseline"] <= memory["after_analysis"] <= memory["after_inverse"]
    assert any("not judged" in t["status"] for t in result["targets"])
