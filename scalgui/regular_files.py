"""Opening files that someone else named: regular files only, and never blocking.

A project, a preset or a plugin folder may name (or be) a FIFO that nothing writes to,
``/dev/zero`` or a folder. Opening such a path may block for ever or read without end,
so :func:`open_regular_file` checks the path before opening it (opening a device may
have effects), opens it without blocking, and checks what it opened (the path may have
been swapped in between). A leaf module: it imports nothing from scalgui.
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["NotRegularFile", "open_regular_file"]

_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """A path that names a folder, FIFO, device or socket instead of a regular file.

    ``strerror`` says which, e.g. ``"is a FIFO (named pipe), not a regular file"``.
    """


def _refuse_non_regular(path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "an unknown kind of file")
        raise NotRegularFile(0, f"is {kind}, not a regular file", os.fspath(path))


def open_regular_file(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading in binary mode, refusing anything but a regular file.

    Raises
    ------
    NotRegularFile
        A folder, FIFO, device or socket.
    OSError
        Missing, unreadable, a symlink loop...
    """
    _refuse_non_regular(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        _refuse_non_regular(path, os.fstat(fd).st_mode)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
