"""Effect chains as plain data: build them, run them on audio, save and load them as presets.

A chain is an ordered tuple of :class:`EffectSpec` (an effect's type, its parameters,
a bypass flag) and a ``placement``: ``"source"`` chains run before analysis (the
scalogram shows the processed sound), ``"render"`` chains run after resynthesis (on what
is played and exported). pedalboard's effect objects cannot be pickled or copied, so
they never live in the model: a chain is rebuilt into pedalboard objects each time it
runs, which also means a chain can be stored, compared, undone and sent to a worker
thread like any other value.

Each effect runs as its own pedalboard call, so an error names the effect that failed,
and steps pedalboard cannot express (an un-normalised convolution) are chained in our
own code. A chain never changes its input: it returns a new array of the same shape, or
raises an :class:`~scalgui.audio.errors.EffectError` subclass and returns nothing.

>>> chain = EffectChain("render", (effect("HighpassFilter", cutoff_frequency_hz=80.0),
...                                effect("Reverb", room_size=0.7)))
>>> out = apply_chain(chain, samples, 44100)                     # doctest: +SKIP
>>> save_preset("warm-room.json", [chain])                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .effect_registry import EFFECTS, ParamSpec
from .errors import (
    AudioError,
    BadEffectParameter,
    EffectError,
    EffectProcessingError,
    PresetError,
)

__all__ = [
    "PLACEMENTS",
    "PRESET_FORMAT",
    "PRESET_VERSION",
    "VST3",
    "EffectChain",
    "EffectSpec",
    "apply_chain",
    "apply_effect",
    "chains_from_dict",
    "chains_to_dict",
    "effect",
    "load_preset",
    "save_preset",
    "validate_params",
    "vst3_effect",
]

#: Largest preset file read, in bytes: a chain of every effect with every parameter is a
#: few kilobytes.
PRESET_MAX_BYTES = 1 << 20

#: Where a chain runs: before analysis, or after resynthesis.
PLACEMENTS = ("source", "render")
#: The ``type`` of an external VST3 plugin in a chain.
VST3 = "VST3"
#: ``format`` and ``version`` of a preset file (see :func:`save_preset`).
PRESET_FORMAT = "scalgui-effects"
PRESET_VERSION = 1

#: pedalboard's convolution scales the impulse response h to 0.125 / max over channels of
#: ||h|| (JUCE's normalisation, -18 dB of headroom), measured to 1e-7 here.
_JUCE_IR_SCALE = 0.125
_BUFFER_FRAMES = 8192


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class EffectSpec:
    """One effect in a chain: what it is, its settings, and whether it is bypassed.

    Build with :func:`effect` or :func:`vst3_effect`, which check the parameters.

    Attributes
    ----------
    type : str
        A built-in effect's pedalboard class name (``"Reverb"``; see
        :data:`~scalgui.audio.effect_registry.EFFECTS`) or ``"VST3"``.
    params : Mapping[str, float | bool | str | None]
        Every parameter of a built-in effect (defaults filled in), in the registry's units
        (dB, Hz, ms, s, semitones); for a VST3 plugin, the parameters set on it by
        pedalboard's Python names (the others keep the plugin's defaults). Read-only.
    bypass : bool
        A bypassed effect stays in the chain but does not run.
    path : str or None
        The VST3 plugin's file (VST3 only).
    plugin_name : str or None
        Which plugin of a VST3 bundle holding several (VST3 only).
    """

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    bypass: bool = False
    path: str | None = None
    plugin_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "bypass", bool(self.bypass))
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))

    @property
    def is_vst3(self) -> bool:
        return self.type == VST3

    @property
    def label(self) -> str:
        """``"Reverb"`` or ``"VST3 'Name'"``: how messages and lists name it."""
        if self.is_vst3:
            from .vst3 import plugin_label

            return plugin_label(self.path or "?", self.plugin_name)
        return self.type

    def with_params(self, **changes: Any) -> "EffectSpec":
        """A copy with some parameters changed (checked for a built-in effect)."""
        params = {**self.params, **changes}
        if not self.is_vst3:
            params = validate_params(self.type, params)
        return EffectSpec(self.type, params, self.bypass, self.path, self.plugin_name)

    def with_bypass(self, bypass: bool = True) -> "EffectSpec":
        return EffectSpec(self.type, self.params, bool(bypass), self.path, self.plugin_name)

    def to_dict(self) -> dict:
        """The preset form: ``{"type", "bypass", "params"}`` (+ ``"path"``, ``"plugin_name"`` for VST3)."""
        data: dict[str, Any] = {"type": self.type, "bypass": self.bypass}
        if self.is_vst3:
            data["path"] = self.path
            data["plugin_name"] = self.plugin_name
        data["params"] = dict(self.params)
        return data


@dataclass(frozen=True)
class EffectChain:
    """An ordered chain of effects and where it runs.

    Chains are values: the methods return new chains.

    Attributes
    ----------
    placement : {"source", "render"}
        ``"source"``: before analysis (the editor re-analyses when it changes; edits, in
        seconds and Hz, are kept). ``"render"``: after resynthesis, on what is played and
        exported.
    effects : tuple of EffectSpec
        In processing order.
    """

    placement: str = "render"
    effects: tuple[EffectSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        effects = tuple(self.effects)
        for spec in effects:
            if not isinstance(spec, EffectSpec):
                raise TypeError(f"a chain holds EffectSpec objects, got {type(spec).__name__}")
        object.__setattr__(self, "effects", effects)

    def __len__(self) -> int:
        return len(self.effects)

    def __iter__(self):
        return iter(self.effects)

    def __getitem__(self, index: int) -> EffectSpec:
        return self.effects[index]

    @property
    def active(self) -> tuple[EffectSpec, ...]:
        """The effects that run (not bypassed)."""
        return tuple(e for e in self.effects if not e.bypass)

    def added(self, spec: EffectSpec, index: int | None = None) -> "EffectChain":
        """With ``spec`` inserted at ``index`` (default: at the end)."""
        effects = list(self.effects)
        effects.insert(len(effects) if index is None else index, spec)
        return EffectChain(self.placement, tuple(effects))

    def removed(self, index: int) -> "EffectChain":
        effects = list(self.effects)
        del effects[index]
        return EffectChain(self.placement, tuple(effects))

    def moved(self, index: int, to: int) -> "EffectChain":
        """With the effect at ``index`` moved to position ``to`` (both in the result's order)."""
        effects = list(self.effects)
        spec = effects.pop(index)
        effects.insert(max(0, min(to, len(effects))), spec)
        return EffectChain(self.placement, tuple(effects))

    def replaced(self, index: int, spec: EffectSpec) -> "EffectChain":
        effects = list(self.effects)
        effects[index] = spec
        return EffectChain(self.placement, tuple(effects))

    def with_placement(self, placement: str) -> "EffectChain":
        return EffectChain(placement, self.effects)

    def with_bypassed(self, paths) -> "EffectChain":
        """With every VST3 plugin whose file is one of ``paths`` bypassed: kept in the chain
        (saved with the project, to be switched on later) but never loaded."""
        keep = {os.fspath(p) for p in paths}
        return EffectChain(self.placement, tuple(
            e.with_bypass(True) if e.is_vst3 and e.path is not None and os.fspath(e.path) in keep else e
            for e in self.effects))

    def to_dict(self) -> dict:
        return {"placement": self.placement, "effects": [e.to_dict() for e in self.effects]}

    def describe(self) -> str:
        """``"Gain > Reverb (bypassed)"``, or ``"(empty)"``."""
        if not self.effects:
            return "(empty)"
        return " > ".join(e.label + (" (bypassed)" if e.bypass else "") for e in self.effects)


# --------------------------------------------------------------------------- parameters


def _check_value(spec: ParamSpec, value: Any, label: str):
    name = spec.name
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise BadEffectParameter(f"{name} must be a number, got {value!r}", effect=label)
        value = float(value)
        if not math.isfinite(value):
            raise BadEffectParameter(f"{name} must be finite, got {value!r}", effect=label)
        if not spec.minimum <= value <= spec.maximum:
            unit = f" {spec.unit}" if spec.unit and spec.unit != ":1" else spec.unit
            raise BadEffectParameter(f"{name} {value:g}{unit} is outside {spec.minimum:g} to {spec.maximum:g}{unit}",
                                     effect=label)
        return value
    if spec.kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise BadEffectParameter(f"{name} must be true or false, got {value!r}", effect=label)
        return bool(value)
    if spec.kind == "choice":
        value = getattr(value, "name", value)  # a pedalboard enum member is accepted by name
        if value not in spec.choices:
            raise BadEffectParameter(f"{name} must be one of {', '.join(spec.choices)}, got {value!r}", effect=label)
        return str(value)
    if spec.kind == "file":
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise BadEffectParameter(f"{name} must be a file path, got {value!r}", effect=label)
        return os.fspath(value)
    return value


def validate_params(type_name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check a built-in effect's parameters and fill in the defaults.

    Parameters
    ----------
    type_name : str
        A key of :data:`~scalgui.audio.effect_registry.EFFECTS`.
    params : mapping, optional
        Parameter values in the registry's units; missing ones take their defaults.

    Returns
    -------
    dict
        Every parameter, in the registry's order, as float, bool, choice name or path.

    Raises
    ------
    BadEffectParameter
        An unknown effect or parameter, a value of the wrong type or out of range; the
        message names the effect, the parameter and the allowed range.
    """
    kind = EFFECTS.get(type_name)
    if kind is None:
        raise BadEffectParameter(f"unknown effect type {type_name!r}; known: {', '.join(sorted(EFFECTS))}, {VST3}",
                                 effect=str(type_name))
    params = dict(params or {})
    known = {p.name for p in kind.params}
    unknown = sorted(set(params) - known)
    if unknown:
        has = ", ".join(p.name for p in kind.params) or "none"
        raise BadEffectParameter(f"no parameter {', '.join(map(repr, unknown))}; it has: {has}", effect=type_name)
    return {p.name: _check_value(p, params.get(p.name, p.default), type_name) for p in kind.params}


def effect(type_name: str, *, bypass: bool = False, **params: Any) -> EffectSpec:
    """A built-in effect with its parameters checked and the rest at their defaults.

    >>> effect("Gain", gain_db=6.0).params["gain_db"]
    6.0
    """
    return EffectSpec(type_name, validate_params(type_name, params), bypass)


def vst3_effect(path: str | os.PathLike, *, plugin_name: str | None = None, params: Mapping[str, Any] | None = None,
                bypass: bool = False) -> EffectSpec:
    """A VST3 plugin in a chain (the file is only opened when the chain runs)."""
    return EffectSpec(VST3, dict(params or {}), bypass, os.fspath(path), plugin_name)


# --------------------------------------------------------------------------- running


def _as_audio(samples) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.dtype.kind != "f":
        raise ValueError(f"samples must be a float array [channels, frames], got {x.dtype} {x.shape}")
    return np.array(x, dtype=np.float32, order="C", copy=True)


def _process(plugin, x: np.ndarray, sample_rate: float, *, reset: bool = True) -> np.ndarray:
    """``plugin`` on ``x`` [channels, frames], latency compensated, as long as ``x``.

    ``reset=False`` is for VST3 plugins: pedalboard resets (reloads) those on the main
    thread only, while the editor runs chains on worker threads; every run makes its
    plugin afresh, so there is no state to clear. pedalboard then keeps a plugin's
    latency's worth of output back for a next call: silence fed in fetches it.
    """
    channels, frames = x.shape
    # pedalboard guesses the layout of square (or wider-than-long) arrays: pad with silence.
    pad = max(0, channels + 1 - frames)
    data = np.pad(x, ((0, 0), (0, pad))) if pad else x
    y = np.asarray(plugin.process(data, float(sample_rate), buffer_size=_BUFFER_FRAMES, reset=reset), dtype=np.float32)
    held_back = data.shape[1] - y.shape[1]
    if not reset and y.ndim == 2 and y.shape[0] == channels and held_back > 0:
        silence = np.zeros((channels, max(held_back, channels + 1)), dtype=np.float32)
        rest = plugin.process(silence, float(sample_rate), buffer_size=_BUFFER_FRAMES, reset=False)
        y = np.concatenate([y, np.asarray(rest, dtype=np.float32)], axis=1)
    return y[:, :frames]


def _enum(cls, name: str):
    return cls.__members__[name]


def _builtin_plugin(spec: EffectSpec, sample_rate: float):
    """The pedalboard object for a built-in effect, and a post-step (or None)."""
    import pedalboard

    kind = EFFECTS[spec.type]
    params = validate_params(spec.type, spec.params)
    nyquist = sample_rate / 2
    for p in kind.params:
        if p.below_nyquist and params[p.name] >= nyquist:
            raise BadEffectParameter(f"{p.name} {params[p.name]:g} Hz is not below Nyquist ({nyquist:g} Hz at "
                                     f"{sample_rate:g} Hz); lower it for this sound", effect=spec.type)
    cls = kind.plugin_class
    if spec.type == "LadderFilter":
        params["mode"] = _enum(pedalboard.LadderFilter.Mode, params["mode"])
    if "quality" in params:
        params["quality"] = _enum(pedalboard.Resample.Quality, params["quality"])
    if spec.type == "Convolution":
        return _convolution(params, sample_rate)
    return cls(**params), None


def _convolution(params: dict, sample_rate: float):
    import pedalboard

    from .io import load_audio

    path = params["impulse_response"]
    if path is None:
        raise BadEffectParameter("no impulse response file chosen", effect="Convolution")
    try:
        # Our loader: clear errors for a missing or broken file, resampled to the sound's rate
        # so that pedalboard's scaling (below) is known exactly.
        ir = load_audio(path, sample_rate=sample_rate).samples
    except AudioError as exc:
        raise EffectError(f"impulse response: {exc}", effect="Convolution") from None
    if ir.shape[0] > 2:
        raise EffectError(f"impulse response has {ir.shape[0]} channels; use a mono or stereo file",
                          effect="Convolution", path=path)
    mix = params["mix"]
    if params["normalize"]:
        return pedalboard.Convolution(np.ascontiguousarray(ir), mix=mix, sample_rate=sample_rate), None
    energy = float(np.max(np.sum(ir.astype(np.float64) ** 2, axis=1)))
    if energy == 0.0:
        raise EffectError("impulse response is silent", effect="Convolution", path=path)
    # Un-normalised: run pedalboard fully wet, undo its scaling, then mix dry and wet here.
    gain = math.sqrt(energy) / _JUCE_IR_SCALE
    plugin = pedalboard.Convolution(np.ascontiguousarray(ir), mix=1.0, sample_rate=sample_rate)

    def post(dry: np.ndarray, wet: np.ndarray) -> np.ndarray:
        return ((1.0 - mix) * dry + (mix * gain) * wet).astype(np.float32)

    return plugin, post


def _vst3_plugin(spec: EffectSpec):
    from .vst3 import load_vst3, set_vst3_parameters

    plugin = load_vst3(spec.path or "", spec.plugin_name)
    set_vst3_parameters(plugin, spec.params, label=spec.label)
    return plugin, None


def apply_effect(spec: EffectSpec, samples, sample_rate: float) -> np.ndarray:
    """Run one effect (even a bypassed one) on ``samples``; see :func:`apply_chain`."""
    x = _as_audio(samples)
    if spec.is_vst3:
        plugin, post = _vst3_plugin(spec)
    else:
        plugin, post = _builtin_plugin(spec, sample_rate)
    if x.shape[1] == 0:
        return x
    try:
        y = _process(plugin, x, sample_rate, reset=not spec.is_vst3)
    except Exception as exc:  # noqa: BLE001 - plugin code may raise anything: name it, keep the input
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise EffectProcessingError(reason, effect=spec.label, path=spec.path) from exc
    if post is not None:
        y = post(x, y)
    if y.shape != x.shape:
        raise EffectProcessingError(f"returned audio of shape {y.shape} for input {x.shape}", effect=spec.label,
                                    path=spec.path)
    if not np.isfinite(y).all():
        raise EffectProcessingError("produced NaN or infinite samples", effect=spec.label, path=spec.path)
    return np.ascontiguousarray(y)


def apply_chain(chain: EffectChain | Iterable[EffectSpec], samples, sample_rate: float) -> np.ndarray:
    """Run a chain's effects, in order, skipping bypassed ones.

    Parameters
    ----------
    chain : EffectChain or iterable of EffectSpec
    samples : np.ndarray [shape=(channels, frames) or (frames,)]
        Float audio, full scale +/-1.0. Never modified.
    sample_rate : float
        In Hz.

    Returns
    -------
    np.ndarray [shape=(channels, frames)], float32
        A new array, as long as the input: tails of reverbs and delays beyond the end are
        cut (pad the input with silence to keep them). An empty or fully bypassed chain
        returns a float32 copy of the input.

    Raises
    ------
    BadEffectParameter
        A parameter out of range, or a frequency not below Nyquist at this rate.
    PluginLoadError
        A VST3 plugin that cannot be loaded.
    EffectError
        A convolution's impulse response that cannot be read.
    EffectProcessingError
        An effect raised, changed the shape, or produced NaN/inf while processing.
    """
    x = _as_audio(samples)
    for spec in chain:
        if not spec.bypass:
            x = apply_effect(spec, x, sample_rate)
    return x


# --------------------------------------------------------------------------- presets


def chains_to_dict(chains: EffectChain | Iterable[EffectChain]) -> dict:
    """The preset document for ``chains`` (see :func:`save_preset`)."""
    chains = [chains] if isinstance(chains, EffectChain) else list(chains)
    return {"format": PRESET_FORMAT, "version": PRESET_VERSION, "chains": [c.to_dict() for c in chains]}


def _spec_from_dict(data, where: str, base: Path | None) -> EffectSpec:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    type_name = data.get("type")
    if not isinstance(type_name, str):
        raise ValueError(f"{where} has no \"type\" (an effect name such as \"Reverb\", or \"VST3\")")
    allowed = {"type", "bypass", "params"} | ({"path", "plugin_name"} if type_name == VST3 else set())
    extra = sorted(set(data) - allowed)
    if extra:
        raise ValueError(f"{where} ({type_name}) has unknown key(s) {', '.join(map(repr, extra))}")
    bypass = data.get("bypass", False)
    if not isinstance(bypass, bool):
        raise ValueError(f"{where} ({type_name}): \"bypass\" must be true or false, got {bypass!r}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{where} ({type_name}): \"params\" must be an object, got {type(params).__name__}")

    def resolve(p):
        # Relative files in a preset are relative to the preset's folder.
        return p if base is None or os.path.isabs(p) else os.path.join(base, p)

    if type_name == VST3:
        path = data.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where} (VST3) needs a \"path\" to the .vst3 plugin")
        plugin_name = data.get("plugin_name")
        if plugin_name is not None and not isinstance(plugin_name, str):
            raise ValueError(f"{where} (VST3): \"plugin_name\" must be a string or null")
        for name, value in params.items():
            finite = not isinstance(value, float) or math.isfinite(value)
            if not isinstance(value, (bool, int, float, str)) or not finite:
                raise ValueError(f"{where} (VST3): parameter {name!r} must be a number, true/false or a string")
        return vst3_effect(resolve(path), plugin_name=plugin_name, params=params, bypass=bypass)
    try:
        checked = validate_params(type_name, params)
    except BadEffectParameter as exc:
        raise ValueError(f"{where}: {exc}") from None
    for p in EFFECTS[type_name].params:
        if p.kind == "file" and checked[p.name] is not None:
            checked[p.name] = resolve(checked[p.name])
    return EffectSpec(type_name, checked, bypass)


def chains_from_dict(data, *, base: str | os.PathLike | None = None) -> tuple[EffectChain, ...]:
    """Chains from a preset document; raises ``ValueError`` saying where it is wrong.

    ``base`` is the folder relative file paths (impulse responses, plugins) are resolved
    against.
    """
    if not isinstance(data, dict):
        raise ValueError(f"the top level must be an object, got {type(data).__name__}")
    if data.get("format") != PRESET_FORMAT:
        raise ValueError(f"not a scalgui effects preset (\"format\" is {data.get('format')!r}, "
                         f"expected {PRESET_FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"\"version\" must be a whole number, got {version!r}")
    if version > PRESET_VERSION:
        raise ValueError(f"preset version {version} is newer than this scalgui reads ({PRESET_VERSION}); "
                         "update scalgui")
    if version < 1:
        raise ValueError(f"unknown preset version {version}")
    chains_data = data.get("chains")
    if not isinstance(chains_data, list):
        raise ValueError("\"chains\" must be a list of {\"placement\", \"effects\"} objects")
    base_path = Path(base) if base is not None else None
    chains, seen = [], set()
    for i, chain in enumerate(chains_data):
        where = f"chains[{i}]"
        if not isinstance(chain, dict):
            raise ValueError(f"{where} must be an object, got {type(chain).__name__}")
        placement = chain.get("placement", "render")
        if placement not in PLACEMENTS:
            raise ValueError(f"{where}: placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        if placement in seen:
            raise ValueError(f"{where}: a second {placement!r} chain (one chain per placement)")
        seen.add(placement)
        extra = sorted(set(chain) - {"placement", "effects"})
        if extra:
            raise ValueError(f"{where} has unknown key(s) {', '.join(map(repr, extra))}")
        effects = chain.get("effects", [])
        if not isinstance(effects, list):
            raise ValueError(f"{where}: \"effects\" must be a list")
        specs = tuple(_spec_from_dict(e, f"{where}.effects[{j}]", base_path) for j, e in enumerate(effects))
        chains.append(EffectChain(placement, specs))
    return tuple(chains)


def save_preset(path: str | os.PathLike, chains: EffectChain | Iterable[EffectChain]) -> Path:
    """Write ``chains`` to a JSON preset, atomically.

    The file::

        {"format": "scalgui-effects", "version": 1,
         "chains": [{"placement": "source" | "render",
                     "effects": [{"type": "Reverb", "bypass": false, "params": {"room_size": 0.7, ...}},
                                 {"type": "VST3", "bypass": false, "path": "/usr/lib/vst3/X.vst3",
                                  "plugin_name": null, "params": {"mix": 0.5}}]}]}

    Every parameter of a built-in effect is written, in the registry's units; loading gives
    back equal chains (floats round-trip exactly through JSON).

    Raises
    ------
    PresetError
        Two chains with one placement, or the file cannot be written (the old one is kept).
    """
    from scalgui.atomic import write_atomic

    path = Path(path)
    data = chains_to_dict(chains)
    placements = [c["placement"] for c in data["chains"]]
    if len(placements) != len(set(placements)):
        raise PresetError("one chain per placement", path=path, action="write")
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        write_atomic(path, lambda handle: handle.write(text))
    except (OSError, ValueError, TypeError) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        raise PresetError(reason, path=path, action="write") from None
    return path


def load_preset(path: str | os.PathLike) -> tuple[EffectChain, ...]:
    """Read a preset written by :func:`save_preset` (or by hand).

    Missing parameters take their defaults; relative file paths are relative to the
    preset's folder.

    Raises
    ------
    PresetError
        The file is missing or unreadable, not JSON, not a scalgui preset, of a newer
        version, or names an unknown effect, parameter or out-of-range value; the message
        names the file and where in it the problem is.
    """
    from scalgui.regular_files import open_regular_file
    from scalgui.safe_json import loads_bounded

    path = Path(path)
    try:
        with open_regular_file(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > PRESET_MAX_BYTES:
                raise PresetError(f"is {size} bytes, larger than a preset can be ({PRESET_MAX_BYTES} bytes)",
                                  path=path)
            raw = handle.read(PRESET_MAX_BYTES + 1)  # the file may have grown since
    except FileNotFoundError:
        raise PresetError("no such file", path=path) from None
    except OSError as exc:
        raise PresetError(exc.strerror or str(exc), path=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PresetError("not a text file (expected JSON)", path=path) from None
    try:
        data = loads_bounded(text, max_bytes=PRESET_MAX_BYTES)
    except ValueError as exc:
        raise PresetError(str(exc), path=path) from None
    try:
        return chains_from_dict(data, base=path.resolve().parent)
    except ValueError as exc:
        raise PresetError(str(exc), path=path) from None
