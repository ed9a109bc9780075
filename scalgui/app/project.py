"""Projects: a document's work saved in one ``.scalproj`` file and opened again. No Qt.

A project is a zip archive of JSON and numpy arrays (never pickle)::

    project.json    {"format": "scalgui-project", "version": 1, "scalgui": "0.1.0",
                     "saved_at": "2025-01-01T12:00:00+00:00",
                     "source": {"path": "/abs/take.wav", "relative": "../take.wav",
                                "sha256": "...", "sample_rate": 44100.0, "channels": 2,
                                "frames": 441000, "embedded": "source.npy" | "source.flac" | null},
                     "analysis": {FrameSettings' fields},
                     "edits": [{"type": "Edit", "action": "gain", "amount_db": -30.0,
                                "shape": {"type": "Rectangle", "t0": 1.0, ...}},
                               {"type": "PluginEdit", "plugin": "transpose",
                                "params": {"semitones": 7.0}, "selection": null}, ...],
                     "effects": {an effects preset: scalgui.audio.effects.chains_to_dict},
                     "render": {"retrieval": {RetrievalSettings' fields},
                                "export": {"bit_depth": null, "quality": null, "clip": "error"}},
                     "state": {"render": "render.npy" | null, "pending": [[t0, t1], ...]}}
    source.npy      optional: the opened sound (before the source chain), float32 [channels, frames]
    source.flac     optional, instead: the same as 24-bit FLAC (smaller, not bit-exact)
    render.npy      optional: the last render, float32 [channels, frames]

Edits are stored as tagged JSON objects in seconds, Hz and dB (see :func:`edit_to_json`);
non-finite numbers (a plugin edit's all-time range) are written as ``{"float": "inf"}``
so the file stays strict JSON. Saves are atomic: the archive is written to a temporary
file beside the destination and renamed over it, so a failed save leaves the previous
project intact.

Opening finds the source by its absolute path, then by its path relative to the project
(a project folder moved with its audio), checking the SHA-256 checksum; then falls back
to an embedded copy. When none is found, :class:`SourceMissingError` tells the caller
(the editor asks the user for the file, a script passes ``source=``); a file whose
checksum differs gives :class:`SourceMismatchError` unless ``verify=False``.

A project may come from anyone, so opening trusts nothing in it: the archive's members
(:mod:`scalgui.app._archive`: sizes, compression, ``.npy`` headers), the manifest's size
and nesting (:mod:`scalgui.safe_json`), and every field's type and range are checked
before use, and every path it names must be a regular file before it is read. Anything
wrong is a :class:`ProjectError` of one line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import numbers
import os
import re
import tempfile
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio.effects import PLACEMENTS, EffectChain, chains_from_dict, chains_to_dict
from ..audio.errors import AudioError, EffectError
from ..audio.formats import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SUPPORTED_WRITE_FORMATS
from ..dsp.frame import FrameSettings
from ..dsp.phase import RetrievalSettings
from ..regular_files import NotRegularFile, open_regular_file
from ..safe_json import loads_bounded
from ._archive import (
    MAX_CHANNELS,
    MAX_EMBEDDED_BYTES,
    MAX_MANIFEST_BYTES,
    ArchiveError,
    copy_member,
    open_archive,
    read_member,
    read_npy_member,
)
from ._project_json import _settings_from_json, _settings_to_json, edit_from_json, edit_to_json
from .document import DEFAULT_RENDER, FIXED_RENDER

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SUFFIX",
    "VERSION",
    "Project",
    "ProjectError",
    "SourceInfo",
    "SourceMismatchError",
    "SourceMissingError",
    "UntrustedPluginsError",
    "edit_from_json",
    "edit_to_json",
    "file_sha256",
    "is_saved",
    "open_project",
    "read_project",
    "save_project",
    "settings_for_rate",
    "state_key",
]

FORMAT = "scalgui-project"
#: The format version this scalgui writes and the newest it reads.
VERSION = 1
SUFFIX = ".scalproj"
MANIFEST = "project.json"
EXPORT_DEFAULTS = {"bit_depth": None, "quality": None, "clip": "error"}

_EMBED_FORMATS = ("npy", "flac")
_EMBED_NAMES = ("source.npy", "source.flac")
_RENDER_NAME = "render.npy"
#: ``save_audio``'s ``clip`` policies and the bit depths its writers offer.
_CLIP_POLICIES = ("error", "normalize", "limit", "allow")
_BIT_DEPTHS = tuple(sorted({depth for spec in SUPPORTED_WRITE_FORMATS.values() for depth in spec.bit_depths}))
#: Longest path a project may record, in characters (PATH_MAX on Linux).
_MAX_PATH_CHARS = 4096
#: Most frames a project may record for its source: a day at the highest sample rate.
_MAX_FRAMES = int(MAX_SAMPLE_RATE) * 86400
_SHA256 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- errors


class ProjectError(Exception):
    """A project that cannot be saved or opened; ``str()`` is one line naming the file.

    Attributes
    ----------
    path : Path
        The project file.
    reason : str
        Why, one line, without the path.
    """

    action = "open"

    def __init__(self, path: str | os.PathLike, reason: str, *, action: str | None = None) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())
        if action is not None:
            self.action = action
        super().__init__(f"cannot {self.action} project '{self.path}': {self.reason}")


class SourceMissingError(ProjectError):
    """The project's source sound is not where it was, nor beside the project, nor embedded.

    Catch it to ask for the file and open again with ``source=`` (or pass ``locate``).

    Attributes
    ----------
    source : SourceInfo
        What the project recorded: path, relative path, checksum, rate, channels, length.
    """

    def __init__(self, path, source: "SourceInfo") -> None:
        self.source = source
        where = f"'{source.path}'" if source.path else "an unsaved sound"
        super().__init__(path, f"its source sound {where} was moved or deleted; locate it to continue")


class UntrustedPluginsError(ProjectError):
    """The project's effect chains name VST3 plugins outside the folders the user trusts;
    nothing of them was loaded (a plugin runs its own code). Open again after trusting
    them (:func:`scalgui.audio.vst3.allow_vst3`), or with ``bypass_untrusted=True``.

    Attributes
    ----------
    plugins : list of Path
        The plugin files, in chain order.
    """

    def __init__(self, path, plugins) -> None:
        self.plugins = [Path(p) for p in plugins]
        more = f" (and {len(self.plugins) - 1} more)" if len(self.plugins) > 1 else ""
        super().__init__(path, f"its effect chain uses the VST3 plugin '{self.plugins[0]}'{more}, which is outside "
                               "the VST3 folders you trust, and a plugin runs its own code; it was not loaded")


class SourceMismatchError(ProjectError):
    """A file offered as the project's source has another checksum than the one recorded.

    Attributes
    ----------
    source : SourceInfo
    candidate : Path
        The file that was checked.
    actual_sha256 : str
    """

    def __init__(self, path, source: "SourceInfo", candidate: Path, actual_sha256: str) -> None:
        self.source, self.candidate, self.actual_sha256 = source, Path(candidate), actual_sha256
        super().__init__(
            path,
            f"'{candidate}' is not the project's source: its SHA-256 checksum differs from the one saved "
            f"({actual_sha256[:12]}… instead of {source.sha256[:12]}…); it was changed, or is another file",
        )


# --------------------------------------------------------------------------- settings


def settings_for_rate(settings: FrameSettings, sample_rate: float) -> FrameSettings:
    """``settings`` for a sound at another sample rate (a batch file, another source).

    Frequencies are kept in Hz; an ``fmax`` above the new Nyquist frequency falls back to
    the default (the highest band that fits). Raises ``ValueError`` when ``fmin`` does not
    fit below the new Nyquist frequency.
    """
    if sample_rate == settings.sample_rate:
        return settings
    fmax = settings.fmax if settings.fmax is None or settings.fmax <= sample_rate / 2 else None
    return dataclasses.replace(settings, sample_rate=float(sample_rate), fmax=fmax)


# --------------------------------------------------------------------------- the project


@dataclass(frozen=True)
class SourceInfo:
    """What a project records about its source sound.

    Attributes
    ----------
    path : Path or None
        Absolute path when saved (``None`` for a generated or unsaved sound).
    relative : str or None
        The same, relative to the project's folder.
    sha256 : str or None
        Hex SHA-256 of the file's bytes.
    sample_rate : float
        In Hz.
    channels, frames : int
    embedded : str or None
        Name of the embedded copy in the archive (``"source.npy"`` or ``"source.flac"``).
    """

    path: Path | None
    relative: str | None
    sha256: str | None
    sample_rate: float
    channels: int
    frames: int
    embedded: str | None = None


@dataclass(frozen=True)
class Project:
    """A project's content as read from its manifest (arrays are read on demand).

    Attributes
    ----------
    path : Path
        The ``.scalproj`` file.
    version : int
        Its format version.
    source : SourceInfo
    settings : FrameSettings
        Analysis settings.
    edits : tuple
        The edit list, in order.
    chains : tuple of EffectChain
        Source and render chains (placements without effects may be missing).
    retrieval : RetrievalSettings
        How renders resynthesise.
    export : dict
        ``bit_depth``, ``quality``, ``clip`` for writing the render.
    render : str or None
        Name of the embedded last render in the archive.
    pending : list of (float, float) or None
        Spans in seconds that the embedded render has not caught up with.
    """

    path: Path
    version: int
    source: SourceInfo
    settings: FrameSettings
    edits: tuple
    chains: tuple
    retrieval: RetrievalSettings
    export: dict
    render: str | None
    pending: list | None

    def chain(self, placement: str) -> EffectChain:
        """The chain at ``placement`` (empty when the project has none there)."""
        return next((c for c in self.chains if c.placement == placement), EffectChain(placement))

    def read_array(self, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
        """An embedded float32 ``[channels, frames]`` ``.npy`` array, read without pickle,
        its header checked before its data is read.

        Parameters
        ----------
        name : str
            The member, e.g. ``"source.npy"``.
        shape : (int, int), optional
            The shape it must have.

        Raises
        ------
        ProjectError
            A missing, oversized or damaged array, or one of another shape.
        """
        return _read_array(self.path, name, shape)


_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (cached by path, size and modification time).

    Raises
    ------
    OSError
        Missing or unreadable; :class:`~scalgui.regular_files.NotRegularFile` for a
        folder, FIFO, device or socket (refused at once: reading ``/dev/zero`` would never
        end, a FIFO would block).
    """
    with open_regular_file(path) as handle:
        stat = os.fstat(handle.fileno())
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            digest = hashlib.sha256()
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


