"""Finding plugins: folders of plugin files, and installed packages' entry points.

Where plugins come from, in this order (the first plugin with an id wins; a later one
with the same id is reported as a problem, not loaded):

1. the built-ins: the ``plugins/`` folder of a source checkout (next to the ``scalgui``
   package, beside ``pyproject.toml``), or, for a regular ``pip install``, the copy the
   wheel installs under ``<prefix>/share/scalgui/plugins`` (pyproject's ``data-files``);
2. every folder in the environment variable ``SCALGUI_PLUGIN_PATH`` (``os.pathsep``-separated);
3. the user's folder: ``platformdirs.user_data_dir("scalgui")/plugins`` when platformdirs is
   installed, else ``$XDG_DATA_HOME/scalgui/plugins`` (``~/.local/share/scalgui/plugins``);
4. entry points of installed distributions in the group ``"scalgui.plugins"``; an entry
   point names a :class:`~scalgui.plugins.api.Plugin`, a sequence of them, a module with
   ``PLUGIN``/``PLUGINS``, or a function returning one of those.

In a folder, every ``*.py`` file not starting with ``_`` and every sub-folder with an
``__init__.py`` is a plugin module; it must bind ``PLUGIN`` (a ``Plugin``) or ``PLUGINS`` (a
sequence of them). A module that fails to import (a syntax error, a missing import, an
exception at import time, a bad declaration) is recorded as a :class:`PluginProblem` with
its file and the reason, and skipped.

A plugin folder is code the user chose to install, and discovery keeps it from doing
more than that:

- **time**: each plugin module and entry point is imported on a daemon thread of its own
  and waited for at most :data:`IMPORT_TIMEOUT_S` seconds (environment variable
  :data:`IMPORT_TIMEOUT_VAR`); one still importing is skipped with a problem saying so, its
  half-imported module is taken out of ``sys.modules``, and, when it is looping in its own
  code, it is stopped (CPython); one blocked elsewhere (a sleep, a read) is left to wait,
  and is not started again by a later scan while it still runs;
- **output**: what a plugin prints while it imports (``sys.stdout``, ``sys.stderr``, and
  file descriptor 1 sent to 2) never reaches the command's standard output; its last line
  is kept in the problem of a plugin that failed, and dropped otherwise;
- **exceptions**: anything a plugin raises at import, ``KeyboardInterrupt`` and
  ``SystemExit`` included, is that plugin's problem; only a real Ctrl-C interrupts;
- **duplicates**: a module whose declared ids (read from its source without running it:
  ``PLUGIN = Plugin("id", ...)``, ``Plugin(name="id", ...)``, or ``PLUGINS`` listing such
  calls or names bound to them) are all taken is reported as a duplicate and not
  imported; a module whose ids cannot be read that way is imported, and its duplicates
  rejected afterwards;
- **permissions** (POSIX): a plugin folder, file or package writable by every user (a
  sticky bit does not help: anyone may still add files), or inside a folder that every
  user may rename things in (world-writable and not sticky), is not imported;
- **sizes**: a plugin file over :data:`MAX_SOURCE_BYTES` is refused, anything but a
  regular file (a FIFO, a device) is never opened, and a folder yields at most
  :data:`MAX_MODULES_PER_FOLDER` modules.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import heapq
import importlib.util
import math
import os
import re
import site
import stat
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..regular_files import NotRegularFile, open_regular_file
from .api import Plugin, PluginError
from .import_guard import IMPORT_TIMEOUT_S, IMPORT_TIMEOUT_VAR, guarded_import, import_timeout_from_env
from .import_guard import describe_exception as _describe_exception
from .import_guard import forget_module as _forget_module

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "IMPORT_TIMEOUT_S",
    "IMPORT_TIMEOUT_VAR",
    "MAX_MODULES_PER_FOLDER",
    "MAX_SOURCE_BYTES",
    "PluginProblem",
    "Registry",
    "builtin_dir",
    "declared_ids",
    "default_registry",
    "load_module_file",
    "search_folders",
    "set_default_registry",
    "user_dir",
]

ENTRY_POINT_GROUP = "scalgui.plugins"
ENV_VAR = "SCALGUI_PLUGIN_PATH"
_MODULE_PREFIX = "scalgui_plugin_"

#: Largest plugin source file (a module, or a package's ``__init__.py``), in bytes: it is
#: parsed before it runs, and a bigger one is more likely data than code.
MAX_SOURCE_BYTES = 8 * 2**20
#: Most plugin modules taken from one folder (the first ones by name).
MAX_MODULES_PER_FOLDER = 500


@dataclass(frozen=True)
class PluginProblem:
    """A plugin module or entry point that could not be loaded.

    Attributes
    ----------
    source : str
        The file, folder or entry point.
    problem : str
        One line: what went wrong.
    names : tuple of str
        Plugin ids it was meant to provide, when known (a duplicate id, a failed entry point).
    """

    source: str
    problem: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


# --------------------------------------------------------------------------- folders


def builtin_dir() -> Path | None:
    """The folder of the built-in plugins, or ``None`` when none is found.

    A source checkout (or an editable install) has ``plugins/`` beside the ``scalgui``
    package and ``pyproject.toml``; a wheel installs a copy under ``share/scalgui/plugins``
    of its prefix (the environment's, or the user base for ``pip install --user``).
    """
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent / "plugins"
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    prefixes = [sys.prefix, sys.exec_prefix, getattr(site, "USER_BASE", None) or ""]
    for prefix in prefixes:
        if prefix:
            candidate = Path(prefix) / "share" / "scalgui" / "plugins"
            if candidate.is_dir():
                return candidate
    return None


def user_dir() -> Path:
    """The user's plugin folder (it need not exist)."""
    try:
        import platformdirs
    except ImportError:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return Path(base) / "scalgui" / "plugins"
    return Path(platformdirs.user_data_dir("scalgui", appauthor=False)) / "plugins"


def env_dirs() -> list[Path]:
    """Folders named in ``SCALGUI_PLUGIN_PATH``, in order."""
    value = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def search_folders() -> list[tuple[str, Path]]:
    """``(kind, folder)`` pairs searched for plugin files, in order; kinds are
    ``"builtin"``, ``"env"`` and ``"user"``. Folders may not exist."""
    folders: list[tuple[str, Path]] = []
    builtin = builtin_dir()
    if builtin is not None:
        folders.append(("builtin", builtin))
    folders.extend(("env", p) for p in env_dirs())
    folders.append(("user", user_dir()))
    seen: set[Path] = set()
    unique = []
    for kind, folder in folders:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen:
            seen.add(key)
            unique.append((kind, folder))
    return unique


def plugin_modules(folder: Path, limit: int | None = None) -> list[Path]:
    """Plugin modules in ``folder``: ``*.py`` files and packages, not starting with ``_`` or
    ``.``, sorted; the first ``limit`` (default :data:`MAX_MODULES_PER_FOLDER`) by name
    (:func:`count_plugin_modules` tells how many there are)."""
    return heapq.nsmallest(MAX_MODULES_PER_FOLDER if limit is None else limit, _plugin_module_entries(folder))


def count_plugin_modules(folder: Path) -> int:
    """How many plugin modules ``folder`` holds."""
    return sum(1 for _ in _plugin_module_entries(folder))


def _plugin_module_entries(folder: Path) -> Iterator[Path]:
    # A generator, so that a folder of a million files is never held in memory at once.
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            yield entry
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            yield entry


# --------------------------------------------------------------------------- before running a plugin


def _open_to_everyone(path: Path) -> str | None:
    """Why anyone on this computer could change the code at ``path`` (a plugin folder,
    file or package folder), or None.

    Any user may add files to a world-writable folder (a sticky bit only stops them
    removing other people's), and may rename anything in a world-writable folder without
    the sticky bit, so a plugin folder or file under either could hold code its user
    never installed. Ownership is not checked: a plugin folder owned by another account
    (a shared environment's administrator, a team's folder) is one its user chose to
    trust by putting it on the path. POSIX only: Windows has no such mode bits.
    """
    if os.name == "nt":
        return None
    try:
        real = path.resolve()
        mode = os.stat(real).st_mode
    except (OSError, RuntimeError):  # missing, or a loop of links: nothing will be loaded from it
        return None
    kind = "folder" if stat.S_ISDIR(mode) else "file"
    if mode & stat.S_IWOTH:
        return (f"the {kind} is writable by every user (mode {stat.S_IMODE(mode):04o}), so anyone on this computer "
                f"could put code in it; not loaded (fix: chmod o-w '{real}')")
    for parent in real.parents:
        try:
            parent_mode = os.stat(parent).st_mode
        except OSError:
            continue
        if parent_mode & stat.S_IWOTH and not parent_mode & stat.S_ISVTX:
            return (f"it is inside {parent}, which every user may write to (mode {stat.S_IMODE(parent_mode):04o}), so "
                    f"anyone on this computer could replace it; not loaded (fix: chmod o-w '{parent}', or move the "
                    f"plugins elsewhere)")
    return None


def _module_open_to_everyone(path: Path) -> str | None:
    """:func:`_open_to_everyone` for a plugin module: the file, or a package's folder and
    its ``__init__.py``."""
    problem = _open_to_everyone(path)
    if problem is None and path.is_dir():
        problem = _open_to_everyone(path / "__init__.py")
        if problem is not None:
            problem = f"{path.name}/__init__.py: {problem}"
    return problem


def _read_source(path: Path) -> bytes:
    """A plugin module's source (a package's ``__init__.py``), read without blocking.

    Raises
    ------
    PluginError
        ``"<path>: <problem>"``: not a regular file, unreadable, or over
        :data:`MAX_SOURCE_BYTES`.
    """
    file = path / "__init__.py" if path.is_dir() else path
    shown = file.name if file is path else f"{path.name}/__init__.py"
    try:
        # A FIFO swapped in after the folder was listed cannot hang the open.
        handle = open_regular_file(file)
    except NotRegularFile as exc:
        raise PluginError(f"{path}: {shown} {exc.strerror}") from None
    except OSError as exc:
        raise PluginError(f"{path}: cannot read {shown}: {exc.strerror or exc}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if info.st_size > MAX_SOURCE_BYTES:
            raise PluginError(f"{path}: {shown} is {info.st_size / 2**20:.1f} MB; a plugin file may be at most "
                              f"{MAX_SOURCE_BYTES / 2**20:g} MB (keep data in files of its own)")
        source = handle.read(MAX_SOURCE_BYTES + 1)
    if len(source) > MAX_SOURCE_BYTES:  # grew after the fstat
        raise PluginError(f"{path}: {shown} is over {MAX_SOURCE_BYTES / 2**20:g} MB, the most a plugin file may be")
    return source


def declared_ids(source: str | bytes) -> tuple[str, ...] | None:
    """The plugin ids a plugin module's source declares, read without running it.

    Understood: ``PLUGIN = Plugin("id", ...)`` or ``Plugin(name="id", ...)`` (any
    ``something.Plugin`` too), ``PLUGIN = NAME`` where ``NAME`` is bound once to such a
    call, and ``PLUGINS = [...]``/``(...)`` of such calls or names. ``PLUGINS`` wins over
    ``PLUGIN``, as at import.

    Returns
    -------
    tuple of str or None
        None when the ids cannot be known without running the module: a syntax error, a
        ``PLUGIN``/``PLUGINS`` bound more than once or anywhere but a plain top-level
        assignment, a star import, an id that is not a string literal.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    bindings: dict[str, int] = {}

    def bound(name: str | None) -> None:
        if name:
            bindings[name] = bindings.get(name, 0) + 1

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler,
                               ast.MatchAs, ast.MatchStar)):
            bound(node.name)
        elif isinstance(node, ast.MatchMapping):
            bound(node.rest)
        elif isinstance(node, ast.Global):  # a function may rebind them
            for name in node.names:
                bound(name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                bound(alias.asname or alias.name.split(".")[0])
    top_level: dict[str, ast.expr] = {}
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            top_level[statement.targets[0].id] = statement.value
        elif (isinstance(statement, ast.AnnAssign) and statement.value is not None
              and isinstance(statement.target, ast.Name)):
            top_level[statement.target.id] = statement.value

    def value_of(name: str) -> ast.expr | None:
        return top_level.get(name) if bindings.get(name) == 1 else None

    def plugin_id(node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Name):
            node = value_of(node.id)
        if not isinstance(node, ast.Call):
            return None
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if callee != "Plugin" or any(k.arg is None for k in node.keywords):
            return None
        named = [k.value for k in node.keywords if k.arg == "name"]
        if named:
            value = named[0]
        elif node.args and not isinstance(node.args[0], ast.Starred):
            value = node.args[0]
        else:
            return None
        return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None

    if "PLUGINS" in bindings:
        listed = value_of("PLUGINS")
        if isinstance(listed, ast.Name):
            listed = value_of(listed.id)
        if not isinstance(listed, (ast.List, ast.Tuple)) or not listed.elts:
            return None
        ids = [plugin_id(item) for item in listed.elts]
    else:
        ids = [plugin_id(value_of("PLUGIN"))]
    return None if None in ids else tuple(ids)


# --------------------------------------------------------------------------- loading


def _module_name(path: Path) -> str:
    # Unique per file, so that two folders may both hold a "denoise.py".
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem if path.is_file() else path.name)
    return f"{_MODULE_PREFIX}{stem}_{digest}"


def load_module_file(path: str | os.PathLike) -> types.ModuleType:
    """Import a plugin file or package folder under a private module name.

    Raises
    ------
    PluginError
        With ``"<path>: <problem>"`` when it cannot be imported.
    """
    path = Path(path)
    init = path / "__init__.py" if path.is_dir() else path
    name = _module_name(path)
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(name, init)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import does: dataclasses and pickling inside
    # the plugin look their module up in sys.modules.
    sys.modules[name] = module
    dont_write = sys.dont_write_bytecode
    try:
        # No __pycache__ folders in plugin folders (the repository's, the user's).
        sys.dont_write_bytecode = True
        spec.loader.exec_module(module)
    except BaseException as exc:
        _forget_module(name)
        if isinstance(exc, (Exception, SystemExit)):
            raise PluginError(f"{path}: {_describe_exception(exc)}") from exc
        raise
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def _plugins_in(obj: Any, where: str) -> list[Plugin]:
    """The plugins an object provides: a Plugin, a sequence, a module with PLUGIN(S)."""
    if isinstance(obj, types.ModuleType):
        if hasattr(obj, "PLUGINS"):
            obj = getattr(obj, "PLUGINS")
            if isinstance(obj, Plugin) or not isinstance(obj, (list, tuple)):
                raise PluginError(f"{where}: PLUGINS must be a list or tuple of scalgui.plugins.Plugin")
        elif hasattr(obj, "PLUGIN"):
            obj = getattr(obj, "PLUGIN")
        else:
            raise PluginError(f"{where}: defines neither PLUGIN (a scalgui.plugins.Plugin) nor PLUGINS (a list of them)")
    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not items:
        raise PluginError(f"{where}: declares no plugins")
    for item in items:
        if not isinstance(item, Plugin):
            raise PluginError(f"{where}: expected a scalgui.plugins.Plugin, got {type(item).__name__}")
    return [dataclasses.replace(p, source=where) for p in items]


def load_plugins_from_file(path: str | os.PathLike) -> list[Plugin]:
    """The plugins a file or package folder declares (each with ``source`` set).

    Raises
    ------
    PluginError
        ``"<path>: <problem>"``.
    """
    path = Path(path)
    return _plugins_in(load_module_file(path), str(path))


# --------------------------------------------------------------------------- registry


class Registry:
    """Plugins by id, and the problems met while looking for them.

    Parameters
    ----------
    plugins : iterable of Plugin, optional
    problems : iterable of PluginProblem, optional
    import_timeout : float
        Seconds each plugin module or entry point may take to import (see
        :data:`IMPORT_TIMEOUT_S`).
    """

    def __init__(self, plugins: Iterable[Plugin] = (), problems: Iterable[PluginProblem] = (), *,
                 import_timeout: float = IMPORT_TIMEOUT_S) -> None:
        if not (math.isfinite(import_timeout) and import_timeout > 0):
            raise ValueError(f"import_timeout must be a positive number of seconds, not {import_timeout!r}")
        self._plugins: dict[str, Plugin] = {}
        self.problems: list[PluginProblem] = list(problems)
        self.import_timeout = float(import_timeout)
        for plugin in plugins:
            self.add(plugin)

    # ------------------------------------------------------------------ building
    @classmethod
    def discover(
        cls,
        *,
        folders: Iterable[str | os.PathLike] | None = None,
        entry_points: bool = True,
        import_timeout: float | None = None,
    ) -> "Registry":
        """Look everywhere (see the module's notes) and load what is found.

        Parameters
        ----------
        folders : iterable of path, optional
            Folders to search instead of the built-in, ``SCALGUI_PLUGIN_PATH`` and user
            folders.
        entry_points : bool
            Also load installed packages' ``scalgui.plugins`` entry points.
        import_timeout : float, optional
            Seconds each plugin may take to import; default: :data:`IMPORT_TIMEOUT_VAR`'s
            value, else :data:`IMPORT_TIMEOUT_S`.
        """
        problems = []
        if import_timeout is None:
            import_timeout, unusable = import_timeout_from_env()
            if unusable is not None:
                problems.append(PluginProblem(IMPORT_TIMEOUT_VAR, unusable))
        registry = cls(problems=problems, import_timeout=import_timeout)
        paths = [Path(f) for f in folders] if folders is not None else [p for _, p in search_folders()]
        for folder in paths:
            registry.add_folder(folder)
        if entry_points:
            registry.add_entry_points()
        return registry

    def add(self, plugin: Plugin, *, replace: bool = False) -> bool:
        """Register ``plugin``. A second plugin with a taken id is recorded as a problem
        and skipped (returns False) unless ``replace`` is True."""
        if not isinstance(plugin, Plugin):
            raise TypeError(f"expected a Plugin, got {type(plugin).__name__}")
        if plugin.name in self._plugins and not replace:
            self._reject_duplicate(plugin.name, plugin.source or plugin.name)
            return False
        self._plugins[plugin.name] = plugin
        return True

    def _reject_duplicate(self, name: str, source: str) -> None:
        first = self._plugins[name].source or "an earlier plugin"
        self.problems.append(PluginProblem(source, f"plugin id {name!r} is already provided by {first}", (name,)))

    def add_file(self, path: str | os.PathLike) -> list[Plugin]:
        """Load one plugin file or package folder; a failure becomes a problem.

        It is not imported when any user could have written it, when it is not a regular
        file or too big, or when every id its source declares is taken (each reported as
        a duplicate); otherwise it imports on a thread of its own within
        :attr:`import_timeout` (see the module's notes).
        """
        path = Path(path)
        where = str(path)
        unsafe = _module_open_to_everyone(path)
        if unsafe is not None:
            self.problems.append(PluginProblem(where, unsafe))
            return []
        try:
            source = _read_source(path)
        except PluginError as exc:
            self.problems.append(PluginProblem(where, str(exc).removeprefix(f"{where}: ")))
            return []
        ids = declared_ids(source)
        if ids is not None and all(name in self._plugins for name in ids):
            for name in ids:
                self._reject_duplicate(name, where)
            return []
        dont_write = sys.dont_write_bytecode
        try:
            plugins, problem = guarded_import(where, lambda: load_plugins_from_file(path), self.import_timeout,
                                               module_name=_module_name(path), own_code=path)
        finally:
            # An import left running never gets to put back the flag it set.
            sys.dont_write_bytecode = dont_write
        if problem is not None:
            self.problems.append(PluginProblem(where, problem, ids or ()))
            return []
        return [p for p in plugins if self.add(p)]

    def add_folder(self, folder: str | os.PathLike) -> list[Plugin]:
        """Load every plugin module in ``folder`` (a missing folder adds nothing; one that
        any user could have written to is reported and not loaded)."""
        folder = Path(folder)
        if not folder.is_dir():
            return []
        modules = plugin_modules(folder)
        unsafe = _open_to_everyone(folder)
        if unsafe is not None:
            # The modules' names, so that asking for one of them says why it is missing.
            self.problems.append(PluginProblem(str(folder), unsafe, tuple(m.stem for m in modules)))
            return []
        if len(modules) == MAX_MODULES_PER_FOLDER:
            found = count_plugin_modules(folder)
            if found > MAX_MODULES_PER_FOLDER:
                self.problems.append(PluginProblem(str(folder), (
                    f"holds {found} plugin modules; only the first {MAX_MODULES_PER_FOLDER} by name were looked at")))
        loaded = []
        for path in modules:
            loaded.extend(self.add_file(path))
        return loaded

    def add_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[Plugin]:
        """Load installed packages' entry points of ``group``."""
        from importlib.metadata import entry_points

        loaded = []
        try:
            points = entry_points(group=group)
        except Exception as exc:  # noqa: BLE001 - broken package metadata must not stop the app
            self.problems.append(PluginProblem(f"entry points '{group}'", _describe_exception(exc)))
            return loaded
        for point in points:
            dist = getattr(getattr(point, "dist", None), "name", None)
            where = f"entry point {point.name} = {point.value}" + (f" ({dist})" if dist else "")

            def load(point=point, where=where) -> list[Plugin]:
                obj = point.load()
                if callable(obj) and not isinstance(obj, (Plugin, types.ModuleType)):
                    obj = obj()
                return _plugins_in(obj, where)

            # Not stopped past its limit (no own_code): an installed package's import is
            # left to finish rather than broken off half-way.
            plugins, problem = guarded_import(where, load, self.import_timeout)
            if problem is not None:
                self.problems.append(PluginProblem(where, problem, (point.name,)))
                continue
            loaded.extend(p for p in plugins if self.add(p))
        return loaded

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> Plugin:
        """The plugin with id ``name``.

        Raises
        ------
        PluginError
            No such plugin (with the load problem when a file meant to provide it failed).
        """
        plugin = self._plugins.get(name)
        if plugin is not None:
            return plugin
        for problem in self.problems:
            if name in problem.names or Path(problem.source).stem == name:
                raise PluginError(f"plugin {name!r} could not be loaded: {problem}", name)
        known = ", ".join(sorted(self._plugins)) or "none"
        raise PluginError(f"no plugin named {name!r} (available: {known})", name)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[Plugin]:
        """Plugins sorted by title (menu order)."""
        return iter(sorted(self._plugins.values(), key=lambda p: (p.title.lower(), p.name)))

    def __len__(self) -> int:
        return len(self._plugins)

    @property
    def names(self) -> list[str]:
        """Plugin ids, sorted."""
        return sorted(self._plugins)

    def __repr__(self) -> str:
        return f"Registry(plugins={self.names}, problems={len(self.problems)})"


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry(*, refresh: bool = False) -> Registry:
    """The process-wide registry, discovered on first use (``refresh`` looks again)."""
    global _default
    with _default_lock:
        if _default is None or refresh:
            _default = Registry.discover()
        return _default


def set_default_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (``None``: discover again on next use); returns
    the previous one. For tests and embedding applications."""
    global _default
    with _default_lock:
        previous, _default = _default, registry
    return previous
