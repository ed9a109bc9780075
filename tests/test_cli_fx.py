"""Tests of `scalgui fx IN -o OUT --preset P.json` (effect chains on a file, headless)."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalgui.audio import audio_info, load_audio, save_audio
from scalgui.audio.effect_registry import EFFECTS
from scalgui.audio.effects import EffectChain, effect, save_preset, vst3_effect
from scalgui.cli import main
from scalgui.dsp import signals

SR = 22050


@pytest.fixture
def stereo():
    left = signals.chord((220.0, 330.0), 0.5, SR, amplitude=0.3)
    right = signals.exponential_chirp(200.0, 4000.0, 0.5, SR, amplitude=0.3)
    return np.stack([left, right])


@pytest.fixture
def wav(tmp_path, stereo):
    path = tmp_path / "in.wav"
    save_audio(path, stereo, SR, bit_depth=32)
    return path


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fx_runs_the_source_chain_then_the_render_chain(tmp_path, wav, stereo, capsys):
    preset = save_preset(tmp_path / "p.json", [
        EffectChain("render", (effect("Clipping", threshold_db=-6.0), effect("Reverb", bypass=True))),
        EffectChain("source", (effect("Gain", gain_db=6.0),)),
    ])
    out = tmp_path / "out.wav"
    code, stdout, err = _run(["fx", wav, "-o", out, "--preset", preset], capsys)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out}: 2 effect(s) (source: Gain; render: Clipping > Reverb (bypassed))")
    result = load_audio(out)
    assert (result.sample_rate, result.channels, result.frames) == (SR, 2, stereo.shape[1])
    assert result.source_bit_depth == 32  # IN's, which WAV stores
    # Gain first, then clipping at -6 dBFS (the other order would leave a peak of 2 x 0.5).
    ceiling = 10 ** (-6 / 20)
    expected = np.clip(stereo * 10 ** (6 / 20), -ceiling, ceiling)
    np.testing.assert_allclose(result.samples, expected, atol=1e-6)


def test_fx_keeps_bit_depth_and_tail(tmp_path, stereo, capsys):
    src = tmp_path / "in16.flac"
    save_audio(src, stereo, SR, bit_depth=16)
    preset = save_preset(tmp_path / "verb.json", [EffectChain("render", (effect("Reverb", room_size=0.9),))])
    out = tmp_path / "out.flac"
    code, _, err = _run(["fx", src, "-o", out, "--preset", preset, "--tail", "1.5"], capsys)
    assert code == 0, err
    info = audio_info(out)
    assert info["bit_depth"] == 16 and info["frames"] == stereo.shape[1] + int(1.5 * SR)
    tail = load_audio(out).samples[:, stereo.shape[1] + SR // 2:stereo.shape[1] + SR]
    assert np.sqrt(np.mean(tail ** 2)) > 1e-4  # the reverb rings on after the sound ends


def test_fx_refuses_to_clip_unless_told(tmp_path, wav, capsys):
    preset = save_preset(tmp_path / "loud.json", [EffectChain("render", (effect("Gain", gain_db=12.0),))])
    out = tmp_path / "loud.wav"
    code, _, err = _run(["fx", wav, "-o", out, "--preset", preset], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "peaks at +" in err and "--clip normalize" in err and not out.exists()
    code, stdout, err = _run(["fx", wav, "-o", out, "--preset", preset, "--clip", "normalize"], capsys)
    assert code == 0, err
    assert np.abs(load_audio(out).samples).max() == pytest.approx(10 ** (-0.1 / 20), abs=1e-4)
    assert "scaled by" in stdout


def test_fx_never_overwrites_the_input_unless_asked(tmp_path, wav, capsys):
    preset = save_preset(tmp_path / "inv.json", [EffectChain("render", (effect("Invert"),))])
    before = _digest(wav)
    code, _, err = _run(["fx", wav, "-o", tmp_path / "." / "in.wav", "--preset", preset], capsys)
    assert code == 2 and "it is the input file" in err and "--overwrite-input" in err
    assert _digest(wav) == before
    original = load_audio(wav).samples
    code, _, err = _run(["fx", wav, "-o", wav, "--preset", preset, "--overwrite-input"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(load_audio(wav).samples, -original)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic: no temp file left


def test_fx_on_the_bundled_example(tmp_path, capsys):
    preset = save_preset(tmp_path / "hp.json", [EffectChain("source", (effect("HighpassFilter",
                                                                             cutoff_frequency_hz=200.0),))])
    out = tmp_path / "example-hp.wav"
    code, _, err = _run(["fx", "example", "-o", out, "--preset", preset], capsys)
    assert code == 0, err
    from scalgui.resources import example_path

    source = audio_info(example_path())
    assert (audio_info(out)["sample_rate"], audio_info(out)["channels"]) == (source["sample_rate"],
                                                                             source["channels"])


def _bad_cases(tmp_path, wav):
    good = tmp_path / "good.json"
    bad = tmp_path / "bad.json"
    vst = tmp_path / "vst.json"
    nyquist = tmp_path / "nyquist.json"
    return {
        "missing preset file": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", tmp_path / "none.json"],
                                "cannot read preset", "none.json"),
        "bad preset": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", bad], "room_size 3 is outside 0 to 1",
                       "bad.json"),
        "broken VST3": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", vst], "cannot load VST3 plugin", "Gone.vst3"),
        "cutoff above Nyquist": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", nyquist], "not below Nyquist",
                                 "in.wav"),
        "missing input": (["fx", tmp_path / "nothere.wav", "-o", tmp_path / "o.wav", "--preset", good],
                          "no such file", "nothere.wav"),
        "output folder missing": (["fx", wav, "-o", tmp_path / "no" / "o.wav", "--preset", good], "does not exist",
                                  "o.wav"),
        "unknown extension": (["fx", wav, "-o", tmp_path / "o.xyz", "--preset", good], "unsupported extension",
                              ".xyz"),
        "no preset given": (["fx", wav, "-o", tmp_path / "o.wav"], "missing --preset", "fx"),
        "bad clip policy": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", good, "--clip", "wrap"], "--clip",
                            "wrap"),
        "negative tail": (["fx", wav, "-o", tmp_path / "o.wav", "--preset", good, "--tail", "-1"], "--tail", "-1"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(Path("."), "in.wav")))
def test_bad_input_is_one_line_and_exit_code_2(case, tmp_path, wav, capsys):
    save_preset(tmp_path / "good.json", [EffectChain("render", (effect("Gain"),))])
    (tmp_path / "bad.json").write_text('{"format": "scalgui-effects", "version": 1, "chains": [{"effects": '
                                       '[{"type": "Reverb", "params": {"room_size": 3}}]}]}')
    save_preset(tmp_path / "vst.json", [EffectChain("render", (vst3_effect(tmp_path / "Gone.vst3"),))])
    save_preset(tmp_path / "nyquist.json", [EffectChain("render", (effect("LowpassFilter",
                                                                          cutoff_frequency_hz=15000.0),))])
    argv, problem, name = _bad_cases(tmp_path, wav)[case]
    before = _digest(wav)
    code, out, err = _run(argv, capsys)
    assert code == 2, err
    assert err.startswith("scalgui: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert problem in err and name in err, err
    assert "Traceback" not in err + out
    assert not (tmp_path / "o.wav").exists() and _digest(wav) == before


def test_list_prints_every_effect_with_its_parameters(capsys):
    code, out, _ = _run(["fx", "--list"], capsys)
    assert code == 0
    for name, kind in EFFECTS.items():
        assert f"  {name}\n" in out
        for p in kind.params:
            assert p.describe() in out
    assert "cutoff_frequency_hz: 20 to 20000 Hz (default 50)" in out and "VST3" in out


def test_help_imports_neither_torch_nor_pedalboard():
    code = ("import sys; from scalgui.cli import main\n"
            "assert main(['fx', '--help']) == 0\n"
            "print([m for m in ('torch', 'pedalboard') if m in sys.modules])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))] + sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")
    assert "--preset" in done.stdout and "--overwrite-input" in done.stdout
