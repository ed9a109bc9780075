"""Plugins: magnitude-domain transforms declared as data, discovered at run time.

- :mod:`.api` — what a plugin declares (:class:`Plugin`, :class:`Param`) and what it is
  given when it runs (:class:`PluginContext`);
- :mod:`.edit` — :class:`PluginEdit`, a plugin application in a document's edit list;
- :mod:`.host` — running plugins and replaying edit lists that mix them with the other
  edits (:func:`apply_edit_list`);
- :mod:`.discovery` — finding plugins in the built-in folder, the user's folder,
  ``SCALGUI_PLUGIN_PATH`` and installed packages' entry points (:class:`Registry`).

This package imports no Qt: the editor builds its menu and forms from these declarations.
"""
from .api import KINDS, Param, Plugin, PluginCancelled, PluginContext, PluginError, PluginWarning, plugin_run
from .edit import EVERYWHERE, PluginEdit
from .host import apply_edit_list, edit_list_targets, has_plugin_edits, run_plugin, selection_weights
from .discovery import (
    ENTRY_POINT_GROUP,
    ENV_VAR,
    PluginProblem,
    Registry,
    builtin_dir,
    default_registry,
    search_folders,
    set_default_registry,
    user_dir,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "EVERYWHERE",
    "KINDS",
    "Param",
    "Plugin",
    "PluginCancelled",
    "PluginContext",
    "PluginEdit",
    "PluginError",
    "PluginProblem",
    "PluginWarning",
    "Registry",
    "apply_edit_list",
    "builtin_dir",
    "default_registry",
    "edit_list_targets",
    "has_plugin_edits",
    "plugin_run",
    "run_plugin",
    "search_folders",
    "selection_weights",
    "set_default_registry",
    "user_dir",
]
