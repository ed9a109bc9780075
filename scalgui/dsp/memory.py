"""How much memory a retrieval may take, and how to cut a long signal into windows that fit.

Phase retrieval holds several coefficient-sized arrays at once (the target, the current
estimate, FGLA's previous estimate or ADMM's dual, the FFT work space), so its memory
grows with the signal: 60 s of stereo at 48 voices per octave peaked at 4.4 GB on the
CPU (the whole process), and a 10-minute song would need about 35 GB. :func:`plan_windows`
cuts a signal whose retrieval would not fit in a budget into overlapping windows that
do; the budget is by default half of what the device has free (:func:`available_bytes`).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import torch

__all__ = [
    "RETRIEVAL_BYTES_PER_COEFFICIENT",
    "LBFGS_BYTES_PER_SAMPLE",
    "MEMORY_SHARE",
    "RetrievalWindow",
    "available_bytes",
    "retrieval_bytes",
    "plan_windows",
]

log = logging.getLogger(__name__)

#: Peak working memory of a retrieval per complex coefficient of each signal, in bytes,
#: beyond the whole signal's target. Measured on 60 s of stereo at 48 voices per octave
#: (25.4 million coefficients per channel) on the CPU: the PGHI start peaks at 67 bytes,
#: ADMM at 52, FGLA at 45, Adam at 61; 80 leaves room for a window's own copy of its
#: target (4 bytes) and of a reference phase (8 bytes).
RETRIEVAL_BYTES_PER_COEFFICIENT = 80

#: L-BFGS keeps 20 pairs of signal-sized float32 vectors (``history_size=20``): bytes per
#: sample of each signal, on top of :data:`RETRIEVAL_BYTES_PER_COEFFICIENT`.
LBFGS_BYTES_PER_SAMPLE = 2 * 20 * 4

#: Share of the free memory a retrieval plans to take: the rest is for the program around
#: it (the editor's pictures, the audio) and the estimate's error.
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class RetrievalWindow:
    """One window of a long signal's retrieval, in samples of the signal.

    Attributes
    ----------
    start, stop : int
        The samples the window inverts, ``[start, stop)``; ``start`` is a multiple of the
        frame's largest hop, so the window's coefficients are columns of the whole
        signal's.
    core_start, core_stop : int
        The samples the window owns, ``[core_start, core_stop)``: the cores of a plan's
        windows partition the signal. The window's result is cross-faded with the
        previous one's over ``fade`` samples either side of ``core_start``.
    """

    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a retrieval on ``device``, in bytes, or None when unknown.

    On the CPU (and Apple's MPS, whose memory is the host's) what the system reports as
    available. On a CUDA device its free memory plus what torch's allocator holds unused,
    but no more than the host has: the PGHI start is computed on the host.
    """
    host = _host_available_bytes()
    if device.type != "cuda":
        return host
    free, _total = torch.cuda.mem_get_info(device)
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return free if host is None else min(free, host)


def retrieval_bytes(frame, length: int, rows: int, method: str) -> int:
    """Planned peak working memory of retrieving ``rows`` signals of ``length`` samples
    on ``frame`` with ``method``, in bytes (see :data:`RETRIEVAL_BYTES_PER_COEFFICIENT`),
    with the frame's transform plan for the blocks the retrieval iterates on (the whole
    padded signal on the CPU, :func:`~scalgui.dsp.fftw_block.iterates_whole`; else at
    most a segment)."""
    from . import fftw_block

    padded = frame.padded_length(length)
    coefficients = frame.coefficient_count(padded)
    per_signal = coefficients * RETRIEVAL_BYTES_PER_COEFFICIENT
    if method in ("lbfgs", "hybrid"):
        per_signal += length * LBFGS_BYTES_PER_SAMPLE
    block = padded if fftw_block.iterates_whole(frame) else min(padded, frame.segment_length)
    return rows * per_signal + frame.plan_bytes(block)


