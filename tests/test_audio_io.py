"""Tests for scalgui.audio: loading, checking and atomic saving with pedalboard.

Every input is generated under tmp_path; nothing outside it is written.
"""

from __future__ import annotations

import errno
import io
import itertools
import math
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

import scalgui.audio._atomic as atomic
from scalgui.audio import (
    SUPPORTED_WRITE_FORMATS,
    Audio,
    AudioError,
    AudioFileNotFound,
    AudioTooLong,
    AudioWriteError,
    BadChannelSelection,
    BadSampleRate,
    ClippingError,
    DestinationExists,
    EmptyAudio,
    InvalidSamples,
    NonFiniteAudio,
    SaveReport,
    TruncatedAudio,
    UnreadableAudio,
    UnsupportedFormat,
    WouldOverwriteSource,
    audio_info,
    load_audio,
    save_audio,
)

SR = 44100


def tone(freq=440.0, seconds=0.5, channels=1, sr=SR, amp=0.5):
    """[channels, frames] float32 sines, a different frequency per channel."""
    t = np.arange(int(seconds * sr)) / sr
    rows = [amp * np.sin(2 * np.pi * freq * (1 + 0.25 * c) * t) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def chirp(seconds=1.0, channels=2, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    rows = [0.5 * np.sin(2 * np.pi * (200 + 150 * c + 3000 * t) * t) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def wav_bytes(sr, channels=1, bits=16, frames=0, data=b"", declared=None, fmt_tag=1):
    """A canonical WAV built by hand; ``declared`` overrides the data size."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sr, sr * align, align, bits)
    size = frames * align if declared is None else declared
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def leftovers(folder, keep):
    return sorted(set(os.listdir(folder)) - set(keep))


# ------------------------------------------------------------- round trips
LOSSLESS = [
    (".wav", 16, 1e-4),
    (".wav", 24, 1e-6),
    (".wav", 32, 0.0),
    (".flac", 16, 1e-4),
    (".flac", 24, 1e-6),
    (".aiff", 16, 1e-4),
    (".aiff", 24, 1e-6),
    (".aif", 24, 1e-6),
]


@pytest.mark.parametrize("ext,bits,tol", LOSSLESS)
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_lossless_round_trip(tmp_path, ext, bits, tol, channels):
    x = tone(channels=channels, seconds=0.25)
    path = tmp_path / f"rt{ext}"
    report = save_audio(path, x, SR, bit_depth=bits)
    assert isinstance(report, SaveReport)
    assert (report.format, report.bit_depth, report.channels, report.frames) == (
        SUPPORTED_WRITE_FORMATS[ext].name, bits, channels, x.shape[1])
    audio = load_audio(path)
    assert isinstance(audio, Audio)
    assert audio.samples.dtype == np.float32 and audio.samples.flags.c_contiguous
    assert audio.samples.shape == x.shape
    assert (audio.channels, audio.frames) == x.shape
    assert audio.sample_rate == SR and audio.duration == pytest.approx(0.25)
    assert audio.source_bit_depth == bits
    assert audio.source_format == SUPPORTED_WRITE_FORMATS[ext].name
    assert audio.path == path and audio.sanitized_samples == 0
    err = np.max(np.abs(audio.samples - x))
    assert err <= tol if tol else np.array_equal(audio.samples, x)


def test_default_bit_depth_is_24(tmp_path):
    for ext in (".wav", ".flac", ".aiff"):
        report = save_audio(tmp_path / f"d{ext}", tone(), SR)
        assert report.bit_depth == 24
        assert audio_info(tmp_path / f"d{ext}")["bit_depth"] == 24


def test_mono_1d_input_is_one_channel(tmp_path):
    x = tone()[0]
    save_audio(tmp_path / "m.wav", x, SR)
    assert load_audio(tmp_path / "m.wav").samples.shape == (1, x.size)


def best_lag_corr(y, x):
    """Correlation of y against x after aligning by the best lag (codec delay)."""
    cc = np.correlate(y, x, "full")
    lag = int(np.argmax(cc)) - (x.size - 1)
    seg = y[max(lag, 0):max(lag, 0) + x.size]
    ref = x[max(-lag, 0):max(-lag, 0) + seg.size][: seg.size]
    return lag, float(np.corrcoef(seg[: ref.size], ref)[0, 1])


@pytest.mark.parametrize("ext,quality,expected", [
    (".ogg", None, "256 kbps"),
    (".ogg", 128, "128 kbps"),
    (".mp3", None, "320 kbps"),
    (".mp3", "v2", "V2"),
    (".mp3", "192 kbps", "192 kbps"),
])
def test_lossy_round_trip(tmp_path, ext, quality, expected):
    x = chirp(seconds=0.5)
    path = tmp_path / f"l{ext}"
    report = save_audio(path, x, SR, quality=quality)
    assert report.quality == expected and report.bit_depth is None
    audio = load_audio(path)
    assert audio.source_bit_depth is None and audio.channels == 2
    # length within codec padding (MP3: encoder delay + frame rounding)
    assert x.shape[1] <= audio.frames <= x.shape[1] + 3 * 1152
    for c in range(2):
        lag, corr = best_lag_corr(audio.samples[c], x[c])
        assert 0 <= lag < 2 * 1152
        assert corr > 0.99


def test_ogg_six_channels(tmp_path):
    x = tone(channels=6, seconds=0.3)
    save_audio(tmp_path / "six.ogg", x, SR)
    assert load_audio(tmp_path / "six.ogg").samples.shape == x.shape


def test_square_array_writes(tmp_path):
    """pedalboard refuses square [n, n] arrays; the writer works around it."""
    x = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [-0.1, -0.2, -0.3]], np.float32)
    save_audio(tmp_path / "sq.wav", x, SR, bit_depth=32)
    assert np.array_equal(load_audio(tmp_path / "sq.wav").samples, x)


# ------------------------------------------------- resampling, channels, progress
def test_resample_on_load_halves_frames_and_keeps_pitch(tmp_path):
    x = tone(freq=1000.0, seconds=1.0, channels=2)
    save_audio(tmp_path / "r.wav", x, SR, bit_depth=32)
    audio = load_audio(tmp_path / "r.wav", sample_rate=22050)
    assert audio.sample_rate == 22050
    assert abs(audio.frames - x.shape[1] // 2) <= 1
    spectrum = np.abs(np.fft.rfft(audio.samples[0] * np.hanning(audio.frames)))
    freqs = np.fft.rfftfreq(audio.frames, 1 / 22050)
    assert abs(freqs[np.argmax(spectrum)] - 1000.0) < 2.0


def test_resample_up_and_nonfinite_rate_request(tmp_path):
    save_audio(tmp_path / "u.flac", tone(seconds=0.2), SR)
    audio = load_audio(tmp_path / "u.flac", sample_rate=48000)
    assert audio.frames == round(0.2 * SR * 48000 / SR)
    with pytest.raises(BadSampleRate, match="u.flac"):
        load_audio(tmp_path / "u.flac", sample_rate=100)


def test_channel_selection_and_mono_mixdown(tmp_path):
    levels = np.array([0.1, 0.2, 0.6], np.float32)
    x = np.repeat(levels[:, None], 1000, axis=1)
    path = tmp_path / "c.wav"
    save_audio(path, x, SR, bit_depth=32)
    assert np.allclose(load_audio(path, channels=1).samples, x[[1]])
    assert np.allclose(load_audio(path, channels=[2, 0]).samples, x[[2, 0]])
    mono = load_audio(path, channels="mono").samples
    assert mono.shape == (1, 1000) and np.allclose(mono, 0.3)
    assert load_audio(path, channels="mono", sample_rate=22050).channels == 1
    for bad in (3, [0, 5], -1):
        with pytest.raises(BadChannelSelection, match="c.wav") as info:
            load_audio(path, channels=bad)
        assert isinstance(info.value, ValueError) and "3 channel" in str(info.value)
    with pytest.raises(BadChannelSelection):
        load_audio(path, channels="left")


def test_progress_reaches_total(tmp_path):
    x = tone(seconds=1.0)
    save_audio(tmp_path / "p.flac", x, SR)
    calls = []
    load_audio(tmp_path / "p.flac", progress=lambda d, t: calls.append((d, t)), chunk_frames=4096)
    done = [d for d, _ in calls]
    assert calls[0] == (0, x.shape[1]) and calls[-1] == (x.shape[1], x.shape[1])
    assert all(b > a for a, b in itertools.pairwise(done))
    assert len(calls) > 5


def test_progress_exception_cancels(tmp_path):
    save_audio(tmp_path / "p.wav", tone(), SR)

    def cancel(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_audio(tmp_path / "p.wav", progress=cancel, chunk_frames=1000)


def test_audio_info(tmp_path):
    save_audio(tmp_path / "i.flac", tone(channels=2, seconds=0.5), SR, bit_depth=16)
    info = audio_info(tmp_path / "i.flac")
    assert info["frames"] == SR // 2 and info["sample_rate"] == SR and info["channels"] == 2
    assert info["duration"] == pytest.approx(0.5) and info["format"] == "flac"
    assert info["bit_depth"] == 16 and info["frames_exact"]


def test_format_is_sniffed_not_taken_from_extension(tmp_path):
    save_audio(tmp_path / "real.flac", tone(), SR)
    (tmp_path / "real.flac").rename(tmp_path / "fake.wav")
    assert load_audio(tmp_path / "fake.wav").source_format == "flac"


# ------------------------------------------------------------ load errors
def assert_names(err, name):
    text = str(err)
    assert name in text and "\n" not in text and err.path is not None and err.path.name == name


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileNotFound) as info:
        load_audio(tmp_path / "nope.wav")
    assert_names(info.value, "nope.wav")
    with pytest.raises(AudioFileNotFound):
        audio_info(tmp_path / "nope.wav")


def test_directory(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(UnreadableAudio, match="directory") as info:
        load_audio(tmp_path / "folder.wav")
    assert_names(info.value, "folder.wav")


def test_text_file_renamed_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("these are not samples\n" * 20)
    with pytest.raises(UnreadableAudio) as info:
        load_audio(tmp_path / "notes.wav")
    assert_names(info.value, "notes.wav")


def test_zero_length_file(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(EmptyAudio, match="0 bytes") as info:
        load_audio(tmp_path / "zero.wav")
    assert_names(info.value, "zero.wav")


def test_header_only_wav(tmp_path):
    (tmp_path / "hdr.wav").write_bytes(wav_bytes(SR))
    with pytest.raises(EmptyAudio, match="0 frames") as info:
        load_audio(tmp_path / "hdr.wav")
    assert_names(info.value, "hdr.wav")
    with pytest.raises(EmptyAudio):
        audio_info(tmp_path / "hdr.wav")


def test_hand_written_wav_loads(tmp_path):
    pcm = struct.pack("<4h", 0, 16384, -16384, 32767)
    (tmp_path / "hand.wav").write_bytes(wav_bytes(8000, frames=4, data=pcm))
    audio = load_audio(tmp_path / "hand.wav")
    assert np.allclose(audio.samples[0], [0, 0.5, -0.5, 32767 / 32768], atol=1e-4)


def test_truncated_hand_written_wav(tmp_path):
    pcm = b"\x01\x00" * 100
    (tmp_path / "short.wav").write_bytes(wav_bytes(8000, frames=400, data=pcm))
    with pytest.raises(TruncatedAudio, match="promises 400 frames, data holds 100"):
        load_audio(tmp_path / "short.wav")


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("ext", [".wav", ".aiff", ".flac"])
def test_truncated_lossless(tmp_path, ext):
    path = tmp_path / f"cut{ext}"
    save_audio(path, tone(seconds=1.0, channels=2), SR, bit_depth=16)
    cut_in_half(path)
    with pytest.raises(TruncatedAudio) as info:
        load_audio(path)
    err = info.value
    assert_names(err, f"cut{ext}")
    assert f"header promises {SR} frames, data holds" in str(err)
    assert err.promised_frames == SR and 0 < err.available_frames < SR
    if ext != ".flac":  # PCM: exactly the bytes present
        assert abs(err.available_frames - SR // 2) < 100
    with pytest.raises(TruncatedAudio):
        audio_info(path)


def test_truncated_wav_message_example(tmp_path):
    path = tmp_path / "x.wav"
    save_audio(path, tone(seconds=2.0), SR, bit_depth=16)
    data = path.read_bytes()
    start = data.index(b"data") + 8
    path.write_bytes(data[: start + SR * 2])  # header + exactly one second
    with pytest.raises(TruncatedAudio) as info:
        load_audio(path)
    assert str(info.value).endswith(
        "x.wav': file is truncated: header promises 88200 frames, data holds 44100")


def test_truncated_flac_cut_on_every_region(tmp_path):
    path = tmp_path / "f.flac"
    save_audio(path, np.random.default_rng(0).uniform(-0.5, 0.5, (2, SR)).astype(np.float32),
               SR, bit_depth=24)
    data = path.read_bytes()
    for cut in (20, 60, len(data) // 3, len(data) - 3, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises((TruncatedAudio, UnreadableAudio)) as info:
            load_audio(path)
        if cut > 60:
            assert isinstance(info.value, TruncatedAudio)


@pytest.mark.parametrize("ext", [".ogg", ".mp3"])
def test_truncated_lossy(tmp_path, ext):
    """Ogg: pages walked; MP3 (with the Xing/Info header pedalboard writes): frames counted."""
    path = tmp_path / f"cut{ext}"
    save_audio(path, chirp(seconds=2.0), SR)
    cut_in_half(path)
    with pytest.raises(TruncatedAudio) as info:
        load_audio(path)
    assert_names(info.value, f"cut{ext}")


def test_nan_samples_error_and_sanitize(tmp_path):
    x = tone(seconds=0.1, channels=2)
    x[0, 441] = np.nan
    x[1, 500] = np.inf
    x[1, 600] = -np.inf
    path = tmp_path / "nan.wav"
    # save_audio refuses NaN; pedalboard writes it happily into a float WAV
    from pedalboard.io import AudioFile

    with AudioFile(str(path), "w", SR, 2, bit_depth=32) as f:
        f.write(x)
    with pytest.raises(NonFiniteAudio) as info:
        load_audio(path)
    err = info.value
    assert_names(err, "nan.wav")
    assert err.count == 3 and err.first_seconds == pytest.approx(441 / SR)
    assert "3 non-finite" in str(err) and "0.010000 s" in str(err)
    audio = load_audio(path, nonfinite="sanitize")
    assert audio.sanitized_samples == 3 and np.isfinite(audio.samples).all()
    assert audio.samples[0, 441] == 0 and audio.samples[1, 500] == 0
    assert load_audio(path, nonfinite="sanitize", channels="mono").sanitized_samples == 3
    assert load_audio(path, nonfinite="sanitize", channels=[0]).sanitized_samples == 1
    with pytest.raises(ValueError):
        load_audio(path, nonfinite="ignore")


@pytest.mark.parametrize("rate", [100, 999, 1_000_000])
def test_absurd_sample_rate_in_header(tmp_path, rate):
    path = tmp_path / f"sr{rate}.wav"
    path.write_bytes(wav_bytes(rate, frames=100, data=b"\x01\x00" * 100))
    with pytest.raises(BadSampleRate) as info:
        load_audio(path)
    assert_names(info.value, path.name)
    assert f"{rate} Hz" in str(info.value) and info.value.sample_rate == rate
    with pytest.raises(BadSampleRate):
        audio_info(path)


def test_max_duration(tmp_path):
    save_audio(tmp_path / "long.wav", tone(seconds=1.0), SR)
    with pytest.raises(AudioTooLong, match="long.wav") as info:
        load_audio(tmp_path / "long.wav", max_duration=0.5)
    assert "max_duration" in str(info.value) and isinstance(info.value, AudioError)
    assert load_audio(tmp_path / "long.wav", max_duration=2).frames == SR


def test_errors_pickle():
    err = TruncatedAudio("a.wav", "file is truncated", promised_frames=10, available_frames=5)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.promised_frames == 10 and back.path == err.path


# ------------------------------------------------------------- clipping
def loud(peak=2.0):
    x = tone(seconds=0.5, channels=2)
    return x * np.float32(peak / np.max(np.abs(x)))


@pytest.mark.parametrize("ext,bits", [(".wav", 16), (".wav", 32), (".flac", 24), (".mp3", None)])
def test_clip_error_states_peak(tmp_path, ext, bits):
    with pytest.raises(ClippingError) as info:
        save_audio(tmp_path / f"c{ext}", loud(2.0), SR, bit_depth=bits)
    text = str(info.value)
    assert "+6.02 dBFS" in text and "normalize" in text and "limit" in text
    assert info.value.peak_dbfs == pytest.approx(6.0206, abs=1e-3)
    assert not (tmp_path / f"c{ext}").exists() and leftovers(tmp_path, []) == []


def test_clip_normalize(tmp_path):
    report = save_audio(tmp_path / "n.wav", loud(2.0), SR, clip="normalize")
    assert report.peak_dbfs == pytest.approx(6.0206, abs=1e-3)
    assert report.gain_db == pytest.approx(-6.1206, abs=1e-3)
    peak = np.max(np.abs(load_audio(tmp_path / "n.wav").samples))
    assert 20 * np.log10(peak) == pytest.approx(-0.1, abs=0.01)


def test_clip_limit(tmp_path):
    x = loud(4.0)
    report = save_audio(tmp_path / "l.wav", x, SR, bit_depth=32, clip="limit")
    assert report.limited
    y = load_audio(tmp_path / "l.wav").samples
    assert np.max(np.abs(y)) <= 1.0
    assert np.max(np.abs(y)) <= 10 ** (-0.3 / 20) + 1e-6
    assert y.shape == x.shape
    quiet = save_audio(tmp_path / "q.wav", tone(amp=0.5), SR, clip="limit")
    assert not quiet.limited and quiet.gain_db == 0.0


def test_clip_allow(tmp_path):
    x = loud(1.5)
    over = int(np.count_nonzero(np.abs(x) > 1.0))
    report = save_audio(tmp_path / "a16.wav", x, SR, bit_depth=16, clip="allow")
    assert report.clipped_samples == over > 0
    assert np.max(np.abs(load_audio(tmp_path / "a16.wav").samples)) <= 1.0 + 1e-4
    report = save_audio(tmp_path / "a32.wav", x, SR, bit_depth=32, clip="allow")
    assert report.clipped_samples == 0
    assert np.max(load_audio(tmp_path / "a32.wav").samples) == pytest.approx(1.5)


def test_save_does_not_modify_input(tmp_path):
    x = loud(2.0)
    before = x.copy()
    save_audio(tmp_path / "n.wav", x, SR, clip="normalize")
    assert np.array_equal(x, before)


# ------------------------------------------------------------ save errors
def test_unsupported_extension_and_settings(tmp_path):
    x = tone()
    with pytest.raises(UnsupportedFormat, match=r"\.wav") as info:
        save_audio(tmp_path / "a.xyz", x, SR)
    assert_names(info.value, "a.xyz")
    for name, kwargs in [("b.flac", {"bit_depth": 32}), ("b.wav", {"bit_depth": 8}),
                         ("b.aiff", {"bit_depth": 32}), ("b.mp3", {"bit_depth": 16}),
                         ("b.ogg", {"quality": 0.5}), ("b.mp3", {"quality": "V10"}),
                         ("b.wav", {"quality": 5}), ("b.flac", {"quality": 9})]:
        with pytest.raises(UnsupportedFormat, match=name):
            save_audio(tmp_path / name, x, SR, **kwargs)
    with pytest.raises(UnsupportedFormat, match="at most 2 channels"):
        save_audio(tmp_path / "six.mp3", tone(channels=6), SR)
    assert leftovers(tmp_path, []) == []


def test_save_rejects_bad_samples_and_rates(tmp_path):
    good = tone()
    nan = good.copy()
    nan[0, 10] = np.nan
    with pytest.raises(NonFiniteAudio, match="s.wav"):
        save_audio(tmp_path / "s.wav", nan, SR)
    with pytest.raises(EmptyAudio):
        save_audio(tmp_path / "s.wav", np.zeros((2, 0), np.float32), SR)
    with pytest.raises(InvalidSamples):
        save_audio(tmp_path / "s.wav", (good * 1000).astype(np.int16), SR)
    with pytest.raises(InvalidSamples, match="transposed"):
        save_audio(tmp_path / "s.wav", tone(channels=2).T, SR)
    for rate in (44100.5, 500, 10**7, "fast"):
        with pytest.raises(BadSampleRate):
            save_audio(tmp_path / "s.wav", good, rate)
    with pytest.raises(BadSampleRate, match="resample"):
        save_audio(tmp_path / "s.mp3", good, 96000)
    with pytest.raises(ValueError):
        save_audio(tmp_path / "s.wav", good, SR, clip="soft")
    assert leftovers(tmp_path, []) == []


# ------------------------------------------------------------ atomic write
def test_failed_write_leaves_destination_untouched(tmp_path, monkeypatch):
    dest = tmp_path / "keep.wav"
    save_audio(dest, tone(), SR)
    before = dest.read_bytes()

    def disk_full(fh, *args, **kwargs):
        fh.write(b"RIFF partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "encode", disk_full)
    with pytest.raises(AudioWriteError, match="disk full") as info:
        save_audio(dest, tone(freq=880), SR)
    assert_names(info.value, "keep.wav")
    assert info.value.errno == errno.ENOSPC
    assert dest.read_bytes() == before
    assert leftovers(tmp_path, ["keep.wav"]) == []


class _FailingFile(io.RawIOBase):
    """A real temp file that reports ENOSPC after ``budget`` bytes."""

    def __init__(self, fh, budget):
        self.fh, self.budget = fh, budget

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, data):
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def seek(self, *args):
        return self.fh.seek(*args)

    def tell(self):
        return self.fh.tell()

    def fileno(self):
        return self.fh.fileno()

    def close(self):
        self.fh.close()
        super().close()


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3", ".aiff"])
def test_real_encoder_error_propagates(tmp_path, monkeypatch, ext):
    """pedalboard passes the file object's OSError through for every codec."""
    dest = tmp_path / f"keep{ext}"
    save_audio(dest, tone(), SR)
    before = dest.read_bytes()
    real_create = atomic.create_temp

    def failing_temp(final):
        tmp, fh = real_create(final)
        return tmp, _FailingFile(fh, 2000)

    monkeypatch.setattr(atomic, "create_temp", failing_temp)
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, SR)).astype(np.float32)
    with pytest.raises(AudioWriteError, match="disk full"):
        save_audio(dest, noise, SR)
    assert dest.read_bytes() == before
    assert leftovers(tmp_path, [dest.name]) == []


def test_temp_file_is_hidden_sibling_with_same_extension(tmp_path, monkeypatch):
    seen = []
    real_encode = atomic.encode

    def spy(fh, *args):
        seen.append(fh.name)
        return real_encode(fh, *args)

    monkeypatch.setattr(atomic, "encode", spy)
    save_audio(tmp_path / "out.flac", tone(), SR)
    name = os.path.basename(seen[0])
    assert os.path.dirname(seen[0]) == str(tmp_path)
    assert name.startswith(".out.") and name.endswith(".flac")
    assert leftovers(tmp_path, ["out.flac"]) == []


def test_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        if os.access(folder, os.W_OK):  # root ignores the mode: simulate the OS refusal

            def denied(final):
                raise PermissionError(errno.EACCES, "Permission denied", str(final))

            monkeypatch.setattr(atomic, "create_temp", denied)
        with pytest.raises(AudioWriteError, match="permission denied") as info:
            save_audio(folder / "out.wav", tone(), SR)
        assert_names(info.value, "out.wav")
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)


