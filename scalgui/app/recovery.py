"""Autosave and crash recovery: the open document saved as a project now and then. No Qt.

An :class:`Autosaver` belongs to one running editor. Each :meth:`Autosaver.save` writes
``autosave-<session>.scalproj`` (the document as a project, with its last render and,
when the sound has no file, the sound itself) and a marker ``autosave-<session>.json``
naming the process (PID, its start time, the host) into the per-user recovery folder. A
clean exit calls :meth:`Autosaver.discard`, which removes both. Whatever is left in the
folder by a process that is no longer running is a crash's work:
:func:`find_recoveries` lists it, newest first, and each :class:`Recovery` can be opened
or discarded. The editor's timer and its "Recover" / "Discard" prompt are in
``scalgui.ui.project_actions``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from .project import ProjectError, save_project

__all__ = [
    "DEFAULT_INTERVAL_MIN",
    "ENV_VAR",
    "Autosaver",
    "Recovery",
    "find_recoveries",
    "pid_running",
    "recovery_dir",
]

#: Minutes between autosaves unless the user sets another interval.
DEFAULT_INTERVAL_MIN = 3.0
#: Overrides the recovery folder (tests, portable installs).
ENV_VAR = "SCALGUI_RECOVERY_DIR"
_PREFIX = "autosave-"


def recovery_dir() -> Path:
    """The per-user recovery folder: ``$SCALGUI_RECOVERY_DIR``, else platformdirs'
    user state folder for scalgui (``~/.local/state/scalgui/recovery`` on Linux)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    import platformdirs

    return Path(platformdirs.user_state_dir("scalgui", appauthor=False)) / "recovery"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), so a reused PID is not taken for the
    process that wrote a marker; ``None`` where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_running(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` is running (and, when ``started`` is given and the system
    tells, is the process that started then)."""
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
    if started is not None:
        now = _process_start(pid)
        return now is None or now == started
    return True


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict) -> None:
    from ..atomic import write_atomic

    text = json.dumps(data, indent=1)
    write_atomic(path, lambda handle: handle.write(text))


class Autosaver:
    """Saves one editor's document into the recovery folder.

    Parameters
    ----------
    folder : str or Path, optional
        The recovery folder (default :func:`recovery_dir`); created on the first save.
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self.pid = os.getpid()
        self.session = f"{self.pid}-{secrets.token_hex(3)}"
        self.project_file = self.folder / f"{_PREFIX}{self.session}.scalproj"
        self.marker = self.folder / f"{_PREFIX}{self.session}.json"
        self.started = _now()
        self.saved_at: str | None = None

    def save(self, doc) -> Path:
        """Save ``doc`` (with its last render) as this session's recovery project.

        The marker is written first, so that a project file never lies in the folder
        without the process that owns it. The document's own project path and saved
        state are not touched.

        Raises
        ------
        ProjectError
            The recovery file cannot be written.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(self.project_file, exc.strerror or str(exc), action="save") from None
        info = {
            "format": "scalgui-recovery",
            "pid": self.pid,
            "process_start": _process_start(self.pid),
            "host": socket.gethostname(),
            "started": self.started,
            "saved_at": _now(),
            "project": self.project_file.name,
            "project_path": str(doc.project_path) if doc.project_path else None,
            "source_path": str(doc.path) if doc.path else None,
        }
        try:
            _write_json(self.marker, info)
        except OSError as exc:
            raise ProjectError(self.marker, exc.strerror or str(exc), action="save") from None
        save_project(doc, self.project_file, embed_render=True, as_copy=True)
        self.saved_at = info["saved_at"]
        return self.project_file

    def discard(self) -> None:
        """Remove this session's recovery files (a clean exit, or the work was saved)."""
        for path in (self.project_file, self.marker):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class Recovery:
    """Work left in the recovery folder by a process that is gone.

    Attributes
    ----------
    project : Path
        The recovery project.
    marker : Path or None
        Its marker (``None`` when it was lost).
    info : dict
        The marker's content: ``pid``, ``saved_at``, ``project_path`` (the user's own
        project, if any), ``source_path``.
    """

    project: Path
    marker: Path | None
    info: dict

    @property
    def title(self) -> str:
        """What the work was: the user's project or the sound's file name."""
        for key in ("project_path", "source_path"):
            if self.info.get(key):
                return Path(self.info[key]).name
        return "an unsaved sound"

    @property
    def saved_at(self) -> str:
        """When it was autosaved (ISO 8601, UTC), or ``"?"``."""
        return str(self.info.get("saved_at") or "?")

    def open(self, **kwargs):
        """The recovered document (see :func:`scalgui.app.project.open_project` for the
        keywords). It keeps the user's project path, if there was one, and counts as
        unsaved."""
        from .project import open_project

        doc = open_project(self.project, **kwargs)
        project_path = self.info.get("project_path")
        doc.project_path = Path(project_path) if project_path else None
        doc.unsaved = True
        return doc

    def discard(self) -> None:
        """Delete the recovery files."""
        for path in (self.project, self.marker):
            if path is not None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass


def find_recoveries(folder: str | os.PathLike | None = None) -> list[Recovery]:
    """Recovery projects whose process is no longer running, newest first.

    Work of a process on this host that still runs (another editor window) is left
    alone, and so is work marked by another host (a shared home folder), whose processes
    cannot be checked from here.
    """
    folder = Path(folder) if folder is not None else recovery_dir()
    if not folder.is_dir():
        return []
    host = socket.gethostname()
    found = []
    for project in folder.glob(f"{_PREFIX}*.scalproj"):
        marker = project.with_suffix(".json")
        info: dict = {}
        if marker.exists():
            try:
                info = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                info = {}
            if not isinstance(info, dict):
                info = {}
        pid = info.get("pid")
        if isinstance(pid, int) and info.get("host") == host and pid_running(pid, info.get("process_start")):
            continue
        if info.get("host") not in (None, host):
            continue
        found.append(Recovery(project, marker if marker.exists() else None, info))
    found.sort(key=lambda r: r.project.stat().st_mtime, reverse=True)
    return found
