"""VST3 hosting through pedalboard: finding, loading and describing plugins. No Qt.

On Linux pedalboard loads VST3 only (no LV2); on macOS it also loads Audio Units, which
scalgui does not offer (a chain must mean the same on every platform). A plugin's
parameters are shown generically from ``plugin.parameters``: pedalboard probes each one
for its type (float, bool, or a set of strings), range and unit, and those become
:class:`~scalgui.audio.effect_registry.ParamSpec` rows like a built-in effect's.

Loading runs the plugin's own code in this process: a plugin that raises gives a
:class:`~scalgui.audio.errors.PluginLoadError`, but one that crashes the process cannot be
caught from Python.

pedalboard makes (and resets) VST3 plugins on the main thread only, while the editor runs
effect chains on worker threads: :func:`set_main_thread_runner` lets a GUI hand the making
of a plugin to its main thread; processing may then run on the worker.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .effect_registry import ParamSpec
from .errors import BadEffectParameter, PluginLoadError

__all__ = [
    "VST3_FOLDERS",
    "find_vst3_plugins",
    "load_vst3",
    "plugin_label",
    "set_main_thread_runner",
    "set_vst3_parameters",
    "vst3_folders",
    "vst3_parameter_specs",
    "vst3_parameter_values",
]

#: The standard VST3 folders per platform (``sys.platform`` prefix), as the VST3 SDK
#: documents them; ``~`` and ``%VAR%`` are expanded by :func:`vst3_folders`.
VST3_FOLDERS: Mapping[str, tuple[str, ...]] = {
    "linux": ("~/.vst3", "/usr/lib/vst3", "/usr/local/lib/vst3"),
    "darwin": ("~/Library/Audio/Plug-Ins/VST3", "/Library/Audio/Plug-Ins/VST3",
               "/Network/Library/Audio/Plug-Ins/VST3"),
    "win32": ("%LOCALAPPDATA%\\Programs\\Common\\VST3", "%COMMONPROGRAMFILES%\\VST3",
              "%COMMONPROGRAMFILES(X86)%\\VST3"),
}


def vst3_folders(platform: str | None = None, environ: Mapping[str, str] | None = None) -> list[Path]:
    """The standard VST3 folders of ``platform`` (default: this one), expanded.

    Parameters
    ----------
    platform : str, optional
        A ``sys.platform`` value; other Unixes get the Linux folders.
    environ : mapping, optional
        Environment for ``%VAR%`` and ``~`` (default ``os.environ``); a Windows folder
        whose variable is unset is left out.
    """
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    key = "darwin" if platform.startswith("darwin") else "win32" if platform.startswith(("win", "cygwin")) else "linux"
    home = environ.get("HOME") or environ.get("USERPROFILE") or str(Path.home())
    folders = []
    for template in VST3_FOLDERS[key]:
        if template.startswith("~"):
            folders.append(Path(home + template[1:]))
            continue
        if "%" in template:
            name, _, rest = template[1:].partition("%")
            if not environ.get(name):
                continue
            template = environ[name] + rest
        folders.append(Path(template))
    return folders


def find_vst3_plugins(folders: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """``.vst3`` bundles and files under ``folders`` (default: :func:`vst3_folders`).

    Vendor sub-folders are searched too; a ``.vst3`` bundle is not searched inside.
    Folders that do not exist or cannot be read are skipped. Sorted by name.
    """
    found: dict[str, Path] = {}
    stack = [Path(f) for f in (vst3_folders() if folders is None else folders)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if path.suffix.lower() == ".vst3":
                found.setdefault(os.path.realpath(path), path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(path)
    return sorted(found.values(), key=lambda p: (p.name.lower(), str(p)))


def plugin_label(path: str | os.PathLike, plugin_name: str | None = None) -> str:
    """How a plugin is named in the chain and in messages: ``"VST3 'Name'"``."""
    name = plugin_name or Path(path).stem
    return f"VST3 '{name}'"


_main_thread_runner: Callable[..., Any] | None = None


def set_main_thread_runner(runner: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """Install how :func:`load_vst3` makes a plugin when called off the main thread.

    Parameters
    ----------
    runner : callable or None
        ``runner(fn, *args)`` runs ``fn(*args)`` on the main thread and returns its result
        (raising what it raised); ``None`` makes plugins where asked (pedalboard then
        refuses off the main thread, with its own message).

    Returns
    -------
    callable or None
        The runner installed before.
    """
    global _main_thread_runner
    previous, _main_thread_runner = _main_thread_runner, runner
    return previous


def load_vst3(path: str | os.PathLike, plugin_name: str | None = None):
    """Load the VST3 plugin at ``path`` (a ``.vst3`` bundle or file).

    Parameters
    ----------
    path : str or os.PathLike
    plugin_name : str, optional
        Which plugin of a bundle that holds several (pedalboard's ``plugin_name``).

    Returns
    -------
    pedalboard.VST3Plugin

    Raises
    ------
    PluginLoadError
        The path does not exist, is not a ``.vst3``, or pedalboard cannot scan or load it;
        the message names the path and pedalboard's reason.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise PluginLoadError("no such file or folder", path=path)
    if path.suffix.lower() != ".vst3":
        raise PluginLoadError(f"not a VST3 plugin: expected a .vst3 bundle or file, got '{path.suffix or path.name}'",
                              path=path)
    if not os.access(path, os.R_OK):
        raise PluginLoadError("permission denied", path=path)
    runner = _main_thread_runner
    if runner is not None and threading.current_thread() is not threading.main_thread():
        return runner(_make_vst3, path, plugin_name)
    return _make_vst3(path, plugin_name)


def _make_vst3(path: Path, plugin_name: str | None):
    try:
        from pedalboard import VST3Plugin

        return VST3Plugin(str(path), plugin_name=plugin_name)
    except (ImportError, RuntimeError, ValueError, OSError) as exc:
        # pedalboard says ImportError for "not a plugin" / "scan failure" and ValueError for
        # a bundle holding several plugins without plugin_name: pass its words on.
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PluginLoadError(reason.replace(f" {path}:", ":").replace(f" {path}", ""), path=path) from None


def _float_or(value, fallback):
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback


def vst3_parameter_specs(plugin) -> tuple[ParamSpec, ...]:
    """A plugin's parameters as :class:`ParamSpec` rows, for a generic form.

    Floats keep pedalboard's probed range and unit; booleans become check boxes; a set of
    strings becomes a choice. The default is the plugin's current value.
    """
    specs = []
    for name, parameter in plugin.parameters.items():
        value = getattr(plugin, name)
        kind = getattr(parameter, "type", float)
        label = str(getattr(parameter, "name", name) or name)
        unit = str(getattr(parameter, "label", "") or "")
        if kind is bool:
            specs.append(ParamSpec(name, "bool", bool(value), label=label))
        elif kind is float:
            lo = _float_or(getattr(parameter, "min_value", None), 0.0)
            hi = _float_or(getattr(parameter, "max_value", None), 1.0)
            lo, hi = min(lo, hi), max(lo, hi)
            step = _float_or(getattr(parameter, "step_size", None) or getattr(parameter, "approximate_step_size", None),
                             (hi - lo) / 100 if hi > lo else 0.01)
            specs.append(ParamSpec(name, "float", _float_or(value, lo), lo, hi if hi > lo else lo + 1.0, unit, label,
                                   step=step or 0.01))
        else:
            choices = tuple(str(v) for v in (getattr(parameter, "valid_values", None) or ()))
            if choices:
                specs.append(ParamSpec(name, "choice", str(value), unit=unit, label=label, choices=choices))
            else:
                specs.append(ParamSpec(name, "text", str(value), unit=unit, label=label))
    return tuple(specs)


def vst3_parameter_values(plugin) -> dict[str, Any]:
    """The current value of every parameter (float, bool or str), by Python name."""
    values = {}
    for name in plugin.parameters:
        value = getattr(plugin, name)
        values[name] = value if isinstance(value, (bool, str)) else _float_or(value, str(value))
    return values


def set_vst3_parameters(plugin, params: Mapping[str, Any], *, label: str = "VST3 plugin") -> None:
    """Set parameters by Python name; an unknown name or a refused value raises
    :class:`BadEffectParameter` naming the plugin, the parameter and pedalboard's reason."""
    known = plugin.parameters
    for name, value in params.items():
        if name not in known:
            raise BadEffectParameter(f"has no parameter {name!r}; it has: {', '.join(known) or 'none'}", effect=label)
        try:
            setattr(plugin, name, value)
        except (ValueError, TypeError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())
            raise BadEffectParameter(f"{name} = {value!r} refused: {reason}", effect=label) from None
