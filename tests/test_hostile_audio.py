"""Hostile audio headers, analysis memory and command-line numbers (issue 20, part A).

A crafted header must not make scalgui allocate from its word (a streaming WAV's
0xFFFFFFFF data size, an absurd frame or channel count), hang the decoder, or write over
the input; every number on the command line is bounded with a one-line message naming the
option and its range; an analysis that would not fit in memory is refused before it starts,
naming what it needs. Cases that can hang or fill memory run in a child process
(tests/hostile.py); message-only cases run in-process.
"""
import json
import math
import os
import struct

import numpy as np
import pytest

from hostile import REFUSAL_PEAK_BYTES, assert_refused, run_scalgui, snapshot
from scalgui.audio import audio_info, load_audio
from scalgui.audio.errors import TruncatedAudio, UnreadableAudio
from scalgui.cli import main

SR = 22050


# --------------------------------------------------------------------------- files


def pcm16(seconds: float, rate: int = SR, channels: int = 1) -> bytes:
    """Interleaved 16-bit little-endian PCM of a 440 Hz tone."""
    t = np.arange(int(round(seconds * rate))) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype("<i2")
    return np.repeat(tone[:, None], channels, axis=1).tobytes()


def riff(path, data: bytes, *, channels=1, rate=SR, bits=16, data_size=None, riff_size=None):
    """A canonical PCM WAV with the given header words (None: the honest value)."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * bits // 8) & 0xFFFFFFFF,
                      (channels * bits // 8) & 0xFFFF, bits)
    body = (b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body)
    return path


def rf64(path, data: bytes, *, ds64_data_size: int):
    """An RF64 WAV whose ds64 chunk states ``ds64_data_size`` bytes of audio."""
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)
    tail = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF) + data
    riff_size = 4 + 8 + 28 + len(tail)
    ds64 = struct.pack("<QQQI", riff_size, ds64_data_size, ds64_data_size // 2, 0)
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEds64" + struct.pack("<I", len(ds64))
                     + ds64 + tail)
    return path


def _extended(value: float) -> bytes:
    """An IEEE 754 80-bit extended float (AIFF's sample rate)."""
    exponent = math.floor(math.log2(value))
    return struct.pack(">HQ", exponent + 16383, int(value / 2**exponent * 2**63))


def aiff(path, data: bytes, *, channels=1, frames=None, bits=16, rate=float(SR)):
    """An AIFF with the given COMM words (``frames`` None: the honest count)."""
    honest = len(data) // (max(channels, 1) * bits // 8)
    comm = struct.pack(">hIh", channels, (honest if frames is None else frames) & 0xFFFFFFFF, bits) + _extended(rate)
    body = (b"AIFFCOMM" + struct.pack(">I", len(comm)) + comm
            + b"SSND" + struct.pack(">I", len(data) + 8) + b"\0" * 8 + data)
    path.write_bytes(b"FORM" + struct.pack(">I", len(body)) + body)
    return path


def cli(argv, capsys):
    """Run ``scalgui`` in-process: (exit code, stdout, stderr lines)."""
    code = main([os.fspath(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code, err, *needles):
    """Exit code 2 and exactly one line ``scalgui: error: ...`` holding every needle."""
    assert code == 2, (code, err)
    assert "Traceback" not in "\n".join(err)
    assert len(err) == 1 and err[0].startswith("scalgui: error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])


def report(name, outcome) -> None:
    """What a child took, for the record (``pytest -s``): seconds and peak memory."""
    print(f"\n{name}: exit {outcome.code}, {outcome.seconds:.1f} s, peak {outcome.peak_mb:.0f} MB")


# --------------------------------------------------------------------------- headers


def test_a_streaming_wav_is_analysed_by_what_it_holds(tmp_path):
    # The 0xFFFFFFFF data size streaming writers leave: pedalboard takes it for 2**31
    # frames and pads zeros; `scalgui analyze` grew to 12.5 GB on this 44 KB file.
    source = riff(tmp_path / "stream.wav", pcm16(1.0), data_size=0xFFFFFFFF)
    outcome = run_scalgui(["analyze", source, "--json", tmp_path / "out.json"], timeout=120)
    report("streaming WAV", outcome)
    assert not outcome.timed_out and outcome.code == 0, outcome.stderr_lines
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["frames"] == SR and summary["duration_s"] == pytest.approx(1.0)
    assert outcome.peak_bytes < REFUSAL_PEAK_BYTES, f"peak {outcome.peak_mb:.0f} MB"


def test_a_streaming_wav_reads_exactly_its_bytes(tmp_path):
    data = pcm16(0.5, channels=2)
    source = riff(tmp_path / "stream.wav", data, channels=2, data_size=0xFFFFFFFF)
    info = audio_info(source)
    assert (info["frames"], info["channels"], info["frames_exact"]) == (len(data) // 4, 2, True)
    honest = riff(tmp_path / "honest.wav", data, channels=2)
    assert np.array_equal(load_audio(source).samples, load_audio(honest).samples)


def test_a_streaming_wav_with_many_channels_counts_whole_frames(tmp_path):
    # 1024 channels: pedalboard reports 2**32 / 2048 frames; the bytes hold 215 and a bit.
    data = pcm16(10.0)
    source = riff(tmp_path / "wide.wav", data, channels=1024, data_size=0xFFFFFFFF)
    info = audio_info(source)
    assert (info["channels"], info["frames"]) == (1024, len(data) // 2048)
    assert load_audio(source).samples.shape == (1024, len(data) // 2048)


def test_frames_too_large_for_the_decoder_are_refused_not_hung(tmp_path):
    # pedalboard's WAV/AIFF reader never advances on a frame over 5760 bytes: it spun
    # for good on 2881 channels of 16 bits.
    wav = riff(tmp_path / "wide.wav", b"\0" * (2881 * 2 * 10), channels=2881)
    outcome = run_scalgui(["analyze", wav], timeout=60)
    report("2881-channel WAV", outcome)
    assert_refused(outcome, "wide.wav", "2881 channels of 16 bits", "at most 5760 bytes")
    aif = aiff(tmp_path / "wide.aiff", b"\0" * (1441 * 4 * 10), channels=1441, bits=32)
    outcome = run_scalgui(["analyze", aif], timeout=60)
    report("1441-channel 32-bit AIFF", outcome)
    assert_refused(outcome, "wide.aiff", "1441 channels of 32 bits")


@pytest.mark.parametrize("case", ["riff size", "rf64 ds64", "aiff frames", "65535 channels", "negative channels",
                                  "high rate", "absurd rate"])
def test_lying_headers_are_refused_in_one_line_or_read_by_what_they_hold(case, tmp_path, capsys):
    data = pcm16(0.5)
    make, needles = {
        "riff size": (lambda p: riff(p, data, riff_size=0xFFFFFFFF), None),
        "rf64 ds64": (lambda p: rf64(p, data, ds64_data_size=2**40), ("truncated", "promises 549755813888 frames")),
        "aiff frames": (lambda p: aiff(p, data, frames=0xFFFFFFFF), ("truncated", "promises 4294967295 frames")),
        "65535 channels": (lambda p: riff(p, data * 12, channels=65535), ("65535 channels of 16 bits",)),
        "negative channels": (lambda p: aiff(p, data, channels=-1), ("declares -1 channels",)),
        "high rate": (lambda p: riff(p, data, rate=800_000), ("implausible sample rate 800000 Hz",)),
        "absurd rate": (lambda p: riff(p, data, rate=4_000_000_000), ("not a readable audio file",)),
    }[case]
    source = make(tmp_path / ("in.aiff" if "aiff" in case or "negative" in case else "in.wav"))
    code, out, err = cli(["analyze", source, "--json", tmp_path / "out.json"], capsys)
    if needles is None:  # a RIFF size of 0xFFFFFFFF with an honest data chunk: just read
        assert code == 0, err
        assert json.loads((tmp_path / "out.json").read_text())["frames"] == len(data) // 2
    else:
        assert_one_line_error(code, err, source.name, *needles)
        assert not (tmp_path / "out.json").exists()


def test_a_header_of_endless_chunks_is_refused_without_walking_them_all(tmp_path, capsys):
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)
    data = pcm16(0.1)
    body = (b"WAVE" + b"junk\0\0\0\0" * 100_000 + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)
    source = tmp_path / "chunks.wav"
    source.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    code, _out, err = cli(["analyze", source], capsys)
    assert_one_line_error(code, err, "chunks.wav", "more than 4096 chunks before the audio data")


def test_lying_headers_raise_the_audio_errors_through_the_api(tmp_path):
    with pytest.raises(TruncatedAudio):
        load_audio(rf64(tmp_path / "a.wav", pcm16(0.1), ds64_data_size=2**40))
    with pytest.raises(UnreadableAudio, match="2881 channels"):
        load_audio(riff(tmp_path / "b.wav", b"\0" * (2881 * 2 * 4), channels=2881))


# --------------------------------------------------------------------------- file names


def test_a_file_name_that_is_not_utf8(tmp_path):
    folder = os.fsencode(tmp_path)
    good = folder + b"/\xff\xfe.wav"
    riff(tmp_path / os.fsdecode(good), pcm16(0.3))
    out = folder + b"/\xffout.json"
    outcome = run_scalgui(["analyze", good, "--json", out], timeout=120)
    report("non-UTF-8 name", outcome)
    assert outcome.code == 0, outcome.stderr_lines
    assert json.loads(open(out, "rb").read())["frames"] == round(0.3 * SR)
    bad = folder + b"/bad\xff.wav"
    with open(bad, "wb") as handle:
        handle.write(b"not audio at all")
    outcome = run_scalgui(["analyze", bad], timeout=120)
    report("non-UTF-8 name, not audio", outcome)
    # The undecodable byte is shown as its surrogate escape, on the one line.
    assert_refused(outcome, "bad\\udcff.wav", "not a readable audio file")


def test_an_audio_output_whose_name_is_not_utf8_is_written(tmp_path):
    riff(tmp_path / "in.wav", pcm16(0.3))
    (tmp_path / "empty.json").write_text('{"format": "scalgui-effects", "version": 1, "chains": []}')
    for suffix in (b".wav", b".flac", b".mp3"):
        out = os.fsencode(tmp_path) + b"/out\xff" + suffix
        outcome = run_scalgui(["fx", tmp_path / "in.wav", "-o", out, "--preset", tmp_path / "empty.json"])
        assert outcome.code == 0, outcome.stderr_lines
        assert load_audio(os.fsdecode(out)).frames >= round(0.3 * SR)


def test_a_newline_in_a_file_name_stays_on_the_error_line(tmp_path, capsys):
    odd = tmp_path / "two\nlines.wav"
    odd.write_bytes(b"not audio")
    code, _out, err = cli(["analyze", odd], capsys)
    assert_one_line_error(code, err, "two\\nlines.wav", "not a readable audio file")
    code, _out, err = cli(["render", tmp_path / "gone\r.scalproj", "-o", tmp_path / "out.wav"], capsys)
    assert_one_line_error(code, err, "gone\\r.scalproj", "no such file")


# --------------------------------------------------------------------------- outputs


def _input_and_links(tmp_path):
    source = riff(tmp_path / "a.wav", pcm16(0.3))
    os.symlink("a.wav", tmp_path / "link.wav")
    os.link(tmp_path / "a.wav", tmp_path / "hard.wav")
    return source


@pytest.mark.parametrize("option", ["--json", "--png"])
@pytest.mark.parametrize("spelling", ["a.wav", "./a.wav", "ABSOLUTE", "link.wav", "hard.wav", "sub/../a.wav"])
def test_analyze_never_writes_over_its_input(option, spelling, tmp_path, capsys, monkeypatch):
    _input_and_links(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    target = str(tmp_path / "a.wav") if spelling == "ABSOLUTE" else spelling
    before = snapshot(tmp_path)
    code, _out, err = cli(["analyze", "a.wav", option, target], capsys)
    assert_one_line_error(code, err, option, "it is the input file")
    assert snapshot(tmp_path) == before


def test_analyze_refuses_png_and_json_in_the_same_file(tmp_path, capsys, monkeypatch):
    _input_and_links(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, _out, err = cli(["analyze", "link.wav", "--png", "out.bin", "--json", "./out.bin"], capsys)
    assert_one_line_error(code, err, "--png and --json name the same file")
    code, _out, err = cli(["analyze", "link.wav", "--json", "a.wav"], capsys)  # the input through its link
    assert_one_line_error(code, err, "it is the input file")
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- numbers


@pytest.fixture
def short_wav(tmp_path):
    return riff(tmp_path / "in.wav", pcm16(0.3))


ANALYZE_BAD_NUMBERS = [
    (["--voices", "0"], "--voices"),
    (["--voices", "100000000000000000000"], "voices per octave must be an integer in 4..96"),
    (["--voices", "97"], "voices per octave must be an integer in 4..96"),
    (["--fmin", "1e-9"], "fmin must be at least 1 Hz"),
    (["--fmin", "0"], "fmin must be at least 1 Hz"),
    (["--fmin=-1e308"], "fmin must be at least 1 Hz"),
    (["--fmin", "1e308"], "below Nyquist"),
    (["--fmin", "nan"], "--fmin: expected a finite number"),
    (["--fmin", "inf"], "--fmin: expected a finite number"),
    (["--fmax", "1e308"], "fmax must lie between fmin"),
    (["--fmax", "0"], "fmax must lie between fmin"),
    (["--oversampling", "1e308"], "oversampling must lie in 1..16"),
    (["--oversampling", "0"], "oversampling must lie in 1..16"),
    (["--oversampling", "nan"], "--oversampling: expected a finite number"),
    (["--width", "100000000"], "--width: must lie in 1..16384"),
    (["--width", "0"], "--width: must lie in 1..16384"),
    (["--width", "1e3"], "--width: expected a whole number"),
    (["--floor-db", "1e300"], "--floor-db: must lie in -400..0 dB"),
    (["--floor-db=-1e300"], "--floor-db: must lie in -400..0 dB"),
    (["--floor-db", "10"], "--floor-db: must lie in -400..0 dB"),
    (["--floor-db", "nan"], "--floor-db: expected a finite number"),
    (["--memory-limit", "1e308"], "--memory-limit: must lie in 1..16777216 MB"),
    (["--memory-limit", "0"], "--memory-limit: must lie in 1..16777216 MB"),
    (["--memory-limit=-5"], "--memory-limit: must lie in 1..16777216 MB"),
    (["--memory-limit", "inf"], "--memory-limit: expected a finite number"),
    (["--channel", "100000000000000000000000"], "the file has 1 channel(s)"),
]


@pytest.mark.parametrize("options, needle", ANALYZE_BAD_NUMBERS, ids=[" ".join(o) for o, _ in ANALYZE_BAD_NUMBERS])
def test_analyze_numbers_are_bounded(options, needle, short_wav, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, _out, err = cli(["analyze", short_wav, "--png", out, *options], capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


INVERT_BAD_NUMBERS = [
    (["--memory-limit", "1e308"], "--memory-limit: must lie in 1..16777216 MB"),
    (["--memory-limit", "1e-300"], "--memory-limit: must lie in 1..16777216 MB"),
    (["--fmin", "1e-9"], "fmin must be at least 1 Hz"),
    (["--oversampling", "1e308"], "oversampling must lie in 1..16"),
    (["--voices", "100000000000000000000"], "voices per octave must be an integer in 4..96"),
    (["--bandwidth-voices", "100000000000000000000"], "bandwidth voices must be an integer from 4"),
    (["--fmax", "1e308"], "fmax must lie between fmin"),
    (["--iters", "100000000000000000000000"], "iterations"),
    (["--seed", "100000000000000000000000"], "seed"),
    (["--lr", "1e308"], "learning rate"),
    (["--momentum", "1e308"], "momentum"),
]


@pytest.mark.parametrize("options, needle", INVERT_BAD_NUMBERS, ids=[" ".join(o) for o, _ in INVERT_BAD_NUMBERS])
def test_invert_numbers_are_bounded(options, needle, short_wav, tmp_path, capsys):
    out = tmp_path / "out.wav"
    code, _out, err = cli(["invert", short_wav, "-o", out, *options], capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


@pytest.mark.parametrize("tail", ["1e9", "1e300", "-1", "nan", "inf", "60.5"])
def test_fx_tail_is_bounded(tail, short_wav, tmp_path, capsys):
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"format": "scalgui-effects", "version": 1, "chains": []}))
    out = tmp_path / "out.wav"
    code, _out, err = cli(["fx", short_wav, "-o", out, "--preset", preset, f"--tail={tail}"], capsys)
    assert_one_line_error(code, err, "--tail")
    assert not out.exists()


def test_fx_tail_within_its_range_is_appended(short_wav, tmp_path, capsys):
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"format": "scalgui-effects", "version": 1, "chains": []}))
    out = tmp_path / "out.wav"
    code, _out, err = cli(["fx", short_wav, "-o", out, "--preset", preset, "--tail", "0.2"], capsys)
    assert code == 0, err
    assert audio_info(out)["frames"] == round(0.3 * SR) + round(0.2 * SR)


@pytest.mark.parametrize("settings, needle", [
    (dict(sample_rate=1e12), "sample rate must lie in 1000..768000 Hz"),
    (dict(sample_rate=999.0), "sample rate must lie in 1000..768000 Hz"),
    (dict(sample_rate="44100"), "sample rate must be a finite number"),
    (dict(sample_rate=44100, fmin=1e-9), "fmin must be at least 1 Hz"),
    (dict(sample_rate=44100, fmin=float("nan")), "fmin must be a finite number"),
    (dict(sample_rate=44100, tolerance=1e-300), "tolerance must lie in 1e-12..0.01"),
    (dict(sample_rate=44100, tolerance=0.5), "tolerance must lie in 1e-12..0.01"),
    (dict(sample_rate=44100, oversampling=1e308), "oversampling must lie in 1..16"),
    (dict(sample_rate=44100, voices_per_octave=float("inf")), "voices per octave must be an integer in 4..96"),
    (dict(sample_rate=44100, voices_per_octave=True), "voices per octave must be an integer in 4..96"),
    (dict(sample_rate=44100, bandwidth_voices=float("nan")), "bandwidth voices must be an integer"),
    (dict(sample_rate=44100, fmax=float("inf")), "fmax must be a finite number"),
])
def test_frame_settings_from_a_file_are_refused_with_one_sentence(settings, needle):
    from scalgui.dsp.frame import FrameSettings

    with pytest.raises(ValueError) as caught:
        FrameSettings(**settings)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_frame_accepts_the_sample_rates_the_audio_layer_does():
    from scalgui.audio import formats
    from scalgui.dsp import frame

    assert (frame.MIN_SAMPLE_RATE, frame.MAX_SAMPLE_RATE) == (formats.MIN_SAMPLE_RATE, formats.MAX_SAMPLE_RATE)


# --------------------------------------------------------------------------- memory


def test_an_analysis_over_the_memory_limit_is_refused_before_it_starts(tmp_path):
    source = riff(tmp_path / "in.wav", pcm16(3.0))
    outcome = run_scalgui(["analyze", source, "--voices", "96", "--oversampling", "16", "--memory-limit", "200",
                           "--json", tmp_path / "out.json"], timeout=120)
    report("analysis over --memory-limit 200", outcome)
    assert_refused(outcome, "in.wav", "needs about", "the memory limit is 200 MB", "fewer voices per octave",
                   "--memory-limit")
    assert not (tmp_path / "out.json").exists()


def test_an_analysis_over_what_the_process_may_take_is_refused_not_killed(tmp_path):
    # The child may map 4 GiB (about 2.5 GB beyond torch's own mappings); one minute of
    # 48 kHz stereo at 96 voices and oversampling 16 is planned at several GB more.
    source = riff(tmp_path / "long.wav", pcm16(60.0, rate=48000, channels=2), channels=2, rate=48000)
    outcome = run_scalgui(["analyze", source, "--voices", "96", "--oversampling", "16"], timeout=120,
                          address_space=4 * 2**30)
    report("analysis over the address space", outcome)
    assert_refused(outcome, "long.wav", "needs about", "GB of memory", "is available")


#: Run in a child: the peak resident memory of ``scalgui analyze`` above what the process
#: holds once its libraries are loaded. /proc's VmHWM belongs to the child's own address
#: space (a fork's inherited resource usage would count the parent's memory).
_MEASURE_ANALYSIS = """
import json, sys
import numpy, pedalboard, torch
import scalgui.audio, scalgui.dsp.frame
from scalgui.cli import main

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key))

with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak so far becomes the current size
start = status("VmRSS:")
code = main(sys.argv[1:])
print(json.dumps({"code": code, "above_start": status("VmHWM:") - start}))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's /proc/self/clear_refs")
def test_the_analysis_plan_is_a_little_above_the_measured_peak(tmp_path):
    import subprocess
    import sys

    from scalgui.dsp.frame import FrameSettings, WaveletFrame
    from scalgui.dsp.memory import analysis_bytes

    source = riff(tmp_path / "in.wav", pcm16(4.0))
    child = subprocess.run([sys.executable, "-c", _MEASURE_ANALYSIS, "analyze", str(source), "--voices", "96",
                            "--oversampling", "8", "--json", str(tmp_path / "out.json")],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.splitlines()[-1])
    assert result["code"] == 0
    planned = analysis_bytes(WaveletFrame(FrameSettings(SR, voices_per_octave=96, oversampling=8)), round(4.0 * SR), 1)
    measured = result["above_start"]
    print(f"\nplanned {planned / 2**20:.0f} MB, measured {measured / 2**20:.0f} MB above start-up")
    assert measured <= planned  # never below what it takes: the refusal must not come too late
    assert planned <= 2 * measured  # nor far above: the refusal must not come too early


def test_the_document_refuses_an_analysis_that_would_not_fit_and_keeps_its_work(tmp_path, monkeypatch):
    import scalgui.app.document as document_module
    import scalgui.dsp.memory as memory
    from scalgui.app.document import Document
    from scalgui.dsp.frame import FrameSettings
    from scalgui.dsp.memory import AnalysisMemoryError

    source = riff(tmp_path / "in.wav", pcm16(0.5))
    doc = Document.open(source, device="cpu")
    before = (doc.settings, doc.frame, doc.coefficients)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2**20)
    with pytest.raises(AnalysisMemoryError, match=r"needs about \d+ MB of memory, but 1 MB is available"):
        doc.set_settings(FrameSettings(SR, voices_per_octave=24))
    assert (doc.settings, doc.frame, doc.coefficients) == before

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file whose analysis was already known not to fit")

    monkeypatch.setattr(document_module, "load_audio", no_decoding)
    with pytest.raises(AnalysisMemoryError) as caught:
        Document.open(source, device="cpu")
    assert caught.value.needed > caught.value.available
    assert "\n" not in str(caught.value)
