"""Atomic writes, shared by every writer of scalgui: temp file beside the destination,
fsync, rename over it.

Two writers use these pieces: :func:`write_atomic` here (projects, presets, JSON reports,
pictures) and :func:`scalgui.audio._atomic.write_atomically` (audio, which also checks
the file it wrote by reading it back). Both

- follow a symlink to its target: the target is replaced, the link kept;
- refuse a destination that is a folder or not a regular file, and one that is
  read-only (no write bit for anyone: replacing it would undo what the user meant by
  taking the bits away, and root would not be stopped by the permissions at all);
- give a new file the mode the umask gives (``0644`` under umask ``022``) and a replaced
  file its previous mode;
- fsync the file and its folder before returning;
- name their temporary files ``.<name>.scalgui-<host>-<pid>-<token>.tmp[<ext>]`` and
  remove, before writing, the stale ones that an earlier scalgui left for the same
  destination when it was killed (see :func:`clean_stale_temps`).

A leaf module: it imports nothing from scalgui, so every layer may use it.
"""
from __future__ import annotations

import contextlib
import errno as errno_mod
import hashlib
import io
import os
import re
import secrets
import socket
import stat
import sys
import time
from pathlib import Path
from typing import IO, BinaryIO, Callable

__all__ = [
    "ABANDONED_AFTER_S",
    "STALE_AFTER_S",
    "ReadOnlyFile",
    "clean_stale_temps",
    "create_temp",
    "fsync_dir",
    "is_stale_temp",
    "pid_running",
    "process_start",
    "refuse_read_only",
    "replaceable_file",
    "resolve_destination",
    "temp_path",
    "write_atomic",
]

#: A temp file whose process is gone is removed once it is this old, in seconds. The
#: margin covers a folder shared between machines whose processes share a host tag.
STALE_AFTER_S = 60.0
#: A temp file this old (in seconds) is removed whatever its process: its PID may have
#: been reused, or it came from another machine, whose processes cannot be checked.
ABANDONED_AFTER_S = 24 * 3600.0

_MARK = "scalgui"
#: Bytes of the destination's name kept in a temp name, so that the temp name stays
#: under the 255-byte limit of common file systems.
_NAME_BYTES = 160
_TEMP_NAME = re.compile(
    r"\.(?P<name>.+)\.scalgui-(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}\.tmp(?:\.[^./]{1,16})?",
    re.DOTALL)


class ReadOnlyFile(PermissionError):
    """The destination exists with no write bit for anyone; ``strerror`` is the reason,
    e.g. ``"it is read-only (mode 0444); make it writable to replace it"``."""


# --------------------------------------------------------------------------- processes


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), so a reused PID is not taken for the
    process that wrote a file; ``None`` where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    return fields.rsplit(")", 1)[-1].split()[19]


