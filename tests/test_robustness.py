"""Bad input, odd input and failures half-way: every case ends in a clear, specific message
(naming the file and the problem) or a correct result, never a crash or a half-written file.

Through the Python API (Document.open / load_audio / save_audio / Document.export) and
through the command line (``scalgui analyze`` and ``scalgui invert``: exit code 2 and one
line on stderr, no traceback).
"""
import errno
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import scalgui.audio._atomic as atomic
from scalgui.app.document import Document
from scalgui.audio import load_audio, save_audio
from scalgui.audio.errors import (
    AudioFileNotFound,
    AudioTooLong,
    AudioWriteError,
    EmptyAudio,
    NonFiniteAudio,
    TruncatedAudio,
    UnreadableAudio,
)
from scalgui.cli import main
from scalgui.dsp.metrics import EXACT_DB
from scalgui.dsp.edits import Edit, Rectangle, TimeRange
from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.dsp.phase import CancelToken, RetrievalSettings

SR = 22050


def tone(seconds=1.0, sr=SR, channels=1, hz=440.0):
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(2 * np.pi * 3.1 * hz * t)
    return np.stack([x * (1 - 0.1 * c) for c in range(channels)]).astype(np.float32)


def float_wav(path, samples, sr=SR):
    """A 32-bit float mono WAV written by hand, so that it can hold NaN and inf."""
    data = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<IHHIIHH", 16, 3, 1, sr, sr * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def cli(argv, capsys):
    """Run ``scalgui`` in-process: (exit code, stdout, stderr lines)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code, err, *needles, after_progress=False):
    """Exit code 2, no traceback, and one error line naming ``needles``: the only line, or
    with ``after_progress`` (a failure after the work began) the last, after progress lines."""
    assert code == 2
    assert "Traceback" not in "\n".join(err)
    errors = [line for line in err if line.startswith("scalgui: error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert after_progress or len(err) == 1, err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def edited_and_rendered(doc, **render):
    """Push a local -30 dB rectangle and render; returns the render's result."""
    t0 = min(0.1, doc.duration / 4)
    t1 = max(t0 + 1e-3, min(doc.duration * 0.75, t0 + 0.5))
    doc.push(Edit(Rectangle(t0, t1, 200.0, min(3000.0, doc.sample_rate / 2.5)), "gain", -30.0))
    return doc.render(**render)


# ------------------------------------------------------------------ files that are not audio
def _missing(tmp_path):
    return tmp_path / "missing.wav", AudioFileNotFound, "no such file"


def _text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not a sound\n" * 20)
    return path, UnreadableAudio, "not a readable audio file"


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path, EmptyAudio, "file is empty (0 bytes)"


def _nan(tmp_path):
    x = tone()[0]
    x[441] = np.nan
    return float_wav(tmp_path / "nan.wav", x), NonFiniteAudio, "1 non-finite samples (NaN/inf), the first at 0.020000 s"


def _inf(tmp_path):
    x = tone()[0]
    x[2205:2210] = np.inf
    return float_wav(tmp_path / "inf.wav", x), NonFiniteAudio, "5 non-finite samples (NaN/inf), the first at 0.100000 s"


BAD_FILES = {"missing": _missing, "text": _text, "empty": _empty, "nan": _nan, "inf": _inf}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_give_a_specific_error_through_the_api(case, tmp_path):
    path, error, reason = BAD_FILES[case](tmp_path)
    for load in (load_audio, Document.open):
        with pytest.raises(error) as info:
            load(path)
        assert str(info.value) == f"cannot read '{path}': {info.value.reason}"
        assert reason in info.value.reason


@pytest.mark.parametrize("command", ["analyze", "invert"])
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_give_one_line_and_exit_code_2_on_the_command_line(case, command, tmp_path, capsys):
    path, _error, reason = BAD_FILES[case](tmp_path)
    argv = [command, path] + (["-o", tmp_path / "out.wav", "--iters", 1] if command == "invert" else [])
    code, _out, err = cli(argv, capsys)
    assert_one_line_error(code, err, path.name, reason)
    assert not (tmp_path / "out.wav").exists()


