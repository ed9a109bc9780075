"""The ``scalgui`` command: the editor by default, sub-commands for headless work.

``scalgui [FILE]`` opens the editor. Sub-commands::

    scalgui analyze IN [options]      scalogram picture and JSON summary of a sound file
    scalgui invert IN -o OUT [options] resynthesise a sound file from its magnitudes alone
    scalgui fx IN -o OUT --preset P.json  run a sound file through a preset's effect chains
    scalgui plugins [NAME]            list the plugins found (and the broken ones, with why)
    scalgui apply PLUGIN IN -o OUT     apply a plugin to a sound (or a selection) and render it
    scalgui render PROJECT -o OUT     render a project; --batch DIR applies it to a folder
    scalgui bench analyze [options]   wavelet analysis against ssqueezepy, with ratios

``scalgui --edit-in-place FILE`` opens FILE as an audio workstation's external editor:
Save writes the result back over FILE (same format, rate and bit depth), keeping a backup.

Each sub-command is a pair of functions, ``add_arguments(parser)`` and
``run(args) -> int``, registered in :func:`build_parser`; heavy modules (torch,
pedalboard, matplotlib) are imported inside ``run`` so that ``scalgui --help`` is fast.
Errors a user can fix (a missing file, a bad option value, an unwritable output) end the
command with exit code 2 and ONE line ``scalgui: error: ...`` on stderr, never a
traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

__all__ = ["CommandError", "analyze_file", "build_parser", "main"]

PROG = "scalgui"
EXAMPLE_KEYWORD = "example"
CHANNEL_NAMES = ("mean", "mid", "side", "left", "right")
#: ``--bit-depth`` and ``--clip`` choices of the commands that write audio (the policies
#: are scalgui.audio.save_audio's ``clip``; not imported from there, which would load
#: pedalboard just to build the parser).
BIT_DEPTHS = (16, 24, 32)
CLIP_POLICIES = ("error", "normalize", "limit", "allow")


class CommandError(Exception):
    """A failure the user can fix; ``str()`` is the one-line message after ``scalgui: error:``."""


# --------------------------------------------------------------------------- helpers


def printable(text: object) -> str:
    """``text`` with every character that is not printable written as its escape (a
    newline in a file name as ``\\n``, a byte that is not UTF-8 as ``\\udcff``), so that
    a message stays one line and names the file exactly."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def print_error(message: object) -> None:
    """Print ``scalgui: error: MESSAGE`` on stderr as one line (see :func:`printable`)."""
    print(f"{PROG}: error: {printable(message)}", file=sys.stderr)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _add_command(subparsers, name: str, module) -> argparse.ArgumentParser:
    """Add sub-command ``name`` from a :mod:`scalgui.commands` module: its ``HELP``,
    ``DESCRIPTION``, optional ``EPILOG``, ``add_arguments(parser)`` and ``run(args)``."""
    parser = subparsers.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                                   epilog=getattr(module, "EPILOG", None))
    module.add_arguments(parser)
    one_line_usage_errors(parser)
    parser.set_defaults(run=module.run)
    return parser


def one_line_usage_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make a sub-command's usage errors (a bad choice, a missing argument...) one line on
    stderr and exit code 2, like every other error; returns ``parser``."""
    name = parser.prog.split()[-1]

    def error(message: str) -> None:
        print_error(f"{name}: {_one_line(message)} (see '{parser.prog} --help')")
        parser.exit(2)

    parser.error = error
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _number_text(value: float) -> str:
    """``value`` as written in a range: whole numbers in full (16777216, not 1.67772e+07)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _float_in(low: float, high: float, unit: str = ""):
    """An argparse type: a finite number in ``[low, high]``; the error names the range."""

    def parse(text: str) -> float:
        value = _finite_float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must lie in {_number_text(low)}..{_number_text(high)}{unit}, got {text}")
        return value

    return parse


