"""Save audio with pedalboard: validate, never clip silently, write atomically.

Validation and the clipping policy live here; the atomic write itself is in
:mod:`scalgui.audio._atomic`.
"""

from __future__ import annotations

import errno as errno_mod
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pedalboard import BrickwallLimiter

from ..atomic import ReadOnlyFile, refuse_read_only, replaceable_file
from ._atomic import write_atomically
from .errors import (
    AudioWriteError,
    BadSampleRate,
    ClippingError,
    DestinationExists,
    EmptyAudio,
    InvalidSamples,
    NonFiniteAudio,
    UnsupportedFormat,
    WouldOverwriteSource,
)
from .formats import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    SUPPORTED_WRITE_FORMATS,
    WriteFormat,
    describe_supported,
    normalize_quality,
)

__all__ = ["SaveReport", "check_destination", "save_audio"]

NORMALIZE_PEAK_DBFS = -0.1
"""Peak level (dBFS) that ``clip='normalize'`` scales to."""
LIMIT_CEILING_DBFS = -0.3
"""Ceiling (dBFS) of the limiter used by ``clip='limit'``."""
_MAX_CHANNELS_GUESS = 64  # more "channels" than this is taken as a transposed array


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save_audio` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The destination as given.
    format : str
        'wav', 'aiff', 'flac', 'ogg' or 'mp3'.
    bit_depth : int or None
        Bits per sample written (None for lossy codecs).
    quality : str or int or None
        Codec quality used (see ``SUPPORTED_WRITE_FORMATS``), None if none.
    peak_dbfs : float
        Peak of the samples given, before any gain or limiting, in dBFS
        (-inf for silence).
    gain_db : float
        Static gain applied, in dB (normalisation, or the limiter's safety
        scale); 0.0 if none.
    limited : bool
        True when the limiter ran.
    clipped_samples : int
        Samples with magnitude above 1.0 in the signal written to an integer
        or lossy format (only possible with ``clip='allow'``); integer formats
        store them at full scale, lossy decoders clip them on playback.
    channels, frames : int
    sample_rate : int
        Hz.
    """

    path: Path
    format: str
    bit_depth: int | None
    quality: str | int | None
    peak_dbfs: float
    gain_db: float = 0.0
    limited: bool = False
    clipped_samples: int = 0
    channels: int = 0
    frames: int = 0
    sample_rate: int = 0


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def _choose_format(path: Path, bit_depth, quality):
    ext = path.suffix.lower()
    spec = SUPPORTED_WRITE_FORMATS.get(ext)
    if spec is None:
        raise UnsupportedFormat(path, f"unsupported extension {ext or '(none)'!r}; "
                                f"supported: {describe_supported()}")
    if spec.lossy:
        if bit_depth is not None:
            raise UnsupportedFormat(path, f"{spec.name} has no bit depth (got {bit_depth}); "
                                    f"set quality instead: {spec.quality_meaning}")
    else:
        bit_depth = spec.default_bit_depth if bit_depth is None else bit_depth
        if isinstance(bit_depth, bool) or bit_depth not in spec.bit_depths:
            kinds = ", ".join(f"{b}{' (float)' if b in spec.float_bit_depths else ''}"
                              for b in spec.bit_depths)
            raise UnsupportedFormat(path, f"{spec.name} cannot be written at bit depth "
                                    f"{bit_depth!r}; supported: {kinds}")
    try:
        quality = normalize_quality(spec, quality)
    except (TypeError, ValueError) as exc:
        raise UnsupportedFormat(path, str(exc)) from None
    return spec, bit_depth, quality


def _check_rate(path: Path, sample_rate, spec: WriteFormat) -> int:
    try:
        sr = float(sample_rate)
    except (TypeError, ValueError):
        raise BadSampleRate(path, f"sample rate must be a number, got {sample_rate!r}",
                            action="write") from None
    if not (MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE):
        raise BadSampleRate(path, f"sample rate {sr:g} Hz is outside {MIN_SAMPLE_RATE:g}.."
                            f"{MAX_SAMPLE_RATE:g} Hz", sample_rate=sr, action="write")
    if sr != round(sr):
        raise BadSampleRate(path, f"sample rate {sr:g} Hz is not a whole number of Hz, which "
                            "audio files store; resample first", sample_rate=sr, action="write")
    if spec.sample_rates is not None and round(sr) not in spec.sample_rates:
        raise BadSampleRate(path, f"{spec.name} cannot store {sr:g} Hz; it stores "
                            f"{', '.join(map(str, spec.sample_rates))} Hz: resample first or "
                            "choose another format", sample_rate=sr, action="write")
    return round(sr)


def _prepare(path: Path, samples, sr: int, spec: WriteFormat) -> np.ndarray:
    arr = np.asarray(samples)
    if arr.dtype.kind != "f":
        raise InvalidSamples(path, f"samples must be a float array (full scale +/-1.0), "
                             f"got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    elif arr.ndim != 2:
        raise InvalidSamples(path, f"samples must be [channels, frames] or [frames], "
                             f"got shape {arr.shape}")
    if arr.shape[0] > _MAX_CHANNELS_GUESS:
        transposed = arr.shape[1] <= _MAX_CHANNELS_GUESS
        hint = " (it looks transposed: pass samples.T)" if transposed else ""
        raise InvalidSamples(path, f"got shape {arr.shape}, expected [channels, frames] with "
                             f"at most {_MAX_CHANNELS_GUESS} channels{hint}")
    if arr.size == 0:
        raise EmptyAudio(path, f"no audio to save (shape {arr.shape})", action="write")
    if arr.shape[0] > spec.max_channels:
        raise UnsupportedFormat(path, f"{spec.name} holds at most {spec.max_channels} "
                                f"channels, got {arr.shape[0]}")
    x = np.array(arr, dtype=np.float32, order="C", copy=True)
    finite = np.isfinite(x)
    if not finite.all():
        count = x.size - int(np.count_nonzero(finite))
        first = int(np.argmin(finite.all(axis=0))) / sr
        raise NonFiniteAudio(path, f"samples contain {count} non-finite values (NaN/inf, or "
                             f"beyond float32 range), the first at {first:.6f} s",
                             count=count, first_seconds=first, action="write")
    return x


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (also when one does not exist yet)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_destination(path: Path, overwrite=True, source_path=None) -> Path:
    """The file :func:`save_audio` would replace (a symlink's target), checked as it
    checks it, so that a caller can refuse a bad output before a long render: raises
    the same :class:`AudioWriteError` (``WouldOverwriteSource``, ``DestinationExists``,
    a read-only file, a folder) with the same message."""
    if overwrite not in (True, False, "source"):
        raise ValueError(f"overwrite must be True, False or 'source', got {overwrite!r}")
    try:
        final = replaceable_file(path)
    except IsADirectoryError:
        raise AudioWriteError(path, "is a directory", errno=errno_mod.EISDIR) from None
    except OSError as exc:
        raise AudioWriteError(path, exc.strerror or str(exc), errno=exc.errno) from None
    if source_path is not None and same_file(final, Path(source_path)) and overwrite != "source":
        raise WouldOverwriteSource(path, f"would overwrite the source file '{source_path}'; "
                                   "save under another name, or pass overwrite='source' to "
                                   "replace the original")
    if overwrite is False and os.path.lexists(final):
        raise DestinationExists(path, "file already exists (overwrite=False)",
                                errno=errno_mod.EEXIST)
    refuse_writing_read_only(final, shown=path)
    return final


def refuse_writing_read_only(path: str | os.PathLike, *, shown: str | os.PathLike | None = None) -> None:
    """Raise :class:`AudioWriteError` (naming ``shown``, default ``path``) when ``path``
    has no write bit (e.g. mode 0444): a file made read-only is not replaced, whoever
    runs scalgui (see :func:`scalgui.atomic.refuse_read_only`)."""
    try:
        refuse_read_only(path)
    except ReadOnlyFile as exc:
        raise AudioWriteError(shown if shown is not None else path, exc.strerror, errno=exc.errno) from None


def _limit(x: np.ndarray, sr: int) -> np.ndarray:
    channels, frames = x.shape
    pad = max(0, channels + 1 - frames)  # pedalboard guesses the layout of square arrays
    padded = np.pad(x, ((0, 0), (0, pad))) if pad else x
    y = BrickwallLimiter(ceiling_db=LIMIT_CEILING_DBFS)(padded, sr)
    return np.array(y[:, :frames], dtype=np.float32, order="C")


def _apply_clip_policy(path: Path, x: np.ndarray, sr: int, clip: str, is_float: bool):
    """Return (samples, peak_dbfs, gain_db, limited)."""
    peak = float(np.max(np.abs(x)))
    peak_db, gain_db, limited = _db(peak), 0.0, False
    if clip == "error" and peak > 1.0:
        why = ("32-bit float WAV would keep it, but players and converters clip it"
               if is_float else "integer PCM and lossy codecs clip it")
        raise ClippingError(path, f"peak is {peak_db:+.2f} dBFS, above 0 dBFS, so it would "
                            f"clip ({why}); pass clip='normalize' to scale the peak to "
                            f"{NORMALIZE_PEAK_DBFS} dBFS, clip='limit' to run a limiter, or "
                            "clip='allow' to write it as is", peak_dbfs=peak_db)
    if clip == "normalize" and peak > 0:
        gain = 10.0 ** (NORMALIZE_PEAK_DBFS / 20.0) / peak
        x *= np.float32(gain)
        gain_db = _db(gain)
    elif clip == "limit" and peak > 1.0:
        x = _limit(x, sr)
        limited = True
        ceiling = 10.0 ** (LIMIT_CEILING_DBFS / 20.0)
        after = float(np.max(np.abs(x)))
        if not math.isfinite(after):
            raise AudioWriteError(path, "the limiter produced non-finite samples")
        if after > ceiling:  # safety: the limiter's ceiling is not a guarantee
            gain = ceiling / after
            x *= np.float32(gain)
            gain_db = _db(gain)
    return x, peak_db, gain_db, limited


def save_audio(
    path: str | os.PathLike,
    samples: np.ndarray,
    sample_rate: float,
    *,
    bit_depth: int | None = None,
    quality: str | int | None = None,
    clip: str = "error",
    overwrite: bool | str = True,
    source_path: str | os.PathLike | None = None,
) -> SaveReport:
    """Write audio to a file, atomically, choosing the format by extension.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its extension picks the format (see
        ``SUPPORTED_WRITE_FORMATS``): .wav (16/24-bit int, 32-bit float;
        default 24), .flac (16/24; default 24), .aif/.aiff (16/24; default
        24), .ogg and .mp3 (``quality``). A symlink is followed: its target
        is replaced, the link kept. An existing destination must be a regular
        file with a write bit: a read-only one (e.g. mode 0444) is refused.
    samples : numpy.ndarray
        Float array, ``[channels, frames]`` or ``[frames]`` for mono; full
        scale is +/-1.0. Not modified.
    sample_rate : float
        Hz; a whole number in 1000..768000 (MP3: 8000..48000 MPEG rates).
    bit_depth : int, optional
        Bits per sample for WAV/FLAC/AIFF; must be None for Ogg/MP3.
    quality : str or int, optional
        FLAC: compression level 0..8 (default 5). Ogg: kbps, one of 64, 80,
        96, 112, 128, 160, 192, 224, 256, 320, 500 (default 256). MP3: 'V0'
        (best) .. 'V9' VBR or 32..320 kbps CBR (default 320 kbps). Any of
        them: 'best', 'worst', 'fastest', 'slowest'. WAV/AIFF: None.
    clip : {'error', 'normalize', 'limit', 'allow'}
        Samples are never clipped silently. 'error': raise ClippingError if
        the peak exceeds 1.0 (0 dBFS) -- also for 32-bit float WAV, which
        could store it, because players clip it downstream. 'normalize':
        scale so the peak is -0.1 dBFS (always, quiet audio is raised too).
        'limit': if the peak exceeds 0 dBFS run pedalboard's lookahead
        BrickwallLimiter with a -0.3 dBFS ceiling, then scale down if any
        sample still exceeds it; audio within 0 dBFS is left alone. 'allow':
        write as is (float WAV keeps values above 1; integer formats store
        them at full scale, counted in ``clipped_samples``).
    overwrite : bool or 'source'
        False: refuse if the destination exists (DestinationExists). True:
        replace it. 'source': also allow replacing ``source_path``.
    source_path : str or os.PathLike, optional
        The file the audio was loaded from; refusing to replace it
        (WouldOverwriteSource) unless ``overwrite='source'``.

    Returns
    -------
    SaveReport

    Raises
    ------
    UnsupportedFormat
        Unknown extension, bit depth, quality, or too many channels.
    BadSampleRate, InvalidSamples, EmptyAudio, NonFiniteAudio
        Bad arguments (nothing is written).
    ClippingError
        Peak above 0 dBFS with ``clip='error'``; the message states the peak.
    DestinationExists, WouldOverwriteSource
        Refused to replace a file.
    AudioWriteError
        The destination is read-only (reason e.g. "it is read-only (mode
        0444); make it writable to replace it"), a folder or not a regular
        file; or the OS or codec failed (disk full, permission denied,
        read-only folder, ...): the destination is untouched and no temp
        file is left.
    """
    path = Path(path)
    if clip not in ("error", "normalize", "limit", "allow"):
        raise ValueError(f"clip must be 'error', 'normalize', 'limit' or 'allow', got {clip!r}")
    spec, bit_depth, quality = _choose_format(path, bit_depth, quality)
    sr = _check_rate(path, sample_rate, spec)
    x = _prepare(path, samples, sr, spec)
    final = check_destination(path, overwrite, source_path)
    is_float = bit_depth in spec.float_bit_depths
    x, peak_db, gain_db, limited = _apply_clip_policy(path, x, sr, clip, is_float)
    clipped = 0
    if not is_float:
        over = np.abs(x) > 1.0
        clipped = int(np.count_nonzero(over))
        if clipped and not spec.lossy:
            np.clip(x, -1.0, 1.0, out=x)
    write_atomically(path, final, x, sr, spec, bit_depth, quality, overwrite)
    return SaveReport(path=path, format=spec.name, bit_depth=bit_depth, quality=quality,
                      peak_dbfs=peak_db, gain_db=gain_db, limited=limited,
                      clipped_samples=clipped, channels=x.shape[0], frames=x.shape[1],
                      sample_rate=sr)
