"""Tests of `scalgui invert` (phase retrieval from a file's magnitudes) and `scalgui bench invert`."""
import _thread
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalgui.cli import main
from scalgui.dsp.phase import RETRIEVAL_METHOD
from scalgui.dsp import signals

SR = 22050
REQUIRED_KEYS = {
    "spectral_convergence_db", "iterations", "seconds", "device", "method", "init", "sample_rate", "channels",
    "frames", "loss", "seed", "voices_per_octave", "fmin_hz", "fmax_hz", "oversampling", "history_db",
    "multiresolution_stft_db", "output", "peak_dbfs", "normalised_gain_db", "cancelled",
}


def _write_wav(path, samples: np.ndarray, sample_rate: int = SR, bit_depth: int | None = None) -> None:
    from pedalboard.io import AudioFile

    samples = np.atleast_2d(samples).astype(np.float32)
    options = {} if bit_depth is None else {"bit_depth": bit_depth}
    with AudioFile(str(path), "w", sample_rate, samples.shape[0], **options) as f:
        f.write(samples)


@pytest.fixture(scope="module")
def stereo_signal() -> np.ndarray:
    """0.5 s of stereo at 22.05 kHz: a chirp on the left, a chord on the right; float32 [2, 11025]."""
    left = signals.exponential_chirp(200.0, 6000.0, 0.5, SR, amplitude=0.4)
    right = signals.chord((220.0, 330.0), 0.5, SR, amplitude=0.3)
    return np.stack([left, right])


@pytest.fixture
def wav(tmp_path, stereo_signal):
    path = tmp_path / "in.wav"
    _write_wav(path, stereo_signal, bit_depth=32)  # 32-bit float WAV: exact
    return path


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _frame_magnitudes(samples: np.ndarray, report: dict):
    import torch

    from scalgui.dsp.frame import FrameSettings, WaveletFrame

    frame = WaveletFrame(FrameSettings(report["sample_rate"], voices_per_octave=report["voices_per_octave"],
                                       fmin=report["fmin_hz"], oversampling=report["oversampling"],
                                       bandwidth_voices=report["bandwidth_voices"]),
                         pad_limit=report["pad_limit"])
    return frame.analyze(torch.as_tensor(samples)).magnitudes()


