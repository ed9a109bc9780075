"""The plugin API: what a plugin declares and what it is given when it runs.

A plugin is a :class:`Plugin` object bound to a module-level name ``PLUGIN`` (or several in
a ``PLUGINS`` sequence) in a Python file, a package, or an installed distribution's entry
point (group ``"scalgui.plugins"``). It declares an id, a title, a description and typed
parameters (:class:`Param`), from which the editor builds a form and the command line its
``--param NAME=VALUE`` options, and a function that transforms magnitudes::

    from scalgui.plugins import Param, Plugin

    def process(ctx):
        gain = 10 ** (ctx.params["gain_db"] / 20)
        for k in ctx.wavelets:          # the constant-Q bands, low to high
            ctx.band(k).mul_(gain)      # a view into ctx.magnitudes: edit it in place
        return ctx.magnitudes           # the host blends them in with the selection's weight

    PLUGIN = Plugin(
        name="louder",
        title="Louder",
        description="Raise the selection by a number of dB.",
        params=(Param("gain_db", "float", 6.0, minimum=-60, maximum=60, unit="dB"),),
        process=process,
    )

The function receives a :class:`PluginContext`: the current magnitudes (the source's with
every earlier edit applied) as torch tensors, one per hop group, every band at its own
rate, on the device the engine runs on; the band centre frequencies and sample times; the
selection's feathered weight on the same grid; the validated parameter values; and the
source's complex coefficients (for its phase). It returns new magnitudes in the same
layout. Unless the plugin says ``blend=False``, the host mixes them in with the selection's
weight, ``current + weight * (returned - current)``, so a plugin may process everything and
need not look at the selection at all.

A plugin may instead (or as well) declare an ``audio`` step, samples in and samples out:
the host turns the current magnitudes into sound with the source's phase, runs the step,
analyses the result with the same frame and hands those magnitudes on (to ``process`` when
there is one).

Plugins see the whole sound, in whichever frame the host works on (the picture's frame
for the target, the render frame for phase retrieval): keep them independent of the
number of voices and of the hop sizes by working in seconds and Hz through the context.
A plugin whose result at each moment depends on that moment only (``local=True``, as
transpose) is run by renders on the window around each span they re-render instead.
Import heavy modules inside the functions, not at the top of the file: discovery imports
every plugin file when the editor starts.

A long plugin should report progress and let the host stop it: ``ctx.progress(fraction,
text)`` in its loops (it also raises :class:`PluginCancelled` once the host has asked
to stop), or ``ctx.check()`` alone; ``ctx.cancel_token`` goes to
:func:`scalgui.dsp.phase.retrieve`. Both are optional and cost nothing outside a host that
asked for them (:func:`plugin_run`); the host checks between a plugin's steps anyway.
"""
from __future__ import annotations

import math
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..dsp.frame import BandTable, Coefficients, WaveletFrame

__all__ = [
    "KINDS",
    "Param",
    "Plugin",
    "PluginCancelled",
    "PluginContext",
    "PluginError",
    "PluginWarning",
    "plugin_run",
]

#: Parameter kinds. ``"float"`` and ``"int"`` take ``minimum``/``maximum``/``step``/``unit``;
#: ``"bool"`` is a switch; ``"choice"`` one of ``choices``; ``"file"`` a path (``filter``
#: names the file types for the dialog); ``"text"`` free text; ``"range"`` a pair
#: ``(lo, hi)`` of numbers with ``lo <= hi`` in ``unit`` (``"s"`` for a time span, which the
#: editor can fill from the selection; ``lo == hi`` means "not set").
KINDS = ("float", "int", "bool", "choice", "file", "text", "range")

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class PluginError(Exception):
    """A plugin could not be loaded, its parameters are invalid, or it failed when run.

    ``str()`` is one line naming the plugin (and its file when known) and the problem.

    Parameters
    ----------
    message : str
        What went wrong.
    plugin : str, optional
        The plugin's id.
    """

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class PluginCancelled(PluginError):
    """A plugin run stopped because its host asked it to (:func:`plugin_run`); nothing of it
    is applied. Never turned into a warning when an edit list is replayed."""


#: Per thread: the (cancel, progress) of the innermost :func:`plugin_run` block.
_RUN = threading.local()


