"""Edits and settings as the JSON of a project's manifest (see :mod:`scalgui.app.project`,
which re-exports :func:`edit_to_json` and :func:`edit_from_json`). No Qt.

Reading checks every object's type tag and fields, so that a hand-edited or hostile
manifest gives a ``ValueError`` saying where it is wrong instead of a crash.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from ..dsp.edits import Band, Combined, Edit, Harmonic, Lasso, Rectangle, Stroke, TimeRange
from ..plugins import PluginEdit

__all__ = ["MAX_SHAPE_POINTS", "edit_from_json", "edit_to_json"]

_SHAPES = {cls.__name__: cls for cls in (Rectangle, TimeRange, Band, Lasso, Harmonic, Stroke, Combined)}
#: Most points of one lasso or stroke. The editor adds a point per pixel of travel, so
#: this is a scribble across a wide screen five times over; a shape's weights cost
#: time and memory in proportion to its points times the coefficients it spans
#: (measured: a 20,000-point zig-zag lasso on half a second took 1.6 GB).
MAX_SHAPE_POINTS = 10_000


def _check_points(name: str, points, where: str) -> None:
    if isinstance(points, (list, tuple)) and len(points) > MAX_SHAPE_POINTS:
        raise ValueError(f"{where}: a {name} of {len(points)} points (at most {MAX_SHAPE_POINTS})")


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
    _check_points(name, getattr(shape, "points", None), "a shape")
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
    _check_points(name, data.get("points"), where)
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
