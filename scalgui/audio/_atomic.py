"""Atomic file writing for ``save_audio``.

The file is encoded into a hidden temporary file next to the destination
(same folder, the destination's extension last, e.g.
``.song.wav.scalgui-1a2b3c-4242-1a2b3c4d.tmp.wav``: the shared scheme of
:mod:`scalgui.atomic`) through a Python file object -- so OS errors such as
ENOSPC surface as OSError from every pedalboard codec -- flushed and
fsync'ed, checked by re-opening it, and only then moved over the destination
with ``os.replace``. A failure at any point (disk full, permission denied,
read-only folder, a codec error, Ctrl-C) leaves an existing destination
byte-for-byte untouched and removes the temporary file; temp files that a
killed scalgui left for the same destination are removed first.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from pedalboard.io import AudioFile

from ..atomic import clean_stale_temps, fsync_dir, keep_mode
from ..atomic import create_temp as _create_shared_temp
from .errors import AudioError, AudioWriteError, BadSampleRate, DestinationExists
from .formats import WriteFormat
from .integrity import check_integrity

__all__ = ["create_temp", "encode", "write_atomically"]

WRITE_CHUNK = 2**18
"""Frames handed to pedalboard per write call."""

_OS_REASONS = {
    getattr(errno_mod, name): text
    for name, text in [
        ("ENOSPC", "disk full"),
        ("EDQUOT", "disk quota exceeded"),
        ("EACCES", "permission denied"),
        ("EPERM", "permission denied"),
        ("EROFS", "read-only file system"),
        ("ENOENT", "folder does not exist"),
        ("EFBIG", "file too large for this file system"),
        ("EIO", "input/output error"),
    ]
    if hasattr(errno_mod, name)
}


def _os_reason(exc: OSError) -> str:
    base = _OS_REASONS.get(exc.errno or -1)
    detail = exc.strerror or str(exc)
    return f"{base} ({detail})" if base and base.lower() not in detail.lower() else (base or detail)


def create_temp(final: Path) -> tuple[Path, BinaryIO]:
    """Create an exclusive hidden temp file next to ``final``, ending with its extension
    (the codecs and the read-back check tell the format by it)."""
    return _create_shared_temp(final, suffix=final.suffix)


def encode(fh: BinaryIO, x: np.ndarray, sr: int, spec: WriteFormat, bit_depth, quality) -> None:
    """Encode ``x`` into the open binary file ``fh`` with pedalboard."""
    channels, frames = x.shape
    kwargs = {"bit_depth": bit_depth} if bit_depth is not None else {}
    if quality is not None:
        kwargs["quality"] = quality
    with AudioFile(fh, "w", sr, channels, format=spec.name, **kwargs) as out:
        for start in range(0, frames, WRITE_CHUNK):
            chunk = x[:, start:start + WRITE_CHUNK]
            if channels > 1 and chunk.shape[1] == channels:  # square: pedalboard refuses
                out.write(chunk[:, :-1])
                chunk = chunk[:, -1:]
            out.write(chunk)


def _verify(tmp: Path, channels: int, frames: int, sr: int, spec: WriteFormat) -> None:
    with open(tmp, "rb") as handle:  # a file object: pedalboard takes only UTF-8 names
        with AudioFile(handle) as f:
            got = (int(f.num_channels), round(f.samplerate), int(f.frames))
    short = got[2] < frames if spec.lossy else got[2] != frames
    if got[0] != channels or got[1] != sr or short:
        raise ValueError(f"the written file reads back as {got[0]} ch, {got[1]} Hz, "
                         f"{got[2]} frames instead of {channels} ch, {sr} Hz, {frames} frames")
    found = check_integrity(tmp)
    if found.truncated:
        raise ValueError(f"the written file is incomplete ({found.detail})")


def _publish_exclusive(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` unless ``final`` exists (even if created meanwhile)."""
    try:
        os.link(tmp, final)  # atomic no-clobber where hard links exist
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then replace
        if os.path.lexists(final):
            raise FileExistsError(errno_mod.EEXIST, "file exists", str(final)) from None
        os.replace(tmp, final)
    else:
        os.unlink(tmp)


def write_atomically(path: Path, final: Path, x: np.ndarray, sr: int, spec: WriteFormat,
                     bit_depth, quality, overwrite) -> None:
    """Encode ``x`` and atomically put it at ``final``; errors name ``path``.

    Raises
    ------
    AudioWriteError
        OS or codec failure (reason e.g. "disk full (No space left on device)").
    DestinationExists
        ``overwrite`` is False and ``final`` appeared meanwhile.
    BadSampleRate
        The codec refused the sample rate.
    """
    tmp = fh = None
    try:
        clean_stale_temps(final.parent, destination=final)
        tmp, fh = create_temp(final)
        encode(fh, x, sr, spec, bit_depth, quality)
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        _verify(tmp, x.shape[0], x.shape[1], sr, spec)
        keep_mode(tmp, final)
        if overwrite is False:
            _publish_exclusive(tmp, final)
        else:
            os.replace(tmp, final)
        tmp = None
        fsync_dir(final.parent)
    except AudioError:
        raise
    except FileExistsError as exc:
        raise DestinationExists(path, "file already exists (overwrite=False)",
                                errno=exc.errno) from exc
    except OSError as exc:
        raise AudioWriteError(path, _os_reason(exc), errno=exc.errno) from exc
    except ValueError as exc:
        text = str(exc)
        if "sample rate" in text.lower():
            raise BadSampleRate(path, text, sample_rate=sr, action="write") from exc
        raise AudioWriteError(path, text) from exc
    except Exception as exc:
        raise AudioWriteError(path, f"{type(exc).__name__}: {exc}") from exc
    finally:
        if fh is not None and not fh.closed:
            with contextlib.suppress(OSError):
                fh.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