def test_missing_folder(tmp_path):
    with pytest.raises(AudioWriteError, match="does not exist"):
        save_audio(tmp_path / "no" / "out.wav", tone(), SR)


def test_overwrite_false_and_permissions_kept(tmp_path):
    dest = tmp_path / "o.wav"
    save_audio(dest, tone(), SR, overwrite=False)
    os.chmod(dest, 0o640)
    before = dest.read_bytes()
    with pytest.raises(DestinationExists, match="o.wav"):
        save_audio(dest, tone(freq=880), SR, overwrite=False)
    assert dest.read_bytes() == before
    save_audio(dest, tone(freq=880), SR)
    assert dest.read_bytes() != before
    assert (os.stat(dest).st_mode & 0o777) == 0o640


def test_source_protection(tmp_path):
    src = tmp_path / "src.wav"
    save_audio(src, tone(), SR)
    before = src.read_bytes()
    audio = load_audio(src)
    with pytest.raises(WouldOverwriteSource, match="source file") as info:
        save_audio(src, audio.samples * 0.5, audio.sample_rate, source_path=audio.path)
    assert_names(info.value, "src.wav")
    link = tmp_path / "alias.wav"
    os.link(src, link)
    with pytest.raises(WouldOverwriteSource):
        save_audio(link, audio.samples, SR, source_path=src)
    (tmp_path / "sym.wav").symlink_to(src)
    with pytest.raises(WouldOverwriteSource):
        save_audio(tmp_path / "sym.wav", audio.samples, SR, source_path=src)
    assert src.read_bytes() == before
    save_audio(tmp_path / "other.wav", audio.samples, SR, source_path=src)
    report = save_audio(src, audio.samples * 0.5, SR, source_path=src, overwrite="source")
    assert report.path == src and src.read_bytes() != before