def test_invert_writes_audio_and_a_report_that_holds(tmp_path, wav, stereo_signal, capsys):
    from scalgui.audio import load_audio
    from scalgui.commands.invert import REPORT_KEYS
    from scalgui.dsp.metrics import multiresolution_stft_convergence_db as multiresolution_stft_db
    from scalgui.dsp.metrics import spectral_convergence_db

    out, rep = tmp_path / "out.wav", tmp_path / "report.json"
    code, stdout, err = _run(["invert", wav, "-o", out, "--iters", 12, "--report", rep, "--device", "cpu"], capsys)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    result = load_audio(out)
    assert (result.sample_rate, result.channels, result.frames) == (SR, 2, stereo_signal.shape[1])
    assert result.source_bit_depth == 32  # the input's, which WAV can store

    report = json.loads(rep.read_text())
    assert REQUIRED_KEYS <= set(report) and tuple(report) == REPORT_KEYS
    assert (report["sample_rate"], report["channels"], report["frames"]) == (SR, 2, stereo_signal.shape[1])
    assert report["iterations"] == report["iterations_requested"] == 12 and len(report["history_db"]) == 12
    assert (report["method"], report["init"], report["loss"], report["device"]) == (
        RETRIEVAL_METHOD, "pghi", "l2", "cpu")
    assert report["cancelled"] is False and report["output"] == str(out)
    assert report["voices_per_octave"] == 48 and report["fmin_hz"] == 20.0 and report["fmax_hz"] < SR / 2
    assert report["seconds"] > 0 and report["spectral_convergence_db"] == pytest.approx(min(report["history_db"]),
                                                                                        abs=1e-6)
    assert report["normalised"] is False and report["normalised_gain_db"] == 0.0
    assert -60 < report["spectral_convergence_db"] < -5  # retrieved from magnitudes: close, not exact

    # What the file holds is what the report claims, in both measures.
    target = _frame_magnitudes(stereo_signal, report)
    estimate = _frame_magnitudes(result.samples, report)
    assert spectral_convergence_db(estimate, target) == pytest.approx(report["spectral_convergence_db"], abs=0.1)
    assert multiresolution_stft_db(result.samples, stereo_signal) == pytest.approx(
        report["multiresolution_stft_db"], abs=0.1)
    assert report["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(result.samples).max()), abs=0.01)


def test_init_original_is_a_near_exact_warm_start(tmp_path, wav, capsys):
    out, rep = tmp_path / "warm.flac", tmp_path / "warm.json"
    code, stdout, err = _run(["invert", wav, "-o", out, "--iters", 2, "--init", "original", "--report", rep], capsys)
    assert code == 0, err
    report = json.loads(rep.read_text())
    assert report["spectral_convergence_db"] < -60
    assert report["warm_start_from_true_phase"] is True and "true phase" in stdout
    assert report["format"] == "flac" and report["bit_depth"] == 24  # FLAC has no 32-bit float: 24


def test_default_bit_depth_follows_the_input(tmp_path, stereo_signal, capsys):
    from scalgui.audio import audio_info

    src = tmp_path / "in16.wav"
    _write_wav(src, stereo_signal, bit_depth=16)
    out = tmp_path / "out16.wav"
    code, _, err = _run(["invert", src, "-o", out, "--iters", 0], capsys)
    assert code == 0, err
    assert audio_info(out)["bit_depth"] == 16
    code, _, err = _run(["invert", src, "-o", out, "--iters", 0, "--bit-depth", 24], capsys)
    assert code == 0, err
    assert audio_info(out)["bit_depth"] == 24


def test_overshoot_is_normalised_and_reported(tmp_path, wav, monkeypatch, capsys):
    from scalgui.audio import load_audio
    from scalgui.dsp import phase

    real = phase.retrieve

    def loud(*args, **kwargs):
        result = real(*args, **kwargs)
        result.signal = result.signal * 4.0  # peaks near +4 dBFS
        return result

    monkeypatch.setattr(phase, "retrieve", loud)
    out, rep = tmp_path / "loud.wav", tmp_path / "loud.json"
    code, stdout, err = _run(["invert", wav, "-o", out, "--iters", 1, "--report", rep], capsys)
    assert code == 0, err
    report = json.loads(rep.read_text())
    assert report["normalised"] is True and report["peak_dbfs"] > 0
    assert report["normalised_gain_db"] == pytest.approx(-0.1 - report["peak_dbfs"], abs=1e-3)
    assert np.abs(load_audio(out).samples).max() == pytest.approx(10 ** (-0.1 / 20), abs=1e-4)
    assert "scaled by" in stdout


def test_ctrl_c_cancels_and_writes_the_best_so_far(tmp_path, wav, monkeypatch, capsys):
    from scalgui.commands import invert

    class InterruptingProgress:
        every = 1

        def __init__(self, iterations, tty=None):
            pass

        def __call__(self, p):
            if p.iteration == 3:
                _thread.interrupt_main()  # as if Ctrl-C reached the main thread

        def close(self):
            pass

    monkeypatch.setattr(invert, "_ProgressReport", InterruptingProgress)
    out, rep = tmp_path / "cut.wav", tmp_path / "cut.json"
    code, stdout, err = _run(["invert", wav, "-o", out, "--iters", 5000, "--report", rep], capsys)
    assert code == 130, err
    report = json.loads(rep.read_text())
    assert report["cancelled"] is True and 3 <= report["iterations"] < 100
    assert len(report["history_db"]) == report["iterations"]
    assert out.is_file() and "cancelled after" in stdout and "cancelling" in err


def _bad_cases(tmp_path, wav):
    return {
        "unknown method": (["invert", wav, "-o", tmp_path / "o.wav", "--method", "newton"], "--method"),
        "negative iterations": (["invert", wav, "-o", tmp_path / "o.wav", "--iters", "-3"], "--iters"),
        "missing input": (["invert", tmp_path / "nothere.wav", "-o", tmp_path / "o.wav"], "nothere.wav"),
        "output folder missing": (["invert", wav, "-o", tmp_path / "no" / "o.wav"], "o.wav"),
        "output is the input": (["invert", wav, "-o", wav], "in.wav"),
        "output is the input by another path": (["invert", wav, "-o", tmp_path / "." / "in.wav"], "in.wav"),
        "report in missing folder": (["invert", wav, "-o", tmp_path / "o.wav", "--report", tmp_path / "no" / "r.json"],
                                     "r.json"),
        "unknown extension": (["invert", wav, "-o", tmp_path / "o.xyz"], ".xyz"),
        "no 32-bit FLAC": (["invert", wav, "-o", tmp_path / "o.flac", "--bit-depth", "32"], "flac"),
        "bad momentum": (["invert", wav, "-o", tmp_path / "o.wav", "--momentum", "3"], "momentum"),
        "fmin above Nyquist": (["invert", wav, "-o", tmp_path / "o.wav", "--fmin", "20000"], "fmin"),
        "missing -o": (["invert", wav], "-o"),
        "cuda without CUDA": (["invert", wav, "-o", tmp_path / "o.wav", "--device", "cuda"], "cuda"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(Path("."), Path("."))))
def test_bad_arguments_are_one_line_and_exit_code_2(case, tmp_path, wav, capsys):
    if case == "cuda without CUDA":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is available")
    argv, name = _bad_cases(tmp_path, wav)[case]
    code, out, err = _run(argv, capsys)
    assert code == 2, err
    assert err.startswith("scalgui: error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert name in err
    assert "Traceback" not in err and "Traceback" not in out
    assert not (tmp_path / "o.wav").exists()
    assert wav.is_file()


def test_choices_match_the_engine():
    from scalgui.commands import invert
    from scalgui.dsp import frame, phase

    assert invert.METHODS == phase.METHODS and invert.INITS == phase.INITS and invert.LOSSES == phase.LOSSES
    assert invert.RETRIEVAL_VOICES == frame.RETRIEVAL_VOICES


def test_multiresolution_measure_in_chunks_matches_one_pass(rng):
    import torch

    from scalgui.dsp.metrics import multiresolution_stft_convergence_db as multiresolution_stft_db

    x = rng.standard_normal((2, 30000)).astype(np.float32)
    y = x + 0.1 * rng.standard_normal((2, 30000)).astype(np.float32)
    values = []
    for size in (256, 1024, 4096):  # the definition, in one pass
        window = torch.hann_window(size, dtype=torch.float64)
        mag = lambda s: torch.stft(torch.from_numpy(s).double(), size, size // 4, window=window,
                                   return_complex=True).abs()
        values.append(20 * math.log10(float((mag(y) - mag(x)).norm() / mag(x).norm())))
    expected = float(np.mean(values))
    assert multiresolution_stft_db(y, x, chunk_frames=7) == pytest.approx(expected, abs=1e-9)
    assert multiresolution_stft_db(y, x) == pytest.approx(expected, abs=1e-9)
    short = multiresolution_stft_db(y[:, :1500], x[:, :1500])  # shorter than the 4096-point STFT needs
    assert math.isfinite(short) and short < -10


def test_help_does_not_import_torch():
    code = ("import sys; from scalgui.cli import main\n"
            "for argv in (['invert', '--help'], ['bench', 'invert', '--help']):\n"
            "    assert main(argv) == 0\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))] + sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("NO-TORCH")
    assert "--init" in done.stdout and "original" in done.stdout


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None or importlib.util.find_spec("kymatio") is None,
                    reason="the benchmark needs librosa and kymatio")
def test_bench_invert_tiny_run(tmp_path, capsys):
    js = tmp_path / "bench.json"
    code, out, err = _run(["bench", "invert", "--quick", "--iters", 5, "--max-seconds", 0.5,
                           "--throughput-seconds", 1, "--json", js], capsys)
    assert code == 0, err
    for text in ("### (a)", "kymatio recipe (Q=8, J=6",
                 f"scalgui invert defaults: {RETRIEVAL_METHOD}, PGHI init, Q=48",
                 "scalgui fgla, PGHI init, recipe's range, Q=8",
                 "exponential chirp (2048 samples)", "loudest 8192 samples", "### (b)", "GL best n_fft",
                 "generated speech-like", "generated music", "### (c)", "generated stereo music (1 s)",
                 "M sample-iterations/s", "Targets:"):
        assert text in out, text
    assert "not judged (5 iterations)" in out  # targets are judged at 100 iterations only
    assert "not judged (measured on 1 s, not 60 s)" in out
    result = json.loads(js.read_text())
    for row in result["recipe"]:
        assert row["recipe"]["iterations"] == row["ours"]["iterations"] == 5
        assert row["recipe"]["xi_min"] * row["sample_rate"] == pytest.approx(row["ours_recipe_range"]["fmin_hz"])
        for key in ("recipe", "ours", "ours_recipe_range", "ours_random_init"):
            assert math.isfinite(row[key]["mr_stft_db"]) and row[key]["seconds"] > 0
        assert f"{row['recipe']['mr_stft_db']:.2f}" in out and f"{row['ours']['mr_stft_db']:.2f}" in out
    assert len(result["griffinlim"]) == 2
    for row in result["griffinlim"]:
        assert {g["n_fft"] for g in row["griffinlim"]} == {512, 1024, 2048}
        assert row["griffinlim_best"]["mr_stft_db"] == min(g["mr_stft_db"] for g in row["griffinlim"])
        assert f"{row['griffinlim_best']['mr_stft_db']:.2f}" in out
    (throughput,) = result["throughput"]
    assert throughput["device"] == "cpu" and throughput["channels"] == 2 and throughput["iterations"] == 20
    assert f"{throughput['sample_iterations_per_s'] / 1e6:.2f}" in out
