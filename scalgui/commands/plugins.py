"""``scalgui plugins`` and ``scalgui apply``: list plugins, run one on a sound file.

``scalgui plugins [NAME] [--json]`` prints what discovery found (see
:mod:`scalgui.plugins.discovery`): every plugin with its parameters, and every plugin
file that could not be loaded with the reason. It exits 0 even when some are broken: a
broken plugin is reported, never fatal.

``scalgui apply PLUGIN IN -o OUT [--param NAME=VALUE ...] [--time A:B] [--freq LO:HI]``
does what the editor's Plugins menu does, headless: it opens IN as a
:class:`~scalgui.app.document.Document`, pushes one plugin edit on the selection the
options describe (``--time`` and ``--freq`` together: a rectangle; one of them: a time
range or a frequency band; neither: the whole sound), renders the touched span by phase
retrieval with the document's render settings, and writes OUT atomically (never IN). A
result that would clip is scaled so its peak sits at -0.1 dBFS, and the command says so.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace

from scalgui.cli import (
    EXAMPLE_KEYWORD,
    PROG,
    CommandError,
    _check_output,
    _one_line,
    _positive_int,
    _resolve_input,
    one_line_usage_errors,
)
from scalgui.commands import RenderProgress

__all__ = ["APPLY_HELP", "LIST_HELP", "add_parser", "apply_file", "list_plugins", "parse_pair", "selection_from"]

LIST_HELP = "list the plugins that were found (and the plugin files that could not be loaded)"
APPLY_HELP = "apply a plugin to a sound file (or a selection of it) and render the result"
NORMALISE_PEAK_DBFS = -0.1


def parse_pair(text: str, what: str) -> tuple[float, float]:
    """``"A:B"`` as two finite floats with ``A < B``; raises CommandError naming ``what``."""
    parts = text.split(":")
    if len(parts) != 2:
        raise CommandError(f"{what} {text!r}: expected A:B, e.g. 1.0:2.5")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise CommandError(f"{what} {text!r}: expected two numbers A:B") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise CommandError(f"{what} {text!r}: needs finite numbers with A < B")
    return lo, hi


def selection_from(time_span: str | None, freq_span: str | None):
    """The selection shape ``--time`` and ``--freq`` describe (``None``: everything)."""
    from scalgui.dsp.edits import Band, Rectangle, TimeRange

    t = parse_pair(time_span, "--time") if time_span is not None else None
    f = parse_pair(freq_span, "--freq") if freq_span is not None else None
    if f is not None and f[0] <= 0:
        raise CommandError(f"--freq {freq_span!r}: frequencies must be above 0 Hz")
    if t is not None and f is not None:
        return Rectangle(t[0], t[1], f[0], f[1])
    if t is not None:
        return TimeRange(t[0], t[1])
    if f is not None:
        return Band(f[0], f[1])
    return None


def _param_values(items: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        values[name.strip()] = value.strip()
    return values


# --------------------------------------------------------------------------- plugins


def _plugin_summary(plugin) -> dict:
    return {
        "name": plugin.name,
        "title": plugin.title,
        "description": plugin.description,
        "version": plugin.version,
        "source": plugin.source,
        "audio_step": plugin.audio is not None,
        "params": [
            {"name": p.name, "kind": p.kind, "default": list(p.default) if isinstance(p.default, tuple) else p.default,
             "unit": p.unit, "minimum": p.minimum, "maximum": p.maximum, "choices": list(p.choices),
             "description": p.description}
            for p in plugin.params
        ],
    }


def list_plugins(registry, name: str | None = None, *, as_json: bool = False) -> str:
    """The text ``scalgui plugins`` prints for ``registry``."""
    from scalgui.plugins import PluginError, search_folders

    plugins = list(registry)
    if name is not None:
        try:
            plugins = [registry.get(name)]
        except PluginError as exc:
            raise CommandError(_one_line(exc)) from None
    problems = [] if name is not None else registry.problems
    if as_json:
        return json.dumps({
            "plugins": [_plugin_summary(p) for p in plugins],
            "problems": [{"source": p.source, "problem": p.problem} for p in problems],
            "folders": [{"kind": kind, "path": str(path), "exists": path.is_dir()} for kind, path in search_folders()],
        }, indent=2)
    lines = []
    for plugin in plugins:
        lines.append(f"{plugin.name}  {plugin.title}: {plugin.description}")
        for p in plugin.params:
            lines.append(f"    --param {p.describe()}")
        lines.append(f"    from {plugin.source or '(registered in code)'}")
    if not plugins:
        lines.append("no plugins found")
    if problems:
        lines.append("")
        lines.append(f"{len(problems)} plugin file(s) could not be loaded and were skipped:")
        lines.extend(f"  {problem}" for problem in problems)
    if name is None:
        lines.append("")
        lines.append("searched: " + ", ".join(
            f"{path} ({kind}{'' if path.is_dir() else ', missing'})" for kind, path in search_folders()
        ) + ", and installed packages' 'scalgui.plugins' entry points")
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    from scalgui.plugins import default_registry

    print(list_plugins(default_registry(), args.name, as_json=args.json))
    return 0


# --------------------------------------------------------------------------- apply


def apply_file(args: argparse.Namespace, registry=None) -> dict:
    """Do what ``scalgui apply`` does; returns a summary (plugin, params, spans, timings).

    Raises
    ------
    CommandError
        Unknown plugin or parameter, bad value, unreadable input, output = input, a plugin
        that fails.
    """
    import numpy as np

    from scalgui.app.document import DEFAULT_RENDER, Document
    from scalgui.audio import AudioError, audio_info
    from scalgui.audio.save import same_file
    from scalgui.commands.invert import _output_format, _retrieve_interruptibly
    from scalgui.dsp.frame import FrameSettings
    from scalgui.plugins import PluginEdit, PluginError, default_registry

    out = _check_output(args.output)
    path = _resolve_input(args.input)
    if same_file(out, path):
        raise CommandError(f"cannot write '{out}': it is the input file; choose another output name")
    _output_format(out, None)
    registry = registry if registry is not None else default_registry()
    try:
        plugin = registry.get(args.plugin)
        edit = PluginEdit.create(plugin, _param_values(args.param), selection_from(args.time, args.freq))
    except PluginError as exc:
        raise CommandError(_one_line(exc)) from None
    except ValueError as exc:  # a shape that cannot be (e.g. --freq 0:100)
        raise CommandError(_one_line(exc)) from None

    started = time.perf_counter()
    try:
        settings = FrameSettings(audio_info(path)["sample_rate"], voices_per_octave=args.voices)
        doc = Document.open(path, settings=settings, device=args.device)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:  # analysis settings that do not fit this file
        raise CommandError(f"{path}: {_one_line(exc)}") from None
    lo, hi = edit.span()
    if hi <= 0 or lo >= doc.duration:
        raise CommandError(f"--time {args.time}: the selection lies outside {path.name} (0 to {doc.duration:.3f} s)")
    print(f"apply: {plugin.name} ({', '.join(f'{k}={plugin.param(k).format(v)}' for k, v in edit.params) or 'no parameters'}) "
          f"on {path.name}, {'the whole sound' if edit.selection is None else 'the selection'}", file=sys.stderr, flush=True)
    try:
        doc.push(edit)
    except PluginError as exc:
        raise CommandError(_one_line(exc)) from None
    applied = time.perf_counter()
    render = DEFAULT_RENDER if args.iters is None else replace(DEFAULT_RENDER, iterations=args.iters)
    progress = RenderProgress("apply", render.iterations)
    result = _retrieve_interruptibly(lambda cancel: doc.render(render, progress=progress, cancel=cancel))
    if result.cancelled:
        raise KeyboardInterrupt
    rendered = time.perf_counter()
    peak = float(np.max(np.abs(doc.rendered))) if doc.rendered is not None else 0.0
    clip = "error"
    if peak > 1.0:
        clip = "normalize"
        print(f"apply: the result peaks at {20 * math.log10(peak):+.2f} dBFS; scaled to {NORMALISE_PEAK_DBFS:g} dBFS",
              file=sys.stderr)
    try:
        doc.export(out, clip=clip, render_first=False)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    return {
        "plugin": plugin.name,
        "params": dict(edit.params),
        "selection": repr(edit.selection) if edit.selection is not None else None,
        "output": str(out),
        "spectral_convergence_db": float(result.spectral_convergence_db),
        "apply_seconds": applied - started,
        "render_seconds": rendered - applied,
    }


def run_apply(args: argparse.Namespace) -> int:
    summary = apply_file(args)
    print(f"wrote {summary['output']} ({summary['plugin']}: applied in {summary['apply_seconds']:.2f} s, rendered in "
          f"{summary['render_seconds']:.2f} s, spectral convergence {summary['spectral_convergence_db']:.1f} dB)")
    return 0


# --------------------------------------------------------------------------- parsers


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plugins`` and ``apply`` to ``scalgui``'s sub-commands."""
    listing = subparsers.add_parser("plugins", help=LIST_HELP, description=LIST_HELP + ".")
    listing.add_argument("name", nargs="?", metavar="NAME", help="show only this plugin")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    one_line_usage_errors(listing)
    listing.set_defaults(run=run_list)

    apply = subparsers.add_parser(
        "apply", help=APPLY_HELP,
        description=APPLY_HELP + ": analyse IN, apply PLUGIN as one edit (to the --time/--freq selection, or "
                    "everything), render by phase retrieval with the editor's render settings, write OUT. "
                    f"'{PROG} plugins' lists the plugins and their parameters.")
    apply.add_argument("plugin", metavar="PLUGIN", help="plugin id (see 'scalgui plugins')")
    apply.add_argument("input", metavar="IN",
                       help=f"audio file (WAV, AIFF, FLAC, MP3, Ogg), or '{EXAMPLE_KEYWORD}' for the bundled example")
    apply.add_argument("-o", "--output", metavar="OUT", required=True, help="where to write the result; must not be IN")
    apply.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="a plugin parameter (repeatable); ranges are LO:HI, switches yes/no")
    apply.add_argument("--time", metavar="A:B", help="select from A to B seconds")
    apply.add_argument("--freq", metavar="LO:HI", help="select from LO to HI Hz")
    apply.add_argument("--iters", type=_positive_int, default=None, metavar="N",
                       help="phase-retrieval iterations of the render (default: the editor's, 32)")
    apply.add_argument("--voices", type=_positive_int, default=12, metavar="Q",
                       help="wavelet bands per octave of the analysis (default 12)")
    apply.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where to compute (default auto: CUDA when available)")
    one_line_usage_errors(apply)
    apply.set_defaults(run=run_apply)