#: What each document looked like when it was last saved as a project (see is_saved).
_SAVED: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


def state_key(doc) -> tuple:
    """What a project save records of ``doc``: equal keys, nothing to save again."""
    return (doc.edits, doc.effect_chain("source"), doc.effect_chain("render"), doc.settings, id(doc.rendered),
            doc.retrieval_settings, tuple(sorted(doc.export_options.items())), doc.path)


def is_saved(doc) -> bool:
    """Whether ``doc`` is unchanged since it was saved to (or opened from) its project."""
    return doc.project_path is not None and _SAVED.get(doc) == state_key(doc)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _flac_bytes(samples: np.ndarray, sample_rate: float) -> bytes | None:
    """24-bit FLAC of ``samples``; None when it would clip (the caller embeds .npy instead)."""
    from ..audio import ClippingError, save_audio

    with tempfile.TemporaryDirectory(prefix="scalgui-") as folder:
        target = Path(folder) / "source.flac"
        try:
            save_audio(target, samples, sample_rate, bit_depth=24, clip="error")
        except ClippingError:
            return None
        return target.read_bytes()


def save_project(
    doc,
    path: str | os.PathLike,
    *,
    embed_source: bool | str = False,
    embed_render: bool = False,
    as_copy: bool = False,
) -> Path:
    """Save ``doc`` (a :class:`~scalgui.app.document.Document`) as a project, atomically.

    Parameters
    ----------
    doc : Document
    path : str or PathLike
        The ``.scalproj`` file (replaced atomically if it exists; never the source sound).
    embed_source : bool or {"npy", "flac"}
        Store a copy of the opened sound (before the source chain) in the project:
        ``True`` or ``"npy"`` exactly (float32), ``"flac"`` as 24-bit FLAC (smaller; a
        sound that peaks above full scale is stored as ``.npy`` instead). A sound with no
        file, or whose file is gone, is always embedded (``.npy``).
    embed_render : bool
        Store the last render, so that opening shows it without rendering again.
    as_copy : bool
        A copy (autosave): ``doc`` keeps its own project path and saved state.

    Returns
    -------
    Path

    Raises
    ------
    ProjectError
        The file cannot be written (the previous file, if any, is left as it was) or is
        the source sound itself.
    """
    from ..audio.save import same_file
    from ..atomic import write_atomic  # scalgui.atomic: a leaf module, no Qt
    from .. import __version__

    path = Path(path)
    if embed_source not in (False, True, *_EMBED_FORMATS):
        raise ValueError(f"embed_source must be True, False, 'npy' or 'flac', got {embed_source!r}")
    source_path = Path(doc.path) if doc.path is not None else None
    if source_path is not None and source_path.exists() and same_file(path, source_path):
        raise ProjectError(path, "that is the source sound; choose another name", action="save")
    with doc._lock:  # one consistent snapshot, even while a render thread finishes
        edits = doc.edits
        chains = [doc.effect_chain(p) for p in PLACEMENTS]
        rendered = doc.rendered
        pending = [list(map(float, s)) for s in doc.pending_spans]
        original = doc.original_samples
        state = state_key(doc)
    on_disk = source_path is not None and source_path.is_file()
    # What opening refuses is refused here, so that no save writes a project that
    # cannot be opened again.
    channels, frames = original.shape
    if not 1 <= channels <= MAX_CHANNELS or frames < 1 or not MIN_SAMPLE_RATE <= doc.sample_rate <= MAX_SAMPLE_RATE:
        raise ProjectError(path, f"a sound of {channels} channel(s), {frames} frames at {doc.sample_rate:g} Hz "
                                 f"cannot be stored (projects hold 1 to {MAX_CHANNELS} channels at "
                                 f"{MIN_SAMPLE_RATE:g}..{MAX_SAMPLE_RATE:g} Hz)", action="save")
    if not on_disk and embed_source is False:
        embed_source = "npy"  # nothing else would hold the sound
    files: dict[str, bytes] = {}
    embedded = None
    if embed_source == "flac":
        data = _flac_bytes(original, doc.sample_rate)
        if data is not None and len(data) <= MAX_EMBEDDED_BYTES:
            files["source.flac"], embedded = data, "source.flac"
    if embed_source and embedded is None:
        if original.size * 4 > MAX_EMBEDDED_BYTES:
            raise ProjectError(path, f"the sound is too long to embed ({original.size * 4 / 2**30:.1f} GiB; a "
                                     f"project embeds at most {MAX_EMBEDDED_BYTES / 2**30:.0f} GiB): save it as an "
                                     "audio file first, then save the project", action="save")
        files["source.npy"], embedded = _npy_bytes(original), "source.npy"
    relative = None
    if on_disk:
        try:
            relative = os.path.relpath(source_path.resolve(), path.resolve().parent)
        except ValueError:  # another drive (Windows): no relative path exists
            relative = None
    try:
        source = {
            "path": str(source_path.resolve()) if on_disk else (str(source_path) if source_path else None),
            "relative": relative,
            "sha256": file_sha256(source_path) if on_disk else None,
            "sample_rate": doc.sample_rate,
            "channels": int(original.shape[0]),
            "frames": int(original.shape[1]),
            "embedded": embedded,
        }
        # The render is a cache: one too large to embed is rendered again after opening.
        if embed_render and rendered is not None and rendered.size * 4 <= MAX_EMBEDDED_BYTES:
            files["render.npy"] = _npy_bytes(rendered)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "scalgui": __version__,
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "analysis": _settings_to_json(doc.settings),
            "edits": [edit_to_json(e) for e in edits],
            "effects": chains_to_dict(chains),
            "render": {"retrieval": _settings_to_json(doc.retrieval_settings),
                       "export": {**EXPORT_DEFAULTS, **doc.export_options}},
            "state": {"render": "render.npy" if "render.npy" in files else None,
                      "pending": pending if "render.npy" in files else None},
        }
        text = json.dumps(manifest, indent=1, allow_nan=False)
        loads_bounded(text, max_bytes=MAX_MANIFEST_BYTES)  # what opening will accept
    except (TypeError, ValueError) as exc:
        raise ProjectError(path, f"cannot be stored: {exc}", action="save") from None
    except OSError as exc:  # the source, replaced since is_file (by a folder, a FIFO...), or unreadable
        raise ProjectError(path, f"its source '{source_path}' cannot be read: {exc.strerror or exc}",
                           action="save") from None

    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(MANIFEST, text, compress_type=zipfile.ZIP_DEFLATED)
            for name, data in files.items():
                # Audio barely compresses; storing keeps autosaves of long sounds fast.
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)

    try:
        write_atomic(path, write, binary=True)
    except OSError as exc:
        raise ProjectError(path, exc.strerror or str(exc), action="save") from None
    if not as_copy:
        doc.project_path = path
        doc.unsaved = False
        _SAVED[doc] = state
    return path