def test_symlink_destination_keeps_link(tmp_path):
    target = tmp_path / "target.wav"
    save_audio(target, tone(), SR)
    (tmp_path / "link.wav").symlink_to(target)
    save_audio(tmp_path / "link.wav", tone(freq=880), SR)
    assert (tmp_path / "link.wav").is_symlink()
    assert np.allclose(load_audio(target).samples, tone(freq=880), atol=1e-6)


def test_supported_write_formats_table():
    assert set(SUPPORTED_WRITE_FORMATS) == {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"}
    assert SUPPORTED_WRITE_FORMATS[".wav"].bit_depths == (16, 24, 32)
    assert SUPPORTED_WRITE_FORMATS[".wav"].float_bit_depths == (32,)
    assert SUPPORTED_WRITE_FORMATS[".flac"].bit_depths == (16, 24)
    mp3 = SUPPORTED_WRITE_FORMATS[".mp3"]
    assert mp3.lossy and "V0" in mp3.qualities and mp3.max_channels == 2
    assert "192 kbps" in SUPPORTED_WRITE_FORMATS[".ogg"].qualities


def test_audio_layer_imports_no_gui():
    code = ("import sys, scalgui.audio; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'pyqtgraph', 'torch')"
            " or m.startswith(('scalgui.ui', 'scalgui.app', 'scalgui.cli'))]; "
            "assert not bad, bad")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_nan_position_reported_in_seconds_for_save(tmp_path):
    x = tone(seconds=0.2)
    x[0, SR // 10] = np.inf
    with pytest.raises(NonFiniteAudio) as info:
        save_audio(tmp_path / "inf.wav", x, SR)
    assert info.value.first_seconds == pytest.approx(0.1) and info.value.count == 1
    assert not math.isnan(info.value.first_seconds)
