"""Every built-in pedalboard effect, with its parameters' types, ranges, defaults and units.

pedalboard's effects expose their settings as properties, but say little about them: most
property docstrings are empty and the ranges live in C++ checks (``Mix must be between
0.0 and 1.0``) or nowhere at all (a cutoff above Nyquist just yields NaN). So the ranges
are stated here, in one table, per effect; defaults are pedalboard's own (a test checks
that they match what pedalboard's constructors give, and that every effect constructs
with its defaults and at both ends of every range). :func:`builtin_effect_classes`
introspects pedalboard itself, so a pedalboard release that adds an effect makes that test
fail instead of the effect silently missing from the menu.

No Qt here: the effects panel builds its widgets from this table, presets are checked
against it, and ``scalgui fx --list`` prints it.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pedalboard

__all__ = [
    "CATEGORIES",
    "EFFECTS",
    "EffectType",
    "NOT_EFFECTS",
    "ParamSpec",
    "builtin_effect_classes",
    "effect_type",
]

#: pedalboard Plugin classes that are not effects one adds to a serial chain: containers
#: (Chain, Mix, Pedalboard run several plugins; a scalgui chain is already serial), the
#: abstract bases, and the hosts of external plugins (VST3 is offered separately).
NOT_EFFECTS = frozenset({
    "Plugin", "PluginContainer", "Chain", "Mix", "Pedalboard", "IIRFilter",
    "ExternalPlugin", "VST3Plugin", "AudioUnitPlugin",
})

#: Menu groups, in menu order.
CATEGORIES = ("Filters and EQ", "Dynamics", "Time and space", "Modulation", "Distortion", "Pitch",
              "Lo-fi and codecs", "Utility")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an effect.

    Attributes
    ----------
    name : str
        The pedalboard keyword / property (``"cutoff_frequency_hz"``); for a VST3 plugin,
        pedalboard's Python name of the plugin's parameter.
    kind : {"float", "bool", "choice", "file", "text"}
        ``file`` is a path (the convolution's impulse response); ``text`` a VST3
        parameter whose values are free strings pedalboard validates itself.
    default : float, bool, str or None
        ``None`` only for a ``file`` (there is no sensible default impulse response).
    minimum, maximum : float or None
        Inclusive range of a ``float``, in ``unit``.
    unit : str
        ``"dB"``, ``"Hz"``, ``"ms"``, ``"s"``, ``"semitones"``, ``"bits"``, ``":1"`` (a
        ratio), or ``""`` for a plain fraction or count.
    label : str
        Short human name for a form.
    doc : str
        One line: what it does, in the units above.
    choices : tuple of str
        Allowed values of a ``choice``.
    log : bool
        Whether a slider should move on a logarithmic scale (frequencies).
    step : float
        A spin box's single step; its decimals follow from it.
    below_nyquist : bool
        The value is a frequency that must stay below half the sample rate (checked when
        the effect runs, since presets do not know the rate).
    """

    name: str
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    label: str = ""
    doc: str = ""
    choices: tuple[str, ...] = ()
    log: bool = False
    step: float = 0.01
    below_nyquist: bool = False

    @property
    def decimals(self) -> int:
        """Decimals a spin box shows for :attr:`step`."""
        text = f"{self.step:g}"
        return len(text.split(".")[1]) if "." in text else 0

    def describe(self) -> str:
        """``"cutoff_frequency_hz: 20 to 20000 Hz (default 50)"`` and the like."""
        if self.kind == "float":
            unit = f" {self.unit}" if self.unit and self.unit != ":1" else self.unit
            return f"{self.name}: {self.minimum:g} to {self.maximum:g}{unit} (default {self.default:g})"
        if self.kind == "choice":
            return f"{self.name}: one of {', '.join(self.choices)} (default {self.default})"
        if self.kind == "bool":
            return f"{self.name}: true or false (default {str(self.default).lower()})"
        return f"{self.name}: a file path (required)" if self.kind == "file" else f"{self.name}: text"