def pid_running(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` runs on this machine (and, when ``started`` is given and
    the system tells, is the process that started then)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - not run on the test machines
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    except OverflowError:  # not a PID this system can have
        return False
    if started is not None:
        now = process_start(pid)
        return now is None or now == started
    return True


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]


# --------------------------------------------------------------------------- temp files


def _name_part(final: Path) -> str:
    name = final.name
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    return name


def temp_path(final: str | os.PathLike, *, suffix: str = "") -> Path:
    """A fresh temp name beside ``final``: ``.<name>.scalgui-<host>-<pid>-<token>.tmp<suffix>``.

    Parameters
    ----------
    final : path
        The destination (after following a symlink).
    suffix : str
        Appended after ``.tmp``; the audio writer passes the destination's extension,
        which the codecs read the format from.
    """
    final = Path(final)
    token = secrets.token_hex(4)
    return final.with_name(f".{_name_part(final)}.{_MARK}-{_host_tag()}-{os.getpid()}-{token}.tmp{suffix}")


def create_temp(final: str | os.PathLike, *, suffix: str = "") -> tuple[Path, BinaryIO]:
    """Create and open (binary, exclusive) a fresh temp file beside ``final``.

    The file gets the mode the umask gives, as any new file of the user does.

    Raises
    ------
    OSError
        The folder does not exist or cannot be written.
    """
    final = Path(final)
    for _ in range(100):
        tmp = temp_path(final, suffix=suffix)
        try:
            return tmp, open(tmp, "xb")  # "x": never an existing file, nor through a link
        except FileExistsError:
            continue
    raise FileExistsError(errno_mod.EEXIST, "could not find a free temporary name", str(final))


def is_stale_temp(path: str | os.PathLike, *, now: float | None = None) -> bool:
    """Whether ``path`` is a temp file that a scalgui process left behind.

    It must be named as :func:`temp_path` names them, be a regular file (a link is
    never one) owned by this user, and either its process (on this machine) is gone and
    it is at least :data:`STALE_AFTER_S` old, or it is at least :data:`ABANDONED_AFTER_S`
    old, whichever machine made it.
    """
    path = Path(path)
    found = _TEMP_NAME.fullmatch(path.name)
    if found is None:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    age = (time.time() if now is None else now) - st.st_mtime
    if age >= ABANDONED_AFTER_S:
        return True
    if found["host"] != _host_tag() or age < STALE_AFTER_S:
        return False
    pid = int(found["pid"])
    return pid != os.getpid() and not pid_running(pid)


def clean_stale_temps(folder: str | os.PathLike, *, destination: str | os.PathLike | None = None) -> list[Path]:
    """Remove the stale temp files (see :func:`is_stale_temp`) in ``folder``.

    Parameters
    ----------
    folder : path
    destination : path, optional
        Only the temps of this destination (in ``folder``); default: every one.

    Returns
    -------
    list of Path
        What was removed. Nothing else is ever touched, and failures (a file that went
        away, a folder that cannot be read) are ignored: cleaning is a courtesy.
    """
    folder = Path(folder)
    own_name = _name_part(Path(destination)) if destination is not None else None
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if f".{_MARK}-" not in entry.name:  # most names: no regular expression needed
            continue
        found = _TEMP_NAME.fullmatch(entry.name)
        if found is None or (own_name is not None and found["name"] != own_name):
            continue
        path = folder / entry.name
        if is_stale_temp(path, now=now):
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(path)
    return removed


# --------------------------------------------------------------------------- destinations


def refuse_read_only(final: str | os.PathLike, *, shown: str | os.PathLike | None = None) -> None:
    """Raise :class:`ReadOnlyFile` when ``final`` exists with no write bit for anyone.

    The mode bits are checked, not :func:`os.access`: root may write anything, and a file
    made read-only is one its owner wants kept as it is.

    Parameters
    ----------
    final : path
        The file (a symlink is followed).
    shown : path, optional
        The name to put in the error (default ``final``).
    """
    try:
        st = os.stat(final)
    except OSError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode) and not mode & 0o222:
        raise ReadOnlyFile(errno_mod.EACCES, f"it is read-only (mode {mode:04o}); make it writable to replace it",
                           str(shown if shown is not None else final))


def replaceable_file(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` would replace: the target of a symlink (the link is
    kept), else ``path``; checked to be a regular file (or none yet) in a folder that
    exists. Its write bits are not looked at (see :func:`resolve_destination`).

    Raises
    ------
    IsADirectoryError
        It is a folder.
    OSError
        It exists and is not a regular file (a FIFO, a device, a socket), it cannot be
        looked at (a symlink loop), or its folder does not exist (``ENOENT``).
    """
    path = Path(path)
    final = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = os.stat(final)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # e.g. a symlink loop
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno_mod.EISDIR, "it is a folder", str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(errno_mod.EINVAL, "it is not a regular file (a device, FIFO or socket)", str(path))
    if not final.parent.is_dir():
        raise FileNotFoundError(errno_mod.ENOENT, f"folder '{final.parent}' does not exist", str(path))
    return final


def resolve_destination(path: str | os.PathLike) -> Path:
    """:func:`replaceable_file`, refused also when it is read-only.

    Raises
    ------
    IsADirectoryError, OSError
        As :func:`replaceable_file`.
    ReadOnlyFile
        It exists and has no write bit (see :func:`refuse_read_only`).
    """
    final = replaceable_file(path)
    refuse_read_only(final, shown=path)
    return final


def keep_mode(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the permission bits of the file it will replace (if any)."""
    try:
        mode = stat.S_IMODE(os.stat(final).st_mode)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename) to disk; best effort where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open a folder
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- writing


def write_atomic(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``.

    Readers see the old file or the new one, never half of it; on any error the temp
    file is removed and the old file is left as it was. See the module's description for
    symlinks, modes, fsync and stale temp files.

    Parameters
    ----------
    path : path
        The destination.
    write : callable
        Writes the content to the handle it is given (text, UTF-8, or binary).
    binary : bool
        Hand ``write`` a binary handle.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The destination cannot be replaced (see :func:`resolve_destination`, whose
        ``strerror`` is the one-line reason) or the write failed.
    """
    path = Path(path)
    final = resolve_destination(path)
    clean_stale_temps(final.parent, destination=final)
    tmp, raw = create_temp(final)
    try:
        handle = raw if binary else io.TextIOWrapper(raw, encoding="utf-8")
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        keep_mode(tmp, final)
        os.replace(tmp, final)
        tmp = None
        fsync_dir(final.parent)
    finally:
        if not raw.closed:
            with contextlib.suppress(OSError):
                raw.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