def _round_up(value: int, step: int) -> int:
    return -(-int(value) // step) * step


def plan_windows(frame, length: int, rows: int, method: str, memory_limit: int | None = None,
                 ) -> tuple[list[RetrievalWindow], int] | None:
    """Windows whose retrievals each fit in a memory budget, or None if the whole does.

    Parameters
    ----------
    frame : WaveletFrame
        The frame of the retrieval.
    length : int
        Samples of the signal.
    rows : int
        Signals retrieved together (channels).
    method : str
        The retrieval method (L-BFGS needs more memory).
    memory_limit : int or None
        Budget in bytes; None takes :data:`MEMORY_SHARE` of :func:`available_bytes`.

    Returns
    -------
    (list of RetrievalWindow, int) or None
        The windows and the cross-fade length in samples.

    Raises
    ------
    ValueError
        If an explicit ``memory_limit`` is smaller than the shortest window the frame
        allows (a window must hold its core, its margins and the atoms' reach).
    """
    if memory_limit is None:
        free = available_bytes(frame.device)
        if free is None:
            return None
        budget = int(MEMORY_SHARE * free)
    else:
        budget = int(memory_limit)
        if budget <= 0:
            raise ValueError(f"memory limit must be a positive number of bytes, got {memory_limit}")
    if retrieval_bytes(frame, length, rows, method) <= budget:
        return None
    reach = frame.pad
    top = frame.max_hop
    if reach % top:
        return None  # windows' coefficients would not be columns of the whole's: keep it whole
    # A window's margin beyond its core holds the atoms' reach (so that the core's
    # coefficients are all its own) and the cross-fade with the neighbour.
    fade = _round_up(max(reach // 2, top), top)
    overlap = reach + fade
    shortest = 4 * overlap  # a core at least as long as the two overlaps
    if frame.pad_limit is not None:
        # A shorter window would be padded by less than the reach: its coefficients would
        # not line up with the whole signal's.
        shortest = max(shortest, math.ceil(reach / frame.pad_limit))
    shortest = _round_up(shortest, top)
    if shortest >= length:
        return None
    if retrieval_bytes(frame, shortest, rows, method) > budget:
        needed = retrieval_bytes(frame, shortest, rows, method)
        message = (f"a retrieval memory limit of {budget / 2**20:.0f} MB is too small for this frame: its "
                   f"shortest window ({shortest / frame.sample_rate:.1f} s) needs {needed / 2**20:.0f} MB")
        if memory_limit is not None:
            raise ValueError(message)
        log.warning("%s; using that window anyway", message)
        longest = shortest
    else:
        # Longest window in the budget, by bisection on multiples of the largest hop
        # (the memory grows with the length, up to the padding's rounding).
        lo, hi = shortest // top, -(-length // top)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if retrieval_bytes(frame, mid * top, rows, method) <= budget:
                lo = mid
            else:
                hi = mid
        longest = lo * top
    count = max(2, -(-(length - 2 * overlap) // max(longest - 2 * overlap, top)))
    while True:
        windows = _windows(length, count, overlap, shortest, top)
        if windows is not None and all(
            retrieval_bytes(frame, w.length, rows, method) <= max(budget, retrieval_bytes(frame, shortest, rows, method))
            for w in windows
        ):
            return windows, fade
        count += 1
        if count * top > length:
            return None


def _windows(length: int, count: int, overlap: int, shortest: int, top: int) -> list[RetrievalWindow] | None:
    core = _round_up(-(-length // count), top)
    edges = [min(k * core, length) for k in range(count)] + [length]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        return None
    windows = []
    for k in range(count):
        core_start, core_stop = edges[k], edges[k + 1]
        start = max(core_start - overlap, 0)
        stop = min(core_stop + overlap, length)
        if stop - start < shortest:
            # Too short for the frame's full padding (the last window, typically):
            # more context on the side that has some.
            if stop < length:
                stop = min(start + shortest, length)
            else:
                start = max((length - shortest) // top * top, 0)
        windows.append(RetrievalWindow(start, stop, core_start, core_stop))
    return windows