def test_unreadable_file(tmp_path, capsys):
    path = tmp_path / "locked.wav"
    save_audio(path, tone(), SR)
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: a mode of 000 does not stop reading")
        with pytest.raises(UnreadableAudio, match=r"locked\.wav': permission denied"):
            Document.open(path)
        code, _out, err = cli(["analyze", path], capsys)
        assert_one_line_error(code, err, "locked.wav", "permission denied")
    finally:
        os.chmod(path, 0o644)


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3"])
def test_files_cut_in_half_are_reported_truncated(ext, tmp_path, capsys):
    whole = tmp_path / f"whole{ext}"
    noise = np.random.default_rng(3).uniform(-0.3, 0.3, (2, 2 * SR)).astype(np.float32)
    save_audio(whole, noise, SR)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedAudio, match=rf"cannot read '.*cut\{ext}': file is truncated"):
        Document.open(cut)
    for argv in (["analyze", cut], ["invert", cut, "-o", tmp_path / "out.wav", "--iters", 1]):
        code, _out, err = cli(argv, capsys)
        assert_one_line_error(code, err, f"cut{ext}", "file is truncated")


def test_non_finite_samples_are_refused_by_the_document_and_the_writer(tmp_path):
    x = tone()
    x[0, 10] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        Document.from_samples(x, SR)
    with pytest.raises(NonFiniteAudio, match=r"out\.wav': samples contain 1 non-finite values"):
        save_audio(tmp_path / "out.wav", x, SR)
    assert not (tmp_path / "out.wav").exists()
    # Sanitising on load is the documented way through: the NaN becomes 0.
    audio = load_audio(_nan(tmp_path)[0], nonfinite="sanitize")
    assert audio.sanitized_samples == 1 and np.isfinite(audio.samples).all()


# ------------------------------------------------------------------ odd but valid audio
@pytest.mark.parametrize("kind", ["silent", "dc"])
def test_silent_and_dc_audio_analyse_render_and_invert_without_nan(kind, tmp_path, capsys):
    x = np.zeros((1, SR), np.float32) if kind == "silent" else np.full((1, SR), 0.5, np.float32)
    doc = Document.from_samples(x, SR, device="cpu")
    for layer in ("source", "target"):
        picture = doc.raster(0.0, doc.duration, 64, layer=layer)
        assert np.isfinite(picture.db).all()
    result = edited_and_rendered(doc)
    assert np.isfinite(doc.rendered).all()
    if kind == "dc":  # silence has nothing to converge to: its convergence is -inf or 0 dB
        assert np.isfinite(result.spectral_convergence_db)
    assert np.isfinite(doc.raster(0.0, doc.duration, 64, layer="difference").db).all()
    if kind == "silent":
        assert np.abs(doc.rendered).max() == 0.0
    path = tmp_path / f"{kind}.wav"
    save_audio(path, x, SR)
    report = tmp_path / "report.json"
    code, _out, err = cli(["invert", path, "-o", tmp_path / "back.wav", "--iters", 3, "--report", report], capsys)
    assert code == 0, err
    back = load_audio(tmp_path / "back.wav").samples
    assert np.isfinite(back).all()
    if kind == "silent":
        assert np.abs(back).max() == 0.0
        # Silence given back as silence is an exact match in both measures (0/0 once read 0 dB).
        numbers = json.loads(report.read_text())
        assert numbers["spectral_convergence_db"] == EXACT_DB
        assert numbers["multiresolution_stft_db"] == EXACT_DB
    code, _out, err = cli(["analyze", path], capsys)
    assert code == 0, err


