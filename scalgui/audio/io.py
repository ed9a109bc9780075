"""Load audio files with pedalboard, checking them on the way in.

Decoding is pedalboard's (WAV, AIFF, FLAC, Ogg Vorbis, MP3; the format is
recognised from the content, not the extension). On top of it this module
adds what pedalboard does not do: clear errors naming the file, detection
of truncated files (see :mod:`scalgui.audio.integrity` for what can and
cannot be detected per format), NaN/inf checks, sample-rate sanity,
chunked reading with progress, resampling, and channel selection.
Saving lives in :mod:`scalgui.audio.save` and is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pedalboard import Resample
from pedalboard.io import StreamResampler

from ._reader import Collector, channel_selection, header, open_checked
from .errors import (
    AudioTooLong,
    BadSampleRate,
    EmptyAudio,
    NonFiniteAudio,
)
from .formats import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from .save import SaveReport, save_audio

__all__ = ["Audio", "SaveReport", "audio_info", "load_audio", "save_audio"]

ProgressCallback = Callable[[int, int], object]

_RESAMPLE_QUALITY = {
    "fast": Resample.Quality.WindowedSinc16,
    "medium": Resample.Quality.WindowedSinc32,
    "high": Resample.Quality.WindowedSinc64,
    "best": Resample.Quality.WindowedSinc256,
}


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio and where it came from.

    Attributes
    ----------
    samples : numpy.ndarray
        float32, C-contiguous, shape ``[channels, frames]``; full scale is
        +/-1.0 (float files may exceed it).
    sample_rate : float
        Frames per second, in Hz (after any resampling on load).
    path : pathlib.Path or None
        The file it was loaded from.
    source_format : str or None
        Container of the file: 'wav', 'rf64', 'aiff', 'flac', 'ogg', 'mp3'.
    source_bit_depth : int or None
        Bits per sample stored in the file (16, 24, 32 ...); None for lossy
        codecs, whose decoders have no stored bit depth.
    sanitized_samples : int
        Number of NaN/inf samples replaced by 0 (``nonfinite="sanitize"``).
    """

    samples: np.ndarray
    sample_rate: float
    path: Path | None = None
    source_format: str | None = None
    source_bit_depth: int | None = None
    sanitized_samples: int = 0

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        """Number of frames (samples per channel)."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike) -> dict:
    """Describe an audio file without decoding its audio.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``path`` (Path), ``format`` (str: 'wav', 'rf64', 'aiff', 'flac', 'ogg',
        'mp3'), ``frames`` (int, per channel), ``sample_rate`` (float, Hz),
        ``channels`` (int), ``duration`` (float, seconds), ``bit_depth``
        (int or None for lossy), ``frames_exact`` (bool: False where
        pedalboard estimates the length, e.g. MP3 without a Xing header).

    Raises
    ------
    AudioError
        The same errors as :func:`load_audio` raises before decoding
        (NaN/inf can only be found by decoding, so NonFiniteAudio is not).
    """
    path = Path(path)
    with open_checked(path) as f:
        return header(path, f, None)


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: float | None = None,
    channels: None | str | int | Sequence[int] = None,
    nonfinite: str = "error",
    progress: ProgressCallback | None = None,
    chunk_frames: int = 2**18,
    max_duration: float | None = None,
    resample_quality: str = "high",
) -> Audio:
    """Decode an audio file into float32 ``[channels, frames]``.

    Parameters
    ----------
    path : str or os.PathLike
        Any file pedalboard reads: WAV/RF64, AIFF, FLAC, Ogg Vorbis, MP3.
    sample_rate : float, optional
        Resample to this rate in Hz on load (pedalboard's streaming windowed-
        sinc resampler, the one behind ``AudioFile.resampled_to``). The
        result has exactly ``round(frames * sample_rate / file_rate)`` frames.
        None keeps the file's rate.
    channels : None, 'mono', int or sequence of int, optional
        None keeps all channels; 'mono' averages them into one; an index or
        a sequence of 0-based indices selects (and orders) channels.
    nonfinite : {'error', 'sanitize'}
        What to do with NaN/inf samples (float files only): raise
        NonFiniteAudio, or replace them with 0 and count them in
        ``Audio.sanitized_samples``. Checked on the selected channels
        before mixing and resampling.
    progress : callable, optional
        Called as ``progress(done_frames, total_frames)`` in frames of the
        source file: once with 0 before reading, after each chunk, and last
        with ``done == total`` (for MP3s without a length header the total
        is an estimate until the end). An exception raised in it aborts the
        load and propagates (use it to cancel).
    chunk_frames : int
        Frames decoded per step (memory and progress granularity).
    max_duration : float, optional
        Refuse files longer than this many seconds (AudioTooLong).
    resample_quality : {'fast', 'medium', 'high', 'best'}
        Windowed-sinc length 16/32/64/256 taps; 'high' (64) by default.
        Cost grows with it: 44.1 -> 48 kHz stereo takes about 3.4 s per
        minute of audio at 'high', half that at 'medium' (one CPU core).

    Returns
    -------
    Audio

    Notes
    -----
    MP3: pedalboard does not apply the LAME gapless info, so the decoded
    audio starts about 1105 frames late (576 encoder + 529 decoder delay)
    and is padded to whole 1152-frame MPEG frames; Ogg Vorbis decodes
    sample-exact.

    Raises
    ------
    AudioFileNotFound
        No such file.
    UnreadableAudio
        A directory, no permission, or not audio pedalboard can decode.
    EmptyAudio
        0 bytes, 0 frames or 0 channels.
    TruncatedAudio
        The data ends before the header says (see
        :mod:`scalgui.audio.integrity` for per-format limits: a cleanly cut
        MP3 without a Xing/Info header cannot be detected).
    BadSampleRate
        The file's (or requested) rate is outside 1000..768000 Hz.
    BadChannelSelection
        ``channels`` names a channel the file lacks.
    NonFiniteAudio
        NaN/inf samples with ``nonfinite='error'``; states count and the
        first position in seconds.
    AudioTooLong
        Longer than ``max_duration``.
    """
    path = Path(path)
    if nonfinite not in ("error", "sanitize"):
        raise ValueError(f"nonfinite must be 'error' or 'sanitize', got {nonfinite!r}")
    if resample_quality not in _RESAMPLE_QUALITY:
        raise ValueError(f"resample_quality must be one of {sorted(_RESAMPLE_QUALITY)}")
    if int(chunk_frames) < 1:
        raise ValueError("chunk_frames must be positive")
    if sample_rate is not None and not (MIN_SAMPLE_RATE <= float(sample_rate) <= MAX_SAMPLE_RATE):
        raise BadSampleRate(path, f"requested sample rate {float(sample_rate):g} Hz is outside "
                            f"{MIN_SAMPLE_RATE:g}..{MAX_SAMPLE_RATE:g} Hz",
                            sample_rate=float(sample_rate))
    with open_checked(path) as f:
        info = header(path, f, max_duration)
        picks, mono = channel_selection(path, channels, info["channels"])
        out_channels = 1 if mono else (len(picks) if picks else info["channels"])
        src_sr, total, exact = info["sample_rate"], info["frames"], info["frames_exact"]
        target = float(sample_rate) if sample_rate is not None else src_sr
        resampler = None
        if target != src_sr:
            resampler = StreamResampler(src_sr, target, out_channels,
                                        _RESAMPLE_QUALITY[resample_quality])
            capacity = round(total * target / src_sr) + (0 if exact else 64)
        else:
            capacity = total
        out = Collector(out_channels, capacity, fixed=bool(resampler) and exact)
        done, bad, first_bad, reported = 0, 0, None, (0, total)
        if progress is not None:
            progress(0, total)
        # Where the length is exact, reading stops there: past it pedalboard pads zeros
        # up to the header's word (2**31 frames for a streaming WAV's 0xFFFFFFFF).
        last = total if exact else None
        while True:
            want = int(chunk_frames) if last is None else min(int(chunk_frames), last - done)
            if want <= 0:
                break
            chunk = f.read(want)
            k = chunk.shape[1]
            if k == 0:
                break
            if picks is not None:
                chunk = chunk[picks]
            finite = np.isfinite(chunk)
            if not finite.all():
                bad += chunk.size - int(np.count_nonzero(finite))
                if first_bad is None:
                    first_bad = done + int(np.argmin(finite.all(axis=0)))
                chunk = np.where(finite, chunk, np.float32(0.0))
            done += k
            if max_duration is not None and done / src_sr > max_duration:
                raise AudioTooLong(path, f"file is over {max_duration:g} s long; pass a "
                                   "larger max_duration (or None) or trim the file first",
                                   duration=done / src_sr, max_duration=max_duration)
            if not (bad and nonfinite == "error"):  # no point keeping what we will refuse
                if mono:
                    chunk = chunk.mean(axis=0, keepdims=True, dtype=np.float32)
                if resampler is not None:
                    chunk = resampler.process(np.ascontiguousarray(chunk, dtype=np.float32))
                out.add(chunk)
            if progress is not None:
                reported = (done, max(total, done))
                progress(*reported)
        if progress is not None and reported != (done, done):
            progress(done, done)  # the estimated total (MP3 without Xing) was off
        if done == 0:
            raise EmptyAudio(path, "no audio could be decoded from the file")
        if bad and nonfinite == "error":
            raise NonFiniteAudio(path, f"file contains {bad} non-finite samples (NaN/inf), "
                                 f"the first at {first_bad / src_sr:.6f} s; pass "
                                 "nonfinite='sanitize' to replace them with 0",
                                 count=bad, first_seconds=first_bad / src_sr)
        if resampler is not None:
            out.add(resampler.process())
    samples = out.result()
    return Audio(samples=samples, sample_rate=target, path=path,
                 source_format=info["format"], source_bit_depth=info["bit_depth"],
                 sanitized_samples=bad)
