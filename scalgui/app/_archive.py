"""Reading a project's zip archive without trusting it. No Qt.

A ``.scalproj`` file may come from anyone. Everything the archive says about itself is
checked against what it holds and what a project can plausibly hold *before* anything
is decompressed or allocated: the file is a regular file (a FIFO or ``/dev/zero`` would
block or never end), the central directory is small, every member is unencrypted,
stored or deflated, named once, lies inside the file, and inflates to a bounded size at
a ratio real projects have; a ``.npy`` member's header (shape, type, header length) is
read and checked against the member's size before its data is read.

Problems raise :class:`ArchiveError` with a one-line reason (without the file's name);
:mod:`scalgui.app.project` turns it into a ``ProjectError`` naming the file.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..regular_files import open_regular_file

__all__ = [
    "MAX_CHANNELS",
    "MAX_COMPRESSION_RATIO",
    "MAX_EMBEDDED_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_MEMBERS",
    "ArchiveError",
    "check_channels",
    "copy_member",
    "open_archive",
    "read_member",
    "read_npy_member",
]

#: Largest ``project.json``, in bytes: a project of thousands of edits is a few MB
#: (about 185 bytes per gain edit, a few KB for a long lasso or stroke).
MAX_MANIFEST_BYTES = 8 * 2**20
#: Largest embedded array or FLAC, in bytes: 2 GiB, which holds 93 minutes of stereo
#: float32 at 48 kHz (23 at 192 kHz). Longer sounds are kept as files beside the project.
MAX_EMBEDDED_BYTES = 2 * 2**30
#: Most channels of an embedded sound: what scalgui's audio writer accepts.
MAX_CHANNELS = 64
#: Most files (members) in a project archive: scalgui writes at most three.
MAX_MEMBERS = 64
#: Largest central directory (the archive's table of contents), in bytes.
MAX_CENTRAL_DIRECTORY_BYTES = 2**20
#: Largest uncompressed-to-compressed ratio of a member above
#: :data:`RATIO_CHECK_MIN_BYTES`: scalgui's manifests compress 5-40:1, 250:1 when every
#: edit is the same (measured); deflate's own limit is about 1030:1, which is what
#: archives built to fill memory use.
MAX_COMPRESSION_RATIO = 500
RATIO_CHECK_MIN_BYTES = 2**20
#: Longest ``.npy`` header, in bytes (numpy's own default limit for untrusted files).
MAX_NPY_HEADER_BYTES = 10_000
_NPY_MAGIC = b"\x93NUMPY"
_READ_CHUNK = 16 * 2**20
class ArchiveError(Exception):
    """A project archive that cannot be read safely; ``str()`` is one line, without the
    file's name."""


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _check_directory(handle: BinaryIO) -> None:
    """Refuse a table of contents too large to parse before zipfile parses it (it builds
    an object per entry, several times the entry's bytes)."""
    find_end = getattr(zipfile, "_EndRecData", None)  # private, but in every Python 3
    if find_end is None:
        return
    end = find_end(handle)
    handle.seek(0)
    if end is None:
        return  # not a zip archive: zipfile says so
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > MAX_MEMBERS:
        raise ArchiveError(f"the archive lists {entries} files; a project holds at most {MAX_MEMBERS}")
    if size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ArchiveError(f"the archive's table of contents is {_size_text(size)}; a project's is at most "
                           f"{_size_text(MAX_CENTRAL_DIRECTORY_BYTES)}")


def _check_members(archive: zipfile.ZipFile, archive_size: int) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"the archive lists {len(infos)} files; a project holds at most {MAX_MEMBERS}")
    twice = [name for name, count in Counter(i.filename for i in infos).items() if count > 1]
    if twice:
        raise ArchiveError(f"damaged or tampered with: the archive holds {twice[0]!r} more than once")
    for info in infos:
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{info.filename} is encrypted; scalgui projects are not")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"{info.filename} uses compression method {info.compress_type}; scalgui reads "
                               "stored and deflated members only")
        if info.header_offset + info.compress_size > archive_size:
            raise ArchiveError(f"damaged or truncated: {info.filename} claims {_size_text(info.compress_size)}, "
                               f"more than the file holds")