@contextmanager
def plugin_run(*, cancel: Any = None, progress: Callable[[float | None, str], None] | None = None):
    """Let the plugins run in this thread, inside the block, be cancelled and report progress.

    Parameters
    ----------
    cancel : object with a ``cancelled`` attribute, or a callable returning bool, optional
        E.g. a :class:`scalgui.dsp.phase.CancelToken` that another thread cancels;
        :meth:`PluginContext.check` then raises :class:`PluginCancelled`.
    progress : callable, optional
        ``progress(fraction, text)`` with ``fraction`` in [0, 1] (or ``None``: busy, no
        estimate), called from the plugin's thread by :meth:`PluginContext.progress`.

    Contexts made inside the block keep these even when the plugin hands work to other
    threads. Outside any block, a plugin's checks do nothing.
    """
    previous = getattr(_RUN, "control", None)
    _RUN.control = (cancel, progress)
    try:
        yield
    finally:
        _RUN.control = previous


class _ContextToken:
    """A cancel token (``.cancelled``) that reads a context's cancel request."""

    def __init__(self, ctx: "PluginContext") -> None:
        self._ctx = ctx

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancelled


class PluginWarning(UserWarning):
    """A plugin step was skipped while the edit list was replayed (the reason is the message)."""


@dataclass(frozen=True)
class Param:
    """One typed parameter of a plugin: a form field in the editor, ``--param`` on the CLI.

    Parameters
    ----------
    name : str
        Identifier (a Python name): the key in ``ctx.params`` and in ``--param NAME=VALUE``.
    kind : str
        One of :data:`KINDS`.
    default : object, optional
        The value when none is given. ``None`` means: 0 (or ``minimum`` when 0 is out of
        range) for numbers, False for switches, the first choice, ``""`` for files and
        text, ``(0, 0)`` (not set) for ranges.
    title : str, optional
        Label in the form; default: the name with spaces for underscores, capitalised.
    description : str, optional
        One or two sentences: the field's tooltip and the CLI help.
    unit : str, optional
        Unit shown after the value: ``"dB"``, ``"s"``, ``"Hz"``, ``"semitones"``, ``"cents"``...
    minimum, maximum : float, optional
        Inclusive bounds of numbers and of both ends of a range.
    step : float, optional
        Step of the form's spin box (a tenth of the range, or 1 for ints, by default).
    choices : tuple of str, optional
        The allowed values of a ``"choice"``.
    filter : str, optional
        File-dialog filter of a ``"file"``, e.g. ``"Images (*.png *.jpg)"``.
    optional : bool, optional
        A ``"file"`` or ``"text"`` that may stay empty when the plugin runs.

    Raises
    ------
    ValueError
        A bad declaration (unknown kind, default out of range, no choices...).
    """

    name: str
    kind: str
    default: Any = None
    title: str = ""
    description: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    filter: str = ""
    optional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PARAM_NAME.match(self.name):
            raise ValueError(f"parameter name must be a Python identifier, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name!r}: unknown kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
        object.__setattr__(self, "choices", tuple(str(c) for c in self.choices))
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name!r}: a choice needs at least one value in `choices`")
        for bound in ("minimum", "maximum", "step"):
            value = getattr(self, bound)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"parameter {self.name!r}: {bound} must be a finite number, got {value!r}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"parameter {self.name!r}: minimum {self.minimum} is above maximum {self.maximum}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"parameter {self.name!r}: step must be positive, got {self.step}")
        default = self.default if self.default is not None else self._implicit_default()
        # The declared default must itself be valid: a bad one is a bad declaration.
        object.__setattr__(self, "default", self.coerce(default, check_empty=False))

    def _implicit_default(self) -> Any:
        if self.kind in ("float", "int"):
            zero = 0 if self.kind == "int" else 0.0
            lo, hi = self.minimum, self.maximum
            if lo is not None and zero < lo:
                return lo
            if hi is not None and zero > hi:
                return hi
            return zero
        if self.kind == "bool":
            return False
        if self.kind == "choice":
            return self.choices[0]
        if self.kind == "range":
            lo = 0.0 if self.minimum is None else max(0.0, float(self.minimum))
            return (lo, lo)
        return ""

    @property
    def label(self) -> str:
        """The form's label: ``title``, or the name made readable."""
        return self.title or self.name.replace("_", " ").capitalize()

    def _bounded(self, value: float) -> float:
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"parameter {self.name!r}: {value:g} is below the minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"parameter {self.name!r}: {value:g} is above the maximum {self.maximum:g}")
        return value

    def _number(self, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {self.name!r}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"parameter {self.name!r}: expected a finite number, got {value!r}")
        return number

    def coerce(self, value: Any, *, check_empty: bool = True) -> Any:
        """Convert ``value`` (or its text, as typed on the command line) and validate it.

        Parameters
        ----------
        value : object
            A value of the parameter's kind, or a string: ``"12.5"``, ``"yes"``, ``"1:2.5"``
            (a range), a path...
        check_empty : bool
            Reject an empty ``"file"`` or ``"text"`` unless the parameter is ``optional``.

        Returns
        -------
        object
            ``float``, ``int``, ``bool``, ``str`` or ``tuple[float, float]``.

        Raises
        ------
        ValueError
            With a message naming the parameter and what is wrong.
        """
        kind = self.kind
        if kind == "float":
            return self._bounded(self._number(value))
        if kind == "int":
            number = self._number(value)
            if number != int(number):
                raise ValueError(f"parameter {self.name!r}: expected a whole number, got {value!r}")
            return int(self._bounded(int(number)))
        if kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, (int, np.integer)) and value in (0, 1):
                return bool(value)
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"parameter {self.name!r}: expected yes/no, true/false, on/off or 1/0, got {value!r}")
        if kind == "choice":
            text = str(value)
            if text not in self.choices:
                raise ValueError(f"parameter {self.name!r}: {text!r} is not one of: {', '.join(self.choices)}")
            return text
        if kind == "range":
            if isinstance(value, str):
                parts = value.split(":")
                if len(parts) != 2:
                    raise ValueError(f"parameter {self.name!r}: expected LO:HI, got {value!r}")
            else:
                try:
                    parts = list(value)
                except TypeError:
                    raise ValueError(f"parameter {self.name!r}: expected a pair (lo, hi), got {value!r}") from None
                if len(parts) != 2:
                    raise ValueError(f"parameter {self.name!r}: expected a pair (lo, hi), got {value!r}")
            lo, hi = (self._bounded(self._number(p)) for p in parts)
            if lo > hi:
                raise ValueError(f"parameter {self.name!r}: the range {lo:g}:{hi:g} runs backwards")
            return (lo, hi)
        # file and text
        text = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(text, str):
            raise ValueError(f"parameter {self.name!r}: expected text, got {value!r}")
        if check_empty and not text and not self.optional:
            what = "a file" if kind == "file" else "a value"
            raise ValueError(f"parameter {self.name!r} needs {what}")
        return text

    def format(self, value: Any) -> str:
        """Short text of a value with its unit, for menus, history and listings."""
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "float":
            return f"{value:g}{unit}"
        if self.kind == "range":
            return f"{value[0]:g}:{value[1]:g}{unit}"
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "int":
            return f"{value}{unit}"
        return str(value)

    def describe(self) -> str:
        """One line for ``scalgui plugins``: name, kind, range, default and help."""
        bits = [self.kind]
        if self.kind == "choice":
            bits.append("|".join(self.choices))
        if self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            bits.append(f"{lo}..{hi}")
        if self.unit:
            bits.append(self.unit)
        text = f"{self.name} ({', '.join(bits)}; default {self.format(self.default)})"
        return f"{text}: {self.description}" if self.description else text