def test_a_one_sample_file_opens_renders_exports_and_inverts(tmp_path, capsys):
    path = tmp_path / "one.wav"
    save_audio(path, np.array([[0.25]], np.float32), SR)
    doc = Document.open(path, device="cpu")
    assert doc.frames == 1
    doc.push(Edit(TimeRange(0.0, 1.0 / SR), "gain", -6.0))
    doc.render()
    assert doc.rendered.shape == (1, 1) and np.isfinite(doc.rendered).all()
    doc.export(tmp_path / "one-out.wav", clip="normalize")
    assert load_audio(tmp_path / "one-out.wav").frames == 1
    for argv in (["analyze", path], ["invert", path, "-o", tmp_path / "inv.wav", "--iters", 2]):
        code, _out, err = cli(argv, capsys)
        assert code == 0, err
    assert load_audio(tmp_path / "inv.wav").frames == 1


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_sample_rates_from_8_to_192_kHz(sr, tmp_path):
    path = tmp_path / f"r{sr}.wav"
    save_audio(path, tone(0.25, sr=sr, hz=sr / 20), sr)
    doc = Document.open(path, device="cpu")
    assert doc.sample_rate == sr
    edited_and_rendered(doc)
    assert np.isfinite(doc.rendered).all()
    doc.export(tmp_path / f"r{sr}-out.wav", clip="normalize")
    back = load_audio(tmp_path / f"r{sr}-out.wav")
    assert (back.sample_rate, back.frames) == (sr, doc.frames)


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8])
def test_one_to_eight_channels(channels, tmp_path, capsys):
    path = tmp_path / f"c{channels}.wav"
    save_audio(path, tone(0.3, channels=channels), SR)
    doc = Document.open(path, device="cpu")
    assert doc.channels == channels
    edited_and_rendered(doc)
    assert doc.rendered.shape == (channels, doc.frames) and np.isfinite(doc.rendered).all()
    for view in ("mean", "mid", "side", channels - 1):
        assert np.isfinite(doc.raster(0.0, doc.duration, 32, channel=view, layer="render").db).all()
    doc.export(tmp_path / f"c{channels}.flac", clip="normalize")
    assert load_audio(tmp_path / f"c{channels}.flac").channels == channels
    code, _out, err = cli(["invert", path, "-o", tmp_path / f"c{channels}-inv.wav", "--iters", 1], capsys)
    assert code == 0, err
    assert load_audio(tmp_path / f"c{channels}-inv.wav").channels == channels


def test_unicode_and_spaces_in_paths(tmp_path, capsys):
    folder = tmp_path / "Späte Aufnahmen ♪ 日本"
    folder.mkdir()
    path = folder / "Très long nom — take 2.wav"
    save_audio(path, tone(0.3, channels=2), SR)
    doc = Document.open(path, device="cpu")
    assert doc.path == path
    edited_and_rendered(doc)
    out = folder / "sortie éditée ✓.flac"
    doc.export(out, clip="normalize")
    assert load_audio(out).frames == doc.frames
    summary = folder / "résumé.json"
    code, stdout, err = cli(["analyze", path, "--json", summary], capsys)
    assert code == 0, err
    assert summary.exists() and str(summary) in stdout
    # Errors name such paths as they are.
    code, _out, err = cli(["analyze", folder / "fehlt ü.wav"], capsys)
    assert_one_line_error(code, err, "fehlt ü.wav", "no such file")


@pytest.fixture
def one_hour_wav(tmp_path_factory):
    """A one-hour 8 kHz mono 16-bit WAV (58 MB), written in one-minute chunks."""
    from pedalboard.io import AudioFile

    path = tmp_path_factory.mktemp("long") / "hour.wav"
    sr, minute = 8000, 60 * 8000
    t = np.arange(minute) / sr
    chunk = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :]
    with AudioFile(str(path), "w", sr, 1, bit_depth=16) as out:
        for _ in range(60):
            out.write(chunk)
    return path


@pytest.mark.slow
def test_a_one_hour_file(one_hour_wav, tmp_path, capsys):
    with pytest.raises(AudioTooLong, match=r"hour\.wav': file is 3600\.0 s long, over the limit of 600 s"):
        load_audio(one_hour_wav, max_duration=600)
    doc = Document.open(one_hour_wav, device="cpu")
    assert doc.frames == 3600 * 8000
    doc.push(Edit(Rectangle(1800.0, 1801.0, 300.0, 600.0), "gain", -30.0))
    doc.render(RetrievalSettings(method="fgla", init="original", iterations=4))
    assert np.isfinite(doc.rendered).all()
    # Outside the re-rendered span the sound is kept bit for bit.
    assert np.array_equal(doc.rendered[:, : 1700 * 8000], doc.samples[:, : 1700 * 8000])
    picture = doc.raster(0.0, doc.duration, 512, layer="render")
    assert np.isfinite(picture.db).all()


