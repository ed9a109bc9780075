"""A multi-rate analytic wavelet frame with an exact inverse, in torch.

The frame is a constant-Q filter bank of Gabor/Morlet atoms over ``[fmin, fmax]``, plus a
lowpass atom below ``fmin`` and a highpass atom above ``fmax`` so that the whole band from
0 Hz to Nyquist is covered. Every atom has compact support in frequency, so each band is
computed by slicing the signal's FFT, weighting the slice by the atom and taking a short
inverse FFT: the band comes out decimated to its own rate (a nonstationary Gabor / CQT
frame). Bands that share a decimation factor ("hop") are batched in one tensor.

Because every analysis operator is diagonal in frequency, the frame operator is a diagonal
weight ``D(f)`` and the canonical dual frame is the analysis atoms divided by ``D``:
synthesis is as cheap as analysis and exact for any consistent set of coefficients.

Coefficient ``m`` of a band with hop ``h`` is the band's analytic signal at the sample
``m * h`` of the padded signal (no demodulation), so phases are absolute and grids of all
bands align on multiples of the largest hop. That is what makes segmented processing of
long signals agree with a one-shot transform.

GPUs run every step as torch operations. On the CPU, where each torch operation's own
cost is much of the time on small blocks, each group's gather-weight-scatter is one
compiled loop (numba) and real FFTs of one signal go through scipy (faster there than
torch's); autograd (the gradient retrieval methods) keeps the torch formulation.
"""
from __future__ import annotations

import contextlib
import logging
import math
import numbers
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import torch
from kymatio.scattering1d.filter_bank import compute_sigma_psi
from numba import njit
import scipy.fft
from scipy.special import erf

__all__ = [
    "FrameSettings",
    "BandTable",
    "WaveletFrame",
    "Coefficients",
    "resolve_device",
    "RETRIEVAL_VOICES",
    "RETRIEVAL_PAD_LIMIT",
    "PLAN_CACHE_BYTES",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "MIN_FMIN",
    "MAX_OVERSAMPLING",
    "MIN_TOLERANCE",
    "VOICES_RANGE",
]

LOWPASS, WAVELET, HIGHPASS = "lowpass", "wavelet", "highpass"

#: Most coefficients (over all signals of a batch) a block transform handles in the
#: flat layout (see :meth:`WaveletFrame.flat_layout`).
FLAT_LAYOUT_LIMIT = 1 << 20

#: Bytes of transform plans a frame keeps for the next transform of the same length
#: (least recently used let go first; the plan just built is always kept). A plan costs
#: seconds to build for a long one-shot transform and holds about 0.19 kB per sample of
#: it at 48 voices (:meth:`WaveletFrame.plan_bytes`): 2 GiB holds the plans of a minute-long retrieval's windows and its
#: analysis, while an editing session's re-renders of spans of ever new lengths no
#: longer grow the cache without bound.
PLAN_CACHE_BYTES = 2 * 2**30

log = logging.getLogger(__name__)


_interrupt = threading.local()


@contextlib.contextmanager
def interruptible(check: Callable[[], None]):
    """Call ``check()`` (which raises to stop) between the segments of every long
    transform this thread runs inside the block: a whole song's analysis is many segments,
    and a cancel must not wait for it to end."""
    previous = getattr(_interrupt, "check", None)
    _interrupt.check = check
    try:
        yield
    finally:
        _interrupt.check = previous


def check_interrupt() -> None:
    """Stop here if the :func:`interruptible` block this thread runs in says so."""
    check = getattr(_interrupt, "check", None)
    if check is not None:
        check()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory (CUDA's OutOfMemoryError, or
    the RuntimeError other accelerator back-ends such as MPS raise)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()

#: Voices per octave of the frame used to retrieve a phase from magnitudes alone
#: (``scalgui invert``, with :meth:`FrameSettings.for_retrieval` atoms as wide as at 24).
#: With the PGHI initial phase, dense narrow atoms win by far: on speech and orchestral
#: music, 48 voices reached -25.5 / -23.0 dB multi-resolution STFT convergence from PGHI
#: alone where 12 voices reached -18.8 / -16.0 dB after the same start (README).
RETRIEVAL_VOICES = 48

#: ``pad_limit`` of the frame used to retrieve a phase from magnitudes alone: full padding
#: made 1.4 s of speech cost 2.7x more per iteration at 48 voices; limits from 0.25 down to
#: 0.05 of the length left the result unchanged (to 0.01 dB) on speech, music and a chirp.
RETRIEVAL_PAD_LIMIT = 0.1


#: Sample rates a frame accepts, in Hz: the audio layer's (scalgui.audio.formats), repeated
#: here because dsp does not import audio (tests/test_hostile_audio.py checks they agree).
MIN_SAMPLE_RATE = 1000.0
MAX_SAMPLE_RATE = 768000.0

#: Lowest ``fmin`` a frame accepts, in Hz. The lowest wavelet reaches in time as far as
#: 1 / fmin, and every analysis pads the sound by that reach on each side: at 1 Hz it is
#: 24 s at 12 voices per octave and 190 s at 96; below, a band is no longer a pitch but a
#: slow change of level, and the padding of every sound grows to many minutes.
MIN_FMIN = 1.0

#: Highest ``oversampling`` a frame accepts (the editor's Analysis Settings offer the same
#: range): hops are powers of two, so the realised factor is up to twice it, already at
#: 96 voices per octave about 60 coefficients per sample.
MAX_OVERSAMPLING = 16.0

#: Lowest ``tolerance`` (an atom's cut-off level) a frame accepts. Atoms reach in time as
#: sqrt(ln(1 / tolerance)): at 1e-12 1.4 times as far as at the default 1e-6; lower values
#: lengthen every atom, and the padding, for accuracy that float32 (7 digits) cannot hold.
MIN_TOLERANCE = 1e-12

#: Voices per octave a frame accepts (inclusive).
VOICES_RANGE = (4, 96)


def _real(name: str, value) -> float:
    """``value`` as a float, or ValueError naming ``name`` if it is not a finite real number
    (settings come from project files too: a string, NaN or inf must not get through)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _whole(name: str, value, low: int, high: int) -> None:
    """ValueError naming ``name`` unless ``value`` is a whole number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or int(value) != value or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Pick a torch device: ``"auto"`` means CUDA, then MPS, then CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


