"""``scalgui render``: render a project without the editor, or apply it to a folder.

``scalgui render PROJECT -o OUT`` opens a ``.scalproj`` project (its source, analysis
settings, edit list, effect chains and render settings; see :mod:`scalgui.app.project`),
renders every edit by phase retrieval from the source's phase and writes OUT through the
render chain, atomically, never over the source sound.

``scalgui render PROJECT --batch DIR -o OUTDIR`` applies the same edit list and chains to
every audio file in DIR (not its sub-folders). Edits are in seconds and Hz, so they land
at the same times and frequencies in every file; what lies beyond a file's end is
clipped away; a file at another sample rate is analysed with the same settings in Hz. A
file that fails (unreadable, an effect that cannot run, a plugin edit that cannot be
applied, a result that cannot be written) is reported and the batch goes on; the summary
at the end lists the failures, and the exit code is 1 when there were any. Two inputs
whose outputs would have one name (``x.wav`` and ``x.flac`` with ``--format wav``; ``y.wav``
and ``y.wave``; ``X.wav`` and ``x.wav``, one file on a case-insensitive disk) are refused
before anything is written.

A plugin edit is never skipped silently: one whose plugin is missing, whose parameters
are out of range, or that fails while rendering fails the render (exit code 2), or the
file in a batch, instead of writing a sound without it.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

from scalgui.cli import (
    BIT_DEPTHS,
    CLIP_POLICIES,
    PROG,
    CommandError,
    _check_output,
    _one_line,
    _positive_int,
    print_error,
    printable,
)
from scalgui.commands import RenderProgress
from scalgui.commands.trust import add_allow_plugin_argument, allow_plugins, refuse_untrusted

__all__ = ["HELP", "READ_EXTENSIONS", "add_arguments", "batch_files", "render_batch", "render_project",
           "run"]

HELP = "render a project (.scalproj) to an audio file, or apply it to every audio file in a folder"
READ_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".mp3", ".aif", ".aiff")

DESCRIPTION = (
    "Render PROJECT (saved by the editor with File > Save Project, or by Document.save_project) to OUT: "
    "its edits by phase retrieval, then its render effect chain. With --batch DIR, apply the project's "
    "edit list and effect chains to every audio file in DIR instead of its own source, writing one file "
    "per input into OUTDIR; failures are listed at the end and do not stop the batch (exit code 1)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``render`` sub-command's options."""
    p.add_argument("project", metavar="PROJECT", help="a scalgui project (.scalproj)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="the audio file to write (.wav .flac .aif .aiff .ogg .mp3); with --batch, the output folder "
                        "(created if missing)")
    p.add_argument("--batch", metavar="DIR", help="apply the project to every audio file in DIR")
    p.add_argument("--format", metavar="EXT", default=None,
                   help="with --batch: extension of the outputs, e.g. wav or flac (default: each input's own)")
    p.add_argument("--source", metavar="FILE", help="the project's source sound, when it has moved")
    p.add_argument("--no-verify", action="store_true",
                   help="accept a --source whose checksum differs from the one the project recorded")
    p.add_argument("--iters", type=_positive_int, default=None, metavar="N",
                   help="iterations of phase retrieval (default: the project's render settings)")
    p.add_argument("--bit-depth", type=int, choices=BIT_DEPTHS, default=None, metavar="16|24|32",
                   help="bits per sample for WAV/FLAC/AIFF (default: the project's, else the format's)")
    p.add_argument("--clip", choices=CLIP_POLICIES, default=None, metavar="|".join(CLIP_POLICIES),
                   help="when the result peaks above 0 dBFS: error, normalize (peak to -0.1 dBFS), limit or allow "
                        "(default: the project's setting; a project that says error is scaled to -0.1 dBFS, "
                        "and the summary says so)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to compute")
    add_allow_plugin_argument(p)