def open_archive(path: Path) -> zipfile.ZipFile:
    """Open a project archive after checking its file and table of contents.

    Raises
    ------
    ArchiveError
        Missing, not a regular file, empty, not a zip archive, damaged, or holding
        members scalgui would not write (encrypted, another compression, named twice,
        more than :data:`MAX_MEMBERS`, lying outside the file).
    """
    try:
        handle = open_regular_file(path)
    except FileNotFoundError:
        raise ArchiveError("no such file") from None
    except OSError as exc:
        raise ArchiveError(exc.strerror or str(exc)) from None
    except ValueError as exc:  # a name with a NUL byte
        raise ArchiveError(str(exc)) from None
    try:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise ArchiveError("empty file")
        _check_directory(handle)
        archive = _ProjectArchive(handle)
    except ArchiveError:
        handle.close()
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error,
            NotImplementedError) as exc:
        handle.close()
        raise ArchiveError(f"damaged or truncated, or not a project ({' '.join(str(exc).split())})") from None
    try:
        _check_members(archive, size)
    except ArchiveError:
        archive.close()
        raise
    return archive


class _ProjectArchive(zipfile.ZipFile):
    """A ZipFile that closes the file object it was opened on (ZipFile leaves a file
    object it was given open)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        super().__init__(handle)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._handle.close()


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> zipfile.ZipInfo:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ArchiveError(f"damaged: {name} is missing from the archive") from None
    if info.file_size > limit:
        raise ArchiveError(f"{name} is {_size_text(info.file_size)} uncompressed; a project's {name} holds at "
                           f"most {_size_text(limit)}")
    if (info.compress_type == zipfile.ZIP_DEFLATED and info.file_size >= RATIO_CHECK_MIN_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
        raise ArchiveError(f"{name} inflates {info.file_size // max(info.compress_size, 1)} times "
                           f"({_size_text(info.compress_size)} to {_size_text(info.file_size)}); a project's "
                           f"members inflate at most {MAX_COMPRESSION_RATIO} times")
    return info


@contextlib.contextmanager
def _member_stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str):
    """The open member. The zip layer's errors (a bad CRC, cut-off data, an unreadable
    compression) become one-line "damaged" errors (:class:`ArchiveError`), and the
    member must hold no more than what was read from it."""
    try:
        with archive.open(info) as stream:
            yield stream
            if stream.read(1):
                raise ArchiveError(f"damaged: {name} holds more than its recorded size")
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ArchiveError(f"damaged: {name} cannot be read ({reason})") from None


def _read_exactly(stream, count: int, name: str, into: memoryview | None = None) -> bytes | None:
    """``count`` bytes from ``stream`` (into ``into`` when given), in bounded chunks."""
    chunks, done = [], 0
    while done < count:
        chunk = stream.read(min(count - done, _READ_CHUNK))
        if not chunk:
            raise ArchiveError(f"damaged or truncated: {name} ends after {done} of {count} bytes")
        if into is not None:
            into[done:done + len(chunk)] = chunk
        else:
            chunks.append(chunk)
        done += len(chunk)
    return None if into is not None else b"".join(chunks)


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The bytes of member ``name``, refused when it inflates beyond ``limit`` bytes."""
    info = _member(archive, name, limit)
    with _member_stream(archive, info, name) as stream:
        return _read_exactly(stream, info.file_size, name)


def copy_member(archive: zipfile.ZipFile, name: str, target: BinaryIO, limit: int) -> None:
    """Copy member ``name`` into the open file ``target`` (checked like :func:`read_member`)."""
    info = _member(archive, name, limit)
    with _member_stream(archive, info, name) as stream:
        shutil.copyfileobj(stream, target, _READ_CHUNK)  # stops at the recorded size