@dataclass(frozen=True)
class EffectType:
    """A kind of effect the chain can hold.

    Attributes
    ----------
    name : str
        pedalboard's class name (``"Reverb"``): the ``type`` in a preset.
    category : str
        One of :data:`CATEGORIES`.
    params : tuple of ParamSpec
    description : str
        First paragraph of pedalboard's own docstring of the class.
    """

    name: str
    category: str
    params: tuple[ParamSpec, ...]
    description: str = ""

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def plugin_class(self) -> type:
        return getattr(pedalboard, self.name)


def _f(name, default, lo, hi, unit="", label="", doc="", *, log=False, step=None, nyquist=False) -> ParamSpec:
    if step is None:
        if unit in ("Hz", "ms") and hi - lo >= 100:
            step = 1.0
        else:
            step = 0.1 if unit in ("dB", "semitones", "bits", ":1") else 0.01
    return ParamSpec(name, "float", float(default), float(lo), float(hi), unit, label or name.replace("_", " "),
                     doc, log=log, step=step, below_nyquist=nyquist)


def _b(name, default, label="", doc="") -> ParamSpec:
    return ParamSpec(name, "bool", bool(default), label=label or name.replace("_", " "), doc=doc)


def _c(name, default, choices, label="", doc="") -> ParamSpec:
    return ParamSpec(name, "choice", default, label=label or name.replace("_", " "), doc=doc, choices=tuple(choices))


def _quality_names() -> tuple[str, ...]:
    return tuple(pedalboard.Resample.Quality.__members__)


_MIX = _f("mix", 0.5, 0, 1, "", "mix", "wet share of the output: 0 = dry only, 1 = effect only")
_Q = 0.7071067690849304  # pedalboard's default Q (1/sqrt(2) as float32): Butterworth


def _eq(doc: str) -> tuple[ParamSpec, ...]:
    return (
        _f("cutoff_frequency_hz", 440, 20, 20000, "Hz", "frequency", doc, log=True, nyquist=True),
        _f("gain_db", 0, -24, 24, "dB", "gain", "boost (positive) or cut (negative) there"),
        _f("q", _Q, 0.1, 18, "", "Q", "sharpness: higher is narrower (0.707 = Butterworth)", log=True),
    )