def _configure(doc, project, args) -> dict:
    """Put the project's render settings (with the command line's overrides) on ``doc``;
    returns the keywords for :meth:`Document.export`."""
    import dataclasses

    if args.iters is not None:
        doc.retrieval_settings = dataclasses.replace(project.retrieval, iterations=args.iters)
    export = dict(project.export)
    if args.bit_depth is not None:
        export["bit_depth"] = args.bit_depth
    if args.clip is not None:
        export["clip"] = args.clip
    return {"bit_depth": export.get("bit_depth"), "quality": export.get("quality"),
            "clip": export.get("clip") or "error", "forced": args.clip is not None}


def _export(doc, out: Path, options: dict):
    """Write ``doc``'s render, dropping a bit depth the output's format does not have."""
    from scalgui.audio import SUPPORTED_WRITE_FORMATS, ClippingError

    spec = SUPPORTED_WRITE_FORMATS.get(out.suffix.lower())
    if spec is None:
        raise CommandError(f"cannot write '{out}': unsupported extension {out.suffix or '(none)'!r}")
    options = dict(options)
    # A project's settings may name another format's options (24-bit for a batch writing
    # MP3): the output's format decides, its defaults fill in.
    if spec.lossy or options.get("bit_depth") not in spec.bit_depths:
        options["bit_depth"] = None
    if not spec.lossy and spec.name != "flac":
        options["quality"] = None
    forced = options.pop("forced", False)
    try:
        return doc.export(out, **options)
    except ClippingError:
        if forced or options["clip"] != "error":
            raise
        # Phase retrieval can overshoot full scale by a fraction of a dB: scale the peak
        # to -0.1 dBFS (the summary says by how much) rather than fail a finished render.
        return doc.export(out, **{**options, "clip": "normalize"})


def _check_plugin_edits(edits, prefix: str = "") -> None:
    """Refuse, before any work, plugin edits a render would skip: a plugin that is not
    installed, parameters it does not accept. ``prefix`` starts the error's message."""
    from scalgui.plugins import PluginEdit, PluginError

    if not any(isinstance(edit, PluginEdit) for edit in edits):
        return
    from scalgui.plugins.discovery import default_registry

    registry = default_registry()
    for number, edit in enumerate(edits, start=1):
        if isinstance(edit, PluginEdit):
            try:
                registry.get(edit.plugin).resolve(edit.values)
            except PluginError as exc:
                raise CommandError(f"{prefix}edit {number} (plugin {edit.plugin!r:.80}) cannot be applied: "
                                   f"{_one_line(exc)}") from None


@contextlib.contextmanager
def _no_skipped_plugin_edits(prefix: str = ""):
    """Raise CommandError at the end of the block when a plugin edit was skipped in it (the
    document renders on, warning, as the editor must; a command must not write that).
    ``prefix`` starts the error's message."""
    from scalgui.plugins import PluginWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        yield
    skipped = []
    for record in caught:
        if issubclass(record.category, PluginWarning) and str(record.message).startswith("skipped a plugin edit"):
            skipped.append(str(record.message))
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise CommandError(f"{prefix}{_one_line(skipped[0])}{more}; nothing was written")


