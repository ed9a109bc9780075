"""Phase retrieval: a signal whose wavelet magnitudes match a target.

The frame's modulus determines a signal up to a global sign, and the frame is
differentiable, so a signal can be found from magnitudes alone. Methods, by name:

``"fgla"``
    Fast (accelerated) Griffin-Lim on the frame (Perraudin, Balazs & Sondergaard 2013):
    alternate projections onto the magnitude set and, through the canonical dual, onto
    the consistent set, with momentum. Cheap per iteration and robust: the default of
    :class:`RetrievalSettings` (and of the editor's renders, warm-started from the
    source's phase).
``"admm"``
    Phase retrieval by the alternating direction method of multipliers (Masuyama,
    Yatabe & Oikawa 2019, "Griffin-Lim like phase recovery via ADMM"): the same two
    projections per iteration as ``fgla``, with a running dual term instead of momentum.
    It escapes the stagnation that holds FGLA back on gliding content. On the retrieval
    frame (``FrameSettings.for_retrieval()`` of ``RETRIEVAL_VOICES``) at 10 to 20
    iterations it is level with FGLA (within 0.1 dB) on speech, orchestral music, a
    synth cue and generated chords and noise bursts, and ahead on a chirp: it is
    :data:`RETRIEVAL_METHOD`, ``scalgui invert``'s default (measured in the README; at
    100 iterations FGLA gets 0.2 to 0.8 dB further on the recordings, ADMM 6 dB further
    on the chirp). On coarse frames (12 voices, atoms not widened) FGLA is better on
    steady chords.
``"adam"``, ``"lbfgs"``, ``"sgd"``
    Gradient descent on the signal with autograd, on a magnitude loss (see ``loss``).
``"hybrid"``
    ``fgla`` for a share of the iterations, then ``lbfgs`` (or ``refine_method``) from there.

Initial phases (``init``): ``"random"`` (seeded), ``"original"`` (a reference phase, e.g.
the source's before an edit, except where the edit made new content: see
:data:`NEW_CONTENT_DB`), ``"centre"`` (each band advancing at its centre frequency:
a flat phase in demodulated terms) and ``"gradient"`` (a phase-gradient heuristic in the
spirit of PGHI: each band integrates an instantaneous frequency estimated from the
magnitudes' slope across bands, frozen where the band is silent).
"""
from __future__ import annotations

import contextlib
import math
import numbers
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch

from . import fftw_block
from .frame import Coefficients, WaveletFrame, _scale, check_interrupt, compiled_loops_on, interruptible
from .memory import RetrievalWindow, plan_windows
from .metrics import convergence_db, spectral_convergence_db, sum_of_squares
from .projections import FREE, bound_admm_step, bound_fgla_step, fusable, modulus_error

__all__ = [
    "METHODS",
    "RETRIEVAL_METHOD",
    "NEW_CONTENT_DB",
    "SILENCE_DB",
    "LOSSES",
    "INITS",
    "MAX_ITERATIONS",
    "RetrievalSettings",
    "RetrievalProgress",
    "RetrievalResult",
    "CancelToken",
    "RenderCancelled",
    "STAGES",
    "EDITOR_STOP_GAIN_DB",
    "retrieve",
    "initial_phase",
    "spectral_convergence_db",
    "rerender_spans",
    "delta_target",
    "blended_reference",
]

METHODS = ("fgla", "admm", "adam", "lbfgs", "sgd", "hybrid")

#: The method ``scalgui invert`` retrieves with (from magnitudes alone, on the retrieval
#: frame): see ``"admm"`` above.
RETRIEVAL_METHOD = "admm"
LOSSES = ("l2", "power", "log", "l2-l1")
INITS = ("random", "original", "centre", "gradient", "pghi")

#: The ``"original"`` initial phase keeps the reference's phase except where the target
#: is more than this many dB above the reference's magnitude (new content: the edit asks
#: for what the source did not have): there it takes the ``"pghi"`` phase of the target.
#: 20 dB by measurement (scripts/warm_start_sweep.py, in the README): gains of up to
#: +20 dB keep the source's phase, which is right for them.
NEW_CONTENT_DB = 20.0

#: A window of a long retrieval continuing the windows before keeps their phase where
#: its target is at most this many dB above what they left (:func:`_continuing_phase`),
#: and integrates PGHI's from it elsewhere. Lower than :data:`NEW_CONTENT_DB`: what they
#: left fades out at the window's cross-fade, and where its long atoms' coefficients
#: still reached past it (up to 20 dB below the target) their smeared phase started the
#: new content; on 60 s of a song in four windows the second or two after two seams were
#: 1.2-4.2 dB further off than the whole's retrieval (seeds 0-2), and 0.2 dB at most with
#: 10 dB (1 to 6 dB: as even, 0.05-0.12 dB less far over the whole).
CONTINUATION_NEW_CONTENT_DB = 10.0

#: Most iterations a render may ask for: 100 times the editor's default, far more than
#: convergence needs (see the README's tables); beyond it a file asks for a run that
#: would not end in a working day.
MAX_ITERATIONS = 10_000
#: Longest render budget a file may set (a day), in seconds.
MAX_BUDGET_S = 86_400.0
#: The editor's stopping rule: stop once four iterations together gain less than this
#: (dB of spectral convergence). Measured on the warm-start edits of the corpus
#: (scripts/stopping_rule_sweep.py, docs/rendering.md): it stops the cuts and boosts of
#: up to +12 dB after 7-19 iterations within 0.11 dB of where 32 end; 0.1 dB stopped a
#: boost on speech 0.4 dB short.
EDITOR_STOP_GAIN_DB = 0.05
#: A retrieval's set-up before its first iteration (initial phase, plans, buffers, the
#: start's synthesis and analysis) takes about this many analyses of its window (10-12
#: on a 3.5-minute stereo song on the render frame, in two windows); a re-render whose
#: budget ends sooner takes the warm start without iterating.
SETUP_ANALYSES = 10.0
#: What a progress report can say a render is doing, in order.
STAGES = ("analysing", "initial phase", "iterating", "finishing")
#: Seeds lie in 0..MAX_SEED: what both torch's and numpy's generators accept.
MAX_SEED = 2**63 - 1
#: Largest gradient step accepted, relative to the signal's scale (the defaults are
#: 0.1-5): far beyond it every method diverges at the first step.
MAX_LEARNING_RATE = 1000.0
#: Largest exponent of the ``"power"`` loss (0.3 by default): magnitudes to a higher
#: power overflow float32.
MAX_POWER = 4.0

#: The ``"gradient"`` and ``"pghi"`` initial phases take a coefficient more than this many
#: dB below its channel's loudest as silent (dB).
SILENCE_DB = -60.0


@dataclass(frozen=True)
class RetrievalSettings:
    """How to retrieve a phase.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    iterations : int
        Number of iterations (one analysis and one synthesis, or one optimiser step).
    init : str
        One of :data:`INITS`.
    loss : str
        For gradient methods: ``"l2"`` on magnitudes, ``"power"`` on magnitudes raised to
        ``power``, ``"log"`` on ``log(magnitude + eps)``, or ``"l2-l1"`` (L2, then L1 after
        ``l1_after`` of the iterations).
    momentum : float
        FGLA momentum (0 gives plain Griffin-Lim), or SGD momentum.
    learning_rate : float or None
        Gradient methods' step; ``None`` picks a measured default per method, relative to
        the target's scale.
    schedule : str
        ``"constant"``, ``"cosine"`` (decay to 1 % over the run) or ``"step"`` (halve
        every 10 % of the run) for gradient methods.
    power : float
        Exponent of the ``"power"`` loss.
    l1_after : float
        Share of the iterations after which ``"l2-l1"`` switches to L1.
    hybrid_share : float
        Share of the iterations the ``"hybrid"`` method spends in FGLA.
    refine_method : str
        Gradient method the ``"hybrid"`` method refines with.
    seed : int
        Seed of the random initial phase.
    stop_gain_db : float
        Stop early once the last ``stop_window`` iterations together brought the best
        spectral convergence down by less than this many dB: they no longer buy audible
        convergence (0: run every iteration). See :data:`EDITOR_STOP_GAIN_DB`.
    stop_window : int
        Iterations the stopping rule looks back over.
    budget_s : float
        Seconds a render (set-up included) may take before it starts no more
        iterations (0: no budget). The start and every iteration begun are kept, so a
        render over budget is the warm start refined as far as time allowed. A
        re-render applies it, as the stopping rule, only where the edits only scale
        (see :func:`rerender_spans`).
    """

    method: str = "fgla"
    iterations: int = 100
    init: str = "pghi"
    loss: str = "l2"
    momentum: float = 0.99
    learning_rate: float | None = None
    schedule: str = "cosine"
    power: float = 0.3
    l1_after: float = 0.5
    hybrid_share: float = 0.8
    refine_method: str = "lbfgs"
    seed: int = 0
    stop_gain_db: float = 0.0
    stop_window: int = 4
    budget_s: float = 0.0

    def __post_init__(self) -> None:
        def check(name, value, allowed):
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")

        check("method", self.method, METHODS)
        check("init", self.init, INITS)
        check("loss", self.loss, LOSSES)
        check("schedule", self.schedule, ("constant", "cosine", "step"))
        check("refine method", self.refine_method, ("adam", "lbfgs", "sgd"))
        # Settings come from project files too: every number is bounded here, so that a
        # file cannot ask for a run that never ends or a step that overflows.
        object.__setattr__(self, "iterations", _whole("iterations", self.iterations, 0, MAX_ITERATIONS))
        object.__setattr__(self, "seed", _whole("seed", self.seed, 0, MAX_SEED))
        _within("momentum", self.momentum, 0.0, 1.5, below_high=True)
        if self.learning_rate is not None:
            _within("learning rate", self.learning_rate, 0.0, MAX_LEARNING_RATE, above_low=True)
        _within("power", self.power, 0.0, MAX_POWER, above_low=True)
        _within("hybrid_share", self.hybrid_share, 0.0, 1.0)
        _within("l1_after", self.l1_after, 0.0, 1.0)
        _within("stop_gain_db", self.stop_gain_db, 0.0, 60.0)
        object.__setattr__(self, "stop_window", _whole("stop_window", self.stop_window, 1, MAX_ITERATIONS))
        _within("budget_s", self.budget_s, 0.0, MAX_BUDGET_S)


