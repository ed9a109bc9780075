"""How much memory an analysis or a retrieval may take, and how to cut a long signal into
windows that fit.

Phase retrieval holds several coefficient-sized arrays at once (the target, the current
estimate, FGLA's previous estimate or ADMM's dual, the FFT work space), so its memory
grows with the signal: 60 s of stereo at 48 voices per octave peaked at 4.4 GB on the
CPU (the whole process), and a 10-minute song would need about 35 GB. :func:`plan_windows`
cuts a signal whose retrieval would not fit in a budget into overlapping windows that
do; the budget is by default half of what the device has free (:func:`available_bytes`).

An analysis cannot be cut that way (the editor and ``scalgui analyze`` hold every
coefficient of the sound), so :func:`check_analysis_memory` plans its peak from the frame
and the length before anything is analysed, and refuses one that would not fit with
:class:`AnalysisMemoryError`, naming the size it needs: the kernel would otherwise kill the
program half-way (a one-hour 192 kHz mono file at the default settings is planned at
19 GB to open in the editor, 25 GB for ``scalgui analyze``, which also resynthesises it:
:func:`analysis_bytes`).
"""
from __future__ import annotations

import logging
import math
import os
import resource
from dataclasses import dataclass

import torch

__all__ = [
    "ANALYSIS_BASE_BYTES",
    "AnalysisMemoryError",
    "RETRIEVAL_BYTES_PER_COEFFICIENT",
    "LBFGS_BYTES_PER_SAMPLE",
    "MEMORY_SHARE",
    "RetrievalWindow",
    "analysis_bytes",
    "available_bytes",
    "check_analysis_memory",
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


def _system_available_bytes() -> int | None:
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


def _read_number(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_available_bytes() -> int | None:
    """What the process's control group (a container's memory limit) leaves, or None."""
    limit = _read_number("/sys/fs/cgroup/memory.max")
    if limit is not None:
        used = _read_number("/sys/fs/cgroup/memory.current")
        reclaimable = 0
        try:
            with open("/sys/fs/cgroup/memory.stat") as stat:
                for line in stat:
                    if line.startswith("inactive_file "):
                        reclaimable = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return None if used is None else max(limit - used + reclaimable, 0)
    limit = _read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    used = _read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes")
    if limit is None or used is None or limit >= 2**60:  # cgroup v1 writes "no limit" as ~2**63
        return None
    return max(limit - used, 0)


def _address_space_left() -> int | None:
    """What the process's address-space limit (``ulimit -v``) leaves it, or None."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return max(soft - mapped, 0)


def _host_available_bytes() -> int | None:
    """The least of what the system, the control group and the address-space limit leave."""
    found = [v for v in (_system_available_bytes(), _cgroup_available_bytes(), _address_space_left())
             if v is not None]
    return min(found) if found else None


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


#: Peak working memory of an analysis beyond what grows with the signal, in bytes: numba's
#: compiled loops, torch's and the FFTs' work space.
ANALYSIS_BASE_BYTES = 80 * 2**20


@dataclass(frozen=True)
class _AnalysisFactors:
    """Multipliers on the arrays an analysis holds (see :func:`analysis_bytes`)."""

    coefficient: float  # the coefficients themselves
    group_coefficient: float  # the largest hop group's band spectra and FFT output
    segment_coefficient: float  # a segment's coefficients (long signals)
    plan_byte: float  # the transform plan, and the arrays it is built from
    padded_sample: float  # the padded signal and its spectrum (and the resynthesis), float32


# Fitted to peak resident memory on the CPU and rounded up. Analysing then resynthesising:
# in-process on 27 settings (0.1 s to 600 s, 1 to 8 channels, 4 to 96 voices per octave,
# oversampling 1 to 16, 8 to 768 kHz), and ``scalgui analyze`` above its start-up on 9 of
# them, which the estimate exceeds by 8 to 27 %. Analysing alone (the editor's Document):
# the same 27 settings, exceeded by 10 to 75 % (the most on the shortest, where the fixed
# part dominates), and opening a one-hour stereo 44.1 kHz file (13.0 GiB measured by
# ``scalgui bench memory``, 14.5 GiB planned).
_WITH_RESYNTHESIS = _AnalysisFactors(1.3, 1.7, 1.5, 1.4, 3.5)
_ANALYSIS_ONLY = _AnalysisFactors(1.05, 1.2, 1.8, 1.3, 2.0)


def analysis_bytes(frame, length: int, rows: int, *, resynthesis: bool = True, picture_columns: int = 0) -> int:
    """Planned peak working memory of analysing ``rows`` signals of ``length`` samples
    with ``frame``, in bytes, with the decoded samples.

    Parameters
    ----------
    frame : WaveletFrame
    length : int
        Samples per signal.
    rows : int
        Signals (channels).
    resynthesis : bool
        Whether the whole signal is also resynthesised from the coefficients (as
        ``scalgui analyze`` does to measure the reconstruction error).
    picture_columns : int
        Columns of scalogram pictures (float32, one row per wavelet band) held besides.

    Returns
    -------
    int
        Bytes; a little above the measured peak (see ``_WITH_RESYNTHESIS``).
    """
    factors = _WITH_RESYNTHESIS if resynthesis else _ANALYSIS_ONLY
    length, rows = max(int(length), 1), max(int(rows), 1)
    itemsize = 16 if frame.dtype == torch.float64 else 8
    padded = frame.padded_length(length)
    segmented = padded > frame.segment_length
    block = frame.segment_length if segmented else padded
    largest_group = max(bands * (block // hop) for bands, hop in zip(frame.group_sizes, frame.group_hops))
    total = (ANALYSIS_BASE_BYTES
             + factors.coefficient * rows * frame.coefficient_count(padded) * itemsize
             + factors.group_coefficient * rows * largest_group * itemsize
             + (factors.segment_coefficient * rows * frame.coefficient_count(block) * itemsize if segmented else 0)
             + factors.plan_byte * frame.plan_bytes(block)
             + factors.padded_sample * rows * padded * itemsize / 2
             + rows * length * 4  # the decoded samples, float32
             + 4 * len(frame.bands.wavelet_indices) * int(picture_columns))
    return int(math.ceil(total))


def _size(count: float) -> str:
    """Bytes as a short phrase: '850 MB', '13.2 GB'."""
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


class AnalysisMemoryError(ValueError):
    """An analysis that would not fit in memory; ``str()`` is one line saying what it
    needs, what is available and how to need less.

    Attributes
    ----------
    needed : int
        Planned peak in bytes (:func:`analysis_bytes`).
    available : int
        The budget it was held against, in bytes.
    """

    def __init__(self, message: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


def check_analysis_memory(frame, length: int, rows: int, memory_limit: int | None = None, *,
                          resynthesis: bool = True, picture_columns: int = 0) -> int:
    """Refuse an analysis whose planned peak (:func:`analysis_bytes`) does not fit.

    Parameters
    ----------
    frame : WaveletFrame
    length : int
        Samples per signal.
    rows : int
        Signals (channels).
    memory_limit : int or None
        Budget in bytes; None: what the frame's device has free (:func:`available_bytes`;
        no check when that is unknown).
    resynthesis, picture_columns
        As for :func:`analysis_bytes`.

    Returns
    -------
    int
        The planned peak in bytes.

    Raises
    ------
    AnalysisMemoryError
        The planned peak is over the budget.
    """
    needed = analysis_bytes(frame, length, rows, resynthesis=resynthesis, picture_columns=picture_columns)
    budget = available_bytes(frame.device) if memory_limit is None else int(memory_limit)
    if budget is not None and needed > budget:
        s = frame.settings
        where = f"the memory limit is {_size(budget)}" if memory_limit is not None else f"{_size(budget)} is available"
        coefficients = rows * frame.coefficient_count(frame.padded_length(length))
        raise AnalysisMemoryError(
            f"analysing {length / frame.sample_rate:.1f} s of {rows} channel(s) at {s.voices_per_octave} voices "
            f"per octave and oversampling {s.oversampling:g} ({coefficients / 1e6:.3g} million coefficients) "
            f"needs about {_size(needed)} of memory, but {where}; use fewer voices per octave, less "
            "oversampling or a higher fmin, or a shorter sound", needed, budget)
    return needed


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