ProcessFn = Callable[["PluginContext"], Sequence[torch.Tensor]]
AudioFn = Callable[["PluginContext", np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Plugin:
    """A plugin's declaration and its code.

    Parameters
    ----------
    name : str
        The id: lower-case letters, digits, ``-`` and ``_``, starting with a letter. Edits
        store it, ``scalgui apply NAME`` takes it; keep it stable across versions.
    title : str
        Menu text, e.g. ``"Transpose"``.
    description : str
        What it does, in a sentence or two (the menu tooltip and ``scalgui plugins``).
    params : sequence of Param
        Declared parameters, in form order; names must be distinct.
    process : callable, optional
        ``process(ctx: PluginContext) -> list of torch.Tensor``: new magnitudes, one real
        non-negative tensor per hop group with the shapes of ``ctx.magnitudes`` (returning
        ``ctx.magnitudes`` after editing them in place is fine). Negative values are
        clipped to 0; NaN or infinite values are an error.
    audio : callable, optional
        ``audio(ctx, samples) -> samples``: an audio-domain step, float32 numpy arrays
        ``[channels, frames]`` at ``ctx.sample_rate``, the same shape out as in (see the
        module's notes). At least one of ``process`` and ``audio`` is required.
    blend : bool
        True (default): the host blends the result in with the selection's weight, so the
        plugin changes nothing outside the selection. False: the result is used as it is;
        the plugin applies ``ctx.weight`` itself (e.g. transpose moves the selection's
        content to where the selection is not).
    local : bool
        True: what ``process`` makes at each moment depends only on the magnitudes at
        that moment (as when content moves across frequency, keeping its times). A
        render then runs it on the window around each span it re-renders instead of on
        the whole sound. False (default) for a plugin that reads other times: a noise
        profile, a frozen moment, the surroundings of a gap. Not with an ``audio`` step.
    version : str
        The plugin's own version, shown in listings.
    source : str
        Where it was found (a file, or an entry point); discovery fills it in.

    Raises
    ------
    ValueError
        A bad declaration.
    """

    name: str
    title: str
    description: str
    params: tuple[Param, ...] = ()
    process: ProcessFn | None = None
    audio: AudioFn | None = None
    blend: bool = True
    local: bool = False
    version: str = "1.0"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"plugin name must be lower-case letters, digits, '-' or '_', starting with a letter; got {self.name!r}"
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError(f"plugin {self.name!r}: title must be non-empty text")
        if not isinstance(self.description, str):
            raise ValueError(f"plugin {self.name!r}: description must be text")
        params = tuple(self.params)
        for p in params:
            if not isinstance(p, Param):
                raise ValueError(f"plugin {self.name!r}: params must be Param objects, got {type(p).__name__}")
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"plugin {self.name!r}: parameter names repeat: {', '.join(duplicates)}")
        object.__setattr__(self, "params", params)
        if self.process is None and self.audio is None:
            raise ValueError(f"plugin {self.name!r}: needs a process function, an audio function, or both")
        for what in ("process", "audio"):
            fn = getattr(self, what)
            if fn is not None and not callable(fn):
                raise ValueError(f"plugin {self.name!r}: {what} must be callable, got {type(fn).__name__}")
        if not isinstance(self.blend, bool):
            raise ValueError(f"plugin {self.name!r}: blend must be True or False")
        if not isinstance(self.local, bool):
            raise ValueError(f"plugin {self.name!r}: local must be True or False")
        if self.local and self.audio is not None:
            raise ValueError(f"plugin {self.name!r}: an audio step hears the whole sound: it cannot be local")

    def param(self, name: str) -> Param:
        """The declared parameter ``name`` (``KeyError`` naming the known ones otherwise)."""
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise KeyError(f"plugin {self.name!r} has no parameter {name!r} (parameters: {known})")

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default value, by name."""
        return {p.name: p.default for p in self.params}

    def resolve(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Complete and validate parameter values.

        Parameters
        ----------
        values : mapping, optional
            Values by name (strings are parsed, as from ``--param NAME=VALUE``); missing
            ones take their defaults.

        Returns
        -------
        dict
            One valid value per declared parameter, in declaration order.

        Raises
        ------
        PluginError
            An unknown name or an invalid value (the message says which and why).
        """
        values = dict(values or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            listed = ", ".join(p.name for p in self.params) or "none"
            raise PluginError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)} (parameters: {listed})", self.name
            )
        out = {}
        for p in self.params:
            try:
                out[p.name] = p.coerce(values[p.name]) if p.name in values else p.coerce(p.default)
            except ValueError as exc:
                raise PluginError(f"{self.name}: {exc}", self.name) from None
        return out


