"""VST3 hosting through pedalboard: finding, loading and describing plugins. No Qt.

On Linux pedalboard loads VST3 only (no LV2); on macOS it also loads Audio Units, which
scalgui does not offer (a chain must mean the same on every platform). A plugin's
parameters are shown generically from ``plugin.parameters``: pedalboard probes each one
for its type (float, bool, or a set of strings), range and unit, and those become
:class:`~scalgui.audio.effect_registry.ParamSpec` rows like a built-in effect's.

Loading runs the plugin's own code in this process: a plugin that raises gives a
:class:`~scalgui.audio.errors.PluginLoadError`, but one that crashes the process cannot be
caught from Python. So, as in a DAW, a plugin is loaded only from a folder the user trusts
(:func:`trusted_vst3_folders`: the platform's standard VST3 folders, those named in
``$SCALGUI_VST3_PATH`` and those added in the user's settings) or when the user allowed that
very file in this session (:func:`allow_vst3`: the command line's ``--allow-plugin``, the
editor after asking). A project or preset from someone else cannot make scalgui load a
plugin from its own folder: :func:`load_vst3` refuses it with
:class:`~scalgui.audio.errors.UntrustedPluginError` before the file is opened.

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
from .errors import BadEffectParameter, PluginLoadError, UntrustedPluginError

__all__ = [
    "ENV_VAR",
    "VST3_FOLDERS",
    "allow_vst3",
    "allowed_vst3",
    "find_vst3_plugins",
    "forget_allowed_vst3",
    "is_trusted_vst3",
    "load_vst3",
    "plugin_label",
    "set_main_thread_runner",
    "set_vst3_parameters",
    "trusted_vst3_folders",
    "untrusted_vst3",
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

#: Environment variable naming more trusted VST3 folders (``os.pathsep``-separated).
ENV_VAR = "SCALGUI_VST3_PATH"


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


def trusted_vst3_folders() -> list[Path]:
    """The folders VST3 plugins load from without asking: the standard ones
    (:func:`vst3_folders`), then ``$SCALGUI_VST3_PATH``'s, then the user's settings'
    (:func:`scalgui.user_settings.user_vst3_folders`), without repeats."""
    from scalgui.user_settings import user_vst3_folders

    env = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    folders: list[Path] = []
    for folder in (*vst3_folders(), *env, *user_vst3_folders()):
        if folder not in folders:
            folders.append(folder)
    return folders


_allowed: set[str] = set()
_allowed_lock = threading.Lock()


def _real(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(os.fspath(path))))


def allow_vst3(path: str | os.PathLike) -> Path:
    """Trust the plugin file (or bundle) at ``path`` for the rest of this process, wherever
    it is: what ``--allow-plugin PATH`` and the editor's "Load Plugin" answer do. The file
    itself is trusted (its real path, links resolved), not its folder."""
    with _allowed_lock:
        _allowed.add(_real(path))
    return Path(path)


def allowed_vst3() -> list[Path]:
    """The files trusted with :func:`allow_vst3` in this process (real paths), sorted."""
    with _allowed_lock:
        return sorted(Path(p) for p in _allowed)


def forget_allowed_vst3() -> None:
    """Forget every :func:`allow_vst3` of this process (for tests and embedders)."""
    with _allowed_lock:
        _allowed.clear()


def _inside(real: str, folder: str) -> bool:
    try:
        return real != folder and os.path.commonpath([real, folder]) == folder
    except ValueError:  # another drive (Windows)
        return False


def is_trusted_vst3(path: str | os.PathLike) -> bool:
    """Whether the plugin at ``path`` may be loaded without asking.

    True when its real path (links and ``..`` resolved) lies inside the real path of a
    :func:`trusted_vst3_folders` folder, when it is a plugin found in one of them (a link
    the user put there to a plugin elsewhere), or when it was allowed with
    :func:`allow_vst3`. Only names are compared: nothing of the plugin is read.
    """
    real = _real(path)
    with _allowed_lock:
        if real in _allowed:
            return True
    folders = trusted_vst3_folders()
    if any(_inside(real, _real(folder)) for folder in folders):
        return True
    return any(_real(found) == real for found in find_vst3_plugins(folders))


def untrusted_vst3(chains) -> list[Path]:
    """The VST3 files that ``chains`` (EffectChain objects, or effect specs) would load and
    that are not trusted (:func:`is_trusted_vst3`), in order, without repeats. Bypassed
    effects load nothing and files that do not exist run nothing: both are left out (the
    latter fail with "no such file" when the chain runs)."""
    found: list[Path] = []
    for item in chains:
        for spec in getattr(item, "effects", (item,)):
            if (spec.is_vst3 and not spec.bypass and spec.path and os.path.lexists(spec.path)
                    and not is_trusted_vst3(spec.path)):
                path = Path(spec.path)
                if path not in found:
                    found.append(path)
    return found


def find_vst3_plugins(folders: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """``.vst3`` bundles and files under ``folders`` (default: :func:`trusted_vst3_folders`).

    Vendor sub-folders are searched too; a ``.vst3`` bundle is not searched inside.
    Folders that do not exist or cannot be read are skipped. Sorted by name.
    """
    found: dict[str, Path] = {}
    stack = [Path(f) for f in (trusted_vst3_folders() if folders is None else folders)]
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
    UntrustedPluginError
        The plugin is outside the trusted folders and was not allowed
        (:func:`is_trusted_vst3`); nothing of it was read.
    PluginLoadError
        The path does not exist (said before whether it is trusted), is not a ``.vst3``, or
        pedalboard cannot scan or load it;
        the message names the path and pedalboard's reason.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise PluginLoadError("no such file or folder", path=path)
    if not is_trusted_vst3(path):
        raise UntrustedPluginError(path)
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