# --------------------------------------------------------------------------- reading


@contextlib.contextmanager
def _archive(path: Path):
    """The project's archive, opened and checked by :func:`scalgui.app._archive.open_archive`;
    its problems, and those of reading members inside the block, as :class:`ProjectError`."""
    try:
        with open_archive(path) as archive:
            yield archive
    except ArchiveError as exc:
        raise ProjectError(path, str(exc)) from None


def _read_array(path: Path, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    with _archive(path) as archive:
        return read_npy_member(archive, name, shape=shape)


def read_project(path: str | os.PathLike) -> Project:
    """Read and check a project's manifest (no audio is loaded).

    Nothing in the file is trusted: the archive, its members' sizes and the manifest's
    size, nesting, types and numbers are checked before use (limits in
    :mod:`scalgui.app._archive` and :mod:`scalgui.safe_json`).

    Raises
    ------
    ProjectError
        Missing, empty, truncated or damaged file; not a regular file (a folder, a FIFO,
        a device); not a zip archive or one scalgui would not write (encrypted,
        unsupported compression, duplicate or oversized members); bad or oversized JSON;
        not a scalgui project; a newer format version; content that does not make sense
        or lies outside what scalgui handles. The one-line message names the file and
        the problem (and the field, for the manifest's content).
    """
    path = Path(path)
    with _archive(path) as archive:
        raw = read_member(archive, MANIFEST, MAX_MANIFEST_BYTES)
    try:
        data = loads_bounded(raw, max_bytes=MAX_MANIFEST_BYTES)
    except ValueError as exc:
        raise ProjectError(path, f"{MANIFEST}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(path, "not a scalgui project (project.json has no \"format\": \"scalgui-project\")")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectError(path, f"unknown project format version {version!r:.80}")
    if version > VERSION:
        raise ProjectError(path, f"it was saved by a newer scalgui ({str(data.get('scalgui', '?'))[:40]}, format "
                                 f"version {version}); this one reads format version {VERSION} and older: update "
                                 "scalgui")
    try:
        return _project_from_json(path, version, data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ProjectError(path, f"{MANIFEST}: {exc}") from None


def _text_or_none(data: dict, key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be text or null, got {value!r}")
    if len(value) > _MAX_PATH_CHARS or "\0" in value:
        raise ValueError(f"{where}.{key} is not a path (longer than {_MAX_PATH_CHARS} characters, or holds NUL)")
    return value


def _whole_number(data: dict, key: str, where: str, low: int, high: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{where}.{key} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{where}.{key} must lie in {low}..{high}, got {value}")
    return int(value)


def _source_from_json(src: Any) -> SourceInfo:
    if not isinstance(src, dict):
        raise ValueError("\"source\" must be an object")
    path = _text_or_none(src, "path", "source")
    relative = _text_or_none(src, "relative", "source")
    sha256 = src.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise ValueError(f"source.sha256 must be 64 lower-case hex digits or null, got {str(sha256)[:80]!r}")
    rate = src.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"source.sample_rate must be a number of Hz in {MIN_SAMPLE_RATE:g}..{MAX_SAMPLE_RATE:g}, "
                         f"got {rate!r}")
    channels = _whole_number(src, "channels", "source", 1, MAX_CHANNELS)
    frames = _whole_number(src, "frames", "source", 1, _MAX_FRAMES)
    embedded = src.get("embedded")
    if embedded is not None and embedded not in _EMBED_NAMES:
        raise ValueError(f"source.embedded must be null, {' or '.join(map(repr, _EMBED_NAMES))}, got {embedded!r}")
    return SourceInfo(Path(path) if path else None, relative, sha256, float(rate), channels, frames, embedded)


def _export_from_json(export: Any) -> dict:
    if not isinstance(export, dict) or set(export) - set(EXPORT_DEFAULTS):
        raise ValueError(f"render.export must be an object with {', '.join(EXPORT_DEFAULTS)}")
    export = {**EXPORT_DEFAULTS, **export}
    if export["bit_depth"] is not None and (isinstance(export["bit_depth"], bool)
                                            or export["bit_depth"] not in _BIT_DEPTHS):
        raise ValueError(f"render.export.bit_depth must be null or one of {', '.join(map(str, _BIT_DEPTHS))}, "
                         f"got {export['bit_depth']!r}")
    quality = export["quality"]
    # Checked against the output's format when writing; here only kept to a sane size.
    if not (quality is None or (isinstance(quality, str) and len(quality) <= 32)
            or (isinstance(quality, numbers.Integral) and not isinstance(quality, bool) and 0 <= quality <= 10_000)):
        raise ValueError(f"render.export.quality must be null, a short text or a whole number, got {quality!r:.80}")
    if export["clip"] not in _CLIP_POLICIES:
        raise ValueError(f"render.export.clip must be one of {', '.join(_CLIP_POLICIES)}, got {export['clip']!r:.80}")
    return export


def _pending_from_json(pending: Any) -> list | None:
    if pending is None:
        return None
    spans = []
    if isinstance(pending, list):
        for span in pending:
            if not (isinstance(span, list) and len(span) == 2
                    and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in span)):
                break
            spans.append((float(span[0]), float(span[1])))
        else:
            return spans
    raise ValueError("state.pending must be a list of [start, end] seconds")


def _project_from_json(path: Path, version: int, data: dict) -> Project:
    source = _source_from_json(data.get("source"))
    settings = _settings_from_json(FrameSettings, data.get("analysis"), "analysis")
    edits_data = data.get("edits", [])
    if not isinstance(edits_data, list):
        raise ValueError("\"edits\" must be a list")
    edits = tuple(edit_from_json(e, f"edits[{i}]") for i, e in enumerate(edits_data))
    try:
        chains = chains_from_dict(data.get("effects", {"format": "scalgui-effects", "version": 1, "chains": []}),
                                  base=path.resolve().parent)
    except ValueError as exc:
        raise ValueError(f"effects: {exc}") from None
    render = data.get("render", {})
    if not isinstance(render, dict):
        raise ValueError("\"render\" must be an object")
    retrieval = _settings_from_json(RetrievalSettings, render.get("retrieval", {}), "render.retrieval")
    if retrieval == FIXED_RENDER:
        # The editor's default before renders stopped when iterations stop paying: a project
        # saved with it renders as the editor does now (other settings are the user's own).
        retrieval = DEFAULT_RENDER
    export = _export_from_json(render.get("export", {}))
    state = data.get("state", {})
    if not isinstance(state, dict):
        raise ValueError("\"state\" must be an object")
    if state.get("render") not in (None, _RENDER_NAME):
        raise ValueError(f"state.render must be null or {_RENDER_NAME!r}, got {state.get('render')!r:.80}")
    return Project(path, version, source, settings, edits, chains, retrieval, export, state.get("render"),
                   _pending_from_json(state.get("pending")))


# --------------------------------------------------------------------------- opening


def _source_file(project: Project, candidate: str | os.PathLike) -> Path:
    """``candidate`` as a Path when it is a regular file; a :class:`ProjectError` naming it
    at once otherwise (a folder, a FIFO that would block, ``/dev/zero`` that never ends)."""
    candidate = Path(candidate)
    try:
        open_regular_file(candidate).close()
    except FileNotFoundError:
        raise ProjectError(project.path, f"source '{candidate}': no such file") from None
    except NotRegularFile as exc:
        raise ProjectError(project.path, f"source '{candidate}' {exc.strerror}") from None
    except OSError as exc:
        raise ProjectError(project.path, f"source '{candidate}': {exc.strerror or exc}") from None
    except ValueError as exc:  # a name with a NUL byte
        raise ProjectError(project.path, f"source '{candidate}': {exc}") from None
    return candidate


def _find_source(project: Project, source: str | os.PathLike | None, verify: bool,
                 locate: Callable[[ProjectError], str | os.PathLike | None] | None):
    """``(file or None, exact)``: the file to load (None: the embedded copy), and whether it
    is the very sound the project was saved with."""
    info = project.source

    def check(candidate: Path) -> bool:
        if not verify or info.sha256 is None:
            return False
        try:
            actual = file_sha256(candidate)
        except NotRegularFile as exc:
            raise ProjectError(project.path, f"source '{candidate}' {exc.strerror}") from None
        except OSError as exc:
            raise ProjectError(project.path, f"source '{candidate}': {exc.strerror or exc}") from None
        if actual != info.sha256:
            raise SourceMismatchError(project.path, info, candidate, actual)
        return True

    if source is not None:
        file = _source_file(project, source)
        return file, check(file)
    mismatch = None
    candidates = []
    if info.path is not None:
        candidates.append(info.path)
    if info.relative:
        candidates.append(project.path.resolve().parent / info.relative)
    for candidate in candidates:
        # is_file: a recorded path that is now a folder, FIFO or device is not the source.
        if info.sha256 is not None and candidate.is_file():
            try:
                check(candidate) if verify else None
                return candidate, verify
            except SourceMismatchError as exc:
                mismatch = mismatch or exc
            except ProjectError:
                continue  # replaced or made unreadable since is_file: look further
    if info.embedded:
        return None, True
    problem = mismatch or SourceMissingError(project.path, info)
    if locate is not None:
        chosen = locate(problem)
        if chosen is not None:
            file = _source_file(project, chosen)
            return file, check(file)
    raise problem


def _embedded_flac(project: Project) -> tuple[np.ndarray, float]:
    """The embedded FLAC source's samples and rate, checked against the manifest."""
    from ..audio import load_audio

    info = project.source
    with tempfile.TemporaryDirectory(prefix="scalgui-") as folder:
        target = Path(folder) / "source.flac"
        with _archive(project.path) as archive, open(target, "wb") as handle:
            copy_member(archive, info.embedded, handle, MAX_EMBEDDED_BYTES)
        try:
            audio = load_audio(target)
        except AudioError as exc:
            raise ProjectError(project.path, f"damaged: the embedded source cannot be read ({exc.reason})") from None
    if (audio.channels, audio.frames) != (info.channels, info.frames):
        raise ProjectError(project.path, f"damaged: {info.embedded} holds {audio.channels} channel(s) of "
                                         f"{audio.frames} frames, the project says {info.channels} of {info.frames}")
    return audio.samples, audio.sample_rate


def _duration_text(seconds: float) -> str:
    """``"3:30"`` (minutes and seconds) or ``"12.5 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def open_project(
    path: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    locate: Callable[[ProjectError], str | os.PathLike | None] | None = None,
    verify: bool = True,
    load_render: bool = True,
    device: str = "auto",
    bypass_untrusted: bool = False,
    progress: Callable[[str, float | None], None] | None = None,
):
    """Open a project as a :class:`~scalgui.app.document.Document`.

    Parameters
    ----------
    path : str or PathLike
        The ``.scalproj`` file.
    source : str or PathLike, optional
        Load the source sound from this file instead of the recorded one (after the user
        located a moved file). Checked against the recorded checksum unless ``verify`` is
        False.
    locate : callable, optional
        ``locate(error) -> path or None``, called when the source is missing or changed
        (``error`` is a :class:`SourceMissingError` or :class:`SourceMismatchError`);
        the returned file is checked like ``source``.
    verify : bool
        Check the source's SHA-256 checksum. With ``verify=False`` any sound can stand in
        (its rate may differ: analysis frequencies are kept in Hz); the embedded render,
        made from the recorded sound, is then dropped.
    load_render : bool
        Restore the embedded last render (when there is one).
    device : str
        Torch device of the document.
    bypass_untrusted : bool
        Open a project whose effect chains name VST3 plugins outside the trusted folders
        (:func:`scalgui.audio.vst3.is_trusted_vst3`) with those plugins bypassed (kept in
        the chain, never loaded) instead of refusing it.
    progress : callable, optional
        ``progress(stage, fraction)`` as opening goes: ``stage`` says in words what is
        being done (reading the project, checking or reading the sound, analysing,
        applying the source effects, restoring the edits), ``fraction`` (0 to 1) how much
        of that stage is done, None where there is no share to tell. Called in the
        opening thread.

    Raises
    ------
    ProjectError
        Unreadable, damaged or newer project; a source sound that cannot be loaded; an
        effect that cannot run. :class:`SourceMissingError` and
        :class:`SourceMismatchError` (subclasses) when the source cannot be found or is
        another file; :class:`UntrustedPluginsError` (before any audio is read) when its
        chains would load a VST3 plugin that is not trusted and ``bypass_untrusted`` is
        False.
    """
    from .document import Document
    from ..audio import load_audio
    from ..audio.vst3 import untrusted_vst3

    def stage(text: str, fraction: float | None = None) -> None:
        if progress is not None:
            progress(text, fraction)

    stage(f"Reading the project {Path(path).name}")
    project = read_project(path)
    chains = {p: project.chain(p) for p in PLACEMENTS}
    untrusted = untrusted_vst3(chains.values())
    if untrusted and not bypass_untrusted:
        raise UntrustedPluginsError(project.path, untrusted)
    chains = {p: chain.with_bypassed(untrusted) for p, chain in chains.items()}
    info = project.source
    name = info.path.name if info.path is not None else "the sound"
    stage(f"Finding {name} and checking that it is the one saved")
    file, exact = _find_source(project, source, verify, locate)
    if file is None:
        stage(f"Reading {name} from the project")
        if info.embedded.endswith(".npy"):
            samples = project.read_array(info.embedded, shape=(info.channels, info.frames))
            rate = info.sample_rate
        else:
            samples, rate = _embedded_flac(project)
    else:
        reading = f"Reading {file.name}"
        stage(reading, 0.0)
        try:
            audio = load_audio(file, progress=lambda done, total: stage(reading, done / total if total else None))
        except AudioError as exc:
            raise ProjectError(project.path, f"its source cannot be loaded: {exc}") from None
        samples, rate = audio.samples, audio.sample_rate
    try:
        settings = settings_for_rate(project.settings, rate)
        stage(f"Analysing {_duration_text(samples.shape[-1] / rate)} of sound")
        doc = Document(samples, rate, path=file, settings=settings, device=device)
        for placement, chain in chains.items():
            if chain.effects:
                stage(f"Applying the {placement} effects")
                doc.set_effect_chain(chain)
    except EffectError as exc:
        raise ProjectError(project.path, f"effect chain: {exc}") from None
    except (ValueError, AudioError) as exc:  # frame design, or the analysis would not fit in memory
        raise ProjectError(project.path, f"the analysis settings do not fit the source: {exc}") from None
    doc.retrieval_settings = project.retrieval
    doc.export_options = dict(project.export)
    rendered = None
    if load_render and exact and project.render:
        stage("Reading the last render")
        rendered = project.read_array(project.render, shape=doc.samples.shape)
    stage(f"Restoring {len(project.edits)} edit{'s' if len(project.edits) != 1 else ''}")
    doc.restore(project.edits, rendered=rendered, pending=project.pending if rendered is not None else None)
    doc.project_path = project.path
    doc.unsaved = False
    _SAVED[doc] = state_key(doc)
    return doc
