"""Truncation checks for uncompressed containers: WAV/RF64/BW64 and AIFF/AIFF-C."""

from __future__ import annotations

import struct

from ._container import Integrity
from ._container import truncated as _truncated

__all__ = ["check_aiff", "check_riff"]


def check_riff(mm, size: int, fmt: str) -> Integrity:
    e = ">" if mm[:4] == b"RIFX" else "<"
    rf64 = fmt == "rf64"
    pos, block_align, ds64_data = 12, 0, None
    while pos + 8 <= size:
        cid = mm[pos:pos + 4]
        csize = struct.unpack(e + "I", mm[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"ds64" and body + 16 <= size:
            ds64_data = struct.unpack("<Q", mm[body + 8:body + 16])[0]
        elif cid == b"fmt " and body + 16 <= size:
            block_align = struct.unpack(e + "H", mm[body + 12:body + 14])[0]
        elif cid == b"data":
            data_size = csize
            if rf64 and csize == 0xFFFFFFFF and ds64_data is not None:
                data_size = ds64_data
            elif csize == 0xFFFFFFFF or csize == 0 or block_align == 0:
                return Integrity(fmt)  # streaming/unknown length: no promise
            promised = data_size // block_align
            available = min(data_size, size - body) // block_align
            if available < promised:
                return _truncated(fmt, promised, available)
            return Integrity(fmt, False, promised, available)
        pos = body + csize + (csize & 1)
    # no data chunk: the file ends inside or right after its header
    return _truncated(fmt, None, 0, "file ends inside its header, before the audio data")


_AIFC_BYTES = {b"NONE": None, b"sowt": None, b"twos": None, b"raw ": None,
               b"in24": 3, b"in32": 4, b"fl32": 4, b"FL32": 4, b"fl64": 8, b"FL64": 8,
               b"ulaw": 1, b"ULAW": 1, b"alaw": 1, b"ALAW": 1}


def check_aiff(mm, size: int, fmt: str) -> Integrity:
    aifc = mm[8:12] == b"AIFC"
    pos, comm, ssnd = 12, None, None
    while pos + 8 <= size and (comm is None or ssnd is None):
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
    if comm is None:
        return _truncated(fmt, None, 0, "file ends inside its header, before the COMM chunk")
    ch, nframes, bits, comp = comm
    if comp not in _AIFC_BYTES or ch <= 0:
        return Integrity(fmt)  # a codec whose size we do not know
    width = _AIFC_BYTES[comp] or (bits + 7) // 8
    bpf = ch * width
    if ssnd is None:
        if nframes > 0:
            return _truncated(fmt, nframes, 0, f"header promises {nframes} frames, "
                              "file ends before its sound data (no SSND chunk)")
        return Integrity(fmt, False, 0, 0)
    start, length = ssnd
    available = max(0, min(length, size - start)) // bpf
    if available < nframes:
        return _truncated(fmt, nframes, available)
    return Integrity(fmt, False, nframes, nframes)
