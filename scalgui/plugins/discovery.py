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
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
import site
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .api import Plugin, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "PluginProblem",
    "Registry",
    "builtin_dir",
    "default_registry",
    "load_module_file",
    "search_folders",
    "set_default_registry",
    "user_dir",
]

ENTRY_POINT_GROUP = "scalgui.plugins"
ENV_VAR = "SCALGUI_PLUGIN_PATH"
_MODULE_PREFIX = "scalgui_plugin_"


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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return f"syntax error{where}: {exc.msg}"
    if isinstance(exc, ImportError):
        return f"import failed: {type(exc).__name__}: {_one_line(exc)}"
    if isinstance(exc, SystemExit):
        return f"called exit({exc.code}) while loading"
    return f"{type(exc).__name__}: {_one_line(exc) or '(no message)'}"


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


def plugin_modules(folder: Path) -> list[Path]:
    """Plugin modules in ``folder``: ``*.py`` files and packages, not starting with ``_`` or ``.``."""
    if not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            out.append(entry)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            out.append(entry)
    return out


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
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise PluginError(f"{path}: {_describe_exception(exc)}") from exc
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
    """

    def __init__(self, plugins: Iterable[Plugin] = (), problems: Iterable[PluginProblem] = ()) -> None:
        self._plugins: dict[str, Plugin] = {}
        self.problems: list[PluginProblem] = list(problems)
        for plugin in plugins:
            self.add(plugin)

    # ------------------------------------------------------------------ building
    @classmethod
    def discover(
        cls,
        *,
        folders: Iterable[str | os.PathLike] | None = None,
        entry_points: bool = True,
    ) -> "Registry":
        """Look everywhere (see the module's notes) and load what is found.

        Parameters
        ----------
        folders : iterable of path, optional
            Folders to search instead of the built-in, ``SCALGUI_PLUGIN_PATH`` and user
            folders.
        entry_points : bool
            Also load installed packages' ``scalgui.plugins`` entry points.
        """
        registry = cls()
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
        existing = self._plugins.get(plugin.name)
        if existing is not None and not replace:
            first = existing.source or "an earlier plugin"
            self.problems.append(
                PluginProblem(plugin.source or plugin.name, f"plugin id {plugin.name!r} is already provided by {first}",
                              (plugin.name,))
            )
            return False
        self._plugins[plugin.name] = plugin
        return True

    def add_file(self, path: str | os.PathLike) -> list[Plugin]:
        """Load one plugin file or package folder; a failure becomes a problem."""
        try:
            plugins = load_plugins_from_file(path)
        except PluginError as exc:
            self.problems.append(PluginProblem(str(path), str(exc).removeprefix(f"{path}: ")))
            return []
        return [p for p in plugins if self.add(p)]

    def add_folder(self, folder: str | os.PathLike) -> list[Plugin]:
        """Load every plugin module in ``folder`` (a missing folder adds nothing)."""
        loaded = []
        for path in plugin_modules(Path(folder)):
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
            try:
                obj = point.load()
                if callable(obj) and not isinstance(obj, (Plugin, types.ModuleType)):
                    obj = obj()
                plugins = _plugins_in(obj, where)
            except PluginError as exc:
                self.problems.append(PluginProblem(where, str(exc).removeprefix(f"{where}: "), (point.name,)))
                continue
            except (Exception, SystemExit) as exc:
                self.problems.append(PluginProblem(where, _describe_exception(exc), (point.name,)))
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
