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
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import tempfile
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio.effects import PLACEMENTS, EffectChain, chains_from_dict, chains_to_dict
from ..audio.errors import AudioError, EffectError
from ..dsp.edits import Band, Combined, Edit, Harmonic, Lasso, Rectangle, Stroke, TimeRange
from ..dsp.frame import FrameSettings
from ..dsp.phase import RetrievalSettings
from ..plugins import PluginEdit

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

_SHAPES = {cls.__name__: cls for cls in (Rectangle, TimeRange, Band, Lasso, Harmonic, Stroke, Combined)}
_EMBED_FORMATS = ("npy", "flac")


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


# --------------------------------------------------------------------------- edits as JSON


def _encode_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}  # 'inf', '-inf', 'nan': strict JSON has no such numbers
    if isinstance(value, (tuple, list)):
        return [_encode_value(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a project ({value!r})")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("inf", "-inf", "nan"):
            return float(value["float"])
        raise ValueError(f"unexpected object {value!r}")
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


def _shape_to_json(shape) -> dict:
    name = type(shape).__name__
    if name not in _SHAPES or not isinstance(shape, _SHAPES[name]):
        raise TypeError(f"unknown shape type {name}")
    if isinstance(shape, Combined):
        return {"type": name, "parts": [{"op": op, "shape": _shape_to_json(s)} for s, op in shape.parts]}
    data: dict[str, Any] = {"type": name}
    for f in dataclasses.fields(shape):
        data[f.name] = _encode_value(getattr(shape, f.name))
    return data


def _shape_from_json(data: Any, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a shape must be an object, got {type(data).__name__}")
    name = data.get("type")
    cls = _SHAPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown shape type {name!r} (known: {', '.join(_SHAPES)})")
    if cls is Combined:
        parts = data.get("parts")
        if not isinstance(parts, list) or set(data) != {"type", "parts"}:
            raise ValueError(f"{where}: Combined needs exactly \"parts\": a list of {{\"op\", \"shape\"}}")
        decoded = []
        for i, part in enumerate(parts):
            if not isinstance(part, dict) or set(part) != {"op", "shape"}:
                raise ValueError(f"{where}.parts[{i}]: expected {{\"op\": \"add\"|\"subtract\", \"shape\": ...}}")
            decoded.append((_shape_from_json(part["shape"], f"{where}.parts[{i}].shape"), part["op"]))
        return _construct(cls, {"parts": tuple(decoded)}, where)
    known = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - known - {"type"})
    if extra:
        raise ValueError(f"{where}: {name} has unknown field(s) {', '.join(map(repr, extra))}")
    values = {k: _decode_value(v) for k, v in data.items() if k != "type"}
    for k, v in values.items():
        if isinstance(v, bool) or (isinstance(v, str)):
            raise ValueError(f"{where}: {name}.{k} must be a number, got {v!r}")
    return _construct(cls, values, where)


def _construct(cls, values: dict, where: str):
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {cls.__name__}: {' '.join(str(exc).split())}") from None


def edit_to_json(edit) -> dict:
    """The project form of one edit (an :class:`~scalgui.dsp.edits.Edit` or a
    :class:`~scalgui.plugins.PluginEdit`): a JSON object tagged with its ``"type"``.

    >>> edit_to_json(Edit(Band(100.0, 200.0), "gain", -6.0))
    {'type': 'Edit', 'action': 'gain', 'amount_db': -6.0, 'shape': {'type': 'Band', 'f0': 100.0, 'f1': 200.0, 'feather_oct': 0.041666666666666664}}
    """
    if isinstance(edit, PluginEdit):
        return {
            "type": "PluginEdit",
            "plugin": edit.plugin,
            "params": {name: _encode_value(value) for name, value in edit.params},
            "selection": None if edit.selection is None else _shape_to_json(edit.selection),
        }
    if isinstance(edit, Edit):
        return {"type": "Edit", "action": edit.action, "amount_db": _encode_value(float(edit.amount_db)),
                "shape": _shape_to_json(edit.shape)}
    raise TypeError(f"expected an Edit or a PluginEdit, got {type(edit).__name__}")


def edit_from_json(data: Any, where: str = "edit"):
    """The edit :func:`edit_to_json` wrote; raises ``ValueError`` saying where it is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: an edit must be an object, got {type(data).__name__}")
    kind = data.get("type")
    if kind == "Edit":
        extra = sorted(set(data) - {"type", "action", "amount_db", "shape"})
        if extra or "shape" not in data:
            raise ValueError(f"{where}: an Edit has \"action\", \"amount_db\" and \"shape\""
                             + (f", not {', '.join(map(repr, extra))}" if extra else ""))
        amount = _decode_value(data.get("amount_db", -20.0))
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ValueError(f"{where}: amount_db must be a number, got {amount!r}")
        shape = _shape_from_json(data["shape"], f"{where}.shape")
        return _construct(Edit, {"shape": shape, "action": data.get("action", "gain"), "amount_db": float(amount)},
                          where)
    if kind == "PluginEdit":
        extra = sorted(set(data) - {"type", "plugin", "params", "selection"})
        if extra:
            raise ValueError(f"{where}: a PluginEdit has \"plugin\", \"params\" and \"selection\", "
                             f"not {', '.join(map(repr, extra))}")
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ValueError(f"{where}: params must be an object")
        selection = data.get("selection")
        selection = None if selection is None else _shape_from_json(selection, f"{where}.selection")
        values = {name: _decode_value(value) for name, value in params.items()}
        return _construct(PluginEdit, {"plugin": data.get("plugin"), "params": values, "selection": selection}, where)
    raise ValueError(f"{where}: unknown edit type {kind!r} (expected \"Edit\" or \"PluginEdit\")")


# --------------------------------------------------------------------------- settings


def _settings_to_json(settings) -> dict:
    return {k: _encode_value(v) for k, v in dataclasses.asdict(settings).items()}


def _settings_from_json(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    known = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"{where} has unknown field(s) {', '.join(map(repr, extra))}")
    return _construct(cls, {k: _decode_value(v) for k, v in data.items()}, where)


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

    def read_array(self, name: str) -> np.ndarray:
        """An embedded ``.npy`` array, read without pickle."""
        return _read_array(self.path, name)


_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (cached by path, size and modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
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
    if not on_disk and embed_source is False:
        embed_source = "npy"  # nothing else would hold the sound
    files: dict[str, bytes] = {}
    embedded = None
    if embed_source == "flac":
        data = _flac_bytes(original, doc.sample_rate)
        if data is not None:
            files["source.flac"], embedded = data, "source.flac"
    if embed_source and embedded is None:
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
        if embed_render and rendered is not None:
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
    except (TypeError, ValueError) as exc:
        raise ProjectError(path, f"cannot be stored: {exc}", action="save") from None

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


def _open_archive(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ProjectError(path, "no such file") from None
    except IsADirectoryError:
        raise ProjectError(path, "is a folder") from None
    except zipfile.BadZipFile as exc:
        size = path.stat().st_size if path.exists() else 0
        what = "empty file" if size == 0 else f"damaged or truncated, or not a project ({exc})"
        raise ProjectError(path, what) from None
    except OSError as exc:
        raise ProjectError(path, exc.strerror or str(exc)) from None


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise ProjectError(path, f"damaged: {name} is missing from the archive") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:  # bad CRC, cut-off data
        raise ProjectError(path, f"damaged: {name} cannot be read ({' '.join(str(exc).split())})") from None


def _read_array(path: Path, name: str) -> np.ndarray:
    with _open_archive(path) as archive:
        data = _read_member(path, archive, name)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ProjectError(path, f"damaged: {name} is not a valid array ({' '.join(str(exc).split())})") from None
    if array.ndim != 2 or array.dtype != np.float32 or not np.all(np.isfinite(array)):
        raise ProjectError(path, f"damaged: {name} is not finite float32 [channels, frames] audio")
    return array


def read_project(path: str | os.PathLike) -> Project:
    """Read and check a project's manifest (no audio is loaded).

    Raises
    ------
    ProjectError
        Missing, empty, truncated or damaged file, not a zip archive, bad JSON, not a
        scalgui project, a newer format version, or content that does not make sense; the
        one-line message names the file and the problem.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        raw = _read_member(path, archive, MANIFEST)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProjectError(path, f"{MANIFEST} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ProjectError(path, f"{MANIFEST} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                 f"column {exc.colno}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(path, "not a scalgui project (project.json has no \"format\": \"scalgui-project\")")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectError(path, f"unknown project format version {version!r}")
    if version > VERSION:
        raise ProjectError(path, f"it was saved by a newer scalgui ({data.get('scalgui', '?')}, format version "
                                 f"{version}); this one reads format version {VERSION} and older: update scalgui")
    try:
        return _project_from_json(path, version, data)
    except ValueError as exc:
        raise ProjectError(path, f"{MANIFEST}: {exc}") from None


def _project_from_json(path: Path, version: int, data: dict) -> Project:
    src = data.get("source")
    if not isinstance(src, dict):
        raise ValueError("\"source\" must be an object")
    try:
        source = SourceInfo(
            path=Path(src["path"]) if src.get("path") else None,
            relative=src.get("relative"),
            sha256=src.get("sha256"),
            sample_rate=float(src["sample_rate"]),
            channels=int(src["channels"]),
            frames=int(src["frames"]),
            embedded=src.get("embedded"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"source: missing or bad field {exc}") from None
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
    export = render.get("export", {})
    if not isinstance(export, dict) or set(export) - set(EXPORT_DEFAULTS):
        raise ValueError(f"render.export must be an object with {', '.join(EXPORT_DEFAULTS)}")
    state = data.get("state", {})
    if not isinstance(state, dict):
        raise ValueError("\"state\" must be an object")
    pending = state.get("pending")
    if pending is not None:
        try:
            pending = [(float(a), float(b)) for a, b in pending]
        except (TypeError, ValueError):
            raise ValueError("state.pending must be a list of [start, end] seconds") from None
    return Project(path, version, source, settings, edits, chains, retrieval, {**EXPORT_DEFAULTS, **export},
                   state.get("render"), pending)


# --------------------------------------------------------------------------- opening


def _find_source(project: Project, source: str | os.PathLike | None, verify: bool,
                 locate: Callable[[ProjectError], str | os.PathLike | None] | None):
    """``(file or None, exact)``: the file to load (None: the embedded copy), and whether it
    is the very sound the project was saved with."""
    info = project.source

    def check(candidate: Path) -> bool:
        if not verify or info.sha256 is None:
            return False
        actual = file_sha256(candidate)
        if actual != info.sha256:
            raise SourceMismatchError(project.path, info, candidate, actual)
        return True

    if source is not None:
        return Path(source), check(Path(source))
    mismatch = None
    candidates = []
    if info.path is not None:
        candidates.append(info.path)
    if info.relative:
        candidates.append(project.path.resolve().parent / info.relative)
    for candidate in candidates:
        if info.sha256 is not None and candidate.is_file():
            try:
                check(candidate) if verify else None
                return candidate, verify
            except SourceMismatchError as exc:
                mismatch = mismatch or exc
    if info.embedded:
        return None, True
    problem = mismatch or SourceMissingError(project.path, info)
    if locate is not None:
        chosen = locate(problem)
        if chosen is not None:
            return Path(chosen), check(Path(chosen))
    raise problem


def open_project(
    path: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    locate: Callable[[ProjectError], str | os.PathLike | None] | None = None,
    verify: bool = True,
    load_render: bool = True,
    device: str = "auto",
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

    Raises
    ------
    ProjectError
        Unreadable, damaged or newer project; a source sound that cannot be loaded; an
        effect that cannot run. :class:`SourceMissingError` and
        :class:`SourceMismatchError` (subclasses) when the source cannot be found or is
        another file.
    """
    from .document import Document
    from ..audio import load_audio

    project = read_project(path)
    file, exact = _find_source(project, source, verify, locate)
    if file is None:
        if project.source.embedded.endswith(".npy"):
            samples, rate = project.read_array(project.source.embedded), project.source.sample_rate
        else:
            with tempfile.TemporaryDirectory(prefix="scalgui-") as folder:
                target = Path(folder) / "source.flac"
                with _open_archive(project.path) as archive:
                    target.write_bytes(_read_member(project.path, archive, project.source.embedded))
                try:
                    audio = load_audio(target)
                except AudioError as exc:
                    raise ProjectError(project.path, f"damaged: the embedded source cannot be read ({exc.reason})") \
                        from None
            samples, rate = audio.samples, audio.sample_rate
    else:
        try:
            audio = load_audio(file)
        except AudioError as exc:
            raise ProjectError(project.path, f"its source cannot be loaded: {exc}") from None
        samples, rate = audio.samples, audio.sample_rate
    try:
        settings = settings_for_rate(project.settings, rate)
        doc = Document(samples, rate, path=file, settings=settings, device=device)
        for placement in PLACEMENTS:
            chain = project.chain(placement)
            if chain.effects:
                doc.set_effect_chain(chain)
    except EffectError as exc:
        raise ProjectError(project.path, f"effect chain: {exc}") from None
    except ValueError as exc:
        raise ProjectError(project.path, f"the analysis settings do not fit the source: {exc}") from None
    doc.retrieval_settings = project.retrieval
    doc.export_options = dict(project.export)
    rendered = None
    if load_render and exact and project.render:
        rendered = project.read_array(project.render)
        if rendered.shape != doc.samples.shape:
            raise ProjectError(project.path, f"damaged: the render is {rendered.shape}, the source "
                                             f"{doc.samples.shape}")
    doc.restore(project.edits, rendered=rendered, pending=project.pending if rendered is not None else None)
    doc.project_path = project.path
    doc.unsaved = False
    _SAVED[doc] = state_key(doc)
    return doc