@dataclass(frozen=True)
class FrameSettings:
    """Parameters of a wavelet frame.

    Parameters
    ----------
    sample_rate : float
        Sample rate of the signals the frame analyses, in Hz, in
        :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE` (1000..768000).
    voices_per_octave : int
        Number of wavelet bands per octave (Q), 4 to 96; 12 or more is usual.
    fmin : float
        Centre frequency of the lowest wavelet band, in Hz, at least :data:`MIN_FMIN`
        (1 Hz). A lowpass atom covers 0..fmin.
    fmax : float or None
        Upper limit for the centre frequency of the highest wavelet band, in Hz. ``None``
        means 20 kHz. The highest wavelet must also end below Nyquist (at 44.1 kHz and
        12 voices per octave its centre is at most about 17.5 kHz), so the limit actually
        used is :attr:`WaveletFrame.fmax`. A highpass atom covers the rest up to Nyquist.
    bandwidth_voices : int or None
        The atoms are as wide as those of a frame with this many voices per octave
        (kymatio's rule: neighbours of such a frame cross at -3 dB). ``None`` means
        ``voices_per_octave``. Fewer bandwidth voices than voices gives overlapping
        atoms (redundancy in frequency), which makes phase retrieval from magnitudes far
        better posed: at 24 voices with the bandwidth of 6, Griffin-Lim on the frame
        gets several dB closer than at 12 and 12 (see the README's measurements).
    oversampling : float
        Coefficient rate of each band divided by the width of its frequency support, in
        1..:data:`MAX_OVERSAMPLING` (16). Hops are powers of two, so the realised factor
        lies between ``oversampling`` and twice that. Higher values cost memory and time
        and help phase retrieval.
    tolerance : float
        Relative level at which the Gaussian atoms are cut off in frequency (their
        support), in [:data:`MIN_TOLERANCE`, 1e-2] (1e-12..0.01). It sets how far atoms
        reach in time and so how much context segmented processing keeps.

    Raises
    ------
    ValueError
        A value that is not a finite number or lies outside its range, with one sentence
        naming the setting and the range.
    """

    sample_rate: float
    voices_per_octave: int = 12
    fmin: float = 20.0
    fmax: float | None = None
    oversampling: float = 1.0
    tolerance: float = 1e-6
    bandwidth_voices: int | None = None

    def __post_init__(self) -> None:
        # Settings come from project files too: every number is bounded here, so that a
        # file cannot ask for atoms that reach for hours or more coefficients than memory.
        sample_rate = _real("sample rate", self.sample_rate)
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(f"sample rate must lie in {MIN_SAMPLE_RATE:g}..{MAX_SAMPLE_RATE:g} Hz, "
                             f"got {sample_rate:g} Hz")
        nyquist = sample_rate / 2
        _whole("voices per octave", self.voices_per_octave, *VOICES_RANGE)
        fmin = _real("fmin", self.fmin)
        if not MIN_FMIN <= fmin < nyquist:
            raise ValueError(f"fmin must be at least {MIN_FMIN:g} Hz and below Nyquist ({nyquist:g} Hz), "
                             f"got {fmin:g} Hz")
        if self.fmax is not None and not fmin <= _real("fmax", self.fmax) <= nyquist:
            raise ValueError(
                f"fmax must lie between fmin ({fmin:g} Hz) and Nyquist ({nyquist:g} Hz), got {self.fmax:g} Hz"
            )
        bw = self.bandwidth_voices
        if bw is not None and (isinstance(bw, bool) or not isinstance(bw, numbers.Real) or not math.isfinite(bw)
                               or int(bw) != bw or not VOICES_RANGE[0] <= bw <= self.voices_per_octave):
            raise ValueError(
                f"bandwidth voices must be an integer from {VOICES_RANGE[0]} to the voices per octave "
                f"({self.voices_per_octave}), got {bw!r}"
            )
        if not 1 <= _real("oversampling", self.oversampling) <= MAX_OVERSAMPLING:
            raise ValueError(f"oversampling must lie in 1..{MAX_OVERSAMPLING:g}, got {self.oversampling:g}")
        if not MIN_TOLERANCE <= _real("tolerance", self.tolerance) <= 1e-2:
            raise ValueError(f"tolerance must lie in {MIN_TOLERANCE:g}..0.01, got {self.tolerance:g}")

    def for_retrieval(self) -> "FrameSettings":
        """The same frame with atoms twice as wide (bandwidth voices = voices / 2, at
        least 4): the frame phase retrieval works best on (measured in the README)."""
        bandwidth = max(4, int(self.bandwidth_voices or self.voices_per_octave) // 2)
        return replace(self, bandwidth_voices=bandwidth)


@dataclass(frozen=True)
class BandTable:
    """Where every atom of a frame sits in frequency and on which time grid.

    All arrays have one entry per atom, ordered by frequency: the lowpass atom first, the
    wavelets by rising centre frequency, the highpass atom last (when there is one).

    Attributes
    ----------
    kind : np.ndarray of str
        ``"lowpass"``, ``"wavelet"`` or ``"highpass"``.
    real : np.ndarray of bool
        True for atoms whose support touches 0 Hz or Nyquist (lowpass and highpass): their
        coefficients are the real band signal (imaginary part 0) rather than an analytic
        one, because an analytic atom with a jump at 0 Hz or Nyquist would ring for ever.
    centre_hz : np.ndarray [shape=(n_atoms,)]
        Centre frequency in Hz (0 for the lowpass, Nyquist for the highpass).
    sigma_hz : np.ndarray [shape=(n_atoms,)]
        Gaussian width parameter of the atom's edges, in Hz.
    support_lo_hz, support_hi_hz : np.ndarray [shape=(n_atoms,)]
        The frequency interval outside which the atom is zero, in Hz.
    hop : np.ndarray [shape=(n_atoms,)] of int
        Decimation factor in samples: coefficient ``m`` sits at sample ``m * hop``.
    group, row : np.ndarray [shape=(n_atoms,)] of int
        Which coefficient tensor holds the atom, and at which row.
    """

    kind: np.ndarray
    real: np.ndarray
    centre_hz: np.ndarray
    sigma_hz: np.ndarray
    support_lo_hz: np.ndarray
    support_hi_hz: np.ndarray
    hop: np.ndarray
    group: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    @cached_property
    def wavelet_indices(self) -> np.ndarray:
        """Indices of the constant-Q wavelet atoms (the scalogram's rows), low to high."""
        return np.flatnonzero(self.kind == WAVELET)


@dataclass
class Coefficients:
    """Frame coefficients of one or more signals of equal length.

    Attributes
    ----------
    groups : list of torch.Tensor
        One complex tensor per hop group, shape ``[..., n_bands_in_group, padded_length // hop]``.
        Leading dimensions are the batch (e.g. channels).
    frame : WaveletFrame
        The frame that produced them.
    length : int
        Number of samples of the analysed signal.
    pad_left : int
        Zero samples prepended before analysis; coefficient ``m`` of a band with hop ``h``
        sits at time ``(m * h - pad_left) / sample_rate`` seconds in the signal.
    padded_length : int
        Length of the padded signal the coefficients describe.
    offset : int
        Where the analysed signal starts in a longer one, in samples (a window of a file
        analysed on its own): times are then measured from the file's start, so edits in
        seconds land at the right place.
    """

    groups: list[torch.Tensor]
    frame: "WaveletFrame"
    length: int
    pad_left: int
    padded_length: int
    offset: int = 0

    @property
    def origin(self) -> int:
        """Padded-signal sample that sits at time 0 s: ``pad_left - offset``."""
        return self.pad_left - self.offset

    @property
    def batch_shape(self) -> torch.Size:
        return self.groups[0].shape[:-2]

    @property
    def count(self) -> int:
        """Number of complex coefficients per signal in the batch."""
        return sum(g.shape[-2] * g.shape[-1] for g in self.groups)

    def flat(self) -> torch.Tensor:
        """All coefficients in one 1-D tensor, group after group, each group's
        ``[..., bands, frames]`` block in order (see :meth:`WaveletFrame.split_flat`): a
        view when the groups are such blocks of one buffer, as :meth:`WaveletFrame.analyze`
        makes them, a copy otherwise. For element-wise work on all coefficients at once."""
        view = _flat_view(self.groups)
        if view is not None:
            return view
        return torch.cat([g.reshape(-1) for g in self.groups])

    def with_flat(self, flat: torch.Tensor) -> "Coefficients":
        """The same layout holding a 1-D buffer laid out as :meth:`flat` (as views of it)."""
        return self.with_groups(self.frame.split_flat(flat, self.padded_length, self.batch_shape))

    def with_groups(self, groups: Sequence[torch.Tensor]) -> "Coefficients":
        """The same layout holding other tensors (e.g. edited or phase-replaced)."""
        return Coefficients(list(groups), self.frame, self.length, self.pad_left, self.padded_length, self.offset)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Coefficients":
        """Apply ``fn`` to every group tensor."""
        return self.with_groups([fn(g) for g in self.groups])

    def magnitudes(self) -> list[torch.Tensor]:
        """Moduli of the coefficients, one real tensor per group."""
        return [g.abs() for g in self.groups]

    def band(self, index: int) -> torch.Tensor:
        """Coefficients of atom ``index`` (see :class:`BandTable`), shape ``[..., frames]``."""
        table = self.frame.bands
        return self.groups[int(table.group[index])][..., int(table.row[index]), :]

    def times(self, index: int) -> np.ndarray:
        """Times in seconds of the coefficients of atom ``index``."""
        hop = int(self.frame.bands.hop[index])
        n = self.padded_length // hop
        return (np.arange(n) * hop - self.origin) / self.frame.sample_rate


def _flat_view(groups: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The 1-D buffer that ``groups`` are consecutive contiguous blocks of, or None."""
    first = groups[0]
    storage = first.untyped_storage().data_ptr()
    offset = first.storage_offset()
    for g in groups:
        if (not g.is_contiguous() or g.dtype != first.dtype or g.untyped_storage().data_ptr() != storage
                or g.storage_offset() != offset):
            return None
        offset += g.numel()
    return first.as_strided((offset - first.storage_offset(),), (1,), first.storage_offset())


@dataclass
class _GroupPlan:
    hop: int
    length: int  # coefficients per band: padded_length // hop
    real: bool  # real atoms keep the real part of their band signal
    bins: torch.Tensor  # [n, W] long: rfft bins the atoms cover (padded entries repeat a bin with window 0)
    slots: torch.Tensor  # [n, W] long: where each bin lands in the length-L band spectrum
    window: torch.Tensor  # [n, W] real: atom values on those bins
    analysis_window: torch.Tensor  # [n, W] real: window times the one-sided rfft scale
    flat_bins: torch.Tensor  # bins.reshape(-1)
    # For the compiled loops (CPU frames): numpy views of flat_bins, analysis_window and
    # window flattened, and where each entry lands in the group's [bands, length] block.
    compiled: tuple[np.ndarray, ...] | None = None


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, _GroupPlan):
        # The numpy views in `compiled` share the tensors' memory, as flat_bins shares
        # bins' on the CPU.
        size = sum(_nbytes(getattr(value, name)) for name in ("bins", "slots", "window", "analysis_window"))
        if value.flat_bins.untyped_storage().data_ptr() != value.bins.untyped_storage().data_ptr():
            size += _nbytes(value.flat_bins)
        return size
    return 0


@dataclass
class _Plan:
    n: int
    groups: list[_GroupPlan]
    onesided: torch.Tensor  # [n//2+1] real: 2/N (1/N at DC and Nyquist): rfft -> analytic-signal scale
    dual_weight: torch.Tensor  # [n//2+1] real: 1 / (D * onesided), D = sum_k L_k |g_k|^2
    # All groups in one 1-D buffer ("flat" layout: group after group, each group's
    # [rows, bands, length] block contiguous, so each group's FFT reads and writes it in
    # place), so that every gather, scatter and scale is one operation per block
    # transform rather than one per group: on short signals the per-operation cost, not
    # arithmetic, is much of the time.
    # The flat layout's arrays (flat_bins, flat_window, flat_analysis_window, flat_index)
    # are built from the groups on first use: only small blocks use that layout, and on
    # a long block they were more than half of the plan (0.6 of 1.0 GB for 39 s at 48
    # voices), held for as long as the plan is cached.
    total: int = 0  # coefficients per signal
    # Per group of a content plan (WaveletFrame.content_plan): where its coefficients sit
    # in the plain plan's time axis, or None for a group that is not strided.
    times: list[torch.Tensor | None] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def strided(self) -> bool:
        """Whether this is a :meth:`WaveletFrame.content_plan` with strided groups."""
        return any(t is not None for t in self.times)

    def nbytes(self) -> int:
        """Bytes of the plan's tensors and arrays (those built on first use included)."""
        return _nbytes([self.groups, self.onesided, self.dual_weight, self.times, list(self.extra.values())])

    def _flat(self, name: str) -> torch.Tensor:
        if "flat_bins" not in self.extra:
            groups = self.groups
            self.extra["flat_bins"] = torch.cat([g.flat_bins for g in groups])  # [W] rfft bin of every atom entry
            self.extra["flat_window"] = torch.cat([g.window.reshape(-1) for g in groups])  # [W] synthesis weights
            self.extra["flat_analysis_window"] = torch.cat([g.analysis_window.reshape(-1) for g in groups])
        return self.extra[name]

    @property
    def flat_bins(self) -> torch.Tensor:
        """``[W]``: the rfft bin of every atom entry, all groups one after another."""
        return self._flat("flat_bins")

    @property
    def flat_window(self) -> torch.Tensor:
        """``[W]``: the synthesis weight of every atom entry."""
        return self._flat("flat_window")

    @property
    def flat_analysis_window(self) -> torch.Tensor:
        """``[W]``: the analysis weight of every atom entry."""
        return self._flat("flat_analysis_window")

    def flat_index(self, rows: int) -> torch.Tensor:
        """``[rows * W]``: where each (signal, atom entry) lands in the flat buffer of
        ``rows`` signals: its group's offset (``rows`` times the earlier groups' sizes),
        plus the signal's place within the group, plus band row * length + slot."""
        index = self.extra.get(("flat_index", rows))
        if index is None:
            parts, offset = [], 0
            for g in self.groups:
                size = g.bins.shape[0] * g.length
                local = (torch.arange(g.bins.shape[0], device=g.slots.device).unsqueeze(1) * g.length
                         + g.slots).reshape(-1)
                r = torch.arange(rows, device=local.device).unsqueeze(1)
                parts.append(rows * offset + r * size + local)
                offset += size
            index = torch.cat(parts, dim=1).reshape(-1)
            self.extra[("flat_index", rows)] = index
        return index


def _scale(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Complex ``z`` times real ``weight`` (broadcast), without promoting the weight to
    a complex copy first (that copy cost as much as the product)."""
    return torch.view_as_complex(torch.view_as_real(z) * weight.unsqueeze(-1))


#: Whether CPU transforms without autograd use the compiled loops below (tests switch it
#: off to check them against the torch formulation, which GPUs use).
COMPILED_LOOPS = True


# A group's gather-weight-scatter steps on the CPU, each one compiled loop: in torch they
# are a gather, a broadcast product and a scatter, three passes plus a fill (measured on
# the 107,000 coefficients of a 2048-sample chirp on the retrieval frame: 130-160 us per
# transform here against 470-1200 us in torch, one thread).
@njit(cache=True)
def _spread_bins(spectrum, bins, weights, local, size, out):
    """For each signal ``r``: ``out[r * size + local[j]] = spectrum[r, bins[j]] * weights[j]``,
    zeros elsewhere (``out`` is a group's ``[rows, bands, length]`` band spectra, flattened)."""
    out[:] = 0
    for r in range(spectrum.shape[0]):
        base = r * size
        for j in range(bins.shape[0]):
            out[base + local[j]] = spectrum[r, bins[j]] * weights[j]


@njit(cache=True)
def _gather_bins(bands, bins, weights, local, size, acc):
    """For each signal ``r``: ``acc[r, bins[j]] += bands[r * size + local[j]] * weights[j]``."""
    for r in range(acc.shape[0]):
        base = r * size
        for j in range(bins.shape[0]):
            acc[r, bins[j]] += bands[base + local[j]] * weights[j]


@njit(cache=True)
def _weigh_bins(acc, weight):
    """``acc[r, k] *= weight[k]``."""
    for r in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            acc[r, k] *= weight[k]


def compiled_loops_on(device: torch.device) -> bool:
    """Whether transforms on ``device`` without autograd run the compiled loops."""
    return COMPILED_LOOPS and device.type == "cpu"


def _compiled(t: torch.Tensor) -> bool:
    """Whether the compiled loops may stand in for torch's operations on ``t``: on the
    CPU, and not while autograd records (the gradient methods differentiate through the
    transforms)."""
    return compiled_loops_on(t.device) and not (t.requires_grad and torch.is_grad_enabled())


def _pocketfft_is_faster(rows: int, n: int) -> bool:
    """Whether scipy's real FFT beats torch's for ``rows`` signals of ``n`` samples on the
    CPU. Measured with torch 2.13's CPU build: on one signal torch's is 2-4x slower at
    every length up to 2^19 samples (2048: 27 us against 10; 131072: 3.1 ms against
    0.6) and level at 2^20; on two or more, torch's is faster from 2^17 samples each."""
    return rows == 1 or rows * n <= 1 << 17


def _rfft(x: torch.Tensor) -> torch.Tensor:
    """``torch.fft.rfft(x)`` of a ``[rows, n]`` real tensor, through scipy where faster."""
    if _compiled(x) and _pocketfft_is_faster(*x.shape):
        return torch.from_numpy(scipy.fft.rfft(x.numpy()))
    return torch.fft.rfft(x)


def _irfft(spectrum: torch.Tensor, n: int) -> torch.Tensor:
    """``torch.fft.irfft(spectrum, n=n)`` of ``[rows, n // 2 + 1]`` bins, through scipy where faster."""
    if _compiled(spectrum) and _pocketfft_is_faster(spectrum.shape[0], n):
        return torch.from_numpy(scipy.fft.irfft(spectrum.numpy(), n=n))
    return torch.fft.irfft(spectrum, n=n)


def _next_fast_size(n: int) -> int:
    """The smallest integer >= ``n`` of the form 2^a 3^b 5^c."""
    best = 1 << max(int(n) - 1, 0).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            value = power35
            while value < n:
                value *= 2
            best = min(best, value)
            power35 *= 3
        power5 *= 5
    return best


class WaveletFrame:
    """A multi-rate analytic constant-Q wavelet frame with an exact dual.

    Parameters
    ----------
    settings : FrameSettings
        Frequency range, voices per octave, oversampling and atom cut-off.
    device : str or torch.device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"mps"``...
    dtype : torch.dtype
        Real dtype of signals, ``torch.float32`` (default) or ``torch.float64``.
    segment_length : int or None
        Longest padded length transformed in one piece, in samples; longer signals are
        processed in overlapping segments of about this length so that memory stays
        bounded. ``None`` picks ``max(2**20, 8 * context)``.
    segments_per_batch : int or None
        Segments transformed together in one batched call; ``None`` sizes it to the
        device (see :meth:`segments_per_batch`).
    pad_limit : float or None
        ``None`` (default): every signal is zero-padded on each side by the longest atom's
        reach, so the transform is a linear (not circular) one. A number: signals that fit
        in one segment are padded by at most this fraction of their length on each side,
        and atoms longer than that wrap around. The transform is then circular, still a
        frame with an exact dual, and phase retrieval from its own magnitudes is as well
        posed, but several times cheaper on short signals (a 20 Hz atom reaches further
        than a second of audio). For retrieval from magnitudes alone, not for editing.

    Notes
    -----
    Atom shapes follow kymatio's Morlet filter bank design: the width of the wavelet at
    centre frequency ``xi`` is ``kymatio.scattering1d.filter_bank.compute_sigma_psi(xi, Q)``,
    so that neighbouring atoms cross at -3 dB. At Q >= 8 the Morlet zero-mean correction is
    negligible, so the atoms are Gabor atoms, cut off at ``tolerance`` of their peak.

    Examples
    --------
    >>> frame = WaveletFrame(FrameSettings(sample_rate=44100, voices_per_octave=12))
    >>> x = torch.randn(2, 44100)
    >>> coeffs = frame.analyze(x)
    >>> y = frame.synthesize(coeffs)
    >>> float((y - x).norm() / x.norm()) < 1e-5
    True
    """

    def __init__(
        self,
        settings: FrameSettings,
        *,
        device: str | torch.device | None = "cpu",
        dtype: torch.dtype = torch.float32,
        segment_length: int | None = None,
        segments_per_batch: int | None = None,
        pad_limit: float | None = None,
    ) -> None:
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.settings = settings
        self.device = resolve_device(device)
        self.dtype = dtype
        self.complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        self.bands = self._design_bands()
        self.max_hop = int(self.bands.hop.max())
        self.n_groups = int(self.bands.group.max()) + 1
        reach = math.ceil(self.support_seconds * self.sample_rate)
        # Zeros padded on each side of a signal, on the max-hop grid: the longest atom's
        # reach, so that the circular transform of the padded signal is a linear one.
        self.pad = self._round_up(reach, self.max_hop)
        # Overlap kept on each side of a segment: twice that, because the dual atoms
        # (atom / D) reach further (measured: 1x leaves 1e-5 errors in segmented
        # synthesis of edited coefficients, 2x leaves float32 round-off).
        self.context = self._round_up(2 * reach, self.max_hop)
        if segment_length is None:
            segment_length = max(2**20, 8 * self.context)
        segment_length = self._round_up(int(segment_length), self.max_hop)
        if segment_length < 4 * self.context:
            raise ValueError(
                f"segment length {segment_length} is too short for this frame: it needs at least "
                f"{4 * self.context} samples (four times the overlap segments keep on each side)"
            )
        self.segment_length = segment_length
        if pad_limit is not None and not pad_limit > 0:
            raise ValueError(f"pad limit must be a positive fraction of the signal's length, got {pad_limit}")
        self.pad_limit = pad_limit
        self._segments_per_batch = segments_per_batch
        # n -> plain plan; (n, start, length) -> content plan or None; least recently used
        # first, bounded by plan_cache_bytes. A lock: renders run on worker threads.
        self._plans: OrderedDict = OrderedDict()
        self._plans_lock = threading.Lock()
        #: Bytes of plans kept for later transforms (:data:`PLAN_CACHE_BYTES`).
        self.plan_cache_bytes = PLAN_CACHE_BYTES
        # Out-of-memory fallback (see _transform): a cap on segments per batch learnt from
        # a failure, and a twin of this frame on the CPU once single segments fail too.
        self._batch_cap: int | None = None
        self._fallback: WaveletFrame | None = None
        self._on_fallback = False
        #: One line per fallback taken (smaller batches, then the CPU), oldest first.
        self.memory_fallbacks: list[str] = []

    # ------------------------------------------------------------------ design
    @property
    def sample_rate(self) -> float:
        return float(self.settings.sample_rate)

    @property
    def _cutoff(self) -> float:
        """Distance from a Gaussian's centre to its cut-off, in units of sigma."""
        return math.sqrt(2.0 * math.log(1.0 / self.settings.tolerance))

    @property
    def support_seconds(self) -> float:
        """How far the longest atom reaches in time from its centre, in seconds."""
        return self._reach_seconds(float(self.bands.sigma_hz.min()))

    def _reach_seconds(self, sigma_hz: float) -> float:
        """How far an atom of width ``sigma_hz`` reaches in time from its centre, in seconds.

        A Gaussian of width ``sigma`` Hz has a time envelope of width ``1 / (2 pi sigma)`` s;
        it falls to ``tolerance`` at ``cutoff`` times that.
        """
        return self._cutoff / (2.0 * math.pi * sigma_hz)

    @staticmethod
    def _round_up(value: int, multiple: int) -> int:
        return -(-int(value) // multiple) * multiple

    def _design_bands(self) -> BandTable:
        s = self.settings
        q = int(s.voices_per_octave)
        nyquist = self.sample_rate / 2
        cut = self._cutoff
        # kymatio designs in normalised frequency (cycles per sample); sigma is linear in xi.
        sigma_per_hz = compute_sigma_psi(1.0, int(s.bandwidth_voices or q))
        # The highest wavelet must end below Nyquist (see BandTable.real).
        top = nyquist / (1.0 + cut * sigma_per_hz) * (1 - 1e-9)
        fmax = min(20000.0 if s.fmax is None else float(s.fmax), top)
        if fmax < s.fmin:
            raise ValueError(
                f"fmin {s.fmin:g} Hz leaves no room for a wavelet below Nyquist at "
                f"{self.sample_rate:g} Hz and {q} voices per octave (at most {top:.0f} Hz)"
            )
        n_wavelets = int(math.floor(q * math.log2(fmax / s.fmin) + 1e-9)) + 1
        xi = s.fmin * 2.0 ** (np.arange(n_wavelets) / q)
        sigma = xi * sigma_per_hz
        kind = [LOWPASS] + [WAVELET] * n_wavelets + [HIGHPASS]
        real = [True] + [False] * n_wavelets + [True]
        centre = np.concatenate([[0.0], xi, [nyquist]])
        # The highpass edge is steeper than the top wavelet (an eighth of its width, still
        # reaching only milliseconds in time): its support, mirrored around Nyquist, is
        # what sets its rate, and a wide edge made it cost a coefficient per sample.
        edge = max(sigma[-1] / 8, sigma[0])
        sig = np.concatenate([[sigma[0]], sigma, [edge]])
        lo = np.concatenate([[0.0], xi - cut * sigma, [xi[-1] - cut * edge]])
        hi = np.concatenate([[xi[0] + cut * sigma[0]], xi + cut * sigma, [nyquist]])
        # A real atom's spectrum is mirrored around 0 Hz or Nyquist: twice the width.
        width = (hi - lo) * np.where(real, 2.0, 1.0)
        hop = np.array(
            [max(1, 2 ** int(math.floor(math.log2(self.sample_rate / (s.oversampling * w))))) for w in width]
        )
        keys = sorted(set(zip((-hop).tolist(), real)))
        group = np.array([keys.index((-h, r)) for h, r in zip(hop.tolist(), real)])
        row = np.zeros(len(hop), dtype=int)
        for g in range(len(keys)):
            members = np.flatnonzero(group == g)
            row[members] = np.arange(len(members))
        return BandTable(
            kind=np.array(kind),
            real=np.array(real),
            centre_hz=centre,
            sigma_hz=sig,
            support_lo_hz=lo,
            support_hi_hz=hi,
            hop=hop,
            group=group,
            row=row,
        )

    @property
    def fmax(self) -> float:
        """Centre frequency of the highest wavelet band, in Hz."""
        return float(self.bands.centre_hz[self.bands.wavelet_indices[-1]])

    def atom_response(self, index: int, freqs_hz: np.ndarray) -> np.ndarray:
        """Frequency response of atom ``index`` at ``freqs_hz`` (Hz), peak 1, zero off support."""
        b = self.bands
        f = np.asarray(freqs_hz, dtype=float)
        sigma, tol = b.sigma_hz[index], self.settings.tolerance
        if b.kind[index] == WAVELET:
            g = np.exp(-((f - b.centre_hz[index]) ** 2) / (2 * sigma**2))
        else:
            # A box smoothed by a Gaussian: flat in the pass band, smooth everywhere, so
            # its impulse response has the same Gaussian envelope as the wavelets. The box
            # is symmetric about 0 Hz (lowpass) or Nyquist (highpass), as real atoms need.
            if b.kind[index] == LOWPASS:
                edge, far = b.centre_hz[index + 1], f
            else:
                edge, far = self.sample_rate - b.centre_hz[index - 1], self.sample_rate - f
            scale = math.sqrt(2.0) * sigma
            g = 0.5 * (erf((edge - far) / scale) + erf((edge + far) / scale))
        # Subtracting the cut-off level makes the atom continuous at the edge of its
        # support, so its time-domain tails fall off fast instead of ringing at `tolerance`.
        g = (g - tol) / (1 - tol)
        return np.clip(g, 0.0, None)

    @cached_property
    def group_hops(self) -> tuple[int, ...]:
        """Hop of each coefficient group, in samples."""
        return tuple(int(self.bands.hop[np.flatnonzero(self.bands.group == g)[0]]) for g in range(self.n_groups))

    @property
    def coefficients_per_sample(self) -> float:
        """Complex coefficients per input sample (the frame's redundancy)."""
        return float(np.sum(1.0 / self.bands.hop))

    def pad_for(self, length: int) -> int:
        """Zeros padded before a signal of ``length`` samples (see ``pad_limit``)."""
        if self.pad_limit is not None:
            limited = self._round_up(max(math.ceil(self.pad_limit * int(length)), 1), self.max_hop)
            if limited < self.pad and self._padded(length, limited) <= self.segment_length:
                return limited
        return self.pad

    def _padded(self, length: int, pad: int) -> int:
        blocks = -(-(pad + int(length) + pad) // self.max_hop)
        return _next_fast_size(blocks) * self.max_hop

    def padded_length(self, length: int) -> int:
        """Length of the zero-padded signal a one-shot transform of ``length`` samples uses.

        At least :meth:`pad_for` zeros on each side, and a multiple of the largest hop
        whose quotient has no prime factor above 5, so that every band's FFT length is
        fast (a factor like 67 made pocketfft several times slower).
        """
        return self._padded(length, self.pad_for(length))

    # ------------------------------------------------------------------ plans
    def _cached_plan(self, key):
        """``(True, plan)`` if ``key``'s plan is cached (it becomes the most recently
        used), else ``(False, None)``."""
        with self._plans_lock:
            if key not in self._plans:
                return False, None
            self._plans.move_to_end(key)
            return True, self._plans[key]

    def _keep_plan(self, key, plan: _Plan | None) -> None:
        """Cache ``plan`` under ``key``, letting the least recently used plans go while
        the cache holds more than :attr:`plan_cache_bytes` (never ``plan`` itself)."""
        with self._plans_lock:
            self._plans[key] = plan
            self._plans.move_to_end(key)
            sizes = {k: (p.nbytes() if p is not None else 0) for k, p in self._plans.items()}
            total = sum(sizes.values())
            for old in list(self._plans):
                if total <= self.plan_cache_bytes or old == key:
                    break
                total -= sizes[old]
                del self._plans[old]

    def plan_bytes(self, n: int) -> int:
        """Bytes of the transform plan for blocks of ``n`` samples: linear in ``n`` (the
        atoms' supports in bins grow with it), measured on a second's plan."""
        return int(math.ceil(self._plan_bytes_per_sample * n))

    @cached_property
    def _plan_bytes_per_sample(self) -> float:
        n = self.padded_length(int(math.ceil(self.sample_rate)))
        return self._build_plan(n).nbytes() / n

    def _plan(self, n: int) -> _Plan:
        found, plan = self._cached_plan(n)
        if not found:
            plan = self._build_plan(n)
            self._keep_plan(n, plan)
        return plan

    def content_plan(self, n: int, start: int, length: int) -> _Plan | None:
        """A plan for block transforms of length ``n`` whose signal is zero outside
        ``[start, start + length)`` (a short signal and its padding), or None if it would
        save nothing.

        A band's signal then lives within its atom's reach of that span, so a band whose
        reach is short needs only the samples of its spectrum at every ``r``-th bin: its
        band signal comes out periodised to ``n / r`` samples, which holds the span and
        the reach whole. Each group of hops takes the largest such ``r`` (that divides
        ``n / hop``), and ``r`` times fewer coefficients and FFT work: on the 2048-sample
        chirp of ``bench invert`` 2.7x fewer in all, the padding of its lowest band being
        five times the signal. Analysis with this plan gives the coefficients of the
        plain plan within each band's window of ``n / r`` samples around the span (see
        :meth:`content_times`); synthesis gives the plain synthesis on the span only (it
        repeats every ``n / r`` samples outside it). For retrieval, not for editing.
        """
        key = (n, start, length)
        found, plan = self._cached_plan(key)
        if found:
            return plan
        b = self.bands
        strides = []
        for g in range(self.n_groups):
            members = np.flatnonzero(b.group == g)
            hop = int(b.hop[members[0]])
            # The band signal reaches the atom's reach beyond the span, and synthesis the
            # dual atom's too (up to twice as far: see `context`): 4 reaches of slack.
            reach = self._reach_seconds(float(b.sigma_hz[members].min())) * self.sample_rate
            stride = 1
            if not b.real[members[0]]:
                for r in range(n // hop, 1, -1):
                    if (n // hop) % r == 0 and n // r >= length + 4 * reach:
                        stride = r
                        break
            strides.append(stride)
        plan = None if max(strides) == 1 else self._build_plan(n, tuple(strides), start, length)
        self._keep_plan(key, plan)
        return plan

    def content_times(self, plan: _Plan) -> list[torch.Tensor | None]:
        """For each group of a :meth:`content_plan`, the index (along time) of the plain
        plan's coefficient that each of its coefficients equals, or None where the group
        is not strided: ``coeffs.groups[g].index_select(-1, index)`` maps into it."""
        return plan.times

    def _build_plan(self, n: int, strides: tuple[int, ...] | None = None, start: int = 0,
                    length: int = 0) -> _Plan:
        if n % self.max_hop:
            raise ValueError(f"transform length {n} is not a multiple of the largest hop {self.max_hop}")
        b = self.bands
        n_bins = n // 2 + 1
        bin_hz = self.sample_rate / n
        # Bins that are their own mirror image (0 Hz and, for even n, Nyquist).
        self_mirror = np.zeros(n_bins, dtype=bool)
        self_mirror[0] = True
        if n % 2 == 0:
            self_mirror[-1] = True
        frame_weight = np.zeros(n_bins)  # D(f) = sum_k L_k |g_k(f)|^2 (halved off-mirror for real atoms)
        groups = []
        # rfft -> analytic-signal scale: 2/n, but 1/n on the self-mirrored bins.
        onesided = np.full(n_bins, 2.0 / n)
        onesided[self_mirror] = 1.0 / n
        times = []
        for g in range(self.n_groups):
            members = np.flatnonzero(b.group == g)
            hop, real = int(b.hop[members[0]]), bool(b.real[members[0]])
            stride = 1 if strides is None else strides[g]
            period = n // stride  # the band signals' period: n, or less in a content plan
            band_length = period // hop
            times.append(None if stride == 1 else self._window_times(n, period, hop, start, length))
            # An analytic atom's bins must land in distinct slots of the length-L band
            # spectrum; a real atom's bins and their mirror images must, too.
            max_bins = (band_length + 1) // 2 if real else band_length
            rows_bins, rows_win = [], []
            for k in members:
                first = max(int(math.ceil(b.support_lo_hz[k] / bin_hz - 1e-9)), 0)
                last = min(int(math.floor(b.support_hi_hz[k] / bin_hz + 1e-9)), n_bins - 1)
                bins = np.arange(first, last + 1)
                bins = bins[bins % stride == 0]
                win = self.atom_response(k, bins * bin_hz)
                nz = win > 0
                bins, win = bins[nz], win[nz]
                if len(bins) > max_bins:
                    # Only at the edge of the design limit: drop the outermost bins, which
                    # hold values near `tolerance`; D below accounts for the result.
                    keep = np.sort(np.argsort(-win, kind="stable")[:max_bins])
                    bins, win = bins[keep], win[keep]
                rows_bins.append(bins)
                rows_win.append(win)
                if strides is None:  # a content plan takes the plain plan's D (below)
                    weight = band_length * win**2
                    if real:
                        weight = np.where(self_mirror[bins], weight, weight / 2)
                    np.add.at(frame_weight, bins, weight)
            # A band keeping every stride-th bin: its band signal summed over the
            # `stride` periods of `period` samples in n (analysis), and spread back
            # over them, of which synthesis keeps one (synthesis): stride times each.
            win_rows = [w * stride for w in rows_win]
            width = max(len(r) for r in rows_bins)
            bins_arr = np.zeros((len(members), width), dtype=np.int64)
            win_arr = np.zeros((len(members), width))
            slots = np.zeros_like(bins_arr)
            for i, (rb, rw) in enumerate(zip(rows_bins, win_rows)):
                # Padded entries repeat the last bin with weight 0 and take the slots after
                # the real run, so they never collide with real ones (width <= length).
                bins_arr[i, : len(rb)] = rb
                bins_arr[i, len(rb) :] = rb[-1]
                win_arr[i, : len(rw)] = rw
                slots[i] = (rb[0] // stride + np.arange(width)) % band_length
            groups.append(
                _GroupPlan(
                    hop=hop,
                    length=band_length,
                    real=real,
                    bins=torch.as_tensor(bins_arr, device=self.device),
                    slots=torch.as_tensor(slots, device=self.device),
                    window=torch.as_tensor(win_arr, dtype=self.dtype, device=self.device),
                    analysis_window=torch.as_tensor(win_arr * onesided[bins_arr], dtype=self.dtype, device=self.device),
                    flat_bins=torch.as_tensor(bins_arr.reshape(-1), device=self.device),
                )
            )
            if self.device.type == "cpu":
                # Views of the tensors above where possible (plans of long blocks are
                # large); the landing index fits 32 bits (a group of 2^31 coefficients
                # would be 16 GB).
                group = groups[-1]
                group.compiled = (
                    group.flat_bins.numpy(), group.analysis_window.numpy().reshape(-1),
                    group.window.numpy().reshape(-1),
                    (np.arange(len(members))[:, None] * band_length + slots).reshape(-1).astype(np.int32),
                )
        if strides is not None:
            # The dual is the plain frame's (each band's share of the reconstruction is
            # the plain one on the content span).
            frame_weight = 1.0 / (self._plan(n).dual_weight.double().cpu().numpy() * onesided)
        if np.any(frame_weight <= 0):
            raise RuntimeError("frame does not cover every frequency bin; this is a design bug")
        sizes = [g.bins.shape[0] * g.length for g in groups]
        return _Plan(
            n=n,
            groups=groups,
            onesided=torch.as_tensor(onesided, dtype=self.dtype, device=self.device),
            dual_weight=torch.as_tensor(1.0 / (frame_weight * onesided), dtype=self.dtype, device=self.device),
            total=int(sum(sizes)),
            times=times,
        )

    def _window_times(self, n: int, period: int, hop: int, start: int, length: int) -> torch.Tensor:
        """Where the coefficients of a band periodised to ``period`` samples sit in the
        plain layout: the window of ``period`` samples centred on the content span."""
        first = (start - (period - length) // 2) // hop * hop
        sample = np.arange(period // hop) * hop
        sample = first + (sample - first) % period
        return torch.as_tensor((sample % n) // hop, device=self.device)

    @cached_property
    def group_sizes(self) -> tuple[int, ...]:
        """Number of bands in each hop group."""
        return tuple(int(c) for c in np.bincount(self.bands.group, minlength=self.n_groups))

    def flat_layout(self, n: int, rows: int = 1) -> bool:
        """Whether block transforms of length ``n`` on ``rows`` signals work on all groups
        at once (one gather, scatter and scale, groups side by side in one buffer: see
        :meth:`Coefficients.flat`) rather than group by group.

        At once is faster while the coefficients are few (up to :data:`FLAT_LAYOUT_LIMIT`):
        the cost of each operation, not arithmetic, is then most of the time. On more,
        group by group is faster (measured 1.5x on 20 s of stereo): each group's gather,
        scale and FFT stay in cache, and no copy into the shared buffer is needed. Never on
        the CPU while :data:`COMPILED_LOOPS` is on: there one compiled loop per group does
        the gather, weighting and scatter, and each group's FFT keeps its own output (an
        FFT written into a shared buffer is computed elsewhere and copied there).
        """
        return not compiled_loops_on(self.device) and self.small_block(n, rows)

    def small_block(self, n: int, rows: int = 1) -> bool:
        """Whether ``rows`` signals of padded length ``n`` have at most
        :data:`FLAT_LAYOUT_LIMIT` coefficients together."""
        return rows * self.coefficient_count(n) <= FLAT_LAYOUT_LIMIT

    def coefficient_count(self, n: int) -> int:
        """Complex coefficients of one signal of padded length ``n``, all groups together."""
        return sum(bands * (n // hop) for bands, hop in zip(self.group_sizes, self.group_hops))

    def split_flat(self, flat: torch.Tensor, n: int, batch: Sequence[int] = ()) -> list[torch.Tensor]:
        """Views of a 1-D buffer laid out as :meth:`Coefficients.flat` (for signals of
        padded length ``n`` and batch shape ``batch``) as per-group tensors
        ``[*batch, n_bands, n // hop]``, the layout :meth:`forward_block` returns.
        """
        rows = int(np.prod(tuple(batch), dtype=np.int64))
        views, offset = [], 0
        for bands, hop in zip(self.group_sizes, self.group_hops):
            size = rows * bands * (n // hop)
            views.append(flat[offset : offset + size].view(*batch, bands, n // hop))
            offset += size
        if offset != flat.shape[-1] or flat.dim() != 1:
            raise ValueError(f"a flat buffer of shape {tuple(flat.shape)} does not fit length {n} and batch "
                             f"{tuple(batch)} ({offset} coefficients)")
        return views

    def _group_ffts(self, plan: _Plan, inputs: Sequence[torch.Tensor], rows: int, analysis: bool) -> torch.Tensor:
        """The per-group FFTs of ``inputs`` (``[rows, bands, length]`` each) into one flat
        buffer: inverse FFTs (forward norm) for analysis, keeping only the real part of a
        real atom's band signal (its imaginary part is round-off); FFTs for synthesis."""
        transform = (lambda z, **kw: torch.fft.ifft(z, norm="forward", **kw)) if analysis else torch.fft.fft
        if torch.is_grad_enabled() and any(z.requires_grad for z in inputs):
            # out= does not record gradients: the gradient methods get a copy instead.
            pieces = []
            for g, z in zip(plan.groups, inputs):
                y = transform(z)
                pieces.append((y.real.to(y.dtype) if analysis and g.real else y).reshape(-1))
            return torch.cat(pieces)
        out = torch.empty(rows * plan.total, dtype=self.complex_dtype, device=inputs[0].device)
        for g, z, block in zip(plan.groups, inputs, self.split_flat(out, plan.n, (rows,))):
            transform(z, out=block)
            if analysis and g.real:
                block.imag.zero_()
        return out

    # ------------------------------------------------------------------ core transforms
    def forward_block(self, x: torch.Tensor, plan: _Plan | None = None) -> list[torch.Tensor]:
        """Analyse a block of length ``n`` (a multiple of the largest hop) circularly.

        Parameters
        ----------
        x : torch.Tensor [shape=(..., n)]
            Real signal on the frame's device.
        plan : optional
            A :meth:`content_plan` for ``n``, when ``x`` is zero outside its span.

        Returns
        -------
        list of torch.Tensor
            Complex coefficients per hop group, ``[..., n_bands, n // hop]``; in the flat
            layout (:meth:`flat_layout`) views of one buffer (see :meth:`Coefficients.flat`).
        """
        n = x.shape[-1]
        plan = plan or self._plan(n)
        batch = x.shape[:-1]
        rows = int(np.prod(batch, dtype=np.int64))
        spectrum = _rfft(x.reshape(rows, n))
        if _compiled(x):
            out = []
            for g in plan.groups:
                bins, weights, _, local = g.compiled
                band_spectra = torch.empty(rows, g.bins.shape[0], g.length, dtype=self.complex_dtype)
                _spread_bins(spectrum.numpy(), bins, weights, local, band_spectra[0].numel(),
                             band_spectra.view(-1).numpy())
                coeffs = torch.fft.ifft(band_spectra, norm="forward")
                if g.real:
                    coeffs.imag.zero_()
                out.append(coeffs.reshape(*batch, *coeffs.shape[1:]))
            return out
        if not self.flat_layout(n, rows) or plan.strided:
            out = []
            for g in plan.groups:
                picked = _scale(spectrum.index_select(1, g.flat_bins).reshape(rows, *g.bins.shape), g.analysis_window)
                band_spectra = torch.zeros(rows, g.bins.shape[0], g.length, dtype=picked.dtype, device=x.device)
                band_spectra.scatter_(-1, g.slots.expand(rows, *g.slots.shape), picked)
                coeffs = torch.fft.ifft(band_spectra, norm="forward")
                out.append((coeffs.real.to(coeffs.dtype) if g.real else coeffs).reshape(*batch, *coeffs.shape[1:]))
            return out
        picked = _scale(spectrum.index_select(1, plan.flat_bins), plan.flat_analysis_window)
        band_spectra = torch.zeros(rows * plan.total, dtype=picked.dtype, device=x.device)
        band_spectra.index_copy_(0, plan.flat_index(rows), picked.reshape(-1))
        flat = self._group_ffts(plan, self.split_flat(band_spectra, n, (rows,)), rows, analysis=True)
        return self.split_flat(flat, n, tuple(batch))

    def inverse_block(self, groups: Sequence[torch.Tensor], n: int, plan: _Plan | None = None) -> torch.Tensor:
        """Synthesise a block of length ``n`` through the canonical dual frame.

        For coefficients that came from :meth:`forward_block` this returns the signal
        exactly; for any others it returns the least-squares signal whose coefficients
        are nearest to them. With a :meth:`content_plan`, only on its span.
        """
        plan = plan or self._plan(n)
        batch = groups[0].shape[:-2]
        rows = int(np.prod(batch, dtype=np.int64))
        acc = torch.zeros(rows, n // 2 + 1, dtype=self.complex_dtype, device=groups[0].device)
        if _compiled(groups[0]):
            for g, c in zip(plan.groups, groups):
                bins, _, weights, local = g.compiled
                band_spectra = torch.fft.fft((c.real if g.real else c).reshape(rows, *c.shape[-2:]))
                _gather_bins(band_spectra.view(-1).numpy(), bins, weights, local, band_spectra[0].numel(), acc.numpy())
            _weigh_bins(acc.numpy(), plan.dual_weight.numpy())
            return _irfft(acc, n).reshape(*batch, n)
        if not self.flat_layout(n, rows) or plan.strided:
            for g, c in zip(plan.groups, groups):
                band_spectra = torch.fft.fft((c.real if g.real else c).reshape(rows, *c.shape[-2:]))
                picked = _scale(band_spectra.gather(-1, g.slots.expand(rows, *g.slots.shape)), g.window)
                acc.index_add_(1, g.flat_bins, picked.reshape(rows, -1))
        else:
            inputs = [(c.real if g.real else c).reshape(rows, *c.shape[-2:]) for g, c in zip(plan.groups, groups)]
            band_spectra = self._group_ffts(plan, inputs, rows, analysis=False)
            picked = _scale(band_spectra.index_select(0, plan.flat_index(rows)).view(rows, -1), plan.flat_window)
            acc.index_add_(1, plan.flat_bins, picked)
        return _irfft(_scale(acc, plan.dual_weight), n).reshape(*batch, n)

    # ------------------------------------------------------------------ public API
    def _as_signal(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.is_complex():
            raise TypeError("the frame analyses real signals; got a complex tensor")
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError("cannot analyse an empty signal")
        return x.to(device=self.device, dtype=self.dtype)

    def analyze(self, x: torch.Tensor | np.ndarray, *, segmented: bool | None = None) -> Coefficients:
        """Wavelet coefficients of a real signal.

        Parameters
        ----------
        x : torch.Tensor or np.ndarray [shape=(..., n_samples)]
            Real signal(s) at ``settings.sample_rate``; leading dimensions are a batch.
        segmented : bool or None
            Process in overlapping segments (bounded memory) or in one piece. ``None``
            segments when the padded signal is longer than ``segment_length``.

        Returns
        -------
        Coefficients
        """
        x = self._as_signal(x)
        length = x.shape[-1]
        n = self.padded_length(length)
        pad = self.pad_for(length)
        padded = torch.nn.functional.pad(x, (pad, n - length - pad))
        if segmented is None:
            segmented = n > self.segment_length
        if segmented and pad != self.pad:
            raise ValueError("a signal padded by less than the atoms' reach cannot be processed in segments")
        if not segmented:
            groups = self._block(True, padded)
        else:
            groups = self._analyze_segments(padded)
        return Coefficients(groups, self, length, pad, n)

    def synthesize(self, coeffs: Coefficients, *, segmented: bool | None = None) -> torch.Tensor:
        """Signal from coefficients through the canonical dual frame.

        Parameters
        ----------
        coeffs : Coefficients
            Coefficients in this frame's layout (possibly edited).
        segmented : bool or None
            As for :meth:`analyze`.

        Returns
        -------
        torch.Tensor [shape=(..., coeffs.length)]
        """
        if coeffs.frame is not self and coeffs.frame.settings != self.settings:
            raise ValueError("coefficients come from a frame with other settings")
        n = coeffs.padded_length
        if segmented is None:
            segmented = n > self.segment_length
        if not segmented:
            padded = self._block(False, coeffs.groups, n)
        else:
            padded = self._synthesize_segments(coeffs.groups, n)
        return padded[..., coeffs.pad_left : coeffs.pad_left + coeffs.length]

    # ------------------------------------------------------------------ segments
    def segment_starts(self, n: int) -> list[int]:
        """Start samples of the segments covering a padded signal of length ``n``.

        Segment ``i`` spans ``[start, start + segment_length)`` (zeros outside the signal)
        and owns the samples ``[start + context, start + context + step)``, where
        ``step = segment_length - 2 * context``: everything it owns lies at least
        ``context`` samples from its ends, where its circular transform is exact.
        """
        step = self.segment_length - 2 * self.context
        starts = [-self.context]
        while starts[-1] + self.context + step < n:
            starts.append(starts[-1] + step)
        return starts

    def _owned_span(self, start: int, n: int) -> tuple[int, int]:
        step = self.segment_length - 2 * self.context
        return start + self.context, min(start + self.context + step, n)

    def _segment(self, x: torch.Tensor, start: int, size: int) -> torch.Tensor:
        """``x[..., start:start + size]`` with zeros where that runs outside ``x``."""
        lo, hi = max(start, 0), min(start + size, x.shape[-1])
        piece = x[..., lo:hi]
        if lo - start or start + size - hi:
            piece = torch.nn.functional.pad(piece, (lo - start, start + size - hi))
        return piece

    def segments_per_batch(self, batch_size: int) -> int:
        """How many segments one block transform takes at once.

        On the CPU one at a time (batching gains nothing there and costs memory). On a
        GPU as many as fit in half of the free memory, counting the coefficients, their
        band spectra and the signal, so that long files keep the device busy. After the
        device ran out of memory, at most half the batch that failed (see :meth:`analyze`).
        """
        if self._segments_per_batch is not None:
            k = self._segments_per_batch
        elif self.device.type != "cuda":
            k = 1
        else:
            free, _total = torch.cuda.mem_get_info(self.device)
            itemsize = 16 if self.dtype == torch.float64 else 8
            per_segment = self.segment_length * max(batch_size, 1) * itemsize * (3 * self.coefficients_per_sample + 2)
            k = max(1, int(0.5 * free // per_segment))
        return min(k, self._batch_cap) if self._batch_cap is not None else k

    # ------------------------------------------------------------------ out of memory
    # A device that runs out of memory (a GPU shared with other programs, a long file, a
    # batch sized from a free-memory figure that another process then took) costs speed,
    # never the work: a batch of segments that fails is retried in halves, down to one
    # segment; one segment (or an unsegmented block) that still fails is transformed by a
    # twin of this frame on the CPU and the result moved back to the device. Both steps
    # are sticky for this frame (retrying what failed would fail again, slowly), logged as
    # warnings on the "scalgui.dsp.frame" logger and listed in ``memory_fallbacks``.
    def _cpu_twin(self) -> "WaveletFrame | None":
        """This frame on the CPU, for work the device has no memory for; None on a CPU."""
        if self._fallback is None and self.device.type != "cpu":
            self._fallback = WaveletFrame(
                self.settings, device="cpu", dtype=self.dtype, segment_length=self.segment_length,
                segments_per_batch=1, pad_limit=self.pad_limit,
            )
        return self._fallback

    def _fall_back(self, message: str) -> None:
        self.memory_fallbacks.append(message)
        log.warning(message)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand what the failed attempt held back to the device

    def _block(self, forward: bool, *args):
        """``forward_block(x)`` or ``inverse_block(groups, n)``, on the CPU twin once the
        device has run out of memory for it."""
        if not self._on_fallback:
            try:
                return self.forward_block(*args) if forward else self.inverse_block(*args)
            except Exception as exc:
                if not is_out_of_memory(exc) or self._cpu_twin() is None:
                    raise
                self._on_fallback = True
                what, samples = ("analysing", args[0].shape[-1]) if forward else ("synthesising", args[-1])
                self._fall_back(f"out of memory on {self.device} {what} {samples} samples in one block; "
                                "transforming on the CPU from now on (slower)")
        twin = self._cpu_twin()
        if forward:
            return [g.to(self.device) for g in twin.forward_block(args[0].to(twin.device))]
        groups, n = args
        return twin.inverse_block([g.to(twin.device) for g in groups], n).to(self.device)

    def _each_batch(self, starts: list[int], batch_size: int,
                    work: Callable[[list[int], "WaveletFrame"], None]) -> None:
        """Call ``work(chunk, frame)`` over batches of segment starts; on running out of
        memory retry with half the batch, then with the CPU twin. ``work`` writes into
        preallocated outputs, so a retried batch simply overwrites what it wrote."""
        i = 0
        while i < len(starts):
            check_interrupt()
            frame = self._cpu_twin() if self._on_fallback else self
            chunk = starts[i : i + (1 if self._on_fallback else self.segments_per_batch(batch_size))]
            try:
                work(chunk, frame)
            except Exception as exc:
                if frame is not self or not is_out_of_memory(exc):
                    raise
                if len(chunk) > 1:
                    self._batch_cap = len(chunk) // 2
                    self._fall_back(f"out of memory on {self.device} transforming {len(chunk)} segments at once; "
                                    f"retrying {self._batch_cap} at a time")
                elif self._cpu_twin() is not None:
                    self._on_fallback = True
                    self._fall_back(f"out of memory on {self.device} transforming a single segment of "
                                    f"{self.segment_length} samples; transforming on the CPU from now on (slower)")
                else:
                    raise
                continue
            i += len(chunk)

    def _analyze_segments(self, padded: torch.Tensor) -> list[torch.Tensor]:
        n = padded.shape[-1]
        s = self.segment_length
        batch = padded.shape[:-1]
        plan_groups = self._plan(s).groups
        rows = int(np.prod(tuple(batch), dtype=np.int64))
        out = self.split_flat(torch.empty(rows * self.coefficient_count(n), dtype=self.complex_dtype,
                                          device=padded.device), n, batch)

        def work(chunk: list[int], frame: WaveletFrame) -> None:
            stacked = torch.stack([self._segment(padded, start, s) for start in chunk]).to(frame.device)
            coeffs = frame.forward_block(stacked)
            for j, start in enumerate(chunk):
                lo, hi = self._owned_span(start, n)
                for g, dst, src in zip(plan_groups, out, coeffs):
                    a, b = lo // g.hop, hi // g.hop
                    dst[..., a:b] = src[j, ..., a - start // g.hop : b - start // g.hop].to(dst.device)

        self._each_batch(self.segment_starts(n), int(np.prod(batch, dtype=int)), work)
        return out

    def _synthesize_segments(self, groups: Sequence[torch.Tensor], n: int) -> torch.Tensor:
        s = self.segment_length
        batch = groups[0].shape[:-2]
        plan_groups = self._plan(s).groups
        out = torch.empty(*batch, n, dtype=self.dtype, device=groups[0].device)

        def work(chunk: list[int], frame: WaveletFrame) -> None:
            pieces = [
                torch.stack([self._segment(c, start // g.hop, s // g.hop) for start in chunk]).to(frame.device)
                for g, c in zip(plan_groups, groups)
            ]
            blocks = frame.inverse_block(pieces, s)
            for j, start in enumerate(chunk):
                lo, hi = self._owned_span(start, n)
                out[..., lo:hi] = blocks[j, ..., lo - start : hi - start].to(out.device)

        self._each_batch(self.segment_starts(n), int(np.prod(batch, dtype=int)), work)
        return out

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"WaveletFrame(sample_rate={s.sample_rate:g}, voices_per_octave={s.voices_per_octave}, "
            f"bandwidth_voices={s.bandwidth_voices or s.voices_per_octave}, "
            f"fmin={s.fmin:g}, fmax={self.fmax:g}, oversampling={s.oversampling:g}, "
            f"bands={len(self.bands)}, coefficients_per_sample={self.coefficients_per_sample:.2f}, "
            f"device={self.device})"
        )