def _int_in(low: int, high: int):
    """An argparse type: a whole number in ``[low, high]``; the error names the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must lie in {low}..{high}, got {text}")
        return value

    return parse


#: Bounds of ``--memory-limit`` in MB (16 TB at most: more than any machine has; a
#: larger number would overflow the byte count).
MEMORY_LIMIT_MB = (1, 2**24)
#: ``--memory-limit MB``: working memory in MB, parsed into a number in MEMORY_LIMIT_MB.
_memory_limit_mb = _float_in(*MEMORY_LIMIT_MB, " MB")


def _channel_view(text: str) -> int | str:
    if text.lstrip("-").isdigit():
        return int(text)
    if text in CHANNEL_NAMES:
        return text
    raise argparse.ArgumentTypeError(f"expected a channel index or one of {', '.join(CHANNEL_NAMES)}, got {text!r}")


def _check_output(path: str | None) -> Path | None:
    """Fail early (before any work) when ``path`` cannot be written."""
    if path is None:
        return None
    out = Path(path)
    parent = out.resolve().parent
    if out.is_dir():
        raise CommandError(f"cannot write '{out}': it is a folder")
    if not parent.is_dir():
        raise CommandError(f"cannot write '{out}': folder '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise CommandError(f"cannot write '{out}': permission denied in folder '{parent}'")
    from scalgui.atomic import resolve_destination

    try:  # not a device or FIFO (root would replace /dev/null), nor a read-only file
        resolve_destination(out)
    except OSError as exc:
        raise CommandError(f"cannot write '{out}': {exc.strerror or _one_line(exc)}") from None
    return out


def _write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and ``os.replace``."""
    from scalgui.atomic import write_atomic

    write_atomic(path, lambda handle: handle.write(text))


class _Progress:
    """tqdm bars on stderr when stderr is a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._bar = None

    def bar(self, total: int, desc: str, unit: str = "step"):
        self.close()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit != "step", file=sys.stderr,
                             leave=False)
        return self

    def frames(self, done: int, total: int) -> None:
        """A ``load_audio`` progress callback."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()

    def step(self, desc: str) -> None:
        if self._bar is not None:
            self._bar.set_description(desc)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# --------------------------------------------------------------------------- editor


def _run_editor(args: argparse.Namespace) -> int:
    in_place = getattr(args, "edit_in_place", None)
    if in_place is not None:
        if args.file is not None:
            raise CommandError(f"--edit-in-place {in_place}: give the file once, not also {args.file}")
        from scalgui.app.in_place import InPlaceTarget
        from scalgui.audio import AudioError

        try:  # before any window: a file that cannot be written back is refused now
            InPlaceTarget.of(in_place)
        except AudioError as exc:
            raise CommandError(str(exc)) from None
        _check_output(in_place)
    from scalgui.ui import app

    return int(app.main(args.file, edit_in_place=in_place) or 0)


# --------------------------------------------------------------------------- analyze

ANALYZE_HELP = "analyse a sound file: scalogram picture (PNG) and summary (JSON or text)"
#: Most time columns of the analysis picture: the PNG is 1200 pixels wide, so more only
#: costs memory (a column per band, float32).
MAX_PICTURE_COLUMNS = 16384
#: Lowest ``--floor-db``: far below any sound's noise (24-bit PCM's is -144 dBFS), and its
#: level (1e-20) still a normal float32.
MIN_FLOOR_DB = -400.0


