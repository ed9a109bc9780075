"""Shared pieces of the container checks: the result type and tag/frame parsers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Integrity", "mp3_header", "skip_id3v2", "truncated"]


@dataclass(frozen=True)
class Integrity:
    """Result of :func:`check_integrity`.

    Attributes
    ----------
    format : str or None
        Container found by its magic bytes: 'wav', 'rf64', 'aiff', 'flac',
        'ogg', 'mp3', or None when not recognised.
    truncated : bool
        True when the file ends before its headers say the audio does.
    promised_frames : int or None
        Frames per channel the header promises, where the format has one.
    available_frames : int or None
        Frames per channel the data holds, where it can be told.
    detail : str
        Human explanation when ``truncated`` (empty otherwise).
    held_frames : int or None
        Frames per channel the bytes present hold, counted from the start of the audio
        data to the end of its chunk or of the file, whole frames only; set for the
        uncompressed containers (WAV, RF64, AIFF), where that count is exact. The reader
        never reads past it: pedalboard takes a streaming writer's "unknown length"
        (0xFFFFFFFF) at its word and pads zeros up to 2**31 frames.
    unreadable : str
        Why the file must not be decoded although it is whole (a frame larger than the
        decoder can take, an impossible channel count or sample size); empty otherwise.
    """

    format: str | None
    truncated: bool = False
    promised_frames: int | None = None
    available_frames: int | None = None
    detail: str = ""
    held_frames: int | None = None
    unreadable: str = ""


def skip_id3v2(buf, pos: int = 0) -> int:
    """Offset just past any ID3v2 tags starting at ``pos`` in ``buf``."""
    while buf[pos:pos + 3] == b"ID3" and len(buf) >= pos + 10:
        raw = buf[pos + 6:pos + 10]
        size = (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]
        pos += 10 + size + (10 if buf[pos + 5] & 0x10 else 0)
    return pos


def truncated(fmt, promised, available, detail=None) -> Integrity:
    """An :class:`Integrity` saying the file is truncated."""
    if detail is None:
        detail = f"header promises {promised} frames, data holds {available}"
    return Integrity(fmt, True, promised, available, detail)


_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_KBPS = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def mp3_header(buf, p: int):
    """Parse an MPEG audio frame header: (key, length, samples, side_info) or None."""
    if p + 4 > len(buf) or buf[p] != 0xFF or buf[p + 1] & 0xE0 != 0xE0:
        return None
    b1, b2, b3 = buf[p + 1], buf[p + 2], buf[p + 3]
    ver, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    br_idx, sr_idx, pad = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if ver == 1 or layer == 0 or br_idx in (0, 15) or sr_idx == 3:
        return None
    rate = _MP3_RATES[ver][sr_idx]
    kbps = _MP3_KBPS[(3 if ver == 3 else 2, layer if ver == 3 or layer == 3 else 2)][br_idx]
    if layer == 3:  # Layer I
        length, samples = (12 * kbps * 1000 // rate + pad) * 4, 384
    elif layer == 2 or ver == 3:  # Layer II, or Layer III MPEG-1
        length, samples = 144 * kbps * 1000 // rate + pad, 1152
    else:  # Layer III MPEG-2 / 2.5
        length, samples = 72 * kbps * 1000 // rate + pad, 576
    mono = (b3 >> 6) == 3
    side = (17 if mono else 32) if ver == 3 else (9 if mono else 17)
    side += 0 if b1 & 1 else 2  # CRC follows the header
    return (ver, layer, sr_idx), length, samples, side
