"""Truncation check for FLAC: find the last frame header, verify its CRC-16."""

from __future__ import annotations

import struct

from ._container import Integrity, skip_id3v2
from ._container import truncated as _truncated

__all__ = ["check_flac"]


def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else (crc << 1)
        table.append(crc & mask)
    return table


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)


def _crc8(data) -> int:
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def _crc16(data) -> int:
    crc, t = 0, _CRC16
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc


_FLAC_BLOCK = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608,
               **{c: 256 << (c - 8) for c in range(8, 16)}}


def _flac_frame_header(mm, p: int, end: int, channels: int, fixed_block: int):
    """Parse a FLAC frame header at ``p``: (first_sample, block_size) or None."""
    try:
        return _parse_flac_frame_header(mm, p, end, channels, fixed_block)
    except IndexError:  # header runs past the end of the file
        return None


def _parse_flac_frame_header(mm, p, end, channels, fixed_block):
    if p + 6 > end:
        return None
    b1, b2, b3 = mm[p + 1], mm[p + 2], mm[p + 3]
    bs_code, sr_code = b2 >> 4, b2 & 0xF
    ch_code, ss_code = b3 >> 4, (b3 >> 1) & 7
    if bs_code == 0 or sr_code == 15 or ch_code > 10 or ss_code == 3 or b3 & 1:
        return None
    if (ch_code + 1 if ch_code < 8 else 2) != channels:
        return None
    q = p + 4
    lead = mm[q]
    ones = next((i for i in range(8) if not lead & (0x80 >> i)), 8)  # UTF-8-style number
    if ones == 1 or ones == 8:
        return None
    n_extra = max(0, ones - 1)
    number = lead & ((1 << (7 - ones)) - 1) if ones else lead
    if q + 1 + n_extra > end:
        return None
    for k in range(1, n_extra + 1):
        c = mm[q + k]
        if c & 0xC0 != 0x80:
            return None
        number = (number << 6) | (c & 0x3F)
    q += 1 + n_extra
    if bs_code == 6:
        block = mm[q] + 1
        q += 1
    elif bs_code == 7:
        block = ((mm[q] << 8) | mm[q + 1]) + 1
        q += 2
    else:
        block = _FLAC_BLOCK[bs_code]
    q += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if q >= end or _crc8(mm[p:q]) != mm[q]:
        return None
    first = number if b1 & 1 else number * fixed_block
    return first, block


def check_flac(mm, size: int, fmt: str) -> Integrity:
    pos = skip_id3v2(mm) + 4
    info, last = None, False
    while not last:
        if pos + 4 > size:
            return _truncated(fmt, info[0] if info else None, 0,
                              "file ends inside its metadata, before the audio frames")
        hdr = mm[pos]
        last, btype = bool(hdr & 0x80), hdr & 0x7F
        blen = int.from_bytes(mm[pos + 1:pos + 4], "big")
        if btype == 0 and pos + 4 + 34 <= size:
            si = mm[pos + 4:pos + 4 + 34]
            max_block = struct.unpack(">H", si[2:4])[0]
            max_frame = int.from_bytes(si[7:10], "big")
            bits = int.from_bytes(si[10:18], "big")
            info = (bits & ((1 << 36) - 1), ((bits >> 41) & 7) + 1, max_block, max_frame)
        pos += 4 + blen
        if btype == 127:
            return Integrity(fmt)
    if info is None:
        return Integrity(fmt)
    total, channels, max_block, max_frame = info
    if pos > size:
        return _truncated(fmt, total or None, 0,
                          "file ends inside its metadata, before the audio frames")
    if total == 0:
        return Integrity(fmt)  # length unknown: nothing promised
    audio_start, end = pos, size
    if end - 128 >= audio_start and mm[end - 128:end - 125] == b"TAG":
        end -= 128  # trailing ID3v1 tag
    if end - audio_start < 2:
        return _truncated(fmt, total, 0)
    window = (max_frame + 64) if max_frame else (4 << 20)
    lo = max(audio_start, end - window)
    expected = struct.unpack(">H", mm[end - 2:end])[0]
    first_header = None
    p = end - 2
    while True:
        p = mm.rfind(b"\xff", lo, p)
        if p < 0:
            break
        if mm[p + 1] & 0xFE == 0xF8:
            parsed = _flac_frame_header(mm, p, end, channels, max_block)
            if parsed is not None and parsed[0] < total:
                if first_header is None:
                    first_header = parsed[0]
                if _crc16(mm[p:end - 2]) == expected:  # a complete final frame
                    held = parsed[0] + parsed[1]
                    if held < total:
                        return _truncated(fmt, total, held)
                    return Integrity(fmt, False, total, total)
    if first_header is None and lo > audio_start:
        return _truncated(fmt, total, None, f"header promises {total} frames, "
                          "the file's last audio frame is incomplete")
    return _truncated(fmt, total, first_header or 0)
