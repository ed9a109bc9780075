"""Importing a plugin without letting it take the process with it.

:func:`guarded_import` runs one plugin's import on a daemon thread of its own and waits
for it at most a time limit; what the plugin prints meanwhile is kept apart from the
command's output, and whatever it raises (``KeyboardInterrupt`` and ``SystemExit``
included) comes back as a one-line problem. A Python thread cannot be killed: one past
its limit is abandoned (its half-imported module taken out of ``sys.modules``), stopped
when it is looping in the plugin's own code, and otherwise left to run as a daemon,
which does not keep the process from exiting. See :mod:`scalgui.plugins.discovery`.
"""
from __future__ import annotations

import ctypes
import io
import math
import os
import platform
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .api import PluginError

__all__ = [
    "IMPORT_TIMEOUT_S",
    "IMPORT_TIMEOUT_VAR",
    "MAX_IMPORT_TIMEOUT_S",
    "describe_exception",
    "forget_module",
    "guarded_import",
    "import_timeout_from_env",
    "one_line",
]

#: Seconds one plugin module (or entry point) may take to import. The built-ins take a
#: few milliseconds (torch is loaded before them); the limit leaves room for a plugin
#: that loads a large library cold from a slow disk.
IMPORT_TIMEOUT_S = 30.0
#: Environment variable that sets another limit, in seconds (above 0, at most
#: :data:`MAX_IMPORT_TIMEOUT_S`).
IMPORT_TIMEOUT_VAR = "SCALGUI_PLUGIN_IMPORT_TIMEOUT"
MAX_IMPORT_TIMEOUT_S = 3600.0
#: Characters of a plugin's import-time output kept (its last ones).
_OUTPUT_TAIL_CHARS = 4096


def one_line(text: object) -> str:
    """``text`` with every run of white space (newlines included) made one space."""
    return " ".join(str(text).split())


def describe_exception(exc: BaseException) -> str:
    """One line on what a plugin's import raised."""
    if isinstance(exc, SyntaxError):
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return f"syntax error{where}: {exc.msg}"
    if isinstance(exc, ImportError):
        return f"import failed: {type(exc).__name__}: {one_line(exc)}"
    if isinstance(exc, SystemExit):
        return f"called exit({exc.code}) while loading"
    if not isinstance(exc, Exception):  # KeyboardInterrupt, GeneratorExit, a BaseException of its own
        return f"raised {type(exc).__name__} while loading{': ' + one_line(exc) if one_line(exc) else ''}"
    return f"{type(exc).__name__}: {one_line(exc) or '(no message)'}"


def forget_module(name: str) -> None:
    """Take a plugin module and its submodules out of ``sys.modules``."""
    for key in [k for k in list(sys.modules) if k == name or k.startswith(name + ".")]:
        sys.modules.pop(key, None)


# --------------------------------------------------------------------------- guarded imports


def import_timeout_from_env() -> tuple[float, str | None]:
    """The import time limit in seconds that :data:`IMPORT_TIMEOUT_VAR` sets, and a
    problem line when its value is unusable (then :data:`IMPORT_TIMEOUT_S` is used)."""
    text = os.environ.get(IMPORT_TIMEOUT_VAR, "").strip()
    if not text:
        return IMPORT_TIMEOUT_S, None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_IMPORT_TIMEOUT_S):
        return IMPORT_TIMEOUT_S, (f"{text!r} is not a number of seconds above 0 and at most "
                                  f"{MAX_IMPORT_TIMEOUT_S:g}; using {IMPORT_TIMEOUT_S:g} s")
    return seconds, None


class _OutputTail(io.TextIOBase):
    """A text stream that keeps only the last characters written to it, so that a plugin
    printing in a loop while it imports cannot fill memory."""

    def __init__(self, limit: int = _OUTPUT_TAIL_CHARS) -> None:
        super().__init__()
        self._limit = limit
        self._text = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        with self._lock:
            self._text = (self._text + text[-self._limit:])[-self._limit:]
        return len(text)

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def buffer(self) -> "_BinaryTail":
        return _BinaryTail(self)

    def last_line(self, width: int = 160) -> str:
        """The last non-blank line written, shortened to ``width`` characters."""
        lines = [line.strip() for line in self._text.splitlines() if line.strip()]
        if not lines:
            return ""
        line = one_line(lines[-1])
        return line if len(line) <= width else line[: width - 1] + "…"


class _BinaryTail(io.RawIOBase):
    """``sys.stdout.buffer`` of an :class:`_OutputTail` (bytes are decoded into it)."""

    def __init__(self, text: _OutputTail) -> None:
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


#: ``.sink``: the :class:`_OutputTail` of the plugin import running on this thread.
_capture = threading.local()