def _table() -> dict[str, tuple[str, tuple[ParamSpec, ...]]]:
    # name: (category, parameters). Ranges are what a person needs and pedalboard accepts;
    # pedalboard's own limits are quoted where it has them.
    return {
        # ---- filters and EQ
        "HighpassFilter": ("Filters and EQ", (
            _f("cutoff_frequency_hz", 50, 20, 20000, "Hz", "cutoff",
               "first order, 6 dB/octave: -3 dB at the cutoff, -20 dB a decade below", log=True, nyquist=True),)),
        "LowpassFilter": ("Filters and EQ", (
            _f("cutoff_frequency_hz", 50, 20, 20000, "Hz", "cutoff",
               "first order, 6 dB/octave: -3 dB at the cutoff, -20 dB a decade above", log=True, nyquist=True),)),
        "HighShelfFilter": ("Filters and EQ", _eq("frequencies above it get the gain (half of it, in dB, at it)")),
        "LowShelfFilter": ("Filters and EQ", _eq("frequencies below it get the gain (half of it, in dB, at it)")),
        "PeakFilter": ("Filters and EQ", _eq("centre of the boost or cut")),
        "LadderFilter": ("Filters and EQ", (
            _c("mode", "LPF12", tuple(pedalboard.LadderFilter.Mode.__members__), "mode",
               "low-, high- or band-pass, 12 or 24 dB/octave"),
            _f("cutoff_hz", 200, 20, 20000, "Hz", "cutoff", "corner frequency of the Moog ladder", log=True,
               nyquist=True),
            _f("resonance", 0, 0, 1, "", "resonance", "peak at the cutoff: 0 = none, 1 = self-oscillating"),
            _f("drive", 1, 1, 10, "", "drive", "input gain into the ladder's saturation (1 = clean)", step=0.1),
        )),
        # ---- dynamics
        "Compressor": ("Dynamics", (
            _f("threshold_db", 0, -60, 0, "dB", "threshold", "level above which the gain is reduced"),
            _f("ratio", 1, 1, 20, ":1", "ratio", "input dB over the threshold per output dB (1 = no compression)"),
            _f("attack_ms", 1, 0.1, 500, "ms", "attack", "time to react to a rise", log=True, step=0.1),
            _f("release_ms", 100, 1, 5000, "ms", "release", "time to recover after a fall", log=True),
        )),
        "Limiter": ("Dynamics", (
            _f("threshold_db", -10, -60, 0, "dB", "threshold",
               "where limiting starts; make-up gain follows, the output is clipped at 0 dBFS"),
            _f("release_ms", 100, 1, 5000, "ms", "release", "time to recover after a peak", log=True),
        )),
        "BrickwallLimiter": ("Dynamics", (
            _f("ceiling_db", -1, -60, 0, "dB", "ceiling", "peaks are held at or below this level (no make-up gain)"),
            _f("release_ms", 100, 1, 5000, "ms", "release", "time to recover after a peak", log=True),
            _f("lookahead_ms", 5, 0.1, 100, "ms", "look-ahead", "how early it sees a peak coming", step=0.1),
            _b("true_peak", False, "true peak", "detect inter-sample peaks (4x oversampled side chain)"),
        )),
        "NoiseGate": ("Dynamics", (
            _f("threshold_db", -100, -100, 0, "dB", "threshold", "level below which the sound is attenuated"),
            _f("ratio", 10, 1, 100, ":1", "ratio", "expansion below the threshold (high = a hard gate)", log=True),
            _f("attack_ms", 1, 0.1, 500, "ms", "attack", "time to open", log=True, step=0.1),
            _f("release_ms", 100, 1, 5000, "ms", "release", "time to close", log=True),
        )),
        # ---- time and space
        "Reverb": ("Time and space", (
            _f("room_size", 0.5, 0, 1, "", "room size", "larger rooms decay longer"),
            _f("damping", 0.5, 0, 1, "", "damping", "how fast high frequencies die away"),
            _f("wet_level", 0.33, 0, 1, "", "wet level", "level of the reverberation"),
            _f("dry_level", 0.4, 0, 1, "", "dry level", "level of the direct sound"),
            _f("width", 1, 0, 1, "", "width", "stereo width of the reverberation"),
            _f("freeze_mode", 0, 0, 1, "", "freeze", "at 0.5 or more the reverberation sustains for ever"),
        )),
        "Delay": ("Time and space", (
            _f("delay_seconds", 0.5, 0, 5, "s", "delay", "time between the sound and its echo", step=0.001),
            _f("feedback", 0, 0, 1, "", "feedback", "share of each echo fed back (more echoes)"),
            _MIX,
        )),
        "Convolution": ("Time and space", (
            ParamSpec("impulse_response", "file", None, label="impulse response",
                      doc="audio file of the impulse response (mono, or stereo: left to left, right to right)"),
            _f("mix", 1, 0, 1, "", "mix", "wet share of the output: 0 = dry only, 1 = effect only"),
            _b("normalize", True, "normalise IR",
               "pedalboard scales the impulse response to 0.125 / its norm (-18 dB); off keeps its own level, "
               "a plain convolution"),
        )),
        # ---- modulation
        "Chorus": ("Modulation", (
            _f("rate_hz", 1, 0, 100, "Hz", "rate", "speed of the LFO that sweeps the delay (pedalboard: 0 to 100 Hz)",
               step=0.01),
            _f("depth", 0.25, 0, 1, "", "depth", "how far the delay is swept"),
            _f("centre_delay_ms", 7, 1, 100, "ms", "centre delay", "7-8 ms: chorus; shorter with feedback: flanger",
               step=0.1),
            _f("feedback", 0, -0.95, 0.95, "", "feedback", "share of the delayed sound fed back"),
            _MIX,
        )),
        "Phaser": ("Modulation", (
            _f("rate_hz", 1, 0, 100, "Hz", "rate", "speed of the LFO that sweeps the notches", step=0.01),
            _f("depth", 0.5, 0, 1, "", "depth", "how far the notches sweep"),
            _f("centre_frequency_hz", 1300, 20, 20000, "Hz", "centre", "centre of the sweep", log=True, nyquist=True),
            _f("feedback", 0, -0.99, 0.99, "", "feedback", "depth of the notches' resonance"),
            _MIX,
        )),
        # ---- distortion
        "Distortion": ("Distortion", (
            _f("drive_db", 25, 0, 60, "dB", "drive", "gain before tanh waveshaping: y = tanh(x * 10^(drive/20))"),)),
        "Clipping": ("Distortion", (
            _f("threshold_db", -6, -60, 0, "dB", "threshold", "samples are hard-clipped at this level"),)),
        # ---- pitch
        "PitchShift": ("Pitch", (
            _f("semitones", 0, -72, 72, "semitones", "shift",
               "pitch change keeping the duration (Rubber Band; pedalboard: -72 to 72)"),)),
        # ---- lo-fi and codecs
        "Bitcrush": ("Lo-fi and codecs", (
            _f("bit_depth", 8, 1, 32, "bits", "bit depth",
               "samples are rounded to steps of 2^-bits (noise about 6 dB per bit lower)"),)),
        "Resample": ("Lo-fi and codecs", (
            _f("target_sample_rate", 8000, 1000, 192000, "Hz", "rate",
               "down to this rate and back up: removes what lies above half of it", log=True),
            _c("quality", "WindowedSinc32", _quality_names(), "quality", "resampling algorithm"),
        )),
        "GSMFullRateCompressor": ("Lo-fi and codecs", (
            _c("quality", "WindowedSinc8", _quality_names(), "quality",
               "resampler to and from the codec's 8 kHz"),)),
        "MP3Compressor": ("Lo-fi and codecs", (
            _f("vbr_quality", 2, 0, 9.9, "", "VBR quality",
               "LAME variable bit rate quality: 0 best, 9.9 worst (32, 44.1, 48 kHz and their halves and quarters)",
               step=0.1),)),
        # ---- utility
        "Gain": ("Utility", (
            _f("gain_db", 1, -60, 24, "dB", "gain", "volume change"),)),
        "Invert": ("Utility", ()),
    }


