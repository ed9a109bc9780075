"""The frame's block transforms on fixed buffers with FFTW plans: the projection methods'
inner loop on the CPU.

Each iteration of ``fgla`` or ``admm`` synthesises a signal from coefficients and
analyses it again. On a short signal (the 2048-sample chirp of ``bench invert`` has 12
hop groups) that is some 30 FFTs of a few dozen to a few thousand points each way, and
torch's and scipy's per-call costs (2-5 us, plus allocating each output) were a third of
the iteration. Here everything an iteration touches is allocated once, in one layout:

- ``coefficients``: all groups' coefficients in one flat complex buffer (group after
  group, each group's ``[rows, bands, length]`` block contiguous and starting on a
  64-byte boundary, zeros in between), which the element-wise steps of
  :mod:`scalgui.dsp.projections` then cover in one call;
- the band spectra, the signal's spectrum and the signal, likewise;
- one FFTW plan per group and direction, planned with ``FFTW_ESTIMATE`` on those
  buffers (executing one costs about 0.1 us besides the arithmetic), and the signal's
  real FFT and its inverse;
- the gather-weight-scatter between the signal's spectrum and the band spectra as one
  compiled loop (numba) over all groups.

Measured on the chirp's 49,000 coefficients (one thread): the group FFTs take about
half the time of torch's (FFTW's codelets for short lengths), the signal's real FFT a
third of scipy's. ``FFTW_ESTIMATE`` chooses the same algorithm every time, so results
are reproducible from run to run (measured plans, ``FFTW_MEASURE``, can differ between
processes, and took about a second to plan for the chirp alone).

The plans belong to one retrieval: FFTW executes distinct plans from several threads
safely, but one plan's buffers must not be shared between them. pyFFTW (with FFTW
inside its wheels) is a dependency; where it cannot be imported, :func:`available` is
False and retrieval keeps the frame's own transforms.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from numba import njit

try:  # pragma: no cover - exercised by whichever branch the machine has
    import pyfftw
except ImportError:  # pragma: no cover
    pyfftw = None

__all__ = ["available", "iterates_whole", "FftwBlock"]

# Each group's block starts at a multiple of this many bytes: FFTW's SIMD codelets need
# 16- or 32-byte alignment, and a plan made on aligned arrays must be run on aligned ones.
_ALIGN_BYTES = 64


def available() -> bool:
    """Whether pyFFTW can be imported here."""
    return pyfftw is not None


def iterates_whole(frame) -> bool:
    """Whether the projection methods iterate on ``frame`` through an FFTW block of the
    whole padded signal at any length (on the CPU, with pyFFTW), rather than through the
    frame's own transforms, which cut a signal longer than ``frame.segment_length``
    into segments and allocate each iteration's temporaries afresh: on 60 s of stereo
    at 48 voices an ADMM iteration took 2.2-2.6 s there, the kernel providing fresh
    memory for much of it, against 0.64-0.85 s in a block."""
    from .frame import compiled_loops_on

    return available() and compiled_loops_on(frame.device)


# The gather-weight-scatter between a signal's spectrum and its band spectra, band by
# band: each band's atom covers bins in arithmetic progression (every bin, or every
# stride-th in a content plan) that land on consecutive slots of its band spectrum
# (cyclically), so both loops run over runs rather than scattered entries, and every
# slot is written once (no separate clearing pass). The complex arrays are read as
# interleaved (real, imaginary) pairs of the real dtype. Measured on the 8192-sample
# speech of ``bench invert`` (120,000 coefficients): spread 121 us and gather 112 us,
# against 149 and 175 as entry-by-entry loops through index arrays.
# ``runs[d]`` = (first bin, bin stride, entries, first weight, signal row, the band's
# offset in the buffer, first slot, band length) for every signal row and band.
@njit(cache=True, fastmath=True)
def _spread(spectrum, weights, runs, bands):
    """``bands`` (band spectra) from ``spectrum`` (the signals' rfft bins)."""
    spectrum_pairs = spectrum.view(weights.dtype)
    pairs = bands.view(weights.dtype)
    zero = weights[0] - weights[0]  # of the weights' dtype
    for d in range(runs.shape[0]):
        first_bin, stride, count, entry = runs[d, 0], runs[d, 1], runs[d, 2], runs[d, 3]
        row, base, first_slot, length = runs[d, 4], runs[d, 5], runs[d, 6], runs[d, 7]
        source = spectrum_pairs[row]
        before_wrap = min(count, length - first_slot)
        for j in range(before_wrap):
            k = 2 * (first_bin + j * stride)
            q = 2 * (base + first_slot + j)
            w = weights[entry + j]
            pairs[q] = source[k] * w
            pairs[q + 1] = source[k + 1] * w
        for j in range(before_wrap, count):
            k = 2 * (first_bin + j * stride)
            q = 2 * (base + first_slot + j - length)
            w = weights[entry + j]
            pairs[q] = source[k] * w
            pairs[q + 1] = source[k + 1] * w
        end = first_slot + count
        if end <= length:
            for q in range(2 * (base + end), 2 * (base + length)):
                pairs[q] = zero
            for q in range(2 * base, 2 * (base + first_slot)):
                pairs[q] = zero
        else:
            for q in range(2 * (base + end - length), 2 * (base + first_slot)):
                pairs[q] = zero


@njit(cache=True, fastmath=True)
def _gather(bands, weights, runs, dual, spectrum):
    """``spectrum`` (the signals' rfft bins through the dual frame) from ``bands``."""
    spectrum_pairs = spectrum.view(weights.dtype)
    pairs = bands.view(weights.dtype)
    spectrum_pairs[:] = 0
    for d in range(runs.shape[0]):
        first_bin, stride, count, entry = runs[d, 0], runs[d, 1], runs[d, 2], runs[d, 3]
        row, base, first_slot, length = runs[d, 4], runs[d, 5], runs[d, 6], runs[d, 7]
        target = spectrum_pairs[row]
        before_wrap = min(count, length - first_slot)
        for j in range(before_wrap):
            k = 2 * (first_bin + j * stride)
            q = 2 * (base + first_slot + j)
            w = weights[entry + j]
            target[k] += pairs[q] * w
            target[k + 1] += pairs[q + 1] * w
        for j in range(before_wrap, count):
            k = 2 * (first_bin + j * stride)
            q = 2 * (base + first_slot + j - length)
            w = weights[entry + j]
            target[k] += pairs[q] * w
            target[k + 1] += pairs[q + 1] * w
    for row in range(spectrum.shape[0]):
        for k in range(dual.shape[0]):
            spectrum_pairs[row, 2 * k] *= dual[k]
            spectrum_pairs[row, 2 * k + 1] *= dual[k]


def _aligned_zeros(count: int, dtype) -> np.ndarray:
    out = pyfftw.empty_aligned(count, dtype=dtype, n=_ALIGN_BYTES)
    out[:] = 0
    return out


class FftwBlock:
    """Analysis and synthesis of a block of ``n`` samples on one plan of a frame, with
    the signal zero outside ``[start, start + length)``, on buffers of its own.

    Parameters
    ----------
    frame : WaveletFrame
        A CPU frame.
    plan : _Plan
        The frame's plan for blocks of ``plan.n`` samples: its plain plan or a
        :meth:`~scalgui.dsp.frame.WaveletFrame.content_plan`.
    batch : tuple of int
        Batch shape of the signals (channels); all are transformed together.
    start, length : int
        The span of the block the signal occupies, in samples (its padding is zeros).
    threads : int
        Threads of each FFT: 1 for small blocks (a thread's wake-up costs more than it
        gives there); on a block of several seconds, two FFT threads made 20 ADMM
        iterations on 6 s of 44.1 kHz music (setup included) 1.28-1.35 s against
        1.52-1.59 s on one.

    Notes
    -----
    :meth:`analyse` returns :attr:`coefficients`, which the next call overwrites: the
    projection methods update it in place and hand it back to :meth:`synthesise`.
    """

    def __init__(self, frame, plan, batch: Sequence[int], start: int, length: int, threads: int = 1):
        if pyfftw is None:
            raise RuntimeError("pyFFTW is not installed")
        self.batch = tuple(int(b) for b in batch)
        rows = int(np.prod(self.batch, dtype=np.int64))
        n = plan.n
        self.rows, self.n, self.start, self.length = rows, n, int(start), int(length)
        real_dtype = np.dtype(torch.empty(0, dtype=frame.dtype).numpy().dtype)
        complex_dtype = np.result_type(real_dtype, np.complex64)
        step = max(_ALIGN_BYTES // complex_dtype.itemsize, 1)
        self.offsets, self.sizes, offset = [], [], 0
        for g in plan.groups:
            size = rows * g.bins.shape[0] * g.length
            self.offsets.append(offset)
            self.sizes.append(size)
            offset += math.ceil(size / step) * step
        total = offset
        self.real_spans = [(o, o + s) for g, o, s in zip(plan.groups, self.offsets, self.sizes) if g.real]

        self._coefficients = _aligned_zeros(total, complex_dtype)
        self._band_spectra = _aligned_zeros(total, complex_dtype)
        self._signal = _aligned_zeros(rows * n, real_dtype).reshape(rows, n)  # zero off the span
        self._rebuilt = _aligned_zeros(rows * n, real_dtype).reshape(rows, n)
        self._spectrum = _aligned_zeros(rows * (n // 2 + 1), complex_dtype).reshape(rows, n // 2 + 1)
        self.coefficients = torch.from_numpy(self._coefficients)

        flags = ("FFTW_ESTIMATE",)
        self._analysis_ffts, self._synthesis_ffts = [], []
        for g, o, s in zip(plan.groups, self.offsets, self.sizes):
            shape = (s // g.length, g.length)
            coeffs = self._coefficients[o : o + s].reshape(shape)
            bands = self._band_spectra[o : o + s].reshape(shape)
            # Band spectra -> band signals unscaled (torch's ifft with norm="forward").
            self._analysis_ffts.append(pyfftw.FFTW(bands, coeffs, axes=(-1,), direction="FFTW_BACKWARD",
                                                   flags=(*flags, "FFTW_DESTROY_INPUT"), threads=threads))
            self._synthesis_ffts.append(pyfftw.FFTW(coeffs, bands, axes=(-1,), direction="FFTW_FORWARD",
                                                    flags=flags, threads=threads))
        self._rfft = pyfftw.FFTW(self._signal, self._spectrum, axes=(-1,), direction="FFTW_FORWARD",
                                 flags=flags, threads=threads)
        self._irfft = pyfftw.FFTW(self._spectrum, self._rebuilt, axes=(-1,), direction="FFTW_BACKWARD",
                                  flags=(*flags, "FFTW_DESTROY_INPUT"), threads=threads)

        # Every band's run of atom entries (the padding entries of weight 0 left out),
        # and where it lands for each signal.
        analysis_weights, synthesis_weights, runs = [], [], []
        entry = 0
        for g, o in zip(plan.groups, self.offsets):
            group_bins, group_analysis, group_synthesis = (a.reshape(g.bins.shape) for a in g.compiled[:3])
            slots = g.slots.numpy()
            bands, width = group_bins.shape
            counts = np.count_nonzero(group_synthesis, axis=1)
            steps = np.arange(width)
            inside = steps < counts[:, None]
            strides = np.where(counts > 1, group_bins[:, min(1, width - 1)] - group_bins[:, 0], 1)
            if (np.any(group_synthesis[~inside]) or np.any(((group_bins - group_bins[:, :1]) != strides[:, None] * steps)
                                                           & inside)
                    or np.any((((slots - slots[:, :1]) % g.length) != steps) & inside)):
                raise RuntimeError("a band's atom entries are not one run of bins and slots; this is a design bug")
            analysis_weights.append(group_analysis[inside])
            synthesis_weights.append(group_synthesis[inside])
            first_entry = entry + np.concatenate([[0], np.cumsum(counts)[:-1]])
            entry += int(counts.sum())
            row = np.arange(rows)[:, None]
            band = np.arange(bands)[None, :]
            columns = [group_bins[:, 0], strides, counts, first_entry, row, o + (row * bands + band) * g.length,
                       slots[:, 0], np.full(bands, g.length)]
            runs.append(np.stack(np.broadcast_arrays(*columns), axis=-1).reshape(-1, 8))
        self._analysis_weights = np.concatenate(analysis_weights).astype(real_dtype)
        self._synthesis_weights = np.concatenate(synthesis_weights).astype(real_dtype)
        self._runs = np.ascontiguousarray(np.concatenate(runs).astype(np.int64))
        # The inverse real FFT is unscaled here (torch's irfft divides by n).
        self._dual = (plan.dual_weight.double().numpy() / n).astype(real_dtype)

    # ------------------------------------------------------------------ layout
    def pack(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-group tensors ``[*batch, bands, length]`` of the plan as one new flat
        tensor in this block's layout (zeros between the groups)."""
        out = torch.zeros(self._coefficients.shape[0], dtype=parts[0].dtype)
        for p, o, s in zip(parts, self.offsets, self.sizes):
            out[o : o + s] = p.reshape(-1)
        return out

    def unpack(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of a flat tensor in this block's layout as the plan's per-group tensors."""
        return [flat[o : o + s].view(*self.batch, f.input_shape[0] // max(self.rows, 1), f.input_shape[1])
                for f, o, s in zip(self._synthesis_ffts, self.offsets, self.sizes)]

    # ------------------------------------------------------------------ transforms
    def analyse(self, signal: torch.Tensor) -> torch.Tensor:
        """Coefficients of ``signal`` (``[*batch, length]``, zero-padded into the
        block): :attr:`coefficients`, overwritten in place."""
        self._signal[:, self.start : self.start + self.length] = signal.detach().reshape(self.rows, self.length).numpy()
        self._rfft.execute()
        _spread(self._spectrum, self._analysis_weights, self._runs, self._band_spectra)
        for fft in self._analysis_ffts:
            fft.execute()
        for lo, hi in self.real_spans:  # a real atom's band signal is real: drop round-off
            self._coefficients[lo:hi].imag = 0
        return self.coefficients

    def synthesise(self, flat: torch.Tensor) -> torch.Tensor:
        """The signal on the span whose coefficients are nearest to ``flat`` (this
        block's layout) through the dual frame: a new ``[*batch, length]`` tensor."""
        values = flat.detach().numpy()
        if values.ctypes.data != self._coefficients.ctypes.data:
            self._coefficients[:] = values
        for lo, hi in self.real_spans:  # a real atom's band signal is the real part
            self._coefficients[lo:hi].imag = 0
        for fft in self._synthesis_ffts:
            fft.execute()
        _gather(self._band_spectra, self._synthesis_weights, self._runs, self._dual, self._spectrum)
        self._irfft.execute()
        span = self._rebuilt[:, self.start : self.start + self.length].copy()
        return torch.from_numpy(span).reshape(*self.batch, self.length)
