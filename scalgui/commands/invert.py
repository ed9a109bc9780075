"""``scalgui invert``: throw a sound's phase away and get the sound back from magnitudes.

The command loads a file, analyses it with the wavelet frame, keeps only the moduli of
the coefficients (the scalogram), and retrieves a signal from them alone with
:func:`scalgui.dsp.phase.retrieve`. It writes that signal with the input's sample rate
and channel count, and optionally a JSON report of how close it came. It is the
headless form of what the editor does after every magnitude edit, and the easiest way to
hear and measure the phase-retrieval engine.

``--init original`` starts from the input's true phase: a warm start for testing (the
editor's situation after a small edit), not retrieval from magnitudes alone.

Ctrl-C during retrieval cancels it through a :class:`~scalgui.dsp.phase.CancelToken`:
the current iteration finishes, the best result so far is written (the report says
``"cancelled": true``) and the exit code is 130, as for any interrupted command. A second
Ctrl-C aborts without writing.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from pathlib import Path

from scalgui.cli import (
    BIT_DEPTHS,
    EXAMPLE_KEYWORD,
    PROG,
    CommandError,
    _check_output,
    _finite_float,
    _memory_limit_mb,
    _one_line,
    _positive_int,
    _resolve_input,
    _write_text_atomic,
    print_error,
)

__all__ = ["HELP", "REPORT_KEYS", "add_arguments", "invert_file", "run"]

HELP = "resynthesise a sound file from its scalogram magnitudes alone (phase retrieval)"

# The names scalgui.dsp.phase accepts, repeated here so that building the command line
# does not import torch (tests/test_cli_invert.py checks that the two agree).
METHODS = ("fgla", "admm", "adam", "lbfgs", "sgd", "hybrid")
INITS = ("random", "original", "centre", "gradient", "pghi")
LOSSES = ("l2", "power", "log", "l2-l1")
RETRIEVAL_VOICES = 48  # scalgui.dsp.frame.RETRIEVAL_VOICES
#: Speech from PGHI alone reached -25.5 dB MR-STFT, after 20 iterations -27.0, after 100
#: -29.0 (README): 20 buys most of what iterating can add, at a fifth of the time.
DEFAULT_ITERATIONS = 20

#: A result that peaks above 0 dBFS is scaled so that its peak sits here.
NORMALISE_PEAK_DBFS = -0.1

#: Keys of the JSON report (``--report``), in the order they are written.
REPORT_KEYS = (
    "input", "output", "sample_rate", "channels", "frames", "duration_s", "format", "bit_depth",
    "method", "init", "loss", "momentum", "learning_rate", "seed", "iterations_requested", "iterations",
    "cancelled", "spectral_convergence_db", "multiresolution_stft_db", "seconds", "analysis_seconds",
    "device", "voices_per_octave", "bandwidth_voices", "fmin_hz", "fmax_hz", "oversampling", "pad_limit",
    "coefficients_per_sample", "windows", "memory_limit_mb",
    "peak_dbfs", "normalised", "normalised_gain_db", "warm_start_from_true_phase", "history_db",
)

DESCRIPTION = (
    "Load IN, analyse it with the wavelet frame, discard the phase, and resynthesise a signal from the "
    "magnitudes alone by phase retrieval; write it to OUT with IN's sample rate and channels. "
    "A result that peaks above 0 dBFS (retrieval can overshoot by a fraction of a dB) is scaled to "
    f"{NORMALISE_PEAK_DBFS:g} dBFS, and the report says so. Ctrl-C during retrieval stops it and writes the "
    "best result so far."
)
EPILOG = (
    "spectral_convergence_db is 20 log10(|| |W y| - |W x| || / || |W x| ||) over all channels, W the frame; "
    "multiresolution_stft_db is the same measure on STFT magnitudes (FFT sizes 256, 1024, 4096, hop 1/4, "
    "mean of the dB values) against the input, before any normalisation. "
    "'--init original' reuses the input's true phase: a warm start for testing, not retrieval from "
    "magnitudes alone."
)


# --------------------------------------------------------------------------- arguments


def _iterations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``invert`` sub-command's options."""
    p.add_argument("input", metavar="IN",
                   help=f"audio file (WAV, AIFF, FLAC, MP3, Ogg), or '{EXAMPLE_KEYWORD}' for the bundled example sound")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="where to write the result (.wav .flac .aif .aiff .ogg .mp3); must not be IN")
    p.add_argument("--iters", type=_iterations, default=DEFAULT_ITERATIONS, metavar="N",
                   help=f"iterations of phase retrieval (default {DEFAULT_ITERATIONS}: the PGHI start is most of the "
                        "result; 0 writes the initial phase's signal)")
    p.add_argument("--method", choices=METHODS, default="admm", metavar="|".join(METHODS),
                   help="admm: ADMM between the consistent and the magnitude sets (default); fgla: fast "
                        "Griffin-Lim on the frame (the same two projections with momentum); adam, lbfgs, sgd: "
                        "gradient descent with autograd; hybrid: fgla, then lbfgs")
    p.add_argument("--init", choices=INITS, default="pghi", metavar="|".join(INITS),
                   help="initial phase: pghi (phase-gradient integration across time and frequency from the "
                        "magnitudes, default), gradient (each band integrated in time on its own), "
                        "centre (every band at its centre frequency), random (seeded), or original (the input's "
                        "true phase: a warm start for testing, not retrieval from magnitudes alone)")
    p.add_argument("--loss", choices=LOSSES, default="l2", metavar="|".join(LOSSES),
                   help="objective of the gradient methods (default l2)")
    p.add_argument("--momentum", type=_finite_float, default=None, metavar="M",
                   help="fgla momentum (0 = plain Griffin-Lim) or SGD momentum (default 0.99)")
    p.add_argument("--lr", type=_finite_float, default=None, metavar="X",
                   help="learning rate of the gradient methods (default: a measured one per method)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to compute: auto picks CUDA when available (default auto)")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="seed of the random initial phase (default 0)")
    p.add_argument("--voices", type=_positive_int, default=RETRIEVAL_VOICES, metavar="Q",
                   help=f"wavelet bands per octave (default {RETRIEVAL_VOICES}: dense narrow atoms retrieve best)")
    p.add_argument("--fmin", type=_finite_float, default=20.0, metavar="HZ", help="lowest band centre (default 20 Hz)")
    p.add_argument("--fmax", type=_finite_float, default=None, metavar="HZ",
                   help="highest band centre (default 20 kHz, or the highest that fits below Nyquist)")
    p.add_argument("--bandwidth-voices", type=_positive_int, default=None, metavar="B",
                   help="atoms as wide as in a frame of B voices per octave (default: half the voices, at "
                        "least 4: overlapping atoms make retrieval far better posed)")
    p.add_argument("--oversampling", type=_finite_float, default=1.0, metavar="X",
                   help="coefficient rate over bandwidth, >= 1 (default 1; more helps retrieval, costs time)")
    p.add_argument("--bit-depth", type=int, choices=BIT_DEPTHS, default=None, metavar="16|24|32",
                   help="bits per sample of OUT for WAV/FLAC/AIFF (default: IN's if OUT's format has it, else 24; "
                        "32 = float, WAV only)")
    p.add_argument("--memory-limit", type=_memory_limit_mb, default=None, metavar="MB",
                   help="working memory the retrieval may take, in MB (default: half of what the device has "
                        "free); a longer sound is retrieved in overlapping windows that fit")
    p.add_argument("--report", metavar="R.json", help="write a JSON report here")


