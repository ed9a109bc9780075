"""Truncation checks for streamed codecs: Ogg (page walk) and MP3 (frame walk)."""

from __future__ import annotations

import struct

from ._container import Integrity, mp3_header, skip_id3v2
from ._container import truncated as _truncated

__all__ = ["check_mp3", "check_ogg"]


def check_ogg(mm, size: int, fmt: str) -> Integrity:
    pos, first_serial, open_streams, granule = 0, None, set(), None
    partial = False
    while pos < size:
        if mm[pos:pos + 4] != b"OggS":
            nxt = mm.find(b"OggS", pos + 1)
            if nxt < 0:
                break  # trailing junk
            pos = nxt
            continue
        if pos + 27 > size:
            partial = True
            break
        htype = mm[pos + 5]
        gran, serial = struct.unpack("<qI", mm[pos + 6:pos + 18])
        nseg = mm[pos + 26]
        if pos + 27 + nseg > size:
            partial = True
            break
        length = 27 + nseg + sum(mm[pos + 27:pos + 27 + nseg])
        if pos + length > size:
            partial = True
            break
        if htype & 0x02:
            open_streams.add(serial)
            if first_serial is None:
                first_serial = serial
        if htype & 0x04:
            open_streams.discard(serial)
        if serial == first_serial and gran != -1:
            granule = gran
        pos += length
    if partial or open_streams:
        held = granule or 0
        why = "its last page is incomplete" if partial else "it has no end-of-stream page"
        return _truncated(fmt, None, held,
                          f"the Ogg stream stops early ({why}); data holds {held} frames")
    return Integrity(fmt, False, None, granule)


def check_mp3(mm, size: int, fmt: str) -> Integrity:
    start, end = skip_id3v2(mm), size
    if end - 128 >= start and mm[end - 128:end - 125] == b"TAG":
        end -= 128
    if end - 32 >= start and mm[end - 32:end - 24] == b"APETAGEX":
        tag_size, flags = struct.unpack("<I4xI", mm[end - 20:end - 8])
        end -= tag_size + (32 if flags & 0x80000000 else 0)
    # first frame: a valid header followed by another valid header (or the end)
    pos, first = start, None
    while pos < min(end, start + (1 << 16)):
        pos = mm.find(b"\xff", pos, end)
        if pos < 0:
            break
        h = mp3_header(mm, pos)
        if h is not None:
            nxt = pos + h[1]
            h2 = mp3_header(mm, nxt) if nxt + 4 <= end else None
            if nxt >= end or (h2 is not None and h2[0] == h[0]):
                first = h
                break
        pos += 1
    if first is None:
        return Integrity(fmt)
    key, length, spf, side = first
    if pos + length > end:
        return _truncated(fmt, None, 0, "file ends inside its first MPEG audio frame")
    promised = None
    tag = pos + 4 + side
    if mm[tag:tag + 4] in (b"Xing", b"Info"):
        flags = struct.unpack(">I", mm[tag + 4:tag + 8])[0]
        if flags & 1:
            promised = struct.unpack(">I", mm[tag + 8:tag + 12])[0]
        pos += length
    elif mm[pos + 36:pos + 40] == b"VBRI":
        promised = struct.unpack(">I", mm[pos + 50:pos + 54])[0]
        pos += length
    if promised is None:
        return Integrity(fmt)  # no promised length: a clean cut is undetectable
    count = 0
    while pos + 4 <= end:
        h = mp3_header(mm, pos)
        if h is None or h[0] != key:
            return Integrity(fmt)  # junk or damage mid-stream: not a truncation we can name
        if pos + h[1] > end:
            break  # the last frame is cut
        count += 1
        pos += h[1]
    if count + 1 < promised:  # one frame of slack for encoders that count the tag frame
        return _truncated(fmt, promised * spf, count * spf)
    return Integrity(fmt, False, promised * spf, count * spf)
