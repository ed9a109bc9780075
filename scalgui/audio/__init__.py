"""Audio file I/O for scalgui: load, inspect and save sound files.

Built on pedalboard (decoding/encoding) and numpy; no Qt, no torch.

>>> from scalgui.audio import load_audio, save_audio
>>> audio = load_audio("in.flac", sample_rate=44100, channels="mono")  # doctest: +SKIP
>>> save_audio("out.wav", audio.samples, audio.sample_rate, clip="limit")  # doctest: +SKIP
"""

from .errors import (
    AudioError,
    AudioFileNotFound,
    AudioTooLong,
    AudioWriteError,
    BadChannelSelection,
    BadSampleRate,
    ClippingError,
    DestinationExists,
    EmptyAudio,
    InvalidSamples,
    NonFiniteAudio,
    TruncatedAudio,
    UnreadableAudio,
    UnsupportedFormat,
    WouldOverwriteSource,
)
from .formats import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    SUPPORTED_WRITE_FORMATS,
    WriteFormat,
)
from .io import Audio, audio_info, load_audio
from .save import SaveReport, save_audio

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "SUPPORTED_WRITE_FORMATS",
    "Audio",
    "AudioError",
    "AudioFileNotFound",
    "AudioTooLong",
    "AudioWriteError",
    "BadChannelSelection",
    "BadSampleRate",
    "ClippingError",
    "DestinationExists",
    "EmptyAudio",
    "InvalidSamples",
    "NonFiniteAudio",
    "SaveReport",
    "TruncatedAudio",
    "UnreadableAudio",
    "UnsupportedFormat",
    "WouldOverwriteSource",
    "WriteFormat",
    "audio_info",
    "load_audio",
    "save_audio",
]