# --------------------------------------------------------------------------- helpers


def _output_format(out: Path, bit_depth: int | None):
    """The output's format, checked before any work; raises CommandError."""
    from scalgui.audio import SUPPORTED_WRITE_FORMATS
    from scalgui.audio.formats import describe_supported

    spec = SUPPORTED_WRITE_FORMATS.get(out.suffix.lower())
    if spec is None:
        raise CommandError(f"cannot write '{out}': unsupported extension {out.suffix or '(none)'!r}; "
                           f"supported: {describe_supported()}")
    if bit_depth is not None:
        if spec.lossy:
            raise CommandError(f"cannot write '{out}': {spec.name} has no bit depth; leave out --bit-depth")
        if bit_depth not in spec.bit_depths:
            raise CommandError(f"cannot write '{out}': {spec.name} cannot be written at {bit_depth} bits; "
                               f"it takes {', '.join(map(str, spec.bit_depths))}")
    return spec


def _default_bit_depth(spec, source_bit_depth: int | None) -> int | None:
    if spec.lossy:
        return None
    if source_bit_depth in spec.bit_depths:
        return int(source_bit_depth)
    return 24 if 24 in spec.bit_depths else spec.default_bit_depth


def _finite(value):
    """``value`` for JSON: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _ProgressReport:
    """Retrieval progress on stderr: a tqdm bar on a terminal, else a line every ~10 %."""

    def __init__(self, iterations: int, tty: bool | None = None) -> None:
        self.iterations = iterations
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = 1 if self.tty else max(1, math.ceil(iterations / 10))
        self._stage = None
        self._bar = None
        if self.tty and iterations > 0:
            from tqdm import tqdm

            self._bar = tqdm(total=iterations, desc="invert", unit="it", file=sys.stderr, leave=False,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]")

    def __call__(self, p) -> None:
        if p.stage != "iterating":  # the set-up of the retrieval (or of a window of it)
            if self._bar is not None:
                self._bar.set_description_str(f"invert ({p.stage})")
            elif p.stage != self._stage:
                print(f"invert: {p.stage}…", file=sys.stderr, flush=True)
            self._stage = p.stage
            return
        self._stage = p.stage
        if self._bar is not None:
            if self._bar.desc != "invert":
                self._bar.set_description_str("invert")
            if self._bar.total != p.iterations:  # a long sound retrieved in windows
                self._bar.total = p.iterations
            self._bar.n = p.iteration
            self._bar.set_postfix_str(f"SC {p.spectral_convergence_db:.1f} dB", refresh=False)
            self._bar.refresh()
        else:
            print(f"invert: iteration {p.iteration}/{p.iterations}, SC {p.spectral_convergence_db:.1f} dB, "
                  f"{p.elapsed_s:.1f} s, ETA {p.eta_s:.1f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _retrieve_interruptibly(work):
    """Run ``work(cancel_token)`` on a worker thread; Ctrl-C cancels it through the token.

    The main thread only waits, so a KeyboardInterrupt lands there: the token is set, the
    worker finishes its current iteration and returns its best result, which is returned
    here. A second Ctrl-C while waiting for that re-raises KeyboardInterrupt.
    """
    from scalgui.dsp.phase import CancelToken

    cancel = CancelToken()
    box: dict = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name="scalgui-invert", daemon=True)
    thread.start()
    # Poll with sleep: an interrupted Thread.join can leave the thread looking finished
    # while it still runs (CPython 3.11), an interrupted sleep cannot.
    while not done.is_set():
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            if cancel.cancelled:
                raise
            cancel.cancel()
            print(f"{PROG}: cancelling after the current iteration; the best result so far will be written "
                  "(Ctrl-C again to abort)", file=sys.stderr, flush=True)
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


# --------------------------------------------------------------------------- the work


def invert_file(args: argparse.Namespace) -> dict:
    """Do what ``scalgui invert`` does and return the report (see :data:`REPORT_KEYS`).

    Raises
    ------
    CommandError
        Anything the user can fix: unreadable input, output = input, bad settings, no CUDA.
    """
    import numpy as np
    import torch

    from scalgui.audio import AudioError, audio_info, load_audio, save_audio
    from scalgui.audio.save import same_file
    from scalgui.dsp.frame import RETRIEVAL_PAD_LIMIT, FrameSettings, WaveletFrame, resolve_device
    from scalgui.dsp.memory import AnalysisMemoryError, check_analysis_memory
    from scalgui.dsp.phase import RetrievalSettings, retrieve

    # Everything that can be checked is checked before any audio is decoded.
    out = _check_output(args.output)
    report_path = _check_output(args.report)
    path = _resolve_input(args.input)
    if same_file(out, path):
        raise CommandError(f"cannot write '{out}': it is the input file; choose another output name")
    if report_path is not None and (same_file(report_path, path) or same_file(report_path, out)):
        raise CommandError(f"cannot write the report to '{report_path}': it is the input or the output file")
    spec = _output_format(out, args.bit_depth)
    options = {"method": args.method, "iterations": args.iters, "init": args.init, "loss": args.loss,
               "learning_rate": args.lr, "seed": args.seed}
    if args.momentum is not None:
        options["momentum"] = args.momentum
    try:
        retrieval = RetrievalSettings(**options)
    except ValueError as exc:
        raise CommandError(_one_line(exc)) from None
    device = resolve_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: no CUDA device is available")

    try:
        info = audio_info(path)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    sample_rate, channels = info["sample_rate"], info["channels"]
    if spec.sample_rates is not None and round(sample_rate) not in spec.sample_rates:
        raise CommandError(f"cannot write '{out}': {spec.name} cannot store {sample_rate:g} Hz (IN's rate); "
                           "choose another format")
    if channels > spec.max_channels:
        raise CommandError(f"cannot write '{out}': {spec.name} holds at most {spec.max_channels} channels, "
                           f"IN has {channels}")
    try:
        settings = FrameSettings(sample_rate, voices_per_octave=args.voices, fmin=args.fmin, fmax=args.fmax,
                                 oversampling=args.oversampling, bandwidth_voices=args.bandwidth_voices)
        if args.bandwidth_voices is None:
            settings = settings.for_retrieval()
        frame = WaveletFrame(settings, device=device, pad_limit=RETRIEVAL_PAD_LIMIT)
        # The whole sound is analysed at once (only the retrieval goes in windows), so its
        # analysis must fit in what the device has, whatever --memory-limit says.
        check_analysis_memory(frame, info["frames"], channels)
    except AnalysisMemoryError as exc:
        raise CommandError(f"{path}: {_one_line(exc)} (--voices, --oversampling, --fmin)") from None
    except ValueError as exc:
        raise CommandError(f"{path}: {_one_line(exc)}") from None
    try:
        audio = load_audio(path)
    except AudioError as exc:
        raise CommandError(str(exc)) from None

    sync = torch.cuda.synchronize if frame.device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    coeffs = frame.analyze(torch.as_tensor(audio.samples).to(frame.device))
    target = coeffs.map(torch.abs)
    reference = coeffs if retrieval.init == "original" else None
    del coeffs
    sync()
    analysis_s = time.perf_counter() - started

    print(f"invert: {path.name}: {audio.channels} channel(s), {audio.duration:.2f} s at {audio.sample_rate:g} Hz; "
          f"{retrieval.method}, {retrieval.iterations} iterations from the {retrieval.init} phase on {frame.device}",
          file=sys.stderr, flush=True)
    progress = _ProgressReport(retrieval.iterations)
    memory_limit = None if args.memory_limit is None else int(args.memory_limit * 2**20)
    try:
        result = _retrieve_interruptibly(
            lambda cancel: retrieve(frame, target, retrieval, reference=reference, progress=progress,
                                    cancel=cancel, progress_every=progress.every, memory_limit=memory_limit))
    except ValueError as exc:  # settings that only retrieval can judge
        raise CommandError(_one_line(exc)) from None
    finally:
        progress.close()
    target = reference = None  # let the coefficients go before the audio is written

    signal = result.signal.detach().to("cpu", torch.float32).reshape(audio.samples.shape).numpy()
    if not np.isfinite(signal).all():
        raise CommandError(f"retrieval diverged (non-finite samples) with --method {retrieval.method}; "
                           "try a smaller --lr or the fgla method")
    peak = float(np.max(np.abs(signal)))
    from scalgui.dsp.metrics import multiresolution_stft_convergence_db

    mr_stft_db = multiresolution_stft_convergence_db(signal, audio.samples)
    written = signal
    gain_db = 0.0
    if peak > 1.0:
        gain = 10.0 ** (NORMALISE_PEAK_DBFS / 20.0) / peak
        written = signal * np.float32(gain)
        gain_db = 20.0 * math.log10(gain)
    bit_depth = args.bit_depth if args.bit_depth is not None else _default_bit_depth(spec, audio.source_bit_depth)
    try:
        save_audio(out, written, audio.sample_rate, bit_depth=bit_depth, clip="error", overwrite=True,
                   source_path=path)
    except AudioError as exc:
        raise CommandError(str(exc)) from None

    report = {
        "input": str(path),
        "output": str(out),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "frames": audio.frames,
        "duration_s": audio.duration,
        "format": spec.name,
        "bit_depth": bit_depth,
        "method": retrieval.method,
        "init": retrieval.init,
        "loss": retrieval.loss,
        "momentum": retrieval.momentum,
        "learning_rate": retrieval.learning_rate,
        "seed": retrieval.seed,
        "iterations_requested": retrieval.iterations,
        "iterations": result.iterations,
        "cancelled": bool(result.cancelled),
        "spectral_convergence_db": _finite(float(result.spectral_convergence_db)),
        "multiresolution_stft_db": _finite(mr_stft_db),
        "seconds": result.seconds,
        "analysis_seconds": analysis_s,
        "device": str(frame.device),
        "voices_per_octave": int(settings.voices_per_octave),
        "bandwidth_voices": int(settings.bandwidth_voices or settings.voices_per_octave),
        "fmin_hz": float(settings.fmin),
        "fmax_hz": frame.fmax,
        "oversampling": float(settings.oversampling),
        "pad_limit": frame.pad_limit,
        "coefficients_per_sample": frame.coefficients_per_sample,
        "windows": result.windows,
        "memory_limit_mb": args.memory_limit,
        "peak_dbfs": 20.0 * math.log10(peak) if peak > 0 else None,
        "normalised": peak > 1.0,
        "normalised_gain_db": gain_db,
        "warm_start_from_true_phase": retrieval.init == "original",
        "history_db": [_finite(float(v)) for v in result.history],
    }
    assert tuple(report) == REPORT_KEYS
    return report


def run(args: argparse.Namespace) -> int:
    """``scalgui invert``: returns the exit code (2 with one line on stderr for user errors)."""
    try:
        report = invert_file(args)
        if args.report:
            import json

            try:
                _write_text_atomic(Path(args.report), json.dumps(report, indent=2, allow_nan=False) + "\n")
            except OSError as exc:
                raise CommandError(f"cannot write '{args.report}': {exc.strerror or _one_line(exc)}") from None
    except CommandError as exc:
        # Reported here rather than by scalgui.cli.main: under `python -m scalgui.cli` that
        # module runs as __main__ and its CommandError is another class than this one.
        print_error(exc)
        return 2
    def db(value) -> str:
        return "-inf" if value is None else f"{value:.1f}"

    line = (f"wrote {report['output']}: spectral convergence {db(report['spectral_convergence_db'])} dB after "
            f"{report['iterations']} iterations ({report['seconds']:.2f} s on {report['device']}), "
            f"multi-resolution STFT {db(report['multiresolution_stft_db'])} dB against the input")
    if report["windows"] > 1:
        line += f"; retrieved in {report['windows']} overlapping windows to fit in memory"
    if report["cancelled"]:
        line += f"; cancelled after {report['iterations']} of {report['iterations_requested']} iterations"
    if report["normalised"]:
        line += (f"; the result peaked at {report['peak_dbfs']:+.2f} dBFS and was scaled by "
                 f"{report['normalised_gain_db']:.2f} dB to {NORMALISE_PEAK_DBFS:g} dBFS")
    if report["warm_start_from_true_phase"]:
        line += "; started from the input's true phase (--init original), not from magnitudes alone"
    print(line)
    if args.report:
        print(f"wrote {args.report}")
    # Written, but cut short by Ctrl-C: 130 like any interrupted command, so that a script
    # looping over files stops too.
    return 130 if report["cancelled"] else 0