def _whole(name: str, value, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]`` (an integral float such as ``100.0`` is
    accepted); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in {low}..{high}, got {value:g}")
    return int(value)


def _within(name: str, value, low: float, high: float, *, above_low: bool = False,
            below_high: bool = False) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite real number in the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (value <= low if above_low else value < low) or (value >= high if below_high else value > high):
        interval = f"{'(' if above_low else '['}{low:g}, {high:g}{')' if below_high else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value:g}")


@dataclass(frozen=True)
class RetrievalProgress:
    """One progress report.

    Attributes
    ----------
    iteration, iterations : int
        Iterations done and planned.
    loss : float
        The method's objective (FGLA: the squared magnitude error, normalised).
    spectral_convergence_db : float
        ``20 log10(|| |W y| - T || / || T ||)`` of the current signal, in dB.
    elapsed_s, eta_s : float
        Seconds since the start, and the estimated seconds to go (from the time
        iterations take, not from the set-up's; ``nan`` before anything can be said).
    stage : str
        What the run is doing, one of :data:`STAGES`; before ``"iterating"``,
        ``iteration`` is 0 and ``spectral_convergence_db`` is ``nan``.
    fraction : float
        Share of the whole run done, 0 to 1 (for a progress bar).
    """

    iteration: int
    iterations: int
    loss: float
    spectral_convergence_db: float
    elapsed_s: float
    eta_s: float
    stage: str = "iterating"
    fraction: float = math.nan


@dataclass
class RetrievalResult:
    """What a retrieval produced.

    Attributes
    ----------
    signal : torch.Tensor [shape=(..., length)]
        The best signal found (lowest spectral convergence).
    spectral_convergence_db : float
        Its spectral convergence against the target, in dB.
    iterations : int
        Iterations completed (fewer than planned when cancelled).
    seconds : float
        Wall time.
    cancelled : bool
        Whether a cancel request stopped the run.
    history : list of float
        Spectral convergence in dB after each iteration (of each window in turn, and
        there the window's own).
    loss_history : list of float
        The method's own objective after each iteration (for gradient methods the loss
        they minimise, which for compressed losses is not the spectral convergence).
    windows : int
        Windows the signal was retrieved in (1 unless its retrieval did not fit in
        memory: see :func:`retrieve`); ``iterations`` is then each window's.
    stopped : str
        Why the iterations ended: ``"iterations"`` (all done), ``"converged"`` (the
        stopping rule), ``"budget"`` (the time budget) or ``"cancelled"``.
    """

    signal: torch.Tensor
    spectral_convergence_db: float
    iterations: int
    seconds: float
    cancelled: bool
    history: list[float] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)
    windows: int = 1
    stopped: str = "iterations"


class RenderCancelled(Exception):
    """A cancel request stopped a run before it had anything to return."""


class CancelToken:
    """A thread-safe cancel flag: another thread calls :meth:`cancel`, the run stops
    after the current iteration and returns its best result so far."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`RenderCancelled` if a cancel was requested (between the stages
        of a run, which have no best-so-far to return)."""
        if self._event.is_set():
            raise RenderCancelled()


