"""What ``save_audio`` can write, and how quality values are spelled.

Facts about pedalboard 0.9.26's writers (checked by writing files):

* WAV: 16/24-bit integer PCM, 32-bit IEEE float (pedalboard also does 8-bit,
  not offered here). No quality setting.
* AIFF: 16/24-bit integer (pedalboard's AIFF writer has no 32-bit mode).
* FLAC: 16/24-bit; up to 8 channels; ``quality`` is the compression level
  0 (fastest) .. 8 (smallest file), default 5 -- lossless at every level.
* Ogg Vorbis: ``quality`` is a nominal bitrate, one of 64, 80, 96, 112, 128,
  160, 192, 224, 256, 320, 500 kbps (``"192 kbps"`` or the int ``192``);
  floats such as 0.5 are rejected by pedalboard.
* MP3 (LAME): ``quality`` is a VBR preset ``"V0"`` (best) .. ``"V9"``
  (smallest) or a CBR bitrate 32..320 kbps; at most 2 channels; sample rates
  8000..48000 Hz (MPEG-1/2/2.5 rates only).
* The words ``"best"``, ``"worst"``, ``"fastest"``, ``"slowest"`` work for
  every codec with a quality setting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "SUPPORTED_WRITE_FORMATS", "WriteFormat"]

MIN_SAMPLE_RATE = 1000.0
"""Lowest sample rate (Hz) accepted on load or save."""
MAX_SAMPLE_RATE = 768000.0
"""Highest sample rate (Hz) accepted on load or save."""


@dataclass(frozen=True)
class WriteFormat:
    """How one output format is written.

    Attributes
    ----------
    name : str
        pedalboard's format name ('wav', 'aiff', 'flac', 'ogg', 'mp3').
    bit_depths : tuple of int
        Accepted ``bit_depth`` values in bits; empty for lossy codecs.
    default_bit_depth : int or None
        Used when ``bit_depth`` is None.
    float_bit_depths : tuple of int
        The bit depths that store IEEE float (values above 1.0 survive).
    lossy : bool
        True for Ogg Vorbis and MP3.
    qualities : tuple of str
        Accepted ``quality`` values (canonical spelling); empty if none.
    default_quality : str or int or None
        Used when ``quality`` is None (None: the codec has no setting).
    quality_meaning : str
        What ``quality`` means for this format.
    max_channels : int
        Most channels the writer accepts.
    sample_rates : tuple of int or None
        The only sample rates (Hz) allowed, or None for any in 1000..768000.
    """

    name: str
    bit_depths: tuple[int, ...]
    default_bit_depth: int | None
    float_bit_depths: tuple[int, ...]
    lossy: bool
    qualities: tuple[str, ...]
    default_quality: str | int | None
    quality_meaning: str
    max_channels: int
    sample_rates: tuple[int, ...] | None = None

    @property
    def integer_pcm(self) -> bool:
        """True when every allowed bit depth is integer PCM (clips above 1.0)."""
        return not self.lossy and not self.float_bit_depths


_WORDS = ("best", "worst", "fastest", "slowest")
_OGG_KBPS = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 500)
_MP3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)

_WAV = WriteFormat("wav", (16, 24, 32), 24, (32,), False, (), None,
                   "none (WAV is uncompressed)", 65535)
_AIFF = WriteFormat("aiff", (16, 24), 24, (), False, (), None,
                    "none (AIFF is uncompressed)", 65535)
_FLAC = WriteFormat("flac", (16, 24), 24, (), False,
                    tuple(str(i) for i in range(9)) + _WORDS, None,
                    "compression level 0 (fastest) .. 8 (smallest); lossless at every "
                    "level; default 5", 8)
_OGG = WriteFormat("ogg", (), None, (), True,
                   tuple(f"{k} kbps" for k in _OGG_KBPS) + _WORDS, "256 kbps",
                   "nominal Vorbis bitrate: " + ", ".join(map(str, _OGG_KBPS)) + " kbps",
                   255)
_MP3 = WriteFormat("mp3", (), None, (), True,
                   tuple(f"V{i}" for i in range(10)) + tuple(f"{k} kbps" for k in _MP3_KBPS)
                   + _WORDS, "320 kbps",
                   "LAME VBR preset V0 (best) .. V9 (smallest), or CBR bitrate "
                   + ", ".join(map(str, _MP3_KBPS)) + " kbps", 2,
                   (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000))

SUPPORTED_WRITE_FORMATS: dict[str, WriteFormat] = {
    ".wav": _WAV,
    ".flac": _FLAC,
    ".ogg": _OGG,
    ".mp3": _MP3,
    ".aif": _AIFF,
    ".aiff": _AIFF,
}
"""Lower-case extension (with the dot) -> :class:`WriteFormat`."""


def describe_supported() -> str:
    """One line listing the writable extensions and their bit depths."""
    parts = []
    for ext, spec in SUPPORTED_WRITE_FORMATS.items():
        if spec.lossy:
            parts.append(f"{ext} (quality)")
        else:
            parts.append(f"{ext} ({'/'.join(map(str, spec.bit_depths))}-bit)")
    return ", ".join(parts)


def normalize_quality(spec: WriteFormat, quality) -> str | int | None:
    """Canonical ``quality`` for ``spec``, or raise ValueError naming the choices.

    Parameters
    ----------
    spec : WriteFormat
    quality : str, int or None
        For FLAC an int 0..8; for Ogg/MP3 kbps as int or ``"N kbps"``; for MP3
        also ``"V0"``..``"V9"``; any codec: ``"best"``/``"worst"``/
        ``"fastest"``/``"slowest"``.

    Returns
    -------
    str, int or None
        The value handed to pedalboard (FLAC: int level or a word).

    Raises
    ------
    TypeError
        ``quality`` is neither str nor int.
    ValueError
        ``quality`` is not one this format accepts.
    """
    if quality is None:
        return spec.default_quality
    if not spec.qualities:
        raise ValueError(f"{spec.name} has no quality setting (got {quality!r})")
    if isinstance(quality, bool) or not isinstance(quality, (str, int)):
        raise TypeError(f"quality must be a str or int, got {quality!r}; "
                         f"{spec.name} accepts {spec.quality_meaning}")
    text = str(quality).strip().lower()
    if text in _WORDS:
        return text
    if spec.name == "flac":
        if text.isdigit() and int(text) <= 8:
            return int(text)
    else:
        if spec.name == "mp3" and len(text) == 2 and text[0] == "v" and text[1].isdigit():
            return text.upper()
        number = text.removesuffix("kbps").strip()
        if number.isdigit() and f"{int(number)} kbps" in spec.qualities:
            return f"{int(number)} kbps"
    raise ValueError(f"unsupported quality {quality!r} for {spec.name}; "
                     f"expected {spec.quality_meaning}")
