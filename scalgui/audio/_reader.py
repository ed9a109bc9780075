"""Private helpers of :mod:`scalgui.audio.io`: opening, header checks, collecting."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from .errors import (
    AudioFileNotFound,
    AudioTooLong,
    BadChannelSelection,
    BadSampleRate,
    EmptyAudio,
    TruncatedAudio,
    UnreadableAudio,
)
from .formats import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from .integrity import check_integrity

__all__ = ["Collector", "channel_selection", "header", "open_checked"]

_LOSSY = ("mp3", "ogg")


def _bit_depth(file_dtype: str, fmt: str | None) -> int | None:
    if fmt in _LOSSY:
        return None
    digits = "".join(ch for ch in str(file_dtype) if ch.isdigit())
    return int(digits) if digits else None


def _check_path(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioFileNotFound(path, "no such file") from None
    except NotADirectoryError:
        raise AudioFileNotFound(path, "no such file (a parent is not a folder)") from None
    except PermissionError:
        raise UnreadableAudio(path, "permission denied") from None
    except OSError as exc:
        raise UnreadableAudio(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableAudio(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableAudio(path, "is not a regular file")
    if not os.access(path, os.R_OK):
        raise UnreadableAudio(path, "permission denied")
    if st.st_size == 0:
        raise EmptyAudio(path, "file is empty (0 bytes)")


def _integrity_or_raise(path: Path):
    try:
        found = check_integrity(path)
    except (OSError, ValueError):  # unreadable containers are pedalboard's to judge
        return None
    if found.truncated:
        raise TruncatedAudio(path, f"file is truncated: {found.detail}",
                             promised_frames=found.promised_frames,
                             available_frames=found.available_frames)
    if found.unreadable:
        raise UnreadableAudio(path, found.unreadable)
    return found


def _utf8_name(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def open_checked(path: Path):
    """Open with pedalboard after the file-system checks; map its errors.

    A context manager yielding the open ``AudioFile``. pedalboard takes file names as
    UTF-8 text only, so a name holding bytes that are not UTF-8 (Python keeps them as
    surrogate escapes) is read through a Python file object instead.
    """
    _check_path(path)
    handle = None
    try:
        if _utf8_name(path):
            source = str(path)
        else:
            try:
                handle = source = open(path, "rb")
            except OSError as exc:
                raise UnreadableAudio(path, exc.strerror or str(exc)) from None
        try:
            f = AudioFile(source)
        except (ValueError, RuntimeError, OSError) as exc:
            _integrity_or_raise(path)  # a cut header reads as "not audio": say truncated
            reason = re.sub(r"^Failed to open audio file(-like object)?: ", "", str(exc))
            reason = re.sub(r'^(file "[^"]*"|<[^>]*>) ', "", reason).rstrip(".")
            raise UnreadableAudio(path, f"not a readable audio file ({reason})") from exc
        with f:
            yield f
    finally:
        if handle is not None:
            handle.close()


def header(path: Path, f, max_duration: float | None) -> dict:
    """Validate what the open file reports; return audio_info's dict."""
    sr = float(f.samplerate)
    if not (MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE):
        raise BadSampleRate(path, f"implausible sample rate {sr:.10g} Hz in the header "
                            f"(expected {MIN_SAMPLE_RATE:g}..{MAX_SAMPLE_RATE:g} Hz)",
                            sample_rate=sr)
    found = _integrity_or_raise(path)
    fmt = found.format if found is not None else None
    if fmt is None:
        fmt = path.suffix.lower().lstrip(".") or None
    channels, frames = int(f.num_channels), int(f.frames)
    exact = bool(f.exact_duration_known)
    if channels == 0:
        raise EmptyAudio(path, "file has 0 channels")
    if frames < 0:
        raise UnreadableAudio(path, f"the header declares a negative length ({frames} frames)")
    if found is not None and found.held_frames is not None and frames > found.held_frames:
        # The header's length is not what the bytes hold (a streaming writer's unknown
        # length): pedalboard would pad zeros up to it, so the bytes set the length.
        frames, exact = found.held_frames, True
    if frames == 0:
        raise EmptyAudio(path, "file holds 0 frames of audio")
    duration = frames / sr
    if max_duration is not None and duration > max_duration:
        raise AudioTooLong(path, f"file is {duration:.1f} s long, over the limit of "
                           f"{max_duration:g} s; pass a larger max_duration (or None for "
                           "no limit) or trim the file first",
                           duration=duration, max_duration=max_duration)
    return {"path": path, "format": fmt, "frames": frames, "sample_rate": sr,
            "channels": channels, "duration": duration,
            "bit_depth": _bit_depth(f.file_dtype, fmt),
            "frames_exact": exact}


def channel_selection(path: Path, channels, available: int):
    """Return (indices or None, mono flag)."""
    if channels is None:
        return None, False
    if isinstance(channels, str):
        if channels == "mono":
            return None, available > 1
        raise BadChannelSelection(path, f"channels={channels!r}: expected None, 'mono', "
                                  "a channel index or a sequence of indices")
    picks = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
    if not picks or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                        for c in picks):
        raise BadChannelSelection(path, f"channels={channels!r}: expected 0-based "
                                  "channel indices")
    bad = [int(c) for c in picks if not 0 <= c < available]
    if bad:
        raise BadChannelSelection(path, f"channel index {bad[0]} out of range: the file "
                                  f"has {available} channel(s), valid indices "
                                  f"0..{available - 1}")
    return [int(c) for c in picks], False


class Collector:
    """Chunks into one preallocated float32 [channels, n] array."""

    def __init__(self, channels: int, capacity: int, fixed: bool):
        self.buf = np.empty((channels, max(capacity, 1)), dtype=np.float32)
        self.n, self.fixed, self.capacity = 0, fixed, capacity

    def add(self, chunk: np.ndarray) -> None:
        k = chunk.shape[1]
        if self.fixed:
            k = min(k, self.capacity - self.n)  # resampled length is set in advance
        elif self.n + k > self.buf.shape[1]:
            grown = np.empty((self.buf.shape[0], max(self.n + k, self.buf.shape[1] * 3 // 2)),
                             dtype=np.float32)
            grown[:, :self.n] = self.buf[:, :self.n]
            self.buf = grown
        if k > 0:
            self.buf[:, self.n:self.n + k] = chunk[:, :k]
            self.n += k

    def result(self) -> np.ndarray:
        if self.fixed:
            self.buf[:, self.n:self.capacity] = 0.0  # resampler tail short by a frame
            self.n = self.capacity
        if self.n == self.buf.shape[1]:
            return self.buf
        return np.ascontiguousarray(self.buf[:, :self.n])
