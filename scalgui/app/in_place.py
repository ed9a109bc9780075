"""Editing a file in place, as an external editor of an audio workstation. No Qt.

REAPER, Ardour and others call an external editor with a file path and pick the file up
again when the editor has saved it. :class:`InPlaceTarget` remembers what the file was
(format, sample rate, bit depth) when it was opened; :func:`write_back` writes the
document's output over it in that same format, after copying the original once to a
backup next to it (``take.orig.wav``, or ``take.orig.1.wav`` ... when that exists)::

    doc = Document.open("take.wav")
    target = InPlaceTarget.of("take.wav")
    doc.push(Edit(Rectangle(1.0, 1.5, 2000, 8000), "gain", -30))
    doc.render()
    write_back(doc, target)          # take.orig.wav holds the original bytes

This is the one place where replacing the source is what the user asked for, so it is
the one caller of ``save_audio(..., overwrite="source")``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..atomic import clean_stale_temps, temp_path
from ..audio import SaveReport, audio_info, save_audio
from ..audio.errors import AudioWriteError, UnsupportedFormat
from ..audio.formats import SUPPORTED_WRITE_FORMATS
from ..audio.save import refuse_writing_read_only, same_file

__all__ = ["InPlaceTarget", "backup_path", "existing_backups", "write_back"]


@dataclass
class InPlaceTarget:
    """A file being edited in place and how to write it back.

    Attributes
    ----------
    path : pathlib.Path
        The file (written back to this path).
    format : str
        Its container as read from its content ('wav', 'flac', ...).
    sample_rate : float
        In Hz; the document must be at this rate.
    bit_depth : int or None
        Bits per sample to write (the file's own; None for lossy codecs).
    backup : pathlib.Path or None
        Where the original was copied before the first write back; None until then.
    """

    path: Path
    format: str
    sample_rate: float
    bit_depth: int | None
    backup: Path | None = None

    @classmethod
    def of(cls, path: str | os.PathLike) -> "InPlaceTarget":
        """Describe ``path`` for writing it back; fails now, before any editing, when it
        could not be written back in its own format.

        Raises
        ------
        AudioError
            The file cannot be read (see :func:`~scalgui.audio.load_audio`).
        UnsupportedFormat
            Its extension or bit depth is one the writer cannot produce, or the extension
            names another format than the content (it would be written in the wrong one).
        AudioWriteError
            It is read-only (no write bit: see :func:`scalgui.audio.save.refuse_writing_read_only`).
        """
        path = Path(path)
        info = audio_info(path)
        refuse_writing_read_only(path)
        spec = SUPPORTED_WRITE_FORMATS.get(path.suffix.lower())
        if spec is None:
            raise UnsupportedFormat(path, f"cannot edit in place: {path.suffix or 'no extension'} files "
                                    "cannot be written; export to another file instead")
        content = "wav" if info["format"] == "rf64" else info["format"]
        if content != spec.name:
            raise UnsupportedFormat(path, f"cannot edit in place: the file holds {info['format']} audio under a "
                                    f"{path.suffix} name; it could not be written back in its own format")
        bits = info["bit_depth"]
        if spec.lossy:
            bits = None
        elif bits not in spec.bit_depths:
            raise UnsupportedFormat(path, f"cannot edit in place: {bits}-bit {spec.name} cannot be written "
                                    f"(supported: {', '.join(map(str, spec.bit_depths))} bits)")
        return cls(path, spec.name, float(info["sample_rate"]), bits)

    def describe(self) -> str:
        """e.g. ``'wav, 24-bit, 48000 Hz'``."""
        bits = f", {self.bit_depth}-bit" if self.bit_depth else ""
        return f"{self.format}{bits}, {self.sample_rate:g} Hz"


def _backup_names(path: Path):
    """``x.orig.wav``, ``x.orig.1.wav``, ``x.orig.2.wav``... beside ``path``."""
    yield path.with_name(f"{path.stem}.orig{path.suffix}")
    n = 1
    while True:
        yield path.with_name(f"{path.stem}.orig.{n}{path.suffix}")
        n += 1


def backup_path(path: str | os.PathLike) -> Path:
    """The first free backup name next to ``path``: ``x.orig.wav``, then ``x.orig.1.wav``...

    Existing backups are never replaced: the oldest holds the truly original sound.
    """
    return next(name for name in _backup_names(Path(path)) if not os.path.lexists(name))


def existing_backups(path: str | os.PathLike) -> list[Path]:
    """The backups of ``path`` made so far (the names :func:`backup_path` hands out, up
    to the first one that is free), oldest first."""
    found = []
    for name in _backup_names(Path(path)):
        if not os.path.lexists(name):
            return found
        found.append(name)


def _copy_backup(path: Path) -> Path:
    """Copy ``path`` byte for byte to a fresh backup name; the copy is complete or absent."""
    final = backup_path(path)
    clean_stale_temps(final.parent, destination=final)
    tmp = temp_path(final)
    try:
        shutil.copy2(path, tmp)
        if os.path.getsize(tmp) != os.path.getsize(path):
            raise OSError(f"the copy holds {os.path.getsize(tmp)} bytes, the file {os.path.getsize(path)}")
        os.link(tmp, final)  # no-clobber: a backup made meanwhile is never replaced
    except OSError as exc:
        raise AudioWriteError(path, f"cannot keep a backup of the original at '{final}' "
                              f"({exc.strerror or exc}); nothing was overwritten",
                              errno=getattr(exc, "errno", None)) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return final


def write_back(doc, target: InPlaceTarget, *, clip: str = "error") -> SaveReport:
    """Write ``doc``'s output (the render through the render chain) over ``target.path``
    in the file's own format, sample rate and bit depth.

    Before the first write the original is copied to :func:`backup_path` (recorded in
    ``target.backup``); later writes keep that backup. Unrendered edits are not rendered
    here: render first (a GUI does it in a worker thread).

    Parameters
    ----------
    doc : Document
        Opened from ``target.path``.
    target : InPlaceTarget
    clip : {'error', 'normalize', 'limit', 'allow'}
        As for :func:`~scalgui.audio.save_audio`.

    Returns
    -------
    SaveReport

    Raises
    ------
    ValueError
        The document is not the file's (another path or sample rate).
    AudioError
        The file is read-only (refused before the backup is made), or the backup or the
        write failed (the file is then left as it was).
    """
    if doc.path is None or not same_file(Path(doc.path), target.path):
        raise ValueError(f"the document ({doc.path}) is not the file edited in place ({target.path})")
    if doc.sample_rate != target.sample_rate:
        raise ValueError(f"the document is at {doc.sample_rate:g} Hz, '{target.path}' at {target.sample_rate:g} Hz")
    refuse_writing_read_only(target.path)
    signal = doc.output()
    if target.backup is None:
        target.backup = _copy_backup(target.path)
    report = save_audio(target.path, signal, target.sample_rate, bit_depth=target.bit_depth, clip=clip,
                        overwrite="source", source_path=doc.path)
    doc.unsaved = False
    return report