def _add_analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN",
                   help=f"audio file (WAV, AIFF, FLAC, MP3, Ogg), or '{EXAMPLE_KEYWORD}' for the bundled example sound")
    p.add_argument("--voices", type=_positive_int, default=12, metavar="Q", help="wavelet bands per octave (default 12)")
    p.add_argument("--fmin", type=_finite_float, default=20.0, metavar="HZ", help="lowest band centre (default 20 Hz)")
    p.add_argument("--fmax", type=_finite_float, default=None, metavar="HZ",
                   help="highest band centre (default 20 kHz, or the highest that fits below Nyquist)")
    p.add_argument("--oversampling", type=_finite_float, default=1.0, metavar="X",
                   help="coefficient rate over bandwidth, >= 1 (default 1)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to compute: auto picks CUDA when available (default auto)")
    p.add_argument("--channel", type=_channel_view, default="mean", metavar="N|mid|side|mean",
                   help="channel shown in the picture: an index, mid, side, mean, left or right (default mean)")
    p.add_argument("--png", metavar="OUT.png", help="write the scalogram picture here")
    p.add_argument("--json", metavar="OUT.json", help="write the summary here")
    p.add_argument("--width", type=_int_in(1, MAX_PICTURE_COLUMNS), default=1200, metavar="PIXELS",
                   help=f"time columns of the picture, 1..{MAX_PICTURE_COLUMNS} (default 1200)")
    p.add_argument("--floor-db", type=_float_in(MIN_FLOOR_DB, 0.0, " dB"), default=-120.0, metavar="DB",
                   help=f"lowest level in the picture's data, dB full scale, {MIN_FLOOR_DB:g}..0 (default -120)")
    p.add_argument("--memory-limit", type=_memory_limit_mb, default=None, metavar="MB",
                   help="working memory the analysis may take, in MB (default: what the device has free); an "
                        "analysis planned to need more is refused before it starts")


def _resolve_input(text: str) -> Path:
    if text == EXAMPLE_KEYWORD and not os.path.exists(text):
        from scalgui.resources import example_path

        try:
            return example_path()
        except FileNotFoundError as exc:
            raise CommandError(_one_line(exc)) from None
    return Path(text)


def analyze_file(
    path: str | os.PathLike,
    *,
    voices: int = 12,
    fmin: float = 20.0,
    fmax: float | None = None,
    oversampling: float = 1.0,
    device: str = "auto",
    progress: _Progress | None = None,
    memory_limit: int | None = None,
    picture_columns: int = 0,
):
    """Load a file, analyse it, resynthesise it, and describe the result.

    Parameters
    ----------
    memory_limit : int or None
        Working memory the analysis may take, in bytes; None: what the device has free.
        The peak is planned from the file's header before anything is decoded
        (:func:`scalgui.dsp.memory.check_analysis_memory`).
    picture_columns : int
        Columns of the picture that will be drawn from the result (planned with it).

    Returns
    -------
    (dict, Coefficients)
        The summary (see ``scalgui analyze --help`` and the README for the keys) and the
        coefficients, with a channel dimension.

    Raises
    ------
    CommandError
        Unreadable audio, frame settings that do not fit the file, an analysis planned to
        need more memory than the budget, no CUDA device.
    """
    import numpy as np
    import torch

    from scalgui.audio import AudioError, audio_info, load_audio
    from scalgui.dsp.frame import FrameSettings, WaveletFrame, resolve_device
    from scalgui.dsp.memory import AnalysisMemoryError, check_analysis_memory

    path = Path(path)
    progress = progress or _Progress()
    try:
        info = audio_info(path)  # cheap: validates the header before decoding anything
        settings = FrameSettings(info["sample_rate"], voices_per_octave=voices, fmin=fmin, fmax=fmax,
                                 oversampling=oversampling)
        torch_device = resolve_device(device)
        if torch_device.type == "cuda" and not torch.cuda.is_available():
            raise CommandError(f"{path}: --device cuda: no CUDA device is available")
        frame = WaveletFrame(settings, device=torch_device)
        check_analysis_memory(frame, info["frames"], info["channels"], memory_limit,
                              picture_columns=picture_columns)
        progress.bar(info["frames"], "decode", unit="frame")
        audio = load_audio(path, progress=progress.frames)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    except AnalysisMemoryError as exc:
        raise CommandError(f"{path}: {_one_line(exc)} (--voices, --oversampling, --fmin; --memory-limit MB "
                           "sets the budget)") from None
    except ValueError as exc:  # FrameSettings / frame design: the settings do not fit this file
        raise CommandError(f"{path}: {_one_line(exc)}") from None
    finally:
        progress.close()

    sync = torch.cuda.synchronize if frame.device.type == "cuda" else (lambda: None)
    progress.bar(2, "analyse")
    x = torch.as_tensor(audio.samples).to(frame.device)
    sync()
    t0 = time.perf_counter()
    coeffs = frame.analyze(x)  # the first call also builds the FFT plans for this length
    sync()
    analysis_s = time.perf_counter() - t0
    progress.step("synthesise")
    t0 = time.perf_counter()
    y = frame.synthesize(coeffs)
    sync()
    synthesis_s = time.perf_counter() - t0
    progress.step("done")
    progress.close()
    norm, diff = _norm_and_error(x, y)
    del y
    peak = float(np.max(np.abs(audio.samples)))
    summary = {
        "file": str(path),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "frames": audio.frames,
        "duration_s": audio.duration,
        "voices_per_octave": int(settings.voices_per_octave),
        "fmin_hz": float(settings.fmin),
        "fmax_hz": frame.fmax,
        "oversampling": float(settings.oversampling),
        "bands": len(frame.bands.wavelet_indices),
        "atoms": len(frame.bands),
        "coefficients_per_sample": frame.coefficients_per_sample,
        "coefficients": int(coeffs.count * audio.channels),
        "analysis_seconds": analysis_s,
        "synthesis_seconds": synthesis_s,
        "reconstruction_error": diff / norm if norm > 0 else diff,
        "peak_dbfs": 20.0 * math.log10(peak) if peak > 0 else None,
        "device": str(frame.device),
    }
    return summary, coeffs


