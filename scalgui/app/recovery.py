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

The folder is private: created ``0700`` (the default per-user one is also narrowed to
``0700`` when an older scalgui left it open to others), so its files, which follow the
umask like every file scalgui writes, are readable by their owner alone.

An editor that edits a file in place for an audio workstation (``--edit-in-place``)
autosaves too, and its marker names the file and the backup of the original. Such work
is recovered onto the original sound (the backup once the file was written back, since
the file then holds a render) and goes back to writing to that file
(:meth:`Recovery.restore`).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from ..atomic import pid_running, process_start
from .project import ProjectError, save_project

__all__ = [
    "DEFAULT_INTERVAL_MIN",
    "ENV_VAR",
    "Autosaver",
    "Recovery",
    "Restored",
    "find_recoveries",
    "pid_running",
    "recovery_dir",
]

#: Minutes between autosaves unless the user sets another interval.
DEFAULT_INTERVAL_MIN = 3.0
#: Overrides the recovery folder (tests, portable installs).
ENV_VAR = "SCALGUI_RECOVERY_DIR"
_PREFIX = "autosave-"
#: Largest marker read, in bytes: a marker is a few hundred bytes; anything bigger is
#: not one, and is not read into memory.
_MARKER_MAX_BYTES = 64 * 1024


def recovery_dir() -> Path:
    """The per-user recovery folder: ``$SCALGUI_RECOVERY_DIR``, else platformdirs'
    user state folder for scalgui (``~/.local/state/scalgui/recovery`` on Linux)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return _default_dir()


def _default_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("scalgui", appauthor=False)) / "recovery"


def _make_private_dir(folder: Path) -> None:
    """Create ``folder`` readable by its owner only (``0700``).

    An existing folder is narrowed to ``0700`` only when it is scalgui's default one and
    this user's: a folder named by ``$SCALGUI_RECOVERY_DIR`` may be shared on purpose
    (and narrowing, say, ``/tmp`` as root would break the system).
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name != "posix" or os.environ.get(ENV_VAR):
        return
    st = folder.stat()
    if st.st_mode & 0o077 and st.st_uid == os.geteuid() and folder == _default_dir():
        os.chmod(folder, 0o700)


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

    def save(self, doc, *, in_place=None) -> Path:
        """Save ``doc`` (with its last render) as this session's recovery project.

        The marker is written first, so that a project file never lies in the folder
        without the process that owns it. The document's own project path and saved
        state are not touched.

        Parameters
        ----------
        doc : Document
        in_place : InPlaceTarget, optional
            The file ``doc`` is edited in place for (see :mod:`scalgui.app.in_place`);
            its path and backup go into the marker.

        Raises
        ------
        ProjectError
            The recovery file cannot be written.
        """
        try:
            _make_private_dir(self.folder)
        except OSError as exc:
            raise ProjectError(self.project_file, exc.strerror or str(exc), action="save") from None
        info = {
            "format": "scalgui-recovery",
            "pid": self.pid,
            "process_start": process_start(self.pid),
            "host": socket.gethostname(),
            "started": self.started,
            "saved_at": _now(),
            "project": self.project_file.name,
            "project_path": str(doc.project_path) if doc.project_path else None,
            "source_path": str(doc.path) if doc.path else None,
            "in_place": None if in_place is None else {
                "path": str(Path(in_place.path).resolve()),
                "backup": str(Path(in_place.backup).resolve()) if in_place.backup else None,
            },
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
class Restored:
    """Recovered work, as :meth:`Recovery.restore` gives it back.

    Attributes
    ----------
    doc : Document
        The document, unsaved.
    in_place : InPlaceTarget or None
        The file the work was edited in place for, to write back to again (its backup
        kept); None for other work, or when that file can no longer be written back.
    problem : str or None
        Why work edited in place cannot go back to its file (one line), else None.
    """

    doc: object
    in_place: object = None
    problem: str | None = None


def _text(info: dict, key: str) -> str | None:
    value = info.get(key)
    return value if isinstance(value, str) and value else None


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
        project, if any), ``source_path``, ``in_place`` (``{"path", "backup"}`` when the
        sound was edited in place, else None).
    """

    project: Path
    marker: Path | None
    info: dict

    @property
    def title(self) -> str:
        """What the work was: the user's project or the sound's file name."""
        for key in ("project_path", "source_path"):
            if _text(self.info, key):
                return Path(_text(self.info, key)).name
        return "an unsaved sound"

    @property
    def saved_at(self) -> str:
        """When it was autosaved (ISO 8601, UTC), or ``"?"``."""
        return str(self.info.get("saved_at") or "?")

    @property
    def in_place_path(self) -> Path | None:
        """The file the work was edited in place for (``--edit-in-place``), or None."""
        in_place = self.info.get("in_place")
        path = _text(in_place, "path") if isinstance(in_place, dict) else None
        return Path(path) if path else None

    def is_work_on(self, path: str | os.PathLike) -> bool:
        """Whether this is work on ``path`` (its sound or its project)."""
        from ..audio.save import same_file

        return any(_text(self.info, key) and same_file(Path(_text(self.info, key)), Path(path))
                   for key in ("source_path", "project_path"))

    def open(self, **kwargs):
        """The recovered document (see :func:`scalgui.app.project.open_project` for the
        keywords). It keeps the user's project path, if there was one, and counts as
        unsaved. Work edited in place is opened on its original sound: see
        :meth:`restore`, which also gives the file to write back to."""
        return self.restore(**kwargs).doc

    def restore(self, **kwargs) -> Restored:
        """Open the recovered work and, when it was edited in place, its target again.

        Work edited in place is applied to the original sound: the file itself while it
        was not written back, else its backup (the one the marker names, or the first
        backup next to the file with the checksum the project recorded). The document
        then names the file again, and :attr:`Restored.in_place` writes back to it, with
        the backup it had, so no second backup is made.

        Parameters
        ----------
        **kwargs
            As for :func:`scalgui.app.project.open_project`; a ``source`` given here is
            used as it is.

        Raises
        ------
        ProjectError
            As for :func:`~scalgui.app.project.open_project`.
        """
        from .project import open_project

        target_path = self.in_place_path
        backup = None
        if target_path is not None and kwargs.get("source") is None:
            backup, exact = self._original_of(target_path)
            if backup is not None:
                kwargs["source"], kwargs["verify"] = backup, exact
        doc = open_project(self.project, **kwargs)
        project_path = _text(self.info, "project_path")
        doc.project_path = Path(project_path) if project_path else None
        doc.unsaved = True
        if target_path is None:
            return Restored(doc)
        doc.path = target_path
        from ..audio import AudioError
        from .in_place import InPlaceTarget

        try:
            target = InPlaceTarget.of(target_path)
        except AudioError as exc:
            return Restored(doc, None, str(exc))
        target.backup = backup
        return Restored(doc, target)

    def _original_of(self, target: Path) -> tuple[Path | None, bool]:
        """``(backup, exact)``: the backup holding the original sound of ``target``, and
        whether its checksum is the one the project recorded; ``(None, True)`` when the
        file itself still holds it (or nothing better is known)."""
        from .in_place import existing_backups
        from .project import file_sha256, read_project

        in_place = self.info.get("in_place")
        recorded = _text(in_place, "backup") if isinstance(in_place, dict) else None
        if recorded and Path(recorded).is_file():
            # Written back: the project's checksum is the file's after the write, which
            # the backup does not match; the render goes with it, the edits stay.
            return Path(recorded), False
        wanted = read_project(self.project).source.sha256
        if wanted is None or (target.is_file() and file_sha256(target) == wanted):
            return None, True
        for candidate in existing_backups(target):  # written back after the last autosave
            if candidate.is_file() and file_sha256(candidate) == wanted:
                return candidate, True
        return None, True

    def discard(self) -> None:
        """Delete the recovery files."""
        for path in (self.project, self.marker):
            if path is not None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass


def _read_marker(marker: Path) -> dict:
    """The marker's content, or ``{}`` when it is missing, not a small regular file, or
    not a JSON object."""
    try:
        st = os.lstat(marker)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MARKER_MAX_BYTES:
            return {}
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def find_recoveries(folder: str | os.PathLike | None = None) -> list[Recovery]:
    """Recovery projects whose process is no longer running, newest first.

    Work of a process on this host that still runs (another editor window) is left
    alone, and so is work marked by another host (a shared home folder), whose processes
    cannot be checked from here. Only regular files are considered (a link or a folder
    named like a recovery project is not one).
    """
    folder = Path(folder) if folder is not None else recovery_dir()
    if not folder.is_dir():
        return []
    host = socket.gethostname()
    found = []
    for project in folder.glob(f"{_PREFIX}*.scalproj"):
        try:
            st = os.lstat(project)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        marker = project.with_suffix(".json")
        info = _read_marker(marker)
        pid = info.get("pid")
        if (isinstance(pid, int) and not isinstance(pid, bool) and info.get("host") == host
                and pid_running(pid, _text(info, "process_start"))):
            continue
        if info.get("host") not in (None, host):
            continue
        found.append((st.st_mtime, Recovery(project, marker if os.path.lexists(marker) else None, info)))
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [recovery for _mtime, recovery in found]
