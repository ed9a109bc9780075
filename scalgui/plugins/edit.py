"""A plugin application as an edit: data in the document's undoable edit list.

A :class:`PluginEdit` names a plugin by id, records every parameter value and the
selection (a shape in seconds and Hz, or ``None`` for everything). Like the other edits it
holds no pixels and no magnitudes: the host re-runs the plugin whenever the target is
rasterised, on whichever frame it is working in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..dsp.edits import TimeRange

__all__ = ["PluginEdit", "EVERYWHERE"]

#: The shape of an edit without a selection: all times and frequencies, no feather.
EVERYWHERE = TimeRange(-math.inf, math.inf, feather_s=0.0)


def _frozen(value: Any) -> Any:
    # Lists (a range typed as [lo, hi]) become tuples so that the edit stays hashable.
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class PluginEdit:
    """Run plugin ``plugin`` with ``params`` on ``selection`` (one undo step).

    Parameters
    ----------
    plugin : str
        The plugin's id (:attr:`Plugin.name`).
    params : mapping or tuple of (name, value)
        Parameter values; stored as a sorted tuple of pairs so the edit is hashable.
        :meth:`create` fills in the defaults and validates them against the declaration.
    selection : Shape or None
        Where it acts, with feathered edges; ``None`` means everywhere.

    Notes
    -----
    ``action`` is ``"plugin"`` (the dsp edits' actions are gain, erase, restore, paint),
    and :attr:`shape` is the selection or :data:`EVERYWHERE`, so code that draws where
    edits act (``edit_weights``) or finds the spans they touch (``touched_spans``)
    handles plugin edits as it handles the others.
    """

    plugin: str
    params: tuple[tuple[str, Any], ...] = ()
    selection: Any = None

    action: ClassVar[str] = "plugin"

    def __post_init__(self) -> None:
        if not isinstance(self.plugin, str) or not self.plugin:
            raise ValueError(f"a plugin edit needs a plugin id, got {self.plugin!r}")
        items = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), _frozen(v)) for k, v in items)))
        if self.selection is not None and not (hasattr(self.selection, "span") and hasattr(self.selection, "weights")):
            raise ValueError(f"selection must be a shape of scalgui.dsp.edits or None, got {self.selection!r}")

    @classmethod
    def create(cls, plugin, params: Mapping[str, Any] | None = None, selection: Any = None) -> "PluginEdit":
        """A validated edit with every parameter recorded.

        Parameters
        ----------
        plugin : Plugin
            The declaration (from a :class:`~scalgui.plugins.discovery.Registry`).
        params : mapping, optional
            Values by name; strings are parsed; missing ones take their defaults.
        selection : Shape or None

        Raises
        ------
        PluginError
            Unknown parameter names or invalid values.
        """
        return cls(plugin.name, tuple(plugin.resolve(params).items()), selection)

    @property
    def values(self) -> dict[str, Any]:
        """The parameter values as a dict."""
        return dict(self.params)

    @property
    def shape(self):
        """The selection, or :data:`EVERYWHERE` when there is none."""
        return self.selection if self.selection is not None else EVERYWHERE

    def span(self) -> tuple[float, float]:
        """Time span in seconds the edit can change: the selection's, or all time."""
        return self.shape.span()

    def describe(self, plugin=None) -> str:
        """Short text for the history: ``"Transpose (semitones 12 semitones)"``."""
        title = plugin.title if plugin is not None else self.plugin
        parts = []
        for name, value in self.params:
            try:
                text = plugin.param(name).format(value) if plugin is not None else str(value)
            except KeyError:
                text = str(value)
            parts.append(f"{name} {text}")
        where = "" if self.selection is None else " on selection"
        return f"{title} ({', '.join(parts)}){where}" if parts else f"{title}{where}"