def _norm_and_error(x, y, chunk: int = 2**20) -> tuple[float, float]:
    """``(||x||, ||y - x||)`` summed in float64 a chunk of samples at a time, so that the
    comparison takes no whole-signal float64 copies (24 bytes per sample)."""
    x_squares = error_squares = 0.0
    for start in range(0, x.shape[-1], chunk):
        a = x[..., start:start + chunk].double()
        b = y[..., start:start + chunk].double()
        x_squares += float((a * a).sum())
        error_squares += float(((b - a) ** 2).sum())
    return math.sqrt(x_squares), math.sqrt(error_squares)


def _format_summary(summary: dict) -> str:
    def value(key: str, v) -> str:
        if v is None:
            return "-inf" if key == "peak_dbfs" else "-"
        if key.endswith("_seconds"):
            return f"{v:.3f} s"
        if key == "reconstruction_error":
            return f"{v:.2e}"
        if key.endswith("_hz"):
            return f"{v:.1f} Hz"
        if key == "duration_s":
            return f"{v:.3f} s"
        if key == "peak_dbfs":
            return f"{v:.2f} dBFS"
        if isinstance(v, float):
            return f"{v:g}" if v == int(v) else f"{v:.3f}"
        return str(v)

    width = max(len(k) for k in summary)
    return "\n".join(f"{k.ljust(width)}  {value(k, v)}" for k, v in summary.items())


def _refuse_writing_over_input(path: Path, outputs: dict) -> None:
    """CommandError when an output (``{option: path or None}``) is the input file, in any
    spelling (``./a.wav``, a symbolic or hard link), or two outputs are the same file."""
    from scalgui.audio.save import same_file

    named = [(option, out) for option, out in outputs.items() if out is not None]
    for option, out in named:
        if same_file(out, path):
            raise CommandError(f"cannot write '{out}' ({option}): it is the input file; choose another name")
    for i, (option, out) in enumerate(named):
        for other, second in named[i + 1:]:
            if same_file(out, second):
                raise CommandError(f"cannot write '{out}': {option} and {other} name the same file")