# ------------------------------------------------------------------ writing that fails
def _refuse_writes(monkeypatch, folder):
    """Make ``folder`` read-only; as root (which ignores the mode) simulate the OS refusal."""
    os.chmod(folder, 0o555)
    if os.access(folder, os.W_OK):

        def denied(final):
            raise PermissionError(errno.EACCES, "Permission denied", str(final))

        monkeypatch.setattr(atomic, "create_temp", denied)
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: not (mode & os.W_OK and str(p) == str(folder)))


def test_read_only_output_folder(tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.wav"
    save_audio(source, tone(0.3), SR)
    folder = tmp_path / "locked"
    folder.mkdir()
    doc = Document.open(source, device="cpu")
    edited_and_rendered(doc)
    try:
        _refuse_writes(monkeypatch, folder)
        with pytest.raises(AudioWriteError, match=r"out\.wav': permission denied"):
            doc.export(folder / "out.wav")
        assert doc.unsaved  # the render is not marked as saved
        code, _out, err = cli(["invert", source, "-o", folder / "inv.wav", "--iters", 1], capsys)
        assert_one_line_error(code, err, "inv.wav", "permission denied")
        code, _out, err = cli(["analyze", source, "--json", folder / "s.json"], capsys)
        assert_one_line_error(code, err, "s.json", "permission denied")
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)