def render_project(args: argparse.Namespace) -> dict:
    """Do what ``scalgui render PROJECT -o OUT`` does; returns a summary.

    Raises
    ------
    CommandError
        A bad, damaged or newer project; a source that moved (pass ``--source``) or
        changed; an output that is the source or cannot be written.
    """
    from scalgui.app.project import (
        ProjectError,
        SourceMismatchError,
        SourceMissingError,
        open_project,
        read_project,
    )
    from scalgui.audio import AudioError
    from scalgui.audio.save import check_destination, same_file

    out = _check_output(args.output)
    project_path = Path(args.project)
    if same_file(out, project_path):
        raise CommandError(f"cannot write '{out}': it is the project file")
    try:
        project = read_project(project_path)
        allow_plugins(args)
        refuse_untrusted(project.chains, f"project '{project_path}'")
        doc = open_project(project_path, source=args.source, verify=not args.no_verify, load_render=False,
                           device=args.device)
    except SourceMissingError as exc:
        raise CommandError(f"{exc}: pass --source FILE") from None
    except SourceMismatchError as exc:
        raise CommandError(f"{exc} (pass --no-verify to use it anyway)") from None
    except ProjectError as exc:
        raise CommandError(str(exc)) from None
    failed = f"cannot render '{project_path}': "
    try:  # a destination the export would refuse is refused before the render, not after it
        check_destination(out, source_path=doc.path)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    _check_plugin_edits(project.edits, failed)
    options = _configure(doc, project, args)
    started = time.perf_counter()
    try:
        with _no_skipped_plugin_edits(failed):
            # Progress for a person at a terminal; a script's stderr keeps only what went wrong.
            progress = RenderProgress(PROG, doc.retrieval_settings.iterations) if sys.stderr.isatty() else None
            result = doc.render(progress=progress)
        report = _export(doc, out, options)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    return {"output": str(out), "edits": len(doc.edits), "seconds": time.perf_counter() - started,
            "spectral_convergence_db": result.spectral_convergence_db, "report": report}