def _run_analyze(args: argparse.Namespace) -> int:
    png = _check_output(args.png)
    json_out = _check_output(args.json)
    path = _resolve_input(args.input)
    _refuse_writing_over_input(path, {"--png": png, "--json": json_out})
    if isinstance(args.channel, int):
        from scalgui.audio import AudioError, audio_info

        try:
            channels = audio_info(path)["channels"]
        except AudioError as exc:
            raise CommandError(str(exc)) from None
        if not -channels <= args.channel < channels:
            raise CommandError(f"{path}: --channel {args.channel}: the file has {channels} channel(s)")
    memory_limit = None if args.memory_limit is None else int(args.memory_limit * 2**20)
    summary, coeffs = analyze_file(path, voices=args.voices, fmin=args.fmin, fmax=args.fmax,
                                   oversampling=args.oversampling, device=args.device, memory_limit=memory_limit,
                                   picture_columns=args.width if png is not None else 0)
    if png is not None:
        from scalgui.dsp.raster import scalogram_raster
        from scalgui.plotting import save_scalogram_png

        raster = scalogram_raster(coeffs, width=args.width, channel=args.channel, floor_db=args.floor_db)
        view = args.channel if isinstance(args.channel, str) else f"channel {args.channel}"
        title = f"{path.name} ({view}), {summary['voices_per_octave']} voices/octave"
        try:
            save_scalogram_png(raster, png, title=title)
        except OSError as exc:
            raise CommandError(f"cannot write '{png}': {exc.strerror or _one_line(exc)}") from None
        print(f"wrote {png}")
    if json_out is not None:
        try:
            _write_text_atomic(json_out, json.dumps(summary, indent=2, allow_nan=False) + "\n")
        except OSError as exc:
            raise CommandError(f"cannot write '{json_out}': {exc.strerror or _one_line(exc)}") from None
        print(f"wrote {json_out}")
    if png is None and json_out is None:
        print(_format_summary(summary))
    return 0


# --------------------------------------------------------------------------- parser

_COMMAND_NAMES = ("analyze", "invert", "fx", "plugins", "apply", "render", "bench")


def build_parser() -> argparse.ArgumentParser:
    """The full command line: sub-commands, each with ``run`` set as its default."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [-h] [--version] [FILE | COMMAND ...]",
        description="Edit sound in the wavelet-scalogram domain. With no command (optionally a FILE), "
                    "open the editor; the commands below work without a display.",
    )
    from scalgui import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--edit-in-place", metavar="FILE", default=None,
                        help="open FILE as an audio workstation's external editor: Save (Ctrl+S) writes the result "
                             "back over FILE in its own format, keeping a backup (FILE.orig.EXT)")
    parser.set_defaults(run=_run_editor, file=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", prog=PROG)

    analyze = sub.add_parser("analyze", help=ANALYZE_HELP, description=ANALYZE_HELP + ". "
                             "analysis_seconds times one analyze call after the frame is built; "
                             "it includes building the FFT plans for the file's length.")
    _add_analyze_arguments(analyze)
    one_line_usage_errors(analyze)
    analyze.set_defaults(run=_run_analyze)

    from scalgui.commands import fx as fx_command
    from scalgui.commands import invert as invert_command
    from scalgui.commands import plugins as plugins_command
    from scalgui.commands import render as render_command

    _add_command(sub, "invert", invert_command)
    _add_command(sub, "fx", fx_command)
    plugins_command.add_parser(sub)  # two commands: plugins and apply
    _add_command(sub, "render", render_command)

    from scalgui.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def _editor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Open the scalgui editor.")
    parser.add_argument("file", nargs="?", metavar="FILE", help="audio file to open")
    parser.add_argument("--edit-in-place", metavar="FILE", default=None,
                        help="external-editor mode (for REAPER, Ardour...): open FILE; Save (Ctrl+S) renders and "
                             "writes back to FILE in its own format, sample rate and bit depth, after keeping "
                             "a backup of the original as FILE.orig.EXT")
    parser.set_defaults(run=_run_editor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``scalgui`` command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser() if first is None or first in _COMMAND_NAMES else _editor_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.run(args) or 0)
    except CommandError as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