def _fill_disk_mid_write(monkeypatch):
    """The encoder writes some bytes into the temp file, then the disk is full."""
    real_encode = atomic.encode
    temps = []

    def disk_full(fh, x, *args):
        temps.append(fh.name)
        real_encode(fh, x[:, : max(1, x.shape[1] // 4)], *args)  # a quarter gets written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "encode", disk_full)
    return temps


def test_full_disk_while_exporting_keeps_the_target_and_the_source(tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.wav"
    save_audio(source, tone(0.5, channels=2), SR)
    source_bytes = source.read_bytes()
    target = tmp_path / "out.wav"
    save_audio(target, tone(0.2, hz=880.0), SR)
    target_bytes = target.read_bytes()
    doc = Document.open(source, device="cpu")
    edited_and_rendered(doc)
    temps = _fill_disk_mid_write(monkeypatch)
    with pytest.raises(AudioWriteError, match=r"out\.wav': disk full \(No space left on device\)") as info:
        doc.export(target)
    assert info.value.errno == errno.ENOSPC
    assert temps and not os.path.exists(temps[0])
    assert target.read_bytes() == target_bytes and source.read_bytes() == source_bytes
    assert sorted(os.listdir(tmp_path)) == ["in.wav", "out.wav"]
    code, _out, err = cli(["invert", source, "-o", tmp_path / "inv.wav", "--iters", 1], capsys)
    assert_one_line_error(code, err, "inv.wav", "disk full", after_progress=True)
    assert sorted(os.listdir(tmp_path)) == ["in.wav", "out.wav"]


# ------------------------------------------------------------------ plugins and cancelling
def test_a_plugin_that_raises_leaves_the_document_unchanged():
    from scalgui.plugins import Plugin, PluginEdit, PluginError, Registry, set_default_registry

    def explode(ctx):
        raise ZeroDivisionError("division by zero in my plugin")

    registry = Registry((Plugin("boom", "Boom", "Always fails.", process=explode, source="/plugins/boom.py"),))
    previous = set_default_registry(registry)
    try:
        doc = Document.from_samples(tone(0.5), SR, device="cpu")
        doc.push(Edit(Rectangle(0.1, 0.2, 300.0, 900.0), "gain", -10.0))
        before = [g.clone() for g in doc.target().groups]
        edits, pending = doc.edits, doc.unrendered_edits
        with pytest.raises(PluginError, match=r"boom \(/plugins/boom\.py\) failed: ZeroDivisionError: division by"):
            doc.push(PluginEdit.create(registry.get("boom"), {}, TimeRange(0.2, 0.3)))
        assert doc.edits == edits and doc.unrendered_edits == pending and not doc.can_redo
        assert all(torch.equal(a, b) for a, b in zip(before, doc.target().groups))
    finally:
        set_default_registry(previous)


class _CancelAfter:
    """A progress callback that cancels ``token`` after ``n`` reports."""

    def __init__(self, token, n):
        self.token, self.n, self.seen = token, n, 0

    def __call__(self, _progress):
        self.seen += 1
        if self.seen >= self.n:
            self.token.cancel()


@pytest.mark.parametrize("when", ["before start", "after 1 iteration", "in the second span"])
def test_a_cancelled_render_leaves_a_valid_signal_and_a_consistent_document(when):
    x = tone(3.0, channels=2)
    doc = Document.from_samples(x, SR, device="cpu")
    doc.push(Edit(Rectangle(0.2, 0.5, 300.0, 2000.0), "gain", -30.0))
    doc.push(Edit(Rectangle(2.5, 2.8, 300.0, 2000.0), "gain", -30.0))  # a second, separate span
    settings = RetrievalSettings(method="fgla", init="original", iterations=8)
    token = CancelToken()
    progress = None
    if when == "before start":
        token.cancel()
    elif when == "after 1 iteration":
        progress = _CancelAfter(token, 1)
    else:
        progress = _CancelAfter(token, settings.iterations + 2)
    # What a cancelled render finished is kept only when asked for (by default nothing changes).
    result = doc.render(settings, progress=progress, cancel=token, keep_partial=True)
    assert result.cancelled
    assert result.iterations <= (settings.iterations + 2 if when == "in the second span" else 1)
    assert doc.rendered.shape == x.shape and np.isfinite(doc.rendered).all()
    assert np.abs(doc.rendered).max() < 1.0
    # A cancelled render leaves its edits pending; a full render afterwards finishes them.
    assert doc.unrendered_edits and len(doc.edits) == 2
    assert np.isfinite(doc.raster(0.0, doc.duration, 64, layer="difference").db).all()
    full = doc.render(settings)
    assert not full.cancelled and not doc.unrendered_edits
    assert np.isfinite(doc.rendered).all()


# ------------------------------------------------------------------ out of device memory
def _out_of_memory():
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return oom("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")


@pytest.fixture
def long_signal():
    return torch.as_tensor(np.random.default_rng(5).standard_normal((2, 3 * 2**15)).astype(np.float32))


def _frame(**kwargs):
    return WaveletFrame(FrameSettings(8000.0, 12, fmin=100.0), segment_length=2**14, **kwargs)


def test_out_of_memory_on_large_batches_retries_smaller_batches(long_signal, monkeypatch, caplog):
    reference = _frame(segments_per_batch=1)
    frame = _frame(segments_per_batch=8)
    assert len(frame.segment_starts(frame.padded_length(long_signal.shape[-1]))) > 4
    real_forward, real_inverse = WaveletFrame.forward_block, WaveletFrame.inverse_block
    batches = []

    def forward(self, x):
        batches.append(x.shape[0])
        if self is frame and x.ndim == 3 and x.shape[0] > 2:  # a batch of more than 2 segments
            raise _out_of_memory()
        return real_forward(self, x)

    def inverse(self, groups, n):
        if self is frame and groups[0].ndim == 4 and groups[0].shape[0] > 2:
            raise _out_of_memory()
        return real_inverse(self, groups, n)

    monkeypatch.setattr(WaveletFrame, "forward_block", forward)
    monkeypatch.setattr(WaveletFrame, "inverse_block", inverse)
    with caplog.at_level(logging.WARNING, logger="scalgui.dsp.frame"):
        coeffs = frame.analyze(long_signal, segmented=True)
        signal = frame.synthesize(coeffs, segmented=True)
    expected = reference.analyze(long_signal, segmented=True)
    for got, want in zip(coeffs.groups, expected.groups):
        assert torch.equal(got, want)
    assert torch.allclose(signal, long_signal, atol=1e-4)
    assert batches[:3] == [8, 4, 2]  # halved until it fits, then kept at that size
    assert frame.segments_per_batch(2) == 2
    assert frame.memory_fallbacks[:2] == [
        "out of memory on cpu transforming 8 segments at once; retrying 4 at a time",
        "out of memory on cpu transforming 4 segments at once; retrying 2 at a time",
    ]
    assert "retrying 2 at a time" in caplog.text


def test_out_of_memory_on_single_segments_and_whole_blocks_falls_back_to_the_cpu(long_signal, monkeypatch, caplog):
    device_frame = _frame(segments_per_batch=4)
    twin = _frame(segments_per_batch=1)
    # There is no GPU here: stand a second frame in for the CPU twin a GPU frame builds.
    device_frame._fallback = twin
    real_forward, real_inverse = WaveletFrame.forward_block, WaveletFrame.inverse_block
    used = []

    def forward(self, x):
        used.append(self)
        if self is device_frame:
            raise _out_of_memory()
        return real_forward(self, x)

    def inverse(self, groups, n):
        used.append(self)
        if self is device_frame:
            raise _out_of_memory()
        return real_inverse(self, groups, n)

    monkeypatch.setattr(WaveletFrame, "forward_block", forward)
    monkeypatch.setattr(WaveletFrame, "inverse_block", inverse)
    reference = _frame(segments_per_batch=1)
    with caplog.at_level(logging.WARNING, logger="scalgui.dsp.frame"):
        segmented = device_frame.analyze(long_signal, segmented=True)
        whole = device_frame.analyze(long_signal[..., :3000])  # one block, not segmented
        back = device_frame.synthesize(whole)
    calls = list(used)
    for got, want in zip(segmented.groups, reference.analyze(long_signal, segmented=True).groups):
        assert torch.equal(got, want)
    assert torch.allclose(back, long_signal[..., :3000], atol=1e-4)
    assert "transforming on the CPU from now on" in caplog.text
    assert any("single segment" in line for line in device_frame.memory_fallbacks)
    # Once on the CPU, the device is not tried again (it would fail again, slowly).
    assert calls.count(device_frame) == 3  # 4 segments, 2, 1: then only the twin
    assert calls[3:] == [twin] * (len(calls) - 3) and len(calls) > 4


def test_out_of_memory_on_a_cpu_frame_is_not_swallowed(monkeypatch):
    frame = _frame(segments_per_batch=1)

    def forward(self, x):
        raise _out_of_memory()

    monkeypatch.setattr(WaveletFrame, "forward_block", forward)
    with pytest.raises(type(_out_of_memory()), match="out of memory"):
        frame.analyze(torch.zeros(1, 100))


@pytest.mark.gpu
def test_out_of_memory_on_a_gpu_falls_back_to_smaller_batches_then_the_cpu(long_signal, monkeypatch):
    frame = WaveletFrame(FrameSettings(8000.0, 12, fmin=100.0), segment_length=2**14, device="cuda",
                         segments_per_batch=4)
    real_forward = WaveletFrame.forward_block

    def forward(self, x):
        if x.is_cuda:
            raise _out_of_memory()
        return real_forward(self, x)

    monkeypatch.setattr(WaveletFrame, "forward_block", forward)
    coeffs = frame.analyze(long_signal.cuda(), segmented=True)
    assert coeffs.groups[0].is_cuda
    reference = _frame(segments_per_batch=1).analyze(long_signal, segmented=True)
    for got, want in zip(coeffs.groups, reference.groups):
        assert torch.allclose(got.cpu(), want, atol=1e-5)
    assert len(frame.memory_fallbacks) == 3


def test_unreadable_file_when_running_as_root(tmp_path, capsys, monkeypatch):
    """Root reads a mode-000 file anyway (the test above skips there): the same refusal,
    with the operating system's answer simulated."""
    import scalgui.audio._reader as reader

    path = tmp_path / "locked.wav"
    save_audio(path, tone(), SR)
    real_access = reader.os.access
    monkeypatch.setattr(reader.os, "access",
                        lambda p, mode, *a, **k: False if Path(p) == path else real_access(p, mode, *a, **k))
    with pytest.raises(UnreadableAudio, match=r"locked\.wav': permission denied"):
        Document.open(path)
    code, _out, err = cli(["analyze", path], capsys)
    assert_one_line_error(code, err, "locked.wav", "permission denied")