def batch_files(folder: Path) -> list[Path]:
    """The audio files of ``folder`` (by extension, not hidden, not in sub-folders), sorted."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READ_EXTENSIONS)


def _render_one(project, path: Path, out: Path, args) -> None:
    """Apply ``project`` to the sound in ``path`` and write ``out``; raises on failure."""
    from scalgui.app.document import Document
    from scalgui.app.project import settings_for_rate
    from scalgui.audio import load_audio
    from scalgui.audio.effects import PLACEMENTS

    _check_plugin_edits(project.edits)
    audio = load_audio(path)
    settings = settings_for_rate(project.settings, audio.sample_rate)
    doc = Document(audio.samples, audio.sample_rate, path=path, settings=settings, device=args.device)
    for placement in PLACEMENTS:
        chain = project.chain(placement)
        if chain.effects:
            doc.set_effect_chain(chain)
    doc.retrieval_settings = project.retrieval
    options = _configure(doc, project, args)
    # Edits beyond the file's end touch nothing there: their spans are clipped to the sound.
    with _no_skipped_plugin_edits():
        doc.restore(project.edits)
        doc.render()
    _export(doc, out, options)


def _output_suffix(path: Path, fmt: str | None) -> str:
    """The extension of ``path``'s output: ``fmt``, else its own when scalgui writes it,
    else ``.wav`` (``.wave`` inputs, and formats read but not written)."""
    from scalgui.audio import SUPPORTED_WRITE_FORMATS

    own = path.suffix.lower()
    return fmt or (own if own in SUPPORTED_WRITE_FORMATS else ".wav")


def _planned_outputs(files: list[Path], outdir: Path, fmt: str | None, project_path: Path) -> list[Path]:
    """Each input's output, refused when two inputs would write one file, or an output is
    one of the inputs or the project (through a link)."""
    outputs, by_name = [], {}
    for path in files:
        out = outdir / (path.stem + _output_suffix(path, fmt))
        # Compared without letter case: on a case-insensitive disk (macOS, Windows, or a
        # folder copied there later) X.wav and x.wav are one file.
        first = by_name.setdefault(out.name.casefold(), path)
        if first is not path:
            raise CommandError(f"'{first.name}' and '{path.name}' in '{path.parent}' would both be written to "
                               f"'{out}'; rename one of them (nothing was written)")
        outputs.append(out)
    inputs = {}
    for path in [*files, project_path]:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            inputs[(st.st_dev, st.st_ino)] = path
    for out in outputs:
        with contextlib.suppress(OSError):
            st = os.stat(out)
            same = inputs.get((st.st_dev, st.st_ino))
            if same is not None:
                raise CommandError(f"cannot write '{out}': it is '{same}' (a link to an input); remove it or choose "
                                   "another output folder")
    return outputs


def render_batch(args: argparse.Namespace) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Do what ``scalgui render PROJECT --batch DIR -o OUTDIR`` does.

    Returns
    -------
    (written, failures)
        The files written, and ``(input, one-line reason)`` for each input that failed.

    Raises
    ------
    CommandError
        A bad project, a missing input folder, an output folder that cannot be made or is
        the input folder (the inputs would be overwritten), two inputs whose outputs would
        have one name, an output that is an input (through a link).
    """
    from tqdm import tqdm

    from scalgui.app.project import ProjectError, read_project
    from scalgui.audio import SUPPORTED_WRITE_FORMATS
    from scalgui.audio.save import same_file

    folder, outdir = Path(args.batch), Path(args.output)
    if not folder.is_dir():
        raise CommandError(f"cannot read folder '{folder}': {'not a folder' if folder.exists() else 'no such folder'}")
    if outdir.exists() and not outdir.is_dir():
        raise CommandError(f"cannot write into '{outdir}': it is a file, not a folder")
    if outdir.exists() and same_file(outdir, folder):
        raise CommandError(f"cannot write into '{outdir}': it is the input folder; choose another output folder")
    fmt = None
    if args.format is not None:
        fmt = "." + args.format.lower().lstrip(".")
        if fmt not in SUPPORTED_WRITE_FORMATS:
            raise CommandError(f"--format {args.format}: cannot write that format (use one of "
                               f"{', '.join(sorted(SUPPORTED_WRITE_FORMATS))})")
    try:
        project = read_project(args.project)
        allow_plugins(args)
        refuse_untrusted(project.chains, f"project '{args.project}'")
    except ProjectError as exc:
        raise CommandError(str(exc)) from None
    files = batch_files(folder)
    if not files:
        raise CommandError(f"no audio files ({' '.join(READ_EXTENSIONS)}) in '{folder}'")
    outputs = _planned_outputs(files, outdir, fmt, Path(args.project))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create folder '{outdir}': {exc.strerror or exc}") from None
    written, failures = [], []
    bar = tqdm(files, desc="render", unit="file", file=sys.stderr, disable=None)
    for path, out in zip(bar, outputs):
        bar.set_postfix_str(path.name, refresh=False)
        try:
            _render_one(project, path, out, args)
        except KeyboardInterrupt:
            raise
        except CommandError as exc:
            failures.append((path, _one_line(exc)))
        except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the batch
            failures.append((path, _one_line(f"{type(exc).__name__}: {exc}" if not str(exc) else exc)))
        else:
            written.append(out)
    bar.close()
    return written, failures


def run(args: argparse.Namespace) -> int:
    """``scalgui render``: 0 on success, 1 when files of a batch failed, 2 on user errors."""
    try:
        if args.batch is None:
            if args.format is not None:
                raise CommandError("--format goes with --batch; a single OUT's extension sets its format")
            summary = render_project(args)
        else:
            written, failures = render_batch(args)
    except CommandError as exc:
        # Reported here, as in scalgui.commands.invert: under `python -m scalgui.cli` the
        # CommandError of scalgui.cli.main is another class than this one.
        print_error(exc)
        return 2
    if args.batch is None:
        report = summary["report"]
        line = (f"wrote {summary['output']}: {summary['edits']} edit(s) rendered in {summary['seconds']:.1f} s, "
                f"peak {report.peak_dbfs:+.2f} dBFS")
        if report.gain_db:
            line += f", scaled by {report.gain_db:.2f} dB"
        print(line)
        return 0
    total = len(written) + len(failures)
    print(f"rendered {len(written)} of {total} file(s) into {args.output}")
    if failures:
        print(f"{len(failures)} failed:")
        for path, reason in failures:
            print(f"  {printable(path.name)}: {printable(reason)}")
        return 1
    return 0