def check_channels(channels: int, what: str) -> None:
    """Refuse a channel count no sound has (0) or scalgui does not handle (above
    :data:`MAX_CHANNELS`)."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise ArchiveError(f"{what} has {channels} channels; scalgui handles 1 to {MAX_CHANNELS}")


def _npy_header(stream, name: str) -> tuple[tuple, bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header bytes)`` of the ``.npy`` data in ``stream``,
    reading no more than the header's own bytes (its length is checked first)."""
    lead = stream.read(len(_NPY_MAGIC) + 2)
    if lead.startswith(b"PK"):
        raise ArchiveError(f"damaged: {name} is a zip archive (an .npz?), not a .npy array")
    if len(lead) < len(_NPY_MAGIC) + 2 or not lead.startswith(_NPY_MAGIC):
        raise ArchiveError(f"damaged: {name} is not a valid array (no .npy header)")
    major = lead[len(_NPY_MAGIC)]
    if major not in (1, 2):
        raise ArchiveError(f"damaged: {name} is not a valid array (.npy format version {major} is not read)")
    length_bytes = stream.read(2 if major == 1 else 4)
    if len(length_bytes) != (2 if major == 1 else 4):
        raise ArchiveError(f"damaged: {name} is not a valid array (its header is cut off)")
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise ArchiveError(f"damaged: {name} is not a valid array (a header of {length} bytes)")
    header = stream.read(length)
    if len(header) != length:
        raise ArchiveError(f"damaged: {name} is not a valid array (its header is cut off)")
    whole = io.BytesIO(lead + length_bytes + header)
    try:
        version = np.lib.format.read_magic(whole)
        read_header = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(whole, max_header_size=MAX_NPY_HEADER_BYTES)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise ArchiveError(f"damaged: {name} is not a valid array ({' '.join(str(exc).split())})") from None
    return shape, fortran_order, dtype, len(lead) + len(length_bytes) + length


def read_npy_member(archive: zipfile.ZipFile, name: str, *, shape: tuple[int, int] | None = None,
                    limit: int = MAX_EMBEDDED_BYTES) -> np.ndarray:
    """An embedded float32 ``[channels, frames]`` sound, without pickle.

    Parameters
    ----------
    archive : ZipFile
        From :func:`open_archive`.
    name : str
        The member, e.g. ``"source.npy"``.
    shape : (int, int), optional
        The shape the array must have (a render has its source's).
    limit : int
        Largest array accepted, in bytes.

    Raises
    ------
    ArchiveError
        Not a ``.npy`` array (an ``.npz``, garbage), not float32 ``[channels, frames]``,
        0 or more than :data:`MAX_CHANNELS` channels, no frames, another shape than
        ``shape``, a header whose size disagrees with the member's, larger than
        ``limit``, damaged data or non-finite samples.
    """
    info = _member(archive, name, limit + MAX_NPY_HEADER_BYTES + 16)
    with _member_stream(archive, info, name) as stream:
        dims, fortran_order, dtype, header_bytes = _npy_header(stream, name)
        if len(dims) != 2 or dtype.kind != "f" or dtype.itemsize != 4:
            raise ArchiveError(f"damaged: {name} is not float32 [channels, frames] audio (it is {dtype} "
                               f"{list(dims)})")
        channels, frames = dims
        check_channels(channels, name)
        if frames < 1:
            raise ArchiveError(f"damaged: {name} holds no audio (0 frames)")
        if shape is not None and tuple(dims) != tuple(shape):
            raise ArchiveError(f"damaged: {name} is {list(dims)} but the project's source is {list(shape)} "
                               "[channels, frames]")
        data_bytes = channels * frames * dtype.itemsize  # Python ints: no overflow
        if data_bytes != info.file_size - header_bytes:
            raise ArchiveError(f"damaged: {name}'s header claims {_size_text(data_bytes)} of samples but the "
                               f"archive holds {_size_text(max(info.file_size - header_bytes, 0))}")
        if data_bytes > limit:
            raise ArchiveError(f"{name} is {_size_text(data_bytes)}; a project embeds at most "
                               f"{_size_text(limit)}")
        flat = np.empty(channels * frames, dtype=dtype)
        _read_exactly(stream, data_bytes, name, into=memoryview(flat).cast("B"))
    array = flat.reshape((channels, frames), order="F" if fortran_order else "C")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ArchiveError(f"damaged: {name} is not finite float32 [channels, frames] audio")
    return array
