"""``scalgui fx``: run a sound file through the effect chains of a preset.

The preset is the JSON file the editor's Effects panel saves (format in the README and
:func:`scalgui.audio.effects.save_preset`). Without the editor there is no analysis and
no resynthesis in between, so the chains simply run one after the other: the ``source``
chain first, then the ``render`` chain, which is what the editor plays for a sound with
no edits. The output keeps the input's sample rate and channels (and its length, unless
``--tail`` asks for room for a reverb to ring out), is written atomically, and is never
the input file unless ``--overwrite-input`` says so.
"""
from __future__ import annotations

import argparse
import math

from scalgui.cli import (
    BIT_DEPTHS,
    CLIP_POLICIES,
    EXAMPLE_KEYWORD,
    PROG,
    CommandError,
    _check_output,
    _float_in,
    _resolve_input,
    print_error,
)
from scalgui.commands.trust import add_allow_plugin_argument, allow_plugins, refuse_untrusted

__all__ = ["HELP", "add_arguments", "effects_listing", "fx_file", "run"]

HELP = "run a sound file through the effect chains of a preset (pedalboard effects and VST3 plugins)"

DESCRIPTION = (
    "Load IN, run it through the effect chains of the preset P.json (its 'source' chain, then its "
    "'render' chain; bypassed effects are skipped) and write OUT with IN's sample rate and channels. "
    "'scalgui fx --list' prints every effect and its parameters, for writing presets by hand."
)
EPILOG = (
    "A preset is JSON: {\"format\": \"scalgui-effects\", \"version\": 1, \"chains\": [{\"placement\": "
    "\"source\"|\"render\", \"effects\": [{\"type\": \"Reverb\", \"bypass\": false, \"params\": {\"room_size\": 0.7}}, "
    "{\"type\": \"VST3\", \"path\": \"/usr/lib/vst3/X.vst3\", \"params\": {}}]}]}. Missing parameters take their "
    "defaults; relative paths are relative to the preset's folder."
)


#: Longest ``--tail`` in seconds: reverb and delay tails ring out within seconds, and the
#: silence appended is held in memory with the sound (at 192 kHz stereo 1.5 MB a second).
MAX_TAIL_SECONDS = 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``fx`` sub-command's options."""
    p.add_argument("input", metavar="IN", nargs="?",
                   help=f"audio file (WAV, AIFF, FLAC, MP3, Ogg), or '{EXAMPLE_KEYWORD}' for the bundled example sound")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="where to write the result (.wav .flac .aif .aiff .ogg .mp3); not IN unless --overwrite-input")
    p.add_argument("--preset", metavar="P.json", help="the effects preset (saved by the editor's Effects panel)")
    p.add_argument("--tail", type=_float_in(0.0, MAX_TAIL_SECONDS, " s"), default=0.0, metavar="SECONDS",
                   help="append this much silence before the effects, so that reverb and delay tails are kept, "
                        f"0..{MAX_TAIL_SECONDS:g} s (default 0: OUT is as long as IN)")
    p.add_argument("--bit-depth", type=int, choices=BIT_DEPTHS, default=None, metavar="16|24|32",
                   help="bits per sample of OUT for WAV/FLAC/AIFF (default: IN's if OUT's format has it, else 24)")
    p.add_argument("--clip", choices=CLIP_POLICIES, default="error", metavar="|".join(CLIP_POLICIES),
                   help="when the result peaks above 0 dBFS: error (default), normalize (peak to -0.1 dBFS), "
                        "limit (a -0.3 dBFS brickwall limiter) or allow")
    p.add_argument("--overwrite-input", action="store_true",
                   help="allow OUT to be IN (the original is replaced, atomically)")
    p.add_argument("--list", action="store_true", help="print every effect with its parameters and exit")
    add_allow_plugin_argument(p)


def effects_listing() -> str:
    """Every built-in effect with its parameters (range, unit, default), as text."""
    from scalgui.audio.effect_registry import CATEGORIES, EFFECTS

    lines = []
    for category in CATEGORIES:
        lines.append(f"{category}:")
        for kind in EFFECTS.values():
            if kind.category != category:
                continue
            lines.append(f"  {kind.name}")
            lines.extend(f"      {p.describe()}" for p in kind.params)
    lines.append("VST3 (\"type\": \"VST3\", \"path\": a .vst3 file, \"params\": the plugin's own parameters)")
    return "\n".join(lines)


