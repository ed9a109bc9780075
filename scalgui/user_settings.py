"""The user's own settings that the editor and the command line share. No Qt.

One small JSON file in the per-user configuration folder (platformdirs'
``user_config_dir("scalgui")/settings.json``, e.g. ``~/.config/scalgui/settings.json``;
``$SCALGUI_CONFIG_DIR`` overrides the folder)::

    {"vst3_folders": ["/home/me/plugins/vst3"]}

``vst3_folders`` are the folders the user trusts VST3 plugins from, beside the standard
ones (:mod:`scalgui.audio.vst3`). The editor's Qt settings (window geometry, recent files,
autosave interval) stay in QSettings: only what a headless command must read too lives
here. A damaged or foreign file is read as no settings (and reported once on the
``scalgui.user_settings`` logger), never trusted in part.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["ENV_VAR", "MAX_BYTES", "read_settings", "settings_path", "user_vst3_folders", "write_settings"]

log = logging.getLogger(__name__)

ENV_VAR = "SCALGUI_CONFIG_DIR"
#: A settings file larger than this is not read (it holds a few folder names).
MAX_BYTES = 1 << 20
_KNOWN = {"vst3_folders": list}


def settings_path() -> Path:
    """Where the settings file is (it need not exist)."""
    folder = os.environ.get(ENV_VAR)
    if folder:
        return Path(folder) / "settings.json"
    import platformdirs

    return Path(platformdirs.user_config_dir("scalgui", appauthor=False)) / "settings.json"


def read_settings() -> dict:
    """The settings as a dict with the known keys only; ``{}`` when there is no file or it
    cannot be used (not a regular file, too large, not JSON, wrong types)."""
    from .regular_files import open_regular_file
    from .safe_json import loads_bounded

    path = settings_path()
    try:
        if not os.path.lexists(path):
            return {}
        with open_regular_file(path) as handle:
            raw = handle.read(MAX_BYTES + 1)
        data = loads_bounded(raw, max_bytes=MAX_BYTES)
        if not isinstance(data, dict):
            raise ValueError("the top level is not an object")
        settings = {}
        for key, kind in _KNOWN.items():
            if key in data:
                value = data[key]
                if not isinstance(value, kind) or not all(isinstance(v, str) and v for v in value):
                    raise ValueError(f"{key} must be a list of folder names")
                settings[key] = value
        return settings
    except (OSError, ValueError) as exc:
        log.warning("ignoring the settings file '%s': %s", path, " ".join(str(exc).split()))
        return {}


def write_settings(settings: dict) -> Path:
    """Replace the settings file (atomically) with ``settings`` (known keys only)."""
    from .atomic import write_atomic

    unknown = set(settings) - set(_KNOWN)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings, indent=2) + "\n"
    return write_atomic(path, lambda handle: handle.write(text))


def user_vst3_folders() -> list[Path]:
    """The VST3 folders the user added, in the order given (``~`` expanded)."""
    return [Path(p).expanduser() for p in read_settings().get("vst3_folders", [])]
