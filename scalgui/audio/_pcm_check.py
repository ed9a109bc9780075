"""Truncation checks for uncompressed containers: WAV/RF64/BW64 and AIFF/AIFF-C."""

from __future__ import annotations

import struct

from ._container import Integrity
from ._container import truncated as _truncated

__all__ = ["DECODER_FRAME_BYTES", "check_aiff", "check_riff"]

#: Largest frame (all channels of one sample time), in bytes, that pedalboard 0.9.26 can
#: decode from WAV and AIFF: its reader (JUCE's) copies through a buffer of 480 * 3 * 4
#: bytes and never advances when one frame is larger, so such a file hangs the reader
#: (measured: 2880 channels of 16 bits read; with 2881 the read never returned).
DECODER_FRAME_BYTES = 5760

#: A RIFF data size that streaming writers put there when the length is not known yet.
_UNKNOWN_SIZE = 0xFFFFFFFF

#: Most chunks walked before the audio data: real files have a handful; a crafted one of
#: millions of empty chunks would take a minute per gigabyte to walk.
MAX_CHUNKS = 4096
_TOO_MANY_CHUNKS = f"the header holds more than {MAX_CHUNKS} chunks before the audio data"


def _too_wide(channels: int, bits: int) -> str:
    """The :attr:`Integrity.unreadable` reason for frames over DECODER_FRAME_BYTES, or ''."""
    frame_bytes = channels * bits // 8
    if frame_bytes <= DECODER_FRAME_BYTES:
        return ""
    return (f"the header declares {channels} channels of {bits} bits ({frame_bytes} bytes "
            f"per frame); frames of at most {DECODER_FRAME_BYTES} bytes can be decoded "
            f"(e.g. {DECODER_FRAME_BYTES // 2} channels of 16 bits)")


def check_riff(mm, size: int, fmt: str) -> Integrity:
    e = ">" if mm[:4] == b"RIFX" else "<"
    rf64 = fmt == "rf64"
    pos, frame_bytes, ds64_data, wide = 12, 0, None, ""
    for _ in range(MAX_CHUNKS):
        if pos + 8 > size:
            break
        cid = mm[pos:pos + 4]
        csize = struct.unpack(e + "I", mm[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"ds64" and body + 16 <= size:
            ds64_data = struct.unpack("<Q", mm[body + 8:body + 16])[0]
        elif cid == b"fmt " and body + 16 <= size:
            channels, block_align, bits = struct.unpack(e + "H8xHH", mm[body + 2:body + 16])
            # pedalboard (JUCE) sizes a frame as channels * bits / 8, not by the block
            # align field; count frames as it does, so the two counts agree.
            frame_bytes = channels * bits // 8 or block_align
            wide = _too_wide(channels, bits)
        elif cid == b"data":
            if wide:
                return Integrity(fmt, unreadable=wide)
            if frame_bytes == 0:
                return Integrity(fmt)  # no usable fmt chunk before the data: pedalboard refuses
            held = max(0, size - body) // frame_bytes
            data_size = csize
            if rf64 and csize == _UNKNOWN_SIZE and ds64_data:
                data_size = ds64_data
            elif csize == _UNKNOWN_SIZE:
                # A streaming writer's "length not known yet": the data runs to the end of
                # the file, and what the file holds is the length.
                return Integrity(fmt, False, None, held, held_frames=held)
            elif csize == 0:
                return Integrity(fmt)  # pedalboard reads 0 frames: refused as empty
            promised = data_size // frame_bytes
            available = min(data_size, size - body) // frame_bytes
            if available < promised:
                return _truncated(fmt, promised, available)
            return Integrity(fmt, False, promised, available, held_frames=available)
        pos = body + csize + (csize & 1)
    else:
        if pos + 8 <= size:
            return Integrity(fmt, unreadable=_TOO_MANY_CHUNKS)
    # no data chunk: the file ends inside or right after its header
    return _truncated(fmt, None, 0, "file ends inside its header, before the audio data")


_AIFC_BYTES = {b"NONE": None, b"sowt": None, b"twos": None, b"raw ": None,
               b"in24": 3, b"in32": 4, b"fl32": 4, b"FL32": 4, b"fl64": 8, b"FL64": 8,
               b"ulaw": 1, b"ULAW": 1, b"alaw": 1, b"ALAW": 1}


def check_aiff(mm, size: int, fmt: str) -> Integrity:
    aifc = mm[8:12] == b"AIFC"
    pos, comm, ssnd = 12, None, None
    for _ in range(MAX_CHUNKS):
        if pos + 8 > size or (comm is not None and ssnd is not None):
            break
        cid = mm[pos:pos + 4]
        csize = struct.unpack(">I", mm[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"COMM" and body + 8 <= size:
            ch, nframes, bits = struct.unpack(">hIh", mm[body:body + 8])
            comp = mm[body + 18:body + 22] if aifc and body + 22 <= size else b"NONE"
            comm = (ch, nframes, bits, comp)
        elif cid == b"SSND" and body + 8 <= size:
            offset = struct.unpack(">I", mm[body:body + 4])[0]
            ssnd = (body + 8 + offset, csize - 8 - offset)
        pos = body + csize + (csize & 1)
    else:
        if pos + 8 <= size and (comm is None or ssnd is None):
            return Integrity(fmt, unreadable=_TOO_MANY_CHUNKS)
    if comm is None:
        return _truncated(fmt, None, 0, "file ends inside its header, before the COMM chunk")
    ch, nframes, bits, comp = comm
    if ch <= 0:
        return Integrity(fmt, unreadable=f"the header declares {ch} channels")
    if comp not in _AIFC_BYTES:
        return Integrity(fmt)  # a codec whose size we do not know
    width = _AIFC_BYTES[comp] or (bits + 7) // 8
    if width <= 0:
        return Integrity(fmt, unreadable=f"the header declares {bits}-bit samples")
    wide = _too_wide(ch, 8 * width)
    if wide:
        return Integrity(fmt, unreadable=wide)
    bpf = ch * width
    if ssnd is None:
        if nframes > 0:
            return _truncated(fmt, nframes, 0, f"header promises {nframes} frames, "
                              "file ends before its sound data (no SSND chunk)")
        return Integrity(fmt, False, 0, 0, held_frames=0)
    start, length = ssnd
    available = max(0, min(length, size - start)) // bpf
    if available < nframes:
        return _truncated(fmt, nframes, available)
    return Integrity(fmt, False, nframes, nframes, held_frames=available)
