"""Exceptions raised by the audio file layer.

Every error derives from :class:`AudioError`, carries the offending file in
``.path`` and a one-line human reason in ``.reason``; ``str(err)`` is a single
line such as ``"cannot read 'x.wav': file is truncated: header promises 88200
frames, data holds 44100"``. Errors that describe a bad argument value (a bad
sample rate, channel index, format, clipping samples) also derive from
:class:`ValueError` so generic callers can catch them as such.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "AudioError",
    "AudioFileNotFound",
    "AudioTooLong",
    "AudioWriteError",
    "BadChannelSelection",
    "BadSampleRate",
    "ClippingError",
    "DestinationExists",
    "EffectError",
    "EffectProcessingError",
    "BadEffectParameter",
    "EmptyAudio",
    "InvalidSamples",
    "NonFiniteAudio",
    "PluginLoadError",
    "PresetError",
    "TruncatedAudio",
    "UnreadableAudio",
    "UnsupportedFormat",
    "UntrustedPluginError",
    "WouldOverwriteSource",
]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _restore(cls: type, args: tuple, state: dict) -> AudioError:
    err = Exception.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class AudioError(Exception):
    """Base class of every audio file error.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file the operation was about (the destination when saving).
    reason : str
        Why it failed, one line, without the path.
    action : {"read", "write"}, optional
        Verb used in the message; defaults to the class's ``action``.

    Attributes
    ----------
    path : pathlib.Path or None
    reason : str
    action : str
    """

    action = "read"

    def __init__(self, path: str | os.PathLike | None, reason: str, *, action: str | None = None):
        self.path = Path(path) if path is not None else None
        self.reason = _one_line(reason)
        if action is not None:
            self.action = action
        super().__init__(self._message())

    def _message(self) -> str:
        if self.path is None:
            return f"cannot {self.action} audio: {self.reason}"
        return f"cannot {self.action} '{self.path}': {self.reason}"

    def __reduce__(self):  # picklable despite the keyword-bearing __init__
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class AudioFileNotFound(AudioError):
    """The path does not exist."""


class UnreadableAudio(AudioError):
    """The path exists but holds nothing pedalboard can decode (a directory,
    a text file, an unsupported or corrupt format, no read permission)."""


class EmptyAudio(AudioError):
    """The file (or the array to save) holds no audio: 0 bytes, 0 frames or
    0 channels."""


class TruncatedAudio(AudioError):
    """The file ends before its own headers say the audio does.

    Attributes
    ----------
    promised_frames : int or None
        Frames per channel the header promises (None where the format has no
        such promise, e.g. Ogg).
    available_frames : int or None
        Frames per channel the data actually holds, where known.
    """

    def __init__(self, path, reason, *, promised_frames=None, available_frames=None, action=None):
        self.promised_frames = promised_frames
        self.available_frames = available_frames
        super().__init__(path, reason, action=action)


class NonFiniteAudio(AudioError, ValueError):
    """Samples contain NaN or +/-inf.

    Attributes
    ----------
    count : int
        Number of non-finite samples (over all channels).
    first_seconds : float
        Time of the first one, in seconds from the start.
    """

    def __init__(self, path, reason, *, count=0, first_seconds=0.0, action=None):
        self.count = count
        self.first_seconds = first_seconds
        super().__init__(path, reason, action=action)


class BadSampleRate(AudioError, ValueError):
    """A sample rate outside 1000..768000 Hz, or one a codec cannot store.

    Attributes
    ----------
    sample_rate : float or None
        The offending rate in Hz.
    """

    def __init__(self, path, reason, *, sample_rate=None, action=None):
        self.sample_rate = sample_rate
        super().__init__(path, reason, action=action)


class BadChannelSelection(AudioError, ValueError):
    """The ``channels`` argument names channels the file does not have."""


class AudioTooLong(AudioError):
    """The file is longer than the caller's ``max_duration``.

    Attributes
    ----------
    duration : float
        Length of the file in seconds (may be a lower bound).
    max_duration : float
        The limit in seconds.
    """

    def __init__(self, path, reason, *, duration=0.0, max_duration=0.0, action=None):
        self.duration = duration
        self.max_duration = max_duration
        super().__init__(path, reason, action=action)


class InvalidSamples(AudioError, ValueError):
    """An array given to ``save_audio`` that is not audio (wrong dtype or shape)."""

    action = "write"


class ClippingError(AudioError, ValueError):
    """Saving would clip: the peak is above 0 dBFS.

    Attributes
    ----------
    peak_dbfs : float
        Peak level of the samples, in dB relative to full scale (1.0).
    """

    action = "write"

    def __init__(self, path, reason, *, peak_dbfs=0.0, action=None):
        self.peak_dbfs = peak_dbfs
        super().__init__(path, reason, action=action)


class UnsupportedFormat(AudioError, ValueError):
    """Extension, bit depth, quality or channel count the writer cannot produce."""

    action = "write"


class AudioWriteError(AudioError):
    """Writing failed (disk full, permission denied, read-only folder...).

    Attributes
    ----------
    errno : int or None
        The OS error number when the failure came from the OS.
    """

    action = "write"

    def __init__(self, path, reason, *, errno=None, action=None):
        self.errno = errno
        super().__init__(path, reason, action=action)


class DestinationExists(AudioWriteError):
    """The destination exists and ``overwrite=False``."""


class WouldOverwriteSource(AudioWriteError):
    """The destination is the file the audio was loaded from."""


# --------------------------------------------------------------------------- effects


class EffectError(Exception):
    """Base class of every effect-chain error (built-in effects, VST3 plugins, presets).

    Like :class:`AudioError`, ``str(err)`` is one line that names what failed and why.

    Parameters
    ----------
    reason : str
        Why it failed, one line, without the effect's name or the path.
    effect : str, optional
        The effect concerned (``"Reverb"``, ``"VST3 'Foo'"``).
    path : str or os.PathLike, optional
        The file concerned: a VST3 plugin, an impulse response, a preset.

    Attributes
    ----------
    reason : str
    effect : str or None
    path : pathlib.Path or None
    """

    def __init__(self, reason: str, *, effect: str | None = None, path: str | os.PathLike | None = None):
        self.reason = _one_line(reason)
        self.effect = effect
        self.path = Path(path) if path is not None else None
        super().__init__(self._message())

    def _where(self) -> str:
        parts = [self.effect] if self.effect else []
        if self.path is not None:
            parts.append(f"'{self.path}'")
        return " ".join(parts)

    def _message(self) -> str:
        where = self._where()
        return f"{where}: {self.reason}" if where else self.reason

    def __reduce__(self):
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class BadEffectParameter(EffectError, ValueError):
    """A parameter an effect does not have, or a value outside its range or of the wrong type."""


class PluginLoadError(EffectError):
    """A VST3 plugin could not be loaded: no such file, not a plugin, a scan failure."""

    def _message(self) -> str:
        what = f"VST3 plugin '{self.path}'" if self.path is not None else "VST3 plugin"
        return f"cannot load {what}: {self.reason}"


class UntrustedPluginError(PluginLoadError):
    """A VST3 plugin outside the folders the user trusts: it was not loaded (loading runs
    the plugin's own code). See :func:`scalgui.audio.vst3.is_trusted_vst3`."""

    def __init__(self, path: str | os.PathLike, *, effect: str | None = None):
        super().__init__(
            "it is outside the VST3 folders you trust (the standard ones and those in scalgui's "
            "settings), and a plugin runs its own code",
            effect=effect, path=path)


class EffectProcessingError(EffectError):
    """An effect raised (or produced NaN/inf) while processing; the input is left untouched."""

    def _message(self) -> str:
        return f"{self._where() or 'effect'} failed while processing: {self.reason}; the audio was left unchanged"


class PresetError(EffectError, ValueError):
    """An effect preset file that cannot be read (missing, not JSON, wrong format or version,
    a bad effect or parameter) or written.

    Attributes
    ----------
    action : {"read", "write"}
    """

    def __init__(self, reason: str, *, path=None, effect: str | None = None, action: str = "read"):
        self.action = action
        super().__init__(reason, effect=effect, path=path)

    def _message(self) -> str:
        where = f"preset '{self.path}'" if self.path is not None else "preset"
        return f"cannot {self.action} {where}: {self.reason}"
