"""Container sniffing and truncation checks that read headers, not audio.

pedalboard 0.9.26 does not report truncated files: it trusts the header's
length and returns silence for the part that is missing. This module parses
just enough of each container to tell whether the file ends before its
headers say the audio does. Nothing here decodes audio; the cost is a few
header reads (WAV, AIFF), one frame CRC near the end (FLAC) or a walk over
page/frame headers (Ogg, MP3: a few milliseconds per minute of audio).

What can and cannot be detected (pedalboard's behaviour in brackets):

* WAV / RF64 / BW64 (pedalboard pads zeros to the header's length): the
  ``data`` chunk size (or RF64 ``ds64`` size) against the bytes present.
  Always detected, except for streaming WAVs whose data size is 0xFFFFFFFF,
  which promise nothing (pedalboard takes it for 2**31 frames of which the
  missing ones are zeros): their length is what the file holds
  (``Integrity.held_frames``), and reading stops there. Frames larger than
  pedalboard can decode (:data:`DECODER_FRAME_BYTES`), impossible
  channel counts and more than 4096 chunks before the audio data are named
  in ``Integrity.unreadable``.
* AIFF / AIFF-C (pads zeros): ``COMM`` frame count against the bytes in
  ``SSND``. Detected for PCM, float, u-law and a-law; other AIFF-C codecs are
  not checked.
* FLAC (decodes up to the damage, then pads zeros to STREAMINFO's total):
  the last frame header near the end of the file is found and the frame's
  CRC-16 checked. A file whose last frame is incomplete, or whose last
  complete frame ends before STREAMINFO's total, is truncated. Not checked
  when STREAMINFO's total is 0 (unknown). Damage in the middle of a FLAC
  file is not detected (that needs a full decode).
* Ogg Vorbis (returns only what decodes, so the file just looks shorter, and
  a file cut early may report 0 frames): every page header is walked; a page
  running past the end, or a logical stream without its end-of-stream page,
  means truncated. Ogg has no promised length, so ``promised_frames`` is None.
* MP3 (with a Xing/Info/VBRI header, as LAME and pedalboard write: pads
  zeros to the header's frame count; without one: returns what decodes):
  frames are walked and counted against the Xing/VBRI frame count. An MP3
  without such a header has no promised length: a cut there is NOT
  detectable, but pedalboard then returns no fake silence either.
"""

from __future__ import annotations

import mmap
import os

from ._container import Integrity, mp3_header, skip_id3v2
from ._flac_check import check_flac
from ._pcm_check import DECODER_FRAME_BYTES, check_aiff, check_riff
from ._stream_check import check_mp3, check_ogg

__all__ = ["DECODER_FRAME_BYTES", "Integrity", "check_integrity", "sniff_format"]

_CHECKERS = {"wav": check_riff, "rf64": check_riff, "aiff": check_aiff,
             "flac": check_flac, "ogg": check_ogg, "mp3": check_mp3}


def sniff_format(head: bytes) -> str | None:
    """Name the container from the first bytes of a file.

    Parameters
    ----------
    head : bytes-like
        The file's first bytes, or the whole file (an mmap will do): ID3v2
        tags in front of FLAC/MP3 data are skipped, so pass enough to cover
        them.

    Returns
    -------
    str or None
        'wav', 'rf64', 'aiff', 'flac', 'ogg', 'mp3', or None.
    """
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "wav"
    if len(head) >= 12 and head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "rf64"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"OggS":
        return "ogg"
    pos = skip_id3v2(head)
    if head[pos:pos + 4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or mp3_header(head, pos) is not None:
        return "mp3"
    return None


def check_integrity(path: str | os.PathLike) -> Integrity:
    """Tell whether an audio file ends before its headers say it does.

    Parameters
    ----------
    path : str or os.PathLike
        An existing regular file.

    Returns
    -------
    Integrity
        ``format`` is None and ``truncated`` False for files not recognised.

    Raises
    ------
    OSError
        If the file cannot be opened or mapped.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return Integrity(None)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            fmt = sniff_format(mm)
            checker = _CHECKERS.get(fmt)
            if checker is None:
                return Integrity(fmt)
            return checker(mm, size, fmt)