class PluginContext:
    """What a plugin's functions are given: magnitudes, axes, selection, parameters.

    The host builds it; plugins read it. Band indices ``k`` are atom indices of the frame's
    :class:`~scalgui.dsp.frame.BandTable` (0 is the lowpass atom, then the wavelets by
    rising frequency, then the highpass atom); :attr:`wavelets` lists the constant-Q bands,
    which is what the scalogram shows and what plugins usually change.

    Parameters
    ----------
    magnitudes : list of torch.Tensor
        The current magnitudes per hop group, ``[*batch, bands_in_group, frames]`` (batch:
        the channels), real and non-negative. The context owns them: plugins may edit them
        in place and return them.
    original : Coefficients
        The source's complex coefficients in the same layout (for its phase, or to start
        again from the unedited sound).
    params : mapping
        Validated parameter values by name.
    weight : list of torch.Tensor or None
        The selection's weight per hop group, ``[bands_in_group, frames]`` in [0, 1],
        feathered at the edges; ``None`` when the plugin acts on everything.
    selection : Shape or None
        The selection itself (a shape of :mod:`scalgui.dsp.edits`, in seconds and Hz).
    """

    def __init__(
        self,
        magnitudes: list[torch.Tensor],
        original: Coefficients,
        params: Mapping[str, Any],
        weight: list[torch.Tensor] | None = None,
        selection: Any = None,
        *,
        plugin: str = "",
    ) -> None:
        self.magnitudes = magnitudes
        self.original = original
        self.params = dict(params)
        self.weight = weight
        self.selection = selection
        self.plugin = plugin
        self._cancel, self._progress = getattr(_RUN, "control", None) or (None, None)

    # ------------------------------------------------------------------ progress and cancel
    @property
    def cancelled(self) -> bool:
        """Whether the host has asked this run to stop (always False outside :func:`plugin_run`)."""
        cancel = self._cancel
        if cancel is None:
            return False
        return bool(cancel() if callable(cancel) else cancel.cancelled)

    @property
    def cancel_token(self) -> _ContextToken:
        """An object with a ``cancelled`` attribute, for ``retrieve(cancel=...)`` and the like
        (they stop early and return their best so far: call :meth:`check` afterwards)."""
        return _ContextToken(self)

    def check(self) -> None:
        """Raise :class:`PluginCancelled` if the host has asked this run to stop."""
        if self.cancelled:
            raise PluginCancelled(f"{self.plugin or 'plugin'}: cancelled", self.plugin or None)

    def progress(self, fraction: float | None = None, text: str = "") -> None:
        """Report how far the run is (``fraction`` in [0, 1], ``None`` for busy) and
        :meth:`check` for a cancel request: call it in long loops."""
        if self._progress is not None:
            f = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
            self._progress(f, str(text))
        self.check()

    # ------------------------------------------------------------------ the frame
    @property
    def frame(self) -> WaveletFrame:
        """The wavelet frame (``frame.settings``, ``frame.atom_response(k, hz)``...)."""
        return self.original.frame

    @property
    def bands(self) -> BandTable:
        """Every atom's centre, width, hop, group and row."""
        return self.original.frame.bands

    @property
    def wavelets(self) -> np.ndarray:
        """Atom indices of the constant-Q wavelet bands, low to high frequency."""
        return self.bands.wavelet_indices

    @property
    def centre_hz(self) -> np.ndarray:
        """Centre frequency of every atom in Hz, ``[n_atoms]`` (0 for the lowpass atom,
        Nyquist for the highpass atom)."""
        return self.bands.centre_hz

    @property
    def voices_per_octave(self) -> int:
        """Wavelet bands per octave: a semitone is ``voices_per_octave / 12`` bands."""
        return int(self.frame.settings.voices_per_octave)

    @property
    def sample_rate(self) -> float:
        """Of the sound, in Hz."""
        return self.frame.sample_rate

    @property
    def device(self) -> torch.device:
        """Where the tensors are (the engine's device)."""
        return self.magnitudes[0].device

    @property
    def dtype(self) -> torch.dtype:
        """Real dtype of the magnitudes."""
        return self.magnitudes[0].dtype

    @property
    def batch_shape(self) -> torch.Size:
        """Leading dimensions of every tensor: ``(channels,)`` for a document."""
        return self.original.batch_shape

    @property
    def duration(self) -> float:
        """Length of the sound in seconds."""
        return self.original.length / self.sample_rate

    @property
    def span(self) -> tuple[float, float]:
        """The selection's time span in seconds, clipped to the sound; the whole sound
        when there is no selection (or it spans all times, like a frequency band)."""
        if self.selection is None:
            return 0.0, self.duration
        lo, hi = self.selection.span()
        start = self.original.offset / self.sample_rate
        return max(lo, start), min(hi, start + self.duration)

    # ------------------------------------------------------------------ per band
    def hop(self, k: int) -> int:
        """Decimation of band ``k`` in samples: its coefficients are ``hop(k)`` samples apart."""
        return int(self.bands.hop[k])

    def rate(self, k: int) -> float:
        """Coefficient rate of band ``k`` in Hz (coefficients per second)."""
        return self.sample_rate / self.hop(k)

    def times(self, k: int) -> np.ndarray:
        """Time in seconds of each coefficient of band ``k``, ``[frames_k]`` (coefficients
        in the zero padding lie before 0 s and after the end)."""
        return self.original.times(int(k))

    def index_at(self, k: int, seconds: float | np.ndarray) -> np.ndarray:
        """Index of the coefficient of band ``k`` nearest to ``seconds``, clipped to the band."""
        hop = self.hop(k)
        n = self.original.padded_length // hop
        position = (np.asarray(seconds, dtype=np.float64) * self.sample_rate + self.original.origin) / hop
        return np.clip(np.rint(position), 0, n - 1).astype(np.int64)

    def band(self, k: int) -> torch.Tensor:
        """Magnitudes of band ``k``, ``[*batch, frames_k]``: a view into :attr:`magnitudes`."""
        return self.magnitudes[int(self.bands.group[k])][..., int(self.bands.row[k]), :]

    def band_weight(self, k: int) -> torch.Tensor | None:
        """The selection's weight on band ``k``, ``[frames_k]``; ``None`` without a selection."""
        if self.weight is None:
            return None
        return self.weight[int(self.bands.group[k])][int(self.bands.row[k])]

    def source(self, k: int) -> torch.Tensor:
        """Complex coefficients of the unedited source in band ``k``, ``[*batch, frames_k]``."""
        return self.original.band(int(k))

    def nearest_band(self, freq_hz: float) -> int:
        """The wavelet band whose centre is nearest to ``freq_hz`` in log frequency."""
        centres = self.centre_hz[self.wavelets]
        return int(self.wavelets[np.argmin(np.abs(np.log2(centres) - math.log2(max(freq_hz, 1e-3))))])

    # ------------------------------------------------------------------ sound
    def source_audio(self) -> np.ndarray:
        """The unedited source as float32 samples ``[*batch, frames]`` (from the frame's
        exact inverse of :attr:`original`)."""
        signal = self.frame.synthesize(self.original)
        return signal.detach().to("cpu", torch.float32).numpy()

    def analyze(self, samples: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Magnitudes of a sound in this layout (e.g. one a plugin synthesised).

        Parameters
        ----------
        samples : np.ndarray or torch.Tensor [shape=(*batch, frames)]
            As long as the source (``round(duration * sample_rate)`` frames), at
            :attr:`sample_rate`; a batch of one broadcasts over the channels.

        Returns
        -------
        list of torch.Tensor
            Per hop group, shaped like :attr:`magnitudes`, on :attr:`device`.
        """
        shape = self.batch_shape
        return [m.expand(*shape, *m.shape[-2:]).clone() if m.shape[:-2] != shape else m
                for m in self.coefficients_of(samples).magnitudes()]

    def coefficients_of(self, samples: np.ndarray | torch.Tensor) -> Coefficients:
        """Complex coefficients of a sound in this layout (magnitudes and phase).

        Parameters
        ----------
        samples : np.ndarray or torch.Tensor [shape=(*batch, frames)]
            As long as the source (``round(duration * sample_rate)`` frames), at
            :attr:`sample_rate`.

        Returns
        -------
        Coefficients
            On :attr:`device`, with the batch shape of ``samples``.
        """
        x = torch.as_tensor(np.asarray(samples, dtype=np.float32) if not torch.is_tensor(samples) else samples)
        if x.shape[-1] != self.original.length:
            raise ValueError(f"expected {self.original.length} frames, got {x.shape[-1]}")
        return self.frame.analyze(x.to(self.device))

    # ------------------------------------------------------------------ between grids
    def frames(self, hop: int) -> int:
        """Number of coefficients on the grid of step ``hop`` samples (a power of two)."""
        return self.original.padded_length // int(hop)

    def grid_times(self, hop: int) -> np.ndarray:
        """Times in seconds of the grid of step ``hop`` samples (see :meth:`image`)."""
        n = self.frames(hop)
        return (np.arange(n) * int(hop) - self.original.origin) / self.sample_rate

    def resample(self, values: torch.Tensor, from_hop: int, to_hop: int) -> torch.Tensor:
        """Move values along time from one band grid to another.

        Grids of every hop share sample 0 of the padded signal, so coefficient ``m`` of
        step ``h`` sits at sample ``m * h``. Going to a coarser grid averages the finer
        values around each coarse point (a box as wide as the coarse step); going to a
        finer one interpolates linearly.

        Parameters
        ----------
        values : torch.Tensor [shape=(..., frames(from_hop))]
        from_hop, to_hop : int
            Steps in samples (powers of two, as the frame's hops).

        Returns
        -------
        torch.Tensor [shape=(..., frames(to_hop))]
        """
        from_hop, to_hop = int(from_hop), int(to_hop)
        n_out = self.frames(to_hop)
        if from_hop == to_hop:
            return values
        shape = values.shape
        flat = values.reshape(-1, 1, shape[-1])
        if to_hop > from_hop:
            r = to_hop // from_hop
            # Pad by replication so the box around the first and last points stays full.
            left = r // 2
            right = max(n_out * r - (shape[-1] - left), 0)
            padded = torch.nn.functional.pad(flat, (left, right), mode="replicate")
            out = torch.nn.functional.avg_pool1d(padded, kernel_size=r, stride=r)[..., :n_out]
        else:
            position = torch.arange(n_out, device=values.device, dtype=values.dtype) * (to_hop / from_hop)
            i0 = position.floor().long().clamp(0, shape[-1] - 1)
            i1 = (i0 + 1).clamp(max=shape[-1] - 1)
            frac = (position - i0.to(values.dtype)).clamp(0, 1)
            out = flat[..., i0] * (1 - frac) + flat[..., i1] * frac
        return out.reshape(*shape[:-1], n_out)

    def image(self, hop: int | None = None, *, source: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The wavelet bands on one common time grid, like the picture.

        Parameters
        ----------
        hop : int, optional
            Grid step in samples; default the smallest wavelet hop (every band at full
            detail; on long sounds a larger power of two is much cheaper).
        source : list of torch.Tensor, optional
            Per-group tensors to read instead of :attr:`magnitudes` (e.g. ``ctx.weight``
            with a batch of none).

        Returns
        -------
        torch.Tensor [shape=(*batch, n_wavelets, frames(hop))]
            Row ``i`` is band ``wavelets[i]``; columns are at :meth:`grid_times`.
        """
        hop = int(hop or self.bands.hop[self.wavelets].min())
        groups = self.magnitudes if source is None else source
        rows = [
            self.resample(groups[int(self.bands.group[k])][..., int(self.bands.row[k]), :], self.hop(k), hop)
            for k in self.wavelets
        ]
        return torch.stack(rows, dim=-2)

    def weight_image(self, hop: int | None = None) -> torch.Tensor | None:
        """The selection's weight on the grid of :meth:`image`, ``[n_wavelets, frames]``;
        ``None`` without a selection."""
        if self.weight is None:
            return None
        return self.image(hop, source=self.weight)

    def set_image(self, values: torch.Tensor, hop: int | None = None) -> list[torch.Tensor]:
        """Write an image (as from :meth:`image`) back into :attr:`magnitudes`, every
        wavelet band resampled to its own grid; returns :attr:`magnitudes`."""
        hop = int(hop or self.bands.hop[self.wavelets].min())
        if values.shape[-2] != len(self.wavelets) or values.shape[-1] != self.frames(hop):
            raise ValueError(
                f"image shape {tuple(values.shape)} does not match {len(self.wavelets)} bands x "
                f"{self.frames(hop)} frames at hop {hop}"
            )
        for i, k in enumerate(self.wavelets):
            self.band(k).copy_(self.resample(values[..., i, :], hop, self.hop(k)).expand_as(self.band(k)))
        return self.magnitudes

    def __repr__(self) -> str:
        return (
            f"PluginContext(plugin={self.plugin!r}, params={self.params}, bands={len(self.wavelets)}, "
            f"duration={self.duration:.3f} s, selection={'yes' if self.selection is not None else 'no'}, "
            f"device={self.device})"
        )