class _RoutedStream:
    """Stands in for ``sys.stdout`` or ``sys.stderr`` while plugins import: a plugin import
    thread's writes go to that import's tail, every other thread's to the real stream."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def _target(self):
        sink = getattr(_capture, "sink", None)
        return self.stream if sink is None else sink

    def write(self, text) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str):
        return getattr(self._target(), name)


_routing_lock = threading.Lock()
_routing_users = 0
_routing_saved_fd: int | None = None


def _flush_quietly(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass


@contextmanager
def _plugin_output_kept_apart() -> Iterator[None]:
    """While inside: plugin import threads' ``print`` goes to their own tails, and file
    descriptor 1 (what C code writes to) is sent to 2, so that nothing a plugin prints
    reaches the command's standard output (``scalgui plugins --json`` is read by programs).

    Nested and concurrent uses share one set of stand-ins; the last one out restores.
    """
    global _routing_users, _routing_saved_fd
    with _routing_lock:
        if _routing_users == 0:
            if sys.stdout is not None:
                _flush_quietly(sys.stdout)
                sys.stdout = _RoutedStream(sys.stdout)
            if sys.stderr is not None:
                sys.stderr = _RoutedStream(sys.stderr)
            try:
                _routing_saved_fd = os.dup(1)
                os.dup2(2, 1)
            except OSError:  # no descriptor 1 or 2 (a windowed application): nothing to send
                if _routing_saved_fd is not None:
                    os.close(_routing_saved_fd)
                _routing_saved_fd = None
        _routing_users += 1
    try:
        yield
    finally:
        with _routing_lock:
            _routing_users -= 1
            if _routing_users == 0:
                # Someone else may have replaced a stream meanwhile: theirs stays.
                if isinstance(sys.stdout, _RoutedStream):
                    sys.stdout = sys.stdout.stream
                if isinstance(sys.stderr, _RoutedStream):
                    sys.stderr = sys.stderr.stream
                if _routing_saved_fd is not None:
                    os.dup2(_routing_saved_fd, 1)
                    os.close(_routing_saved_fd)
                    _routing_saved_fd = None


class _ImportAbandoned(BaseException):
    """Raised inside a plugin's import that ran past its time limit, to stop it (a
    BaseException, so that the plugin's ``except Exception`` does not swallow it)."""


class _ImportJob:
    """One plugin import on a daemon thread of its own, waited for with a time limit.

    Parameters
    ----------
    where : str
        The file, folder or entry point (the thread's name, and the problem's source).
    work : callable
        Imports and returns the plugins; runs on the thread.
    module_name : str, optional
        The private module name it registers, taken out of ``sys.modules`` if the import
        is abandoned (now, or when it finishes late).
    own_code : path, optional
        The plugin's file or package folder: past the time limit, a thread running code
        from there is stopped (a loop in the plugin itself); one running anyone else's
        code is not, since breaking off a library's import could leave it broken for the
        rest of the process.
    """

    def __init__(self, where: str, work: Callable[[], Any], *, module_name: str | None = None,
                 own_code: Path | None = None) -> None:
        self.where = where
        self.output = _OutputTail()
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._work = work
        self._module_name = module_name
        self._own_code = [os.path.abspath(own_code), str(own_code.resolve())] if own_code is not None else []
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"scalgui plugin import: {where}", daemon=True)

    def _run(self) -> None:
        try:
            _capture.sink = self.output
            try:
                self.result = self._work()
            except BaseException as exc:  # the plugin's, whatever it is: reported, never raised on
                self.error = exc
            with self._lock:
                self._finished.set()
                if self._abandoned:
                    self._forget()
        except _ImportAbandoned:  # arrived after the plugin's code had finished
            pass

    def _forget(self) -> None:
        self.result = None
        if self._module_name is not None:
            forget_module(self._module_name)

    def wait(self, seconds: float) -> bool:
        """Start the import and wait for it; True when it finished within ``seconds``.
        Past the limit (or on a real Ctrl-C, which is raised on) the import is abandoned."""
        self.thread.start()
        try:
            if self._finished.wait(seconds):
                return True
        except BaseException:
            self._abandon()
            raise
        return not self._abandon()

    def _abandon(self) -> bool:
        """Give the import up; False when it had finished after all."""
        with self._lock:
            if self._finished.is_set():
                return False
            self._abandoned = True
            self._forget()
        self._stop_if_in_own_code()
        return True

    def _stop_if_in_own_code(self) -> None:
        if not self._own_code or platform.python_implementation() != "CPython" or self.thread.ident is None:
            return
        frame = sys._current_frames().get(self.thread.ident)
        if frame is None:
            return
        filename = os.path.abspath(frame.f_code.co_filename)
        if any(filename == own or filename.startswith(own + os.sep) for own in self._own_code):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                       ctypes.py_object(_ImportAbandoned))

    def still_running(self) -> bool:
        return self.thread.is_alive() and not self._finished.is_set()


#: Imports abandoned past their limit and maybe still running, by source: a later scan
#: (Rescan Plugins) does not start a second thread for the same plugin.
_abandoned_imports: dict[str, _ImportJob] = {}
_abandoned_lock = threading.Lock()


def guarded_import(where: str, work: Callable[[], Any], seconds: float, *, module_name: str | None = None,
                    own_code: Path | None = None) -> tuple[Any, str | None]:
    """Run ``work`` (a plugin's import) on a thread of its own, at most ``seconds``.

    Returns
    -------
    tuple
        ``(its result, None)``; or ``(None, problem)``, one line, when it raised (with the
        last line it printed, if any) or ran past ``seconds``, or when an earlier scan's
        import of the same ``where`` is still running.
    """
    with _abandoned_lock:
        earlier = _abandoned_imports.get(where)
        if earlier is not None and earlier.still_running():
            return None, (f"still importing since an earlier scan, {time.monotonic() - earlier.started:.0f} s ago "
                          f"(it may loop forever); skipped")
        _abandoned_imports.pop(where, None)
    job = _ImportJob(where, work, module_name=module_name, own_code=own_code)
    with _plugin_output_kept_apart():
        finished = job.wait(seconds)
    if not finished:
        with _abandoned_lock:
            _abandoned_imports[where] = job
        return None, f"did not finish importing within {seconds:g} s (it may loop forever); skipped"
    if job.error is None:
        return job.result, None
    if isinstance(job.error, PluginError):
        problem = str(job.error).removeprefix(f"{where}: ")
    else:
        problem = describe_exception(job.error)
    printed = job.output.last_line()
    return None, problem + (f" (it printed: {printed})" if printed else "")