def _first_paragraph(text: str | None) -> str:
    text = inspect.cleandoc(text or "")
    return " ".join(text.split("\n\n")[0].split())


def builtin_effect_classes() -> dict[str, type]:
    """pedalboard's effect classes, found by introspecting the installed pedalboard.

    Every public subclass of ``pedalboard.Plugin`` except :data:`NOT_EFFECTS`.
    """
    found = {}
    for name in dir(pedalboard):
        obj = getattr(pedalboard, name)
        if name.startswith("_") or name in NOT_EFFECTS or not isinstance(obj, type):
            continue
        if issubclass(obj, pedalboard.Plugin):
            found[name] = obj
    return found


def _build() -> dict[str, EffectType]:
    available = builtin_effect_classes()
    registry = {}
    for name, (category, params) in _table().items():
        if name not in available:  # an older pedalboard without it: not offered
            continue
        registry[name] = EffectType(name, category, params, _first_paragraph(available[name].__doc__))
    return registry


#: The registry: pedalboard class name -> :class:`EffectType`, in table order.
EFFECTS: Mapping[str, EffectType] = _build()


def effect_type(name: str) -> EffectType:
    """The registered built-in effect ``name``; raises ``KeyError`` with the known names."""
    try:
        return EFFECTS[name]
    except KeyError:
        raise KeyError(f"unknown effect {name!r}; known: {', '.join(sorted(EFFECTS))}, or VST3") from None