def _norm_sq(groups: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((g.abs() ** 2).sum() for g in groups)


# ---------------------------------------------------------------------------- initial phases
def _band_times(coeffs: Coefficients, index: int, device) -> torch.Tensor:
    hop = int(coeffs.frame.bands.hop[index])
    n = coeffs.padded_length // hop
    return torch.arange(n, dtype=torch.float64, device=device) * (hop / coeffs.frame.sample_rate)


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    return torch.remainder(phase, 2 * math.pi)


def _resample(values: torch.Tensor, length: int) -> torch.Tensor:
    """Linear resampling of the last axis to ``length`` points on the same time span."""
    if values.shape[-1] == length:
        return values
    shape = values.shape
    flat = values.reshape(1, -1, shape[-1])
    out = torch.nn.functional.interpolate(flat, size=length, mode="linear", align_corners=False)
    return out.reshape(*shape[:-1], length)


def initial_phase(
    target: Coefficients,
    init: str,
    *,
    reference: Coefficients | None = None,
    seed: int = 0,
    silence_db: float = SILENCE_DB,
    new_content: str = "pghi",
    continue_known: bool = False,
    new_content_db: float | None = None,
) -> list[torch.Tensor]:
    """Unit-modulus complex phases (real atoms: signs) in the target's layout.

    Parameters
    ----------
    target : Coefficients
        Target magnitudes (real, non-negative groups).
    init : str
        ``"random"``, ``"original"`` (needs ``reference``), ``"centre"``, ``"gradient"``
        or ``"pghi"``.
    reference : Coefficients, optional
        Complex coefficients whose phase ``"original"`` takes, except where the target is
        more than :data:`NEW_CONTENT_DB` above their magnitude: there the ``"pghi"``
        phase.
    seed : int
        Seed of ``"random"`` (and of PGHI's phases for silent coefficients).
    silence_db : float
        ``"gradient"`` and ``"pghi"``: level relative to the loudest coefficient, in dB,
        below which a coefficient is taken as silent (``"gradient"`` freezes its band's
        phase there, ``"pghi"`` gives it a random phase).
    new_content : str
        ``"original"``: the initial phase of the new content (any of :data:`INITS` but
        ``"original"``).
    continue_known : bool
        ``"original"`` with ``"pghi"`` new content: integrate the new content's phase
        from the reference's where they touch (as real-time PGHI continues the frames
        before), not from each island's own loudest coefficient. A window of a long
        retrieval continuing the windows before takes it: started apart, the window's
        new content met their phase with a jump in each band that 20 iterations did not
        undo (14 dB further off in a second after a seam, on 50 s of a song). An edit's
        new content does not: there it was level on the warm-start edits and 1.6 dB
        further off at the start filling a gap in a chord (integrated in from both
        sides, the phases meet out of step).
    new_content_db : float, optional
        ``"original"``: the threshold of new content (default :data:`NEW_CONTENT_DB`);
        ``inf`` when the caller knows there is none (edits that only scale what is
        there), which spares the test.
    """
    frame = target.frame
    table = frame.bands
    groups = target.groups
    device = groups[0].device
    cdtype = frame.complex_dtype
    if init == "original":
        if reference is None:
            raise ValueError("the 'original' initial phase needs a reference signal or coefficients")
        if new_content_db == math.inf:
            return [torch.sgn(r) for r in reference.groups]
        known, new = _known_and_new(target, reference, new_content_db)
        return _with_new_content(target, known, new, new_content, silence_db=silence_db, seed=seed,
                                 continue_known=continue_known)
    if init == "random":
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        out = []
        for g, t in enumerate(groups):
            angles = torch.rand(t.shape, generator=generator, dtype=torch.float64) * (2 * math.pi)
            phase = torch.polar(torch.ones_like(angles), angles).to(device=device, dtype=cdtype)
            if table.real[table.group == g][0]:
                phase = torch.where(phase.real >= 0, 1.0, -1.0).to(cdtype)
            out.append(phase)
        return out
    if init == "pghi":
        from .pghi import pghi_phase  # loaded on first use

        return pghi_phase(target, silence_db=silence_db, seed=seed)
    if init not in ("centre", "gradient"):
        raise ValueError(f"unknown initial phase {init!r}; choose one of: {', '.join(INITS)}")
    out = [torch.ones(t.shape, dtype=cdtype, device=device) for t in groups]
    wavelets = table.wavelet_indices
    log_mag = None
    if init == "gradient":
        floor = float(max(t.max() for t in groups)) * 10 ** (silence_db / 20) + 1e-30
        log_mag = {int(k): torch.log(target.band(int(k)).clamp_min(floor)).to(torch.float64) for k in wavelets}
        loud = {int(k): target.band(int(k)) > floor for k in wavelets}
    for position, k in enumerate(wavelets):
        k = int(k)
        hop = int(table.hop[k])
        xi = float(table.centre_hz[k])
        if init == "centre":
            phase = 2 * math.pi * xi * _band_times(target, k, device)
        else:
            # A sinusoid at f seen by a Gaussian atom at xi has log-magnitude slope
            # (f - xi) / sigma^2 across xi, so f = xi + sigma^2 d(log|c|)/d(xi).
            lo = int(wavelets[max(position - 1, 0)])
            hi = int(wavelets[min(position + 1, len(wavelets) - 1)])
            length = log_mag[k].shape[-1]
            slope = (_resample(log_mag[hi], length) - _resample(log_mag[lo], length)) / (
                table.centre_hz[hi] - table.centre_hz[lo]
            )
            sigma = float(table.sigma_hz[k])
            deviation = (sigma**2 * slope).clamp(-3 * sigma, 3 * sigma)
            frequency = (xi + deviation) * loud[k]
            phase = 2 * math.pi * torch.cumsum(frequency * (hop / frame.sample_rate), dim=-1)
        g, r = int(table.group[k]), int(table.row[k])
        out[g][..., r, :] = torch.polar(torch.ones_like(phase), _wrap(phase)).to(cdtype)
    return out


def _known_and_new(target: Coefficients, reference: Coefficients, new_content_db: float | None = None,
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The reference's phase as unit phasors (1 where it is 0), and where ``target`` is new
    content: more than ``new_content_db`` (default :data:`NEW_CONTENT_DB`) above the
    reference's magnitude.

    Where the target asks for far more than the reference holds (a partial painted into
    silence, content moved by a transpose), the reference's phase is that of round-off
    or faint noise, and FGLA starting from it converged 2-2.7 dB less far in the
    editor's 32 iterations (scripts/warm_start_sweep.py): the new content takes another
    initial phase (:func:`_with_new_content`).
    """
    ratio = 10 ** ((NEW_CONTENT_DB if new_content_db is None else new_content_db) / 20)
    known, new = [], []
    for t, r in zip(target.groups, reference.groups):
        check_interrupt()  # between groups: a long window's are hundreds of MB each
        m = r.abs()  # one group's moduli at a time: a long window's are hundreds of MB
        known.append(r / m.clamp_min(1e-30) * (m > 0) + (m == 0))
        new.append(t > m * ratio)
    return known, new


def _with_new_content(target: Coefficients, known: list[torch.Tensor], new: list[torch.Tensor], new_content: str,
                      *, silence_db: float, seed: int, continue_known: bool = False) -> list[torch.Tensor]:
    """``known`` with the ``new_content`` initial phase of ``target`` where ``new`` holds
    (see :func:`initial_phase`); ``known``'s tensors are written in place."""
    if not any(bool(n.any()) for n in new):
        return known
    if new_content == "pghi":
        return _with_pghi_where(target, new, known, silence_db=silence_db, seed=seed, continue_known=continue_known)
    if new_content == "original":
        raise ValueError("the phase of new content cannot itself be 'original'")
    built = initial_phase(target, new_content, seed=seed, silence_db=silence_db)
    return [torch.where(n, b, k, out=k) for n, b, k in zip(new, built, known)]


def _with_pghi_where(target: Coefficients, new: list[torch.Tensor], phase: list[torch.Tensor], *, silence_db: float,
                     seed: int, continue_known: bool = False) -> list[torch.Tensor]:
    """``phase`` with PGHI's phase of ``target`` where ``new`` holds (integrated from
    ``phase`` where they touch, with ``continue_known``: see :func:`initial_phase`).
    ``phase``'s tensors are written in place (a long window's are hundreds of MB each).

    PGHI runs over the time span of the new coefficients only, one largest hop beyond
    them on each side for the magnitudes' slopes (on the 6 s example, a stroke of a
    second: 0.3 s instead of 1.1 s for the render's whole window).
    """
    from .pghi import pghi_phase  # loaded on first use

    hops = target.frame.group_hops
    top = target.frame.max_hop
    first, last = target.padded_length, 0
    for n, hop in zip(new, hops):
        columns = torch.nonzero(n.reshape(-1, n.shape[-1]).any(0)).flatten()
        if columns.numel():
            first = min(first, int(columns[0]) * hop)
            last = max(last, (int(columns[-1]) + 1) * hop)
    lo = max((first // top - 1) * top, 0)
    hi = min(-(-last // top) * top + top, target.padded_length)
    window = [slice(lo // hop, hi // hop) for hop in hops]
    span = Coefficients([g[..., w] for g, w in zip(target.groups, window)], target.frame, hi - lo, 0, hi - lo)
    known = None
    if continue_known:
        for p, n in zip(phase, new):
            p.masked_fill_(n, 0)  # unknown there; PGHI's phase replaces it below in any case
        known = [p[..., w] for p, w in zip(phase, window)]
    built = pghi_phase(span, silence_db=silence_db, seed=seed, known=known)
    for p, n, b, w in zip(phase, new, built, window):
        inside = p[..., w]
        torch.where(n[..., w], b, inside, out=inside)
    return phase


# ---------------------------------------------------------------------------- methods
# Measured on tones and speech-like noise (see tests/test_phase.py): Adam steps are
# relative to the starting signal's RMS; SGD and L-BFGS act on the normalised loss.
_DEFAULT_LEARNING_RATE = {"adam": 0.2, "sgd": 5.0, "lbfgs": 0.1}


def _scheduler(settings: RetrievalSettings, optimizer, iterations: int):
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iterations, 1), eta_min=0.0)
    if settings.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(iterations // 10, 1), gamma=0.5)
    return None


class _Run:
    """Book-keeping shared by the methods: best result, history, progress, cancel, and
    the layout the projection methods iterate in."""

    def __init__(self, target: Coefficients, iterations, progress, cancel, every, pinned=None, *,
                 stop_gain_db: float = 0.0, stop_window: int = 4, deadline: float | None = None):
        frame = target.frame
        # Samples at the signal's start that every synthesis keeps (a window's past).
        self.pinned = pinned
        self.frame = frame
        self.target = target
        rows = int(torch.Size(target.batch_shape).numel())
        n = target.padded_length
        one_block = n <= frame.segment_length
        # All coefficients in one tensor where the frame's transforms lay them out so (a
        # view then), else group by group: see WaveletFrame.flat_layout.
        self.flat = frame.flat_layout(n, rows) and one_block
        self.small = _small_run(target)
        # On the CPU a short signal's padding is mostly zeros that high bands need not
        # see: iterate on a content plan (WaveletFrame.content_plan) when it saves work,
        # with FFTW plans on buffers of the run's own (scalgui.dsp.fftw_block).
        self.plan = None
        self.block = None
        if compiled_loops_on(frame.device) and (one_block or fftw_block.iterates_whole(frame)):
            self.plan = frame.content_plan(n, target.pad_left, target.length)
            check_interrupt()  # between the steps of a long window's set-up, each a pass over all of it
            if fftw_block.available():
                self.block = fftw_block.FftwBlock(frame, self.plan or frame._plan(n), target.batch_shape,
                                                  target.pad_left, target.length,
                                                  threads=1 if self.small else torch.get_num_threads())
        check_interrupt()
        self.target_parts = self.parts(target)
        check_interrupt()
        # A window's margins (FREE magnitudes) are left to what the frame makes of them.
        free = [t < 0 for t in self.target_parts]
        self.free = free if any(bool(f.any()) for f in free) else None
        self.magnitude_parts = self.target_parts if self.free is None else [t.clamp(min=0) for t in self.target_parts]
        self.iterations = iterations
        self.progress = progress
        self.cancel = cancel
        self.every = max(int(every), 1)
        self.start = time.perf_counter()
        self.history: list[float] = []
        self.loss_history: list[float] = []
        self.best_db = math.inf
        self.best_signal = None
        self.done = 0
        self.reference = sum(sum_of_squares(t) for t in self.magnitude_parts)
        self.stop_gain_db = stop_gain_db
        self.stop_window = stop_window
        self.deadline = deadline
        self.best_history: list[float] = []  # the best so far after each iteration
        self.start_db = math.inf  # the start's convergence: the stopping rule's iteration 0
        self.stopped = "iterations"
        self.begin()
        self.last_iteration_s = 0.0

    def parts(self, coeffs: Coefficients) -> list[torch.Tensor]:
        """``coeffs`` as the tensors element-wise steps work on: one flat one, the groups,
        or on a content plan the groups' coefficients within its windows."""
        groups = coeffs.groups
        if self.plan is not None:
            times = self.frame.content_times(self.plan)
            groups = [g if t is None else g.index_select(-1, t) for g, t in zip(groups, times)]
        if self.block is not None:
            return [self.block.pack(groups)]
        if self.plan is not None:
            return groups
        return [coeffs.flat()] if self.flat else list(groups)

    @property
    def reuses_buffers(self) -> bool:
        """Whether :meth:`analyse` returns the same tensors every time (an FFTW block's)."""
        return self.block is not None

    def analyse(self, signal: torch.Tensor) -> list[torch.Tensor]:
        """The parts of ``signal``'s coefficients (with an FFTW block: its buffer, which
        the next analysis overwrites)."""
        if self.block is not None:
            return [self.block.analyse(signal)]
        if self.plan is None:
            return self.parts(self.frame.analyze(signal))
        t = self.target
        padded = torch.nn.functional.pad(signal, (t.pad_left, t.padded_length - t.length - t.pad_left))
        return self.frame.forward_block(padded, self.plan)

    def synthesise(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """The signal whose coefficients are nearest to ``parts`` (through the dual frame),
        with the pinned samples (if any) put back."""
        t = self.target
        if self.block is not None:
            signal = self.block.synthesise(parts[0])
        elif self.plan is None:
            signal = self.frame.synthesize(t.with_flat(parts[0]) if self.flat else t.with_groups(parts))
        else:
            signal = self.frame.inverse_block(parts, t.padded_length, self.plan)[..., t.pad_left : t.pad_left + t.length]
        return self.pin(signal)

    def pin(self, signal: torch.Tensor) -> torch.Tensor:
        """``signal`` (a new tensor: changed in place) with the pinned samples put back."""
        if self.pinned is not None:
            signal[..., : self.pinned.shape[-1]] = self.pinned
        return signal

    def magnitudes_with(self, phase: list[torch.Tensor], free_values: list[torch.Tensor] | None = None,
                        ) -> list[torch.Tensor]:
        """The target magnitudes with unit-modulus ``phase`` parts: the magnitude
        projection of ``free_values`` (free coefficients keep theirs; without them, 0)."""
        projected = [_scale(p, t) for p, t in zip(phase, self.magnitude_parts)]
        if self.free is None or free_values is None:
            return projected
        return [torch.where(f, v, z) for f, v, z in zip(self.free, free_values, projected)]

    def record(self, signal: torch.Tensor, estimate: Coefficients) -> float:
        """Spectral convergence of ``estimate`` against the target, in dB; keeps the
        best signal so far."""
        return self.record_parts(signal, self.parts(estimate))

    def record_parts(self, signal: torch.Tensor, parts: list[torch.Tensor]) -> float:
        """As :meth:`record`, for an estimate's parts."""
        deviations = [e.abs() - t for e, t in zip(parts, self.target_parts)]
        if self.free is not None:
            deviations = [d.masked_fill(f, 0) for d, f in zip(deviations, self.free)]
        error = sum(sum_of_squares(d) for d in deviations)
        return self.record_error(signal, float(error))

    def record_error(self, signal: torch.Tensor, error: float) -> float:
        """As :meth:`record`, from the squared magnitude error ``sum(|estimate| - target)^2``."""
        db = convergence_db(error, self.reference)
        if db < self.best_db:
            self.best_db = db
            self.best_signal = signal.detach().clone()
        return db

    def begin(self) -> None:
        """Mark the start of the iterations (the set-up before them is not what an ETA
        extrapolates)."""
        self.iterating_since = self.last_mark = time.perf_counter()

    def step(self, db: float, loss: float) -> bool:
        """Count one iteration; return True to stop (cancelled, converged or out of time)."""
        now = time.perf_counter()
        self.last_iteration_s, self.last_mark = now - self.last_mark, now
        self.done += 1
        self.history.append(db)
        self.loss_history.append(loss)
        self.best_history.append(min(self.best_db, db))
        if self.progress is not None and (self.done % self.every == 0 or self.done == self.iterations):
            per_iteration = (now - self.iterating_since) / self.done
            self.progress(RetrievalProgress(self.done, self.iterations, loss, db, now - self.start,
                                            per_iteration * (self.iterations - self.done), "iterating",
                                            self.done / max(self.iterations, 1)))
        if self.cancel is not None and self.cancel.cancelled:
            self.stopped = "cancelled"
        elif self.done < self.iterations and self.converged():
            self.stopped = "converged"
        elif self.done < self.iterations and self.deadline is not None and now + self.last_iteration_s > self.deadline:
            self.stopped = "budget"
        return self.stopped != "iterations"

    def converged(self) -> bool:
        """Whether the last :attr:`stop_window` iterations together gained less than
        :attr:`stop_gain_db` (the start counts as iteration 0)."""
        window = self.stop_window
        if self.stop_gain_db <= 0 or self.done < window:
            return False
        before = self.best_history[-window - 1] if self.done > window else self.start_db
        return before - self.best_history[-1] < self.stop_gain_db


def _fgla(phase: list[torch.Tensor], iterations, momentum, run: _Run) -> torch.Tensor:
    """Accelerated Griffin-Lim from unit-modulus ``phase`` parts (see :meth:`_Run.parts`):
    returns the last signal (the run keeps the best)."""
    reference = run.reference
    beta = momentum / (1.0 + momentum)
    previous = None
    signal = None
    synthesis_input = run.magnitudes_with(phase)
    fused = step = None
    for _ in range(iterations):
        signal = run.synthesise(synthesis_input)
        rebuilt = run.analyse(signal)
        if fused is None:
            fused = fusable(rebuilt, run.target_parts)
        if fused:
            first = previous is None
            if first:
                previous = [torch.zeros_like(r) for r in rebuilt]  # 0 * (garbage) can be NaN
            if step is None or not run.reuses_buffers:
                step = bound_fgla_step(rebuilt, previous, run.target_parts, beta)
            db = run.record_error(signal, step(first))
            synthesis_input = rebuilt  # the step left the next input there
        else:
            db = run.record_parts(signal, rebuilt)
            accelerated = rebuilt if previous is None else [torch.sub(r, p, alpha=beta) for r, p in zip(rebuilt, previous)]
            synthesis_input = run.magnitudes_with([torch.sgn(a) for a in accelerated], free_values=accelerated)
            previous = rebuilt
        if run.step(db, 10 ** (db / 10) * reference):
            break
    return signal


def _admm(phase: list[torch.Tensor], iterations, run: _Run) -> torch.Tensor:
    """ADMM between the consistent set and the magnitude set (both by projection), from
    unit-modulus ``phase`` parts: returns the last signal (the run keeps the best).

    With ``x`` consistent, ``z`` of the target magnitudes and ``u`` the scaled dual:
    ``x = P_consistent(z - u)``, ``z = P_magnitude(x + u)``, ``u += x - z``.
    """
    z = run.magnitudes_with(phase)
    u = [torch.zeros_like(part) for part in z]
    synthesis_input = z  # z - u
    signal = None
    fused = step = None
    for _ in range(iterations):
        signal = run.synthesise(synthesis_input)
        x = run.analyse(signal)
        if fused is None:
            fused = fusable(x, u, run.target_parts)
        if fused:
            if step is None or not run.reuses_buffers:
                step = bound_admm_step(x, u, run.target_parts)
            db = run.record_error(signal, step())
            synthesis_input = x  # the step left z - u there
        else:
            db = run.record_parts(signal, x)
            w = [a + b for a, b in zip(x, u)]
            z = run.magnitudes_with([torch.sgn(a) for a in w], free_values=w)
            u = [a - b for a, b in zip(w, z)]  # u + x - z
            synthesis_input = [a - b for a, b in zip(z, u)]
        if run.step(db, 10 ** (db / 10) * run.reference):
            break
    return signal


def _magnitude_loss(settings: RetrievalSettings, estimate, target, iteration, iterations, reference, floor,
                    free=None):
    """The gradient methods' objective; ``floor`` (a magnitude) keeps the compressed
    losses smooth near zero, where silence would otherwise dominate their gradients;
    ``free`` masks the coefficients that do not count (a window's margins)."""
    loss_kind = settings.loss
    if loss_kind == "l2-l1":
        loss_kind = "l1" if iteration >= settings.l1_after * iterations else "l2"
    total = 0.0
    for g, (e, t) in enumerate(zip(estimate, target)):
        if loss_kind == "l2":
            term, norm = (e.abs() - t) ** 2, reference
        elif loss_kind == "l1":
            term, norm = (e.abs() - t).abs(), reference**0.5
        else:
            # |e| computed as sqrt(|e|^2 + floor^2): differentiable at 0.
            m = (e.real**2 + e.imag**2 + floor**2).sqrt()
            t_floored = (t**2 + floor**2).sqrt()
            if loss_kind == "power":
                term, norm = (m**settings.power - t_floored**settings.power).pow(2), reference**settings.power
            else:  # log
                term, norm = (torch.log(m) - torch.log(t_floored)).pow(2), t.numel()
        if free is not None:
            term = term.masked_fill(free[g], 0)
        total = total + term.sum() / norm
    return total


def _gradient(frame, target: Coefficients, signal, method, iterations, settings, run: _Run) -> torch.Tensor:
    target_groups = target.groups
    free = [t < 0 for t in target_groups] if run.free is not None else None
    reference = float(_norm_sq([t.clamp(min=0) for t in target_groups])) + 1e-30
    count = sum(t.numel() for t in target_groups)
    floor = 1e-2 * (reference / count) ** 0.5  # 40 dB below the target's RMS magnitude
    x = signal.detach().clone().requires_grad_(True)
    scale = float(x.detach().pow(2).mean().sqrt()) + 1e-12
    lr = settings.learning_rate
    if lr is None:
        # Compressed losses have steeper gradients near quiet coefficients (measured:
        # Adam at the L2 step size overshoots the log loss by 10x in the first steps).
        lr = _DEFAULT_LEARNING_RATE[method] * (0.1 if settings.loss in ("log", "power") else 1.0)
    if method == "adam":
        optimizer = torch.optim.Adam([x], lr=lr * scale)
    elif method == "sgd":
        optimizer = torch.optim.SGD([x], lr=lr, momentum=settings.momentum, nesterov=settings.momentum > 0)
    else:
        optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe")
    scheduler = _scheduler(settings, optimizer, iterations) if method != "lbfgs" else None
    state = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        estimate = frame.analyze(x).groups
        loss = _magnitude_loss(settings, estimate, target_groups, run.done, iterations, reference, floor, free)
        loss.backward()
        state["estimate"] = [e.detach() for e in estimate]
        state["signal"] = x.detach()
        state["loss"] = float(loss.detach())
        return loss

    for _ in range(iterations):
        optimizer.step(closure)
        with torch.no_grad():
            run.pin(x)
        if scheduler is not None:
            scheduler.step()
        # The closure's estimate belongs to the signal before the step: record that pair.
        db = run.record(state["signal"], target.with_groups(state["estimate"]))
        if run.step(db, state["loss"]):
            break
    return x.detach()


def retrieve(
    frame: WaveletFrame,
    target: Coefficients,
    settings: RetrievalSettings = RetrievalSettings(),
    *,
    reference: Coefficients | None = None,
    initial_signal: torch.Tensor | None = None,
    progress: Callable[[RetrievalProgress], None] | None = None,
    cancel: CancelToken | None = None,
    progress_every: int = 1,
    memory_limit: int | None = None,
    deadline: float | None = None,
    new_content_db: float | None = None,
) -> RetrievalResult:
    """Find a signal whose frame magnitudes match ``target``.

    A signal whose retrieval would not fit in memory (``memory_limit``, by default half
    of what the device has free: :mod:`scalgui.dsp.memory`) is retrieved in overlapping
    windows, one after the other. Each window after the first keeps the samples the
    windows before made up to its cross-fade (pinned), starts from their phase where
    they reach and integrates its new content's PGHI phase from that phase, so that the
    windows agree across the overlap, and is cross-faded into them. Each window holds
    the atoms' reach beyond the part it keeps, so the windows' seams cost little
    convergence (measured in the README); the reported spectral convergence is the
    whole signal's, computed exactly. A cancelled windowed run returns the windows
    done and the cancelled window's best so far, faded out, with silence after.

    Parameters
    ----------
    frame : WaveletFrame
        The frame the target lives on (its device is used).
    target : Coefficients
        Target magnitudes: real, non-negative groups, e.g. ``coeffs.map(torch.abs)``
        possibly edited. Leading batch dimensions (channels) are inverted together.
    settings : RetrievalSettings
        Method, iterations, initial phase, loss...
    reference : Coefficients, optional
        Complex coefficients whose phase the ``"original"`` initial phase uses.
    initial_signal : torch.Tensor, optional
        A starting signal (overrides ``settings.init``), e.g. the previous render.
    progress : callable, optional
        Called with a :class:`RetrievalProgress` every ``progress_every`` iterations.
    cancel : CancelToken, optional
        Checked between iterations; a cancelled run returns its best signal so far.
    progress_every : int
        Iterations between progress reports.
    memory_limit : int, optional
        Bytes the retrieval's working memory may take (beyond ``target``); None plans
        with :data:`~scalgui.dsp.memory.MEMORY_SHARE` of the device's free memory.
    deadline : float, optional
        A ``time.perf_counter()`` time after which no iteration starts (default: from
        ``settings.budget_s``, counted from now).
    new_content_db : float, optional
        See :func:`initial_phase`.

    Returns
    -------
    RetrievalResult
        Deterministic for a given seed on a given device.
    """
    target = target.map(lambda g: g.to(device=frame.device, dtype=frame.dtype))
    if any(bool((g < 0).any()) for g in target.groups):
        # Below zero is no magnitude (and inside the methods it marks a free coefficient).
        target = target.map(lambda g: g.clamp(min=0))
    if deadline is None and settings.budget_s > 0:
        deadline = time.perf_counter() + settings.budget_s
    if settings.iterations == 0 and initial_signal is None:
        return _warm_start(frame, target, settings, reference=reference, progress=progress,
                           new_content_db=new_content_db)
    if target.pad_left == frame.pad and target.padded_length == frame.padded_length(target.length):
        rows = int(torch.Size(target.batch_shape).numel())
        plan = plan_windows(frame, target.length, rows, settings.method, memory_limit)
        if plan is not None:
            windows, fade = plan
            return _retrieve_windowed(frame, target, settings, windows, fade, reference=reference,
                                      initial_signal=initial_signal, progress=progress, cancel=cancel,
                                      progress_every=progress_every, deadline=deadline,
                                      new_content_db=new_content_db)
    return _retrieve_whole(frame, target, settings, reference=reference, initial_signal=initial_signal,
                           progress=progress, cancel=cancel, progress_every=progress_every, deadline=deadline,
                           new_content_db=new_content_db)


def _warm_start(frame, target, settings, *, reference, progress, new_content_db) -> RetrievalResult:
    """:func:`retrieve` with no iterations: the target magnitudes on the initial phase,
    synthesised once and analysed once to measure them, through the frame's segmented
    transforms (none of the iterations' buffers, and no windows for a long signal)."""
    started = time.perf_counter()
    if progress is not None:
        progress(RetrievalProgress(0, 0, math.nan, math.nan, 0.0, math.nan, "initial phase", 0.0))
    with torch.no_grad():
        phases = initial_phase(target, settings.init, reference=reference, seed=settings.seed,
                               new_content_db=new_content_db)
        check_interrupt()
        for p, t in zip(phases, target.groups):
            p.mul_(t)  # the phases' memory holds the start's coefficients
        signal = frame.synthesize(target.with_groups(phases))
        del phases
        if progress is not None:
            progress(RetrievalProgress(0, 0, math.nan, math.nan, time.perf_counter() - started, math.nan, "finishing",
                                       0.5))
        db = spectral_convergence_db(frame.analyze(signal).groups, target.groups)
    return RetrievalResult(signal, db, 0, time.perf_counter() - started, False, [], stopped="iterations")


def _scaled_warm_start(frame: WaveletFrame, start: Coefficients, progress) -> tuple[RetrievalResult, float]:
    """The warm start of a span whose edits only scale, from its complex coefficients
    (see :func:`rerender_spans`' ``local_start``): synthesised once, analysed once to
    measure it. Returns the result and the target's energy (sum of squared magnitudes)."""
    started = time.perf_counter()
    progress(RetrievalProgress(0, 0, math.nan, math.nan, 0.0, math.nan, "initial phase", 0.0))
    with torch.no_grad():
        signal = frame.synthesize(start)
        progress(RetrievalProgress(0, 0, math.nan, math.nan, time.perf_counter() - started, math.nan, "finishing",
                                   0.5))
        error, energy = modulus_error(frame.analyze(signal).groups, start.groups)
    return RetrievalResult(signal, convergence_db(error, energy), 0, time.perf_counter() - started, False, []), energy


def _retrieve_whole(frame, target, settings, *, reference=None, initial_signal=None, progress=None, cancel=None,
                    progress_every=1, initial_phases=None, pinned=None, deadline=None,
                    new_content_db=None) -> RetrievalResult:
    started = time.perf_counter()
    iterations = int(settings.iterations)
    with _threads_for(frame, _small_run(target)):
        if progress is not None:
            progress(RetrievalProgress(0, iterations, math.nan, math.nan, 0.0, math.nan, "initial phase", 0.0))
        if initial_signal is None and initial_phases is None:
            # Before the run's buffers exist: on a long signal PGHI's working arrays are
            # the retrieval's peak, and the run's FFTW block beside them raised it from
            # 4.4 to 6.3 GB (60 s of stereo at 48 voices).
            with torch.no_grad():
                free = any(bool((g < 0).any()) for g in target.groups)  # a window's margins
                magnitudes = target.map(lambda g: g.clamp(min=0)) if free else target
                initial_phases = initial_phase(magnitudes, settings.init, reference=reference, seed=settings.seed,
                                               new_content_db=new_content_db)
                del magnitudes
        check_interrupt()
        run = _Run(target, iterations, progress, cancel, progress_every, pinned, stop_gain_db=settings.stop_gain_db,
                   stop_window=settings.stop_window, deadline=deadline)
        check_interrupt()
        run.start = started
        phase = None
        if initial_signal is None:
            phase = run.parts(target.with_groups(initial_phases))
            # The run's layout holds them now (with an FFTW block, a copy): the list is
            # the caller's, emptied so that the groups' copy goes.
            initial_phases.clear()
        return _retrieve(frame, target, settings, run, initial_signal, cancel, phase)


def _small_run(target: Coefficients) -> bool:
    """Whether a retrieval on ``target`` iterates on a small block
    (:meth:`WaveletFrame.small_block`, within one segment)."""
    frame, n = target.frame, target.padded_length
    rows = int(torch.Size(target.batch_shape).numel())
    return frame.small_block(n, rows) and n <= frame.segment_length


@contextlib.contextmanager
def _threads_for(frame: WaveletFrame, small: bool):
    """One torch thread on the CPU for small transforms (:meth:`WaveletFrame.small_block`), restored
    after: there each of an iteration's operations is short, and handing part of it to a
    second thread costs more than it saves (measured on the 2048-sample chirp of ``bench
    invert``: 5.0 ms per iteration on one thread, 7.2 ms on two). torch's thread count is
    per calling thread, so a render on a worker leaves the others' alone."""
    if frame.device.type != "cpu" or not small:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _retrieve(frame, target, settings, run: _Run, initial_signal, cancel, phase) -> RetrievalResult:
    with torch.no_grad():
        if initial_signal is not None:
            signal = torch.as_tensor(initial_signal).to(device=frame.device, dtype=frame.dtype)
            if signal.shape[-1] != target.length:
                raise ValueError(
                    f"initial signal has {signal.shape[-1]} samples, the target describes {target.length}"
                )
            phase = [torch.sgn(p) for p in run.analyse(signal)]
        start_signal = run.synthesise(run.magnitudes_with(phase))
        check_interrupt()
        run.start_db = run.record_parts(start_signal, run.analyse(start_signal))
    if run.iterations and run.deadline is not None and time.perf_counter() > run.deadline:
        run.iterations = 0  # out of time before the first iteration: the warm start it is
        run.stopped = "budget"
    run.begin()
    iterations = run.iterations
    method = settings.method
    projection_iterations = {
        "fgla": iterations,
        "hybrid": int(round(settings.hybrid_share * iterations)),
    }.get(method, 0)
    signal = start_signal
    if method == "admm":
        with torch.no_grad():
            last = _admm(phase, iterations, run)
        signal = run.best_signal if run.best_signal is not None else last
    if projection_iterations:
        with torch.no_grad():
            last = _fgla(phase, projection_iterations, settings.momentum, run)
        signal = run.best_signal if run.best_signal is not None else last
    remaining = iterations - run.done
    if remaining > 0 and run.stopped == "iterations" and not (cancel is not None and cancel.cancelled):
        gradient_method = settings.refine_method if method == "hybrid" else method
        if gradient_method in _DEFAULT_LEARNING_RATE:
            _gradient(frame, target, signal, gradient_method, remaining, settings, run)
    best = run.best_signal if run.best_signal is not None else start_signal
    return RetrievalResult(
        signal=best,
        spectral_convergence_db=run.best_db,
        iterations=run.done,
        seconds=time.perf_counter() - run.start,
        cancelled=cancel is not None and cancel.cancelled,
        history=run.history,
        loss_history=run.loss_history,
        stopped="cancelled" if cancel is not None and cancel.cancelled else run.stopped,
    )


# ---------------------------------------------------------------------------- long signals
def _window_of(coeffs: Coefficients, start: int, length: int, *, free_margins: bool) -> Coefficients:
    """The whole signal's coefficients in the layout of the window ``[start, start +
    length)`` analysed on its own (``start`` is a multiple of the largest hop, so they
    are columns of the whole's).

    With ``free_margins`` (a target) the columns within the atoms' reach of an inner
    edge of the window are :data:`~scalgui.dsp.projections.FREE`: their atoms reach
    beyond the window, into sound the window cannot make. Asked to match them anyway
    (or zeros there) the window's problem had no solution, and ADMM converged 1-3 dB less
    far over the whole window, not only at its edges (measured on 50 s of a song at 48
    voices per octave); left free, the windows converge as far as the whole signal does
    (the samples pinned at a window's start keep what lies before in step). The columns out to the atoms' reach beyond the signal's own ends
    stay, as in a whole signal's retrieval.
    """
    frame = coeffs.frame
    padded = frame.padded_length(length)
    reach = coeffs.pad_left
    # Padded positions of the columns kept: the window's sample s is at s + reach.
    lo_q = 2 * reach if free_margins and start > 0 else 0
    hi_q = length if free_margins and start + length < coeffs.length else padded
    rows = int(torch.Size(coeffs.batch_shape).numel())
    like = coeffs.groups[0]
    flat = torch.full((rows * frame.coefficient_count(padded),), FREE if free_margins else 0.0, dtype=like.dtype,
                      device=like.device)
    groups = frame.split_flat(flat, padded, coeffs.batch_shape)
    for local, whole, hop in zip(groups, coeffs.groups, frame.group_hops):
        first = start // hop
        lo = -(-lo_q // hop)
        count = min(-(-hi_q // hop), local.shape[-1], whole.shape[-1] - first)
        local[..., lo:count] = whole[..., first + lo : first + count]
    return Coefficients(groups, frame, length, coeffs.pad_left, padded, coeffs.offset + start)


def _continuation(frame: WaveletFrame, out: torch.Tensor, window: RetrievalWindow, fade: int) -> Coefficients:
    """The analysis of what the windows before left at the start of ``window`` (up to
    ``fade`` past its core's start, faded out there): the reference phase the window
    starts from, so that its sign and phases continue theirs."""
    kept = window.core_start + fade - window.start
    piece = torch.zeros(*out.shape[:-1], window.length, dtype=out.dtype, device=out.device)
    piece[..., :kept] = out[..., window.start : window.core_start + fade]
    piece[..., kept - fade : kept] *= _fade(fade, out.dtype, out.device).flip(0)
    return frame.analyze(piece)


def _continuing_phase(frame: WaveletFrame, target: Coefficients, out: torch.Tensor, window: RetrievalWindow,
                      fade: int, settings: RetrievalSettings) -> list[torch.Tensor]:
    """The initial phase of a window after the first (``target`` its window's): the
    phase of what the windows before left (:func:`_continuation`) where it reaches, and
    the new content's ``settings.init`` phase elsewhere (more than
    :data:`CONTINUATION_NEW_CONTENT_DB` above it), PGHI's integrated from the known
    phase (see :func:`initial_phase`'s ``continue_known``).

    Built here rather than by :func:`initial_phase` so that the continuation's
    coefficients are let go before PGHI runs: on a long window they are 8 bytes of each
    coefficient at the retrieval's peak.
    """
    magnitudes = target.map(lambda g: g.clamp(min=0))  # the margins are FREE
    reference = _continuation(frame, out, window, fade)
    known, new = _known_and_new(magnitudes, reference, CONTINUATION_NEW_CONTENT_DB)
    del reference
    new_content = settings.init if settings.init != "original" else "pghi"
    return _with_new_content(magnitudes, known, new, new_content, silence_db=SILENCE_DB, seed=settings.seed,
                             continue_known=True)


def _splice(out: torch.Tensor, signal: torch.Tensor, window: RetrievalWindow, fade: int, *, first: bool,
            last: bool) -> int:
    """Write a window's result into ``out``: cross-faded with the previous window's over
    ``fade`` samples either side of the core's start, then as it is up to ``fade`` past
    the core's end (the next window's cross-fade), or to the window's end for the last;
    ``last`` before the signal's end (a cancel) fades out there. Returns the end of what
    ``out`` now holds."""
    start = window.start
    lo = window.core_start
    if not first:
        seam = slice(window.core_start - fade, window.core_start + fade)
        ramp = _fade(2 * fade, out.dtype, out.device)
        out[..., seam] = out[..., seam] * (1 - ramp) + signal[..., seam.start - start : seam.stop - start] * ramp
        lo = window.core_start + fade
    hi = window.stop if last and window.stop == out.shape[-1] else min(window.core_stop + fade, window.stop)
    out[..., lo:hi] = signal[..., lo - start : hi - start]
    if last and hi < out.shape[-1]:
        tail = min(fade, window.stop - hi)
        ramp = _fade(tail, out.dtype, out.device).flip(0)
        out[..., hi : hi + tail] = signal[..., hi - start : hi + tail - start] * ramp
        hi += tail
    return hi


def _windowed_convergence_db(frame: WaveletFrame, target: Coefficients, out: torch.Tensor,
                             windows: Sequence[RetrievalWindow], written: int) -> float:
    """The whole signal's spectral convergence against ``target`` in dB, window by window:
    each window's core coefficients only reach samples within the window, so analysing the
    window gives them exactly. Windows from ``written`` on are silent."""
    reach = target.pad_left
    end = target.length + 2 * reach  # padded position beyond which no sample reaches
    energy = sum(float(torch.linalg.vector_norm(g, dtype=torch.float64)) ** 2 for g in target.groups)
    error = 0.0
    for k, window in enumerate(windows):
        lo = 0 if k == 0 else window.core_start + reach
        hi = end if k == len(windows) - 1 else window.core_stop + reach
        estimate = frame.analyze(out[..., window.start : window.stop]).groups if window.start < written else None
        for g, whole, hop in zip(range(len(target.groups)), target.groups, frame.group_hops):
            first, stop = -(-lo // hop), -(-hi // hop)
            wanted = whole[..., first:stop]
            if estimate is None:
                error += float(torch.linalg.vector_norm(wanted, dtype=torch.float64)) ** 2
            else:
                shift = window.start // hop
                got = estimate[g][..., first - shift : stop - shift].abs()
                error += float(torch.linalg.vector_norm(got - wanted, dtype=torch.float64)) ** 2
        del estimate
    for whole, hop in zip(target.groups, frame.group_hops):
        error += float(torch.linalg.vector_norm(whole[..., -(-end // hop):], dtype=torch.float64)) ** 2
    return convergence_db(error, energy)


def _retrieve_windowed(frame, target, settings, windows, fade, *, reference, initial_signal, progress, cancel,
                       progress_every, deadline=None, new_content_db=None) -> RetrievalResult:
    """:func:`retrieve` of a long signal in ``windows`` (see :func:`scalgui.dsp.memory.plan_windows`)."""
    started = time.perf_counter()
    iterations = int(settings.iterations)
    total = iterations * len(windows)
    if initial_signal is not None:
        initial_signal = torch.as_tensor(initial_signal).to(device=frame.device, dtype=frame.dtype)
        if initial_signal.shape[-1] != target.length:
            raise ValueError(
                f"initial signal has {initial_signal.shape[-1]} samples, the target describes {target.length}"
            )
    out = torch.zeros(*target.batch_shape, target.length, dtype=frame.dtype, device=frame.device)
    history: list[float] = []
    loss_history: list[float] = []
    done: list[int] = []
    written = 0
    cancelled = False
    stopped = "iterations"
    for k, window in enumerate(windows):
        local_reference = local_initial = local_phases = pinned = None
        if k > 0:
            # The window's margin before the cross-fade is the signal the windows before
            # made: kept, it is the past the window's sound continues, as in a whole
            # signal's retrieval, so that the two sides of the cross-fade agree.
            pinned = out[..., window.start : window.core_start - fade].clone()
        check_interrupt()  # cutting a long window out of the whole copies all its coefficients
        if initial_signal is not None:
            local_initial = initial_signal[..., window.start : window.stop]
        elif reference is not None:
            local_reference = _window_of(reference.map(lambda g: g.to(frame.device)), window.start, window.length,
                                         free_margins=False)
            check_interrupt()
        local_target = _window_of(target, window.start, window.length, free_margins=True)
        check_interrupt()
        if local_initial is None and local_reference is None and k > 0:
            # Phase retrieval cannot tell a signal from its negative, nor (on complex
            # atoms) settle the phases of separate windows alike: continue the previous
            # windows' phase, and start new content as the settings say.
            local_phases = _continuing_phase(frame, local_target, out, window, fade, settings)

        def report(p: RetrievalProgress, before=k * iterations, k=k) -> None:
            elapsed = time.perf_counter() - started
            count = before + p.iteration
            # The windows left cost what this one costs (they are as long).
            eta = p.eta_s + (len(windows) - k - 1) * elapsed / (k + max(p.fraction, 0.05)) if p.iteration else math.nan
            progress(RetrievalProgress(count, total, p.loss, p.spectral_convergence_db, elapsed, eta, p.stage,
                                       (k + p.fraction) / len(windows)))

        result = _retrieve_whole(frame, local_target, settings, reference=local_reference,
                                 initial_signal=local_initial, progress=report if progress is not None else None,
                                 cancel=cancel, progress_every=progress_every, initial_phases=local_phases,
                                 pinned=pinned, deadline=deadline, new_content_db=new_content_db)
        local_target = local_reference = local_phases = None
        history.extend(result.history)
        loss_history.extend(result.loss_history)
        done.append(result.iterations)
        cancelled = result.cancelled
        stopped = result.stopped if stopped == "iterations" else stopped
        written = _splice(out, result.signal, window, fade, first=k == 0, last=cancelled or k == len(windows) - 1)
        if cancelled:
            break
    return RetrievalResult(
        signal=out,
        spectral_convergence_db=_windowed_convergence_db(frame, target, out, windows, written),
        iterations=done[-1] if cancelled else min(done),
        seconds=time.perf_counter() - started,
        cancelled=cancelled,
        history=history,
        loss_history=loss_history,
        windows=len(windows),
        stopped=stopped,
    )


# ---------------------------------------------------------------------------- local re-render
def _merge_spans(spans: Sequence[tuple[float, float]], margin: int, sample_rate: float, n: int):
    """Spans in seconds -> disjoint sample ranges grown by ``margin`` on each side."""
    ranges = []
    for start_s, end_s in sorted(spans):
        if not end_s > start_s:
            raise ValueError(f"empty or reversed time span {start_s} s to {end_s} s")
        lo = max(int(math.floor(start_s * sample_rate)) - margin, 0)
        hi = min(int(math.ceil(end_s * sample_rate)) + margin, n)
        if hi <= lo:
            continue
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    return [tuple(r) for r in ranges]


def _fade(length: int, dtype, device) -> torch.Tensor:
    """A raised-cosine ramp from 0 to 1 over ``length`` samples (equal-gain cross-fade)."""
    t = (torch.arange(length, dtype=torch.float64, device=device) + 0.5) / max(length, 1)
    return (0.5 - 0.5 * torch.cos(math.pi * t)).to(dtype)


def _window_columns(local: Coefficients, whole: Coefficients, group: int) -> tuple[int, int, int]:
    """Where a window's columns of hop group ``group`` lie in the whole signal's layout:
    ``(first, lo, hi)``, the whole's column of the window's first and the whole's columns
    ``lo:hi`` that the window holds (empty where the window's padding reaches past the
    whole)."""
    hop = local.frame.group_hops[group]
    first = (local.offset + whole.pad_left - local.pad_left) // hop
    count = local.groups[group].shape[-1]
    lo, hi = max(first, 0), max(min(first + count, whole.groups[group].shape[-1]), 0)
    return first, lo, hi


def delta_target(original: Coefficients, target: Coefficients) -> Callable[[Coefficients], Coefficients]:
    """A local-target function for :func:`rerender_spans` from whole-signal layouts.

    The window's target is its own magnitudes plus what the edit changed there
    (``target - |original|``), so it stays consistent with silence outside the window.
    ``original`` and ``target`` must be on the frame the re-render uses.
    """

    def local_target(local: Coefficients) -> Coefficients:
        groups = []
        for i, (g_local, g_orig, g_target) in enumerate(zip(local.groups, original.groups, target.groups)):
            first, lo, hi = _window_columns(local, original, i)
            delta = torch.zeros_like(g_local.real)
            if hi > lo:
                delta[..., lo - first : hi - first] = g_target[..., lo:hi] - g_orig[..., lo:hi].abs()
            groups.append((g_local.abs() + delta).clamp_min(0))
        return local.with_groups(groups)

    return local_target


def blended_reference(
    reference: Coefficients, weight: Sequence[torch.Tensor]
) -> Callable[[Coefficients], Coefficients]:
    """A local-reference function for :func:`rerender_spans` from whole-signal layouts.

    The window warm-starts from its own analysis (the signal before the re-render) except
    where ``weight`` says a better-suited reference exists: there it is blended towards
    ``reference``, ``(1 - weight) * local + reference``. A plugin that made audio gives
    its audio's coefficients this way (weighted by where it acted), so a re-render starts
    from a phase that is consistent with the magnitudes the audio has.

    Parameters
    ----------
    reference : Coefficients
        Complex, whole-signal layout on the re-render's frame, already weighted
        (``weight * coefficients`` for one source of reference).
    weight : sequence of torch.Tensor
        Per hop group, in [0, 1], broadcastable to ``reference``'s groups.
    """

    def local_reference(local: Coefficients) -> Coefficients:
        groups = []
        for i, (g_local, g_ref, w) in enumerate(zip(local.groups, reference.groups, weight)):
            first, lo, hi = _window_columns(local, reference, i)
            g = g_local.clone()
            if hi > lo:
                columns = slice(lo - first, hi - first)
                w_cols = w[..., lo:hi]
                g[..., columns] = g[..., columns] * (1 - w_cols) + g_ref[..., lo:hi]
            groups.append(g)
        return local.with_groups(groups)

    return local_reference


def rerender_spans(
    frame: WaveletFrame,
    source: torch.Tensor,
    spans: Sequence[tuple[float, float]],
    local_target: Callable[[Coefficients], Coefficients],
    settings: RetrievalSettings = RetrievalSettings(init="original", iterations=32),
    *,
    progress: Callable[[RetrievalProgress], None] | None = None,
    cancel: CancelToken | None = None,
    local_reference: Callable[[Coefficients], Coefficients] | None = None,
    only_scaling: Callable[[float, float], bool] | None = None,
    local_start: Callable[[Coefficients], Coefficients] | None = None,
    keep_partial: bool = True,
    focus: float | None = None,
    on_span: Callable[[int, int, torch.Tensor], None] | None = None,
) -> RetrievalResult:
    """Re-invert only the time spans an edit touched and splice them into the source.

    Each span is grown by the longest atom's reach (the part of the signal an edit of the
    span can change), inverted on a window with as much context again on each side, and
    cross-faded into the source over the outer half of the grown margin. Samples outside
    the grown spans are the source's, bit for bit.

    Parameters
    ----------
    frame : WaveletFrame
        The frame to invert on (it may differ from the one a picture was drawn with:
        edits are in seconds and Hz).
    source : torch.Tensor [shape=(..., n)]
        The signal before the edit.
    spans : sequence of (float, float)
        Time spans in seconds that the edits touched.
    local_target : callable
        Given a window's analysis (a :class:`Coefficients` whose ``offset`` places it in
        the signal), returns its target magnitudes: e.g. ``lambda c: apply_edits(c,
        edits)``, or :func:`delta_target` for whole-signal targets.
    settings : RetrievalSettings
        As for :func:`retrieve`; ``init="original"`` (warm start from the source's phase)
        is the sensible choice here. ``budget_s`` counts for all the spans together.
    progress : callable, optional
        Called with a :class:`RetrievalProgress` at each stage of each span and after
        each iteration; ``fraction`` and ``eta_s`` are over all the spans.
    cancel : CancelToken, optional
        Checked between stages, between the segments of long transforms and between
        iterations.
    local_reference : callable, optional
        A window's analysis -> the complex coefficients whose phase it starts from
        (default: the analysis itself).
    only_scaling : callable, optional
        ``only_scaling(start_s, end_s)``: whether the edits between those seconds only
        scale what the source has (gains up to :data:`NEW_CONTENT_DB`, cuts, restores).
        There no coefficient is new content, so its test is skipped, and the stopping
        rule and the budget of ``settings`` apply. Elsewhere (and without it) every
        iteration runs: new content keeps improving where a scaled span has converged
        (measured in the docs' rendering chapter).
    local_start : callable, optional
        For spans that only scale: a window's analysis -> the complex coefficients of
        its warm start (the target magnitudes on the analysis's phase, e.g.
        ``apply_edits(c, edits, keep_phase=True)``). A span that takes no iterations
        then synthesises it directly, with no magnitudes or phases formed.
    keep_partial : bool
        What a cancel does: True returns the spans finished and the cancelled span's
        best so far; False raises :class:`RenderCancelled` as soon as it is seen.
    focus : float, optional
        Seconds: the spans are rendered nearest this time first (what the user looks at
        or plays), instead of in time order.
    on_span : callable, optional
        ``on_span(lo, hi, signal)`` after each span is spliced in: samples ``lo:hi`` of
        ``signal`` (the whole signal so far, not to be kept: it changes) are final.

    Returns
    -------
    RetrievalResult
        ``signal`` is the whole signal; the spectral convergence is over the windows;
        ``iterations`` is the most any span ran.
    """
    source = torch.as_tensor(source).to(device=frame.device, dtype=frame.dtype)
    n = source.shape[-1]
    reach = frame.pad
    ranges = _merge_spans(spans, reach, frame.sample_rate, n)
    if focus is not None:
        at = focus * frame.sample_rate
        ranges.sort(key=lambda r: 0 if r[0] <= at < r[1] else min(abs(r[0] - at), abs(r[1] - at)))
    out = source.clone()
    started = time.perf_counter()
    deadline = started + settings.budget_s if settings.budget_s > 0 else None
    history: list[float] = []
    errors, references = 0.0, 0.0
    done = 0
    cancelled = False
    reasons: set[str] = set()  # why each span's iterations ended
    sr = frame.sample_rate
    sizes = [hi - lo for lo, hi in ranges]
    total = max(sum(sizes), 1)
    # Shares of a span's progress bar: its set-up (analysis, target, initial phase) is
    # about as long as a handful of iterations.
    setup_share = min(0.5, 6.0 / max(settings.iterations, 1))

    def check() -> None:
        if cancel is not None and not keep_partial:
            cancel.check()

    def reporter(index: int):
        before = sum(sizes[:index]) / total
        share = sizes[index] / total

        def report(p: RetrievalProgress) -> None:
            check()
            if progress is None:
                return
            inner = p.fraction if math.isfinite(p.fraction) else 0.0
            if p.stage in ("analysing", "initial phase"):
                part = setup_share * (0.5 * inner + (0.5 if p.stage == "initial phase" else 0.0))
            else:
                part = setup_share + (1 - setup_share) * inner
            elapsed = time.perf_counter() - started
            eta = math.nan
            if math.isfinite(p.eta_s):
                spent = elapsed - sum(span_seconds)
                # The spans left take what this one takes per sample.
                later = sum(sizes[index + 1:]) / sizes[index] * (spent + p.eta_s)
                eta = p.eta_s + later
            progress(RetrievalProgress(p.iteration, p.iterations, p.loss, p.spectral_convergence_db, elapsed, eta,
                                       p.stage, before + share * part))

        return report

    span_seconds: list[float] = []
    guard = interruptible(check) if cancel is not None and not keep_partial else contextlib.nullcontext()
    with guard:
        for index, (lo, hi) in enumerate(ranges):
            span_started = time.perf_counter()
            report = reporter(index)
            report(RetrievalProgress(0, settings.iterations, math.nan, math.nan, 0.0, math.nan, "analysing", 0.0))
            # The window is aligned to the largest hop so its coefficient grid is a slice of
            # the whole signal's grid.
            w_lo = max((lo - reach) // frame.max_hop * frame.max_hop, 0)
            w_hi = min(hi + reach, n)
            analysed = time.perf_counter()
            local = frame.analyze(source[..., w_lo:w_hi])
            local.offset = w_lo
            analysis_s = time.perf_counter() - analysed
            report(RetrievalProgress(0, settings.iterations, math.nan, math.nan, 0.0, math.nan, "analysing", 0.5))
            scaling = only_scaling is not None and only_scaling(lo / sr, hi / sr)
            # New content runs every iteration, whatever the rule and the budget say: the
            # iterations keep improving it, and the warm start is far from it.
            span_settings = settings if scaling else replace(settings, stop_gain_db=0.0, budget_s=0.0)
            span_deadline = deadline if scaling else None
            over_budget = span_deadline is not None and time.perf_counter() + SETUP_ANALYSES * analysis_s > deadline
            if over_budget and settings.iterations:
                # The iterations' set-up alone would run past the budget: the warm start it is.
                span_settings = replace(span_settings, iterations=0)
            if scaling and local_start is not None and span_settings.iterations == 0:
                start = local_start(local)
                del local
                result, reference = _scaled_warm_start(frame, start, report)
            else:
                target = local_target(local)
                start_from = local if local_reference is None else local_reference(local)
                del local
                result = retrieve(frame, target, span_settings, reference=start_from, progress=report,
                                  cancel=cancel, deadline=span_deadline, new_content_db=math.inf if scaling else None)
                del start_from
                reference = float(sum((g**2).sum() for g in target.groups))
                del target
            if result.cancelled:
                check()
            done = max(done, result.iterations)
            reasons.add("budget" if over_budget and settings.iterations else result.stopped)
            history.extend(result.history)
            errors += 10 ** (result.spectral_convergence_db / 10) * reference
            references += reference
            _splice_span(out, source, result.signal, lo, hi, w_lo, reach)
            span_seconds.append(time.perf_counter() - span_started)
            if result.cancelled:
                cancelled = True
                break
            if on_span is not None:
                on_span(lo, hi, out)
    total_db = convergence_db(errors, references) if references else -math.inf
    return RetrievalResult(
        signal=out,
        spectral_convergence_db=total_db,
        iterations=done,
        seconds=time.perf_counter() - started,
        cancelled=cancelled,
        history=history,
        # What ended the render, the most telling first.
        stopped=next((r for r in ("cancelled", "budget", "converged") if r in reasons), "iterations"),
    )


def _splice_span(out: torch.Tensor, source: torch.Tensor, rendered: torch.Tensor, lo: int, hi: int, w_lo: int,
                 reach: int) -> None:
    """Write a re-rendered span ``lo:hi`` (``rendered`` starts at sample ``w_lo``) into
    ``out``: the render itself over ``[lo + fade, hi - fade]``, cross-faded with
    ``source`` over the outer margins."""
    n = out.shape[-1]
    fade = max((hi - lo) // 2 - 1, 0) if hi - lo < reach else reach // 2
    inner_lo = lo + fade if lo > 0 else lo
    inner_hi = hi - fade if hi < n else hi
    out[..., inner_lo:inner_hi] = rendered[..., inner_lo - w_lo : inner_hi - w_lo]
    if inner_lo > lo:
        ramp = _fade(inner_lo - lo, out.dtype, out.device)
        seg = slice(lo, inner_lo)
        out[..., seg] = source[..., seg] * (1 - ramp) + rendered[..., lo - w_lo : inner_lo - w_lo] * ramp
    if hi > inner_hi:
        ramp = _fade(hi - inner_hi, out.dtype, out.device).flip(0)
        seg = slice(inner_hi, hi)
        out[..., seg] = source[..., seg] * (1 - ramp) + rendered[..., inner_hi - w_lo : hi - w_lo] * ramp