def fx_file(args: argparse.Namespace) -> dict:
    """Do what ``scalgui fx`` does; returns a summary (input, output, chains, peak_dbfs...).

    Raises
    ------
    CommandError
        Anything the user can fix: a bad preset, unreadable input, an output that is the
        input, an effect that fails, a result that would clip.
    """
    import numpy as np

    from scalgui.audio import AudioError, ClippingError, load_audio, save_audio
    from scalgui.audio.effects import PLACEMENTS, apply_chain, load_preset
    from scalgui.audio.errors import EffectError
    from scalgui.audio.save import same_file
    from scalgui.commands.invert import _default_bit_depth, _output_format

    if args.input is None or args.output is None or args.preset is None:
        missing = [flag for flag, value in (("IN", args.input), ("-o OUT", args.output), ("--preset", args.preset))
                   if value is None]
        raise CommandError(f"fx: missing {', '.join(missing)} (usage: {PROG} fx IN -o OUT --preset P.json)")
    out = _check_output(args.output)
    path = _resolve_input(args.input)
    if same_file(out, path) and not args.overwrite_input:
        raise CommandError(f"cannot write '{out}': it is the input file; choose another output name, or pass "
                           "--overwrite-input to replace it")
    spec = _output_format(out, args.bit_depth)
    try:
        chains = load_preset(args.preset)
    except EffectError as exc:
        raise CommandError(str(exc)) from None
    allow_plugins(args)
    refuse_untrusted(chains, f"preset '{args.preset}'")
    chains = sorted(chains, key=lambda c: PLACEMENTS.index(c.placement))
    try:
        audio = load_audio(path)
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    if spec.sample_rates is not None and round(audio.sample_rate) not in spec.sample_rates:
        raise CommandError(f"cannot write '{out}': {spec.name} cannot store {audio.sample_rate:g} Hz (IN's rate); "
                           "choose another format")
    if audio.channels > spec.max_channels:
        raise CommandError(f"cannot write '{out}': {spec.name} holds at most {spec.max_channels} channels, "
                           f"IN has {audio.channels}")

    samples = audio.samples
    if args.tail > 0:
        samples = np.pad(samples, ((0, 0), (0, int(round(args.tail * audio.sample_rate)))))
    try:
        for chain in chains:
            samples = apply_chain(chain, samples, audio.sample_rate)
    except EffectError as exc:
        raise CommandError(f"{path}: {exc}") from None
    bit_depth = args.bit_depth if args.bit_depth is not None else _default_bit_depth(spec, audio.source_bit_depth)
    try:
        report = save_audio(out, samples, audio.sample_rate, bit_depth=bit_depth, clip=args.clip, overwrite=True,
                            source_path=None if args.overwrite_input else path)
    except ClippingError as exc:
        raise CommandError(f"cannot write '{out}': the result peaks at {exc.peak_dbfs:+.2f} dBFS, above 0 dBFS; "
                           "pass --clip normalize, --clip limit or --clip allow") from None
    except AudioError as exc:
        raise CommandError(str(exc)) from None
    return {
        "input": str(path),
        "output": str(out),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "frames": int(samples.shape[1]),
        "chains": {c.placement: c.describe() for c in chains},
        "effects_run": sum(len(c.active) for c in chains),
        "peak_dbfs": report.peak_dbfs if math.isfinite(report.peak_dbfs) else None,
        "gain_db": report.gain_db,
        "limited": report.limited,
    }


def run(args: argparse.Namespace) -> int:
    """``scalgui fx``: returns the exit code (2 with one line on stderr for user errors)."""
    try:
        if args.list:
            print(effects_listing())
            return 0
        summary = fx_file(args)
    except CommandError as exc:
        # Reported here, as in scalgui.commands.invert: under `python -m scalgui.cli` the
        # CommandError of scalgui.cli.main is another class than this one.
        print_error(exc)
        return 2
    chains = "; ".join(f"{placement}: {text}" for placement, text in summary["chains"].items()) or "no chains"
    peak = "-inf" if summary["peak_dbfs"] is None else f"{summary['peak_dbfs']:+.2f}"
    line = f"wrote {summary['output']}: {summary['effects_run']} effect(s) ({chains}); peak {peak} dBFS"
    if summary["gain_db"]:
        line += f", scaled by {summary['gain_db']:.2f} dB"
    if summary["limited"]:
        line += ", limited"
    print(line)
    return 0
