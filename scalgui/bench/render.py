"""``scalgui bench render``: the editor's render after an edit, today's fixed-iteration
render against the adaptive default, side by side in one run (issue 21's targets).

Everything goes through the Document API (:class:`scalgui.app.document.Document`), on the
CPU unless ``--device`` says otherwise, on a generated stereo song (``--seconds``, the
example sound's variants one after another) and with ``--corpus DIR`` on the corpus files.

**Renders.** Six edits, whole-sound ones over the sound's length, local ones over its
loudest 2 s (half the sound when it is shorter than 4 s): band gain -30 dB (2-4 kHz),
time-range gain -12 dB, rectangle gain -30 dB (300-3000 Hz), a brush stroke erasing the
stretch's strongest partial, a painted rising partial at -20 dBFS and the built-in
transpose plugin (+7 semitones over a 200-2000 Hz rectangle). Each is rendered twice from
the same state, a fresh Document each time with ``restore([edit])``: with
:data:`~scalgui.app.document.FIXED_RENDER` ("fixed", the editor's render before issue 21)
and with :data:`~scalgui.app.document.DEFAULT_RENDER` ("adaptive"); which side goes first
alternates from row to row and repeat to repeat, and times are medians over ``--repeat``.

Both renders are judged the same way: the render is analysed on the document's render
frame over a window reaching the frame's context beyond the edit's touched span (where a
window's analysis equals the whole sound's), the edited target is made from the source's
analysis of the same window, and the spectral convergence (dB, lower is closer) is taken
over the touched span (:func:`scalgui.app.incremental.crop`). The MR-STFT distance of the
adaptive render against the fixed one is taken over the samples a render may change (the
touched span grown by the render frame's reach).

**Quick preview.** ``Document.preview()`` after each local edit, timed (median).

**Cancel.** A whole-sound band -30 dB edit pushed on top of an earlier rendered edit;
its render runs in a thread and is cancelled when a progress report's ``stage`` first
reads ``"analysing"``, ``"initial phase"`` and ``"iterating"`` (a stage the render never
reaches, as iterations for a warm start, is not applicable). Measured: seconds from
``token.cancel()`` until ``render`` returns, and whether the render, the edit list and
the pending spans are as before.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import check_corpus_and_json, log, machine_info, markdown_table, write_json_atomic

HELP = ("the render after an edit: today's fixed 32-iteration render against the adaptive default, "
        "per edit type and span (time, convergence, MR-STFT), quick preview and cancel latency")

SAMPLE_RATE = 44100
DEFAULT_SECONDS = 210.0
#: Length of the local edits (s); a sound shorter than twice that gets them over half its length.
LOCAL_SPAN_S = 2.0
#: Corpus files (name, what it is); ``--quick`` cuts each to its loudest QUICK_CORPUS_S seconds.
CORPUS_FILES = (("Front_Center.wav", "speech"), ("Oxygen-Sys-Log-In.ogg", "system sound"), ("sad.ogg", "orchestra"))
QUICK_CORPUS_S = 6.0

#: Issue 21's targets (s), by edit kind.
TIME_TARGETS_S = {"band": 5.0, "time range": 5.0, "rectangle": 1.0, "stroke erase": 1.0,
                  "paint": 3.0, "transpose": 3.0}
#: The adaptive render may be this much further from the target than the fixed one (dB).
QUALITY_TOLERANCE_DB = 0.2
PREVIEW_TARGET_S = 0.3
CANCEL_TARGET_S = 0.5

#: The stages a cancel is timed at (see ``scalgui.dsp.phase.STAGES``).
STAGES = ("analysing", "initial phase", "iterating")
RENDER_TIMEOUT_S = 3600.0
#: Seconds of the sound the warm-up renders on.
WARM_UP_S = 1.0

if TYPE_CHECKING:
    import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                        help=f"length of the generated stereo song (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--corpus", metavar="DIR",
                        help="also render on the corpus files found there (" +
                             ", ".join(name for name, _ in CORPUS_FILES) + ")")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="renders per side and edit; times are medians (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device of the documents (default cpu)")
    parser.add_argument("--quick", action="store_true",
                        help=f"corpus files cut to their loudest {QUICK_CORPUS_S:g} s "
                             "(for tests; pair with a small --seconds)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")


def _fail(message: str) -> int:
    print(f"scalgui: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- signals and edits


@dataclass
class Sound:
    """A sound to render on: ``samples`` float32 ``[channels, frames]`` at ``sample_rate`` Hz."""

    name: str
    samples: np.ndarray
    sample_rate: float

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


def loudest_stretch(samples, sample_rate: float, seconds: float) -> float:
    """Start (s) of the ``seconds`` of ``samples`` ``[channels, frames]`` with the most energy."""
    import numpy as np

    width = min(max(int(seconds * sample_rate), 1), samples.shape[-1])
    power = np.cumsum(np.concatenate([[0.0], np.square(samples.astype(np.float64)).sum(0)]))
    return float(np.argmax(power[width:] - power[:-width])) / sample_rate


def strongest_frequency(samples, sample_rate: float, start_s: float, seconds: float) -> float:
    """Frequency (Hz) of the strongest spectral peak of the stretch, between 60 Hz and
    8 kHz: the partial a brush stroke there would remove."""
    import numpy as np

    lo = int(start_s * sample_rate)
    mono = samples[:, lo:lo + max(int(seconds * sample_rate), 2)].astype(np.float64).mean(0)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    freqs = np.fft.rfftfreq(len(mono), 1.0 / sample_rate)
    usable = (freqs >= 60.0) & (freqs <= min(8000.0, 0.45 * sample_rate))
    if not usable.any() or spectrum[usable].max() <= 0:
        return 1000.0
    return float(freqs[usable][np.argmax(spectrum[usable])])


def make_edits(sound: Sound) -> list[dict]:
    """The benchmark's edits on ``sound``: dicts with ``kind``, ``name``, ``edit``, ``span``
    (a label) and ``local`` (whether it covers the loudest stretch rather than the whole sound)."""
    from scalgui.dsp.edits import Band, Edit, Rectangle, Stroke, TimeRange
    from scalgui.plugins import PluginEdit, default_registry

    duration = sound.duration
    width = min(LOCAL_SPAN_S, duration / 2)
    start = loudest_stretch(sound.samples, sound.sample_rate, width)
    end = start + width
    radius_s = min(0.05, width / 8)
    # The stroke's path ends a tip's radius inside the stretch, so its span is the stretch.
    first, last = start + radius_s, end - radius_s
    partial_hz = strongest_frequency(sound.samples, sound.sample_rate, start, width)
    whole = f"whole ({duration:.3g} s)"
    local = f"{width:.3g} s at {start:.2f} s"
    transpose = default_registry().get("transpose")
    return [
        {"kind": "band", "name": "band gain -30 dB (2-4 kHz)", "span": whole, "local": False,
         "edit": Edit(Band(2000.0, 4000.0), "gain", -30.0)},
        {"kind": "time range", "name": "time-range gain -12 dB", "span": whole, "local": False,
         "edit": Edit(TimeRange(0.0, duration), "gain", -12.0)},
        {"kind": "rectangle", "name": "rectangle gain -30 dB (300-3000 Hz)", "span": local, "local": True,
         "edit": Edit(Rectangle(start, end, 300.0, 3000.0), "gain", -30.0)},
        {"kind": "stroke erase", "name": f"brush stroke erase ({partial_hz:.0f} Hz)", "span": local, "local": True,
         "edit": Edit(Stroke(((first, partial_hz), (last, partial_hz)), radius_s=radius_s, radius_oct=1 / 6),
                      "erase")},
        {"kind": "paint", "name": "paint a rising partial (-20 dBFS)", "span": local, "local": True,
         "edit": Edit(Stroke(((first, 1500.0), (last, 3000.0)), radius_s=radius_s, radius_oct=1 / 24),
                      "paint", -20.0)},
        {"kind": "transpose", "name": "transpose +7 semitones (200-2000 Hz)", "span": local, "local": True,
         "edit": PluginEdit.create(transpose, {"semitones": 7.0}, Rectangle(start, end, 200.0, 2000.0))},
    ]


def _generated(seconds: float) -> Sound:
    from .editor import make_sound

    return Sound(f"generated song, {seconds:g} s stereo", make_sound(seconds, SAMPLE_RATE), SAMPLE_RATE)


def _corpus_sounds(corpus: Path, quick: bool) -> list[Sound]:
    import numpy as np

    from scalgui.audio import load_audio

    sounds = []
    for name, what in CORPUS_FILES:
        path = corpus / name
        if not path.is_file():
            log(f"{path} not found: skipped")
            continue
        audio = load_audio(path)
        samples, rate = audio.samples, audio.sample_rate
        label = f"{name} ({what}, {samples.shape[-1] / rate:.3g} s, {samples.shape[0]} ch)"
        if quick and samples.shape[-1] > QUICK_CORPUS_S * rate:
            lo = int(loudest_stretch(samples, rate, QUICK_CORPUS_S) * rate)
            samples = np.ascontiguousarray(samples[:, lo:lo + int(QUICK_CORPUS_S * rate)])
            label = f"{name} ({what}, loudest {QUICK_CORPUS_S:g} s, {samples.shape[0]} ch)"
        sounds.append(Sound(label, samples, rate))
    return sounds


# --------------------------------------------------------------------------- measuring a render


class SpanConvergence:
    """Spectral convergence of renders against the edited target over an edit's touched span.

    Parameters
    ----------
    frame : WaveletFrame
        The document's render frame.
    samples : np.ndarray [shape=(channels, frames)]
        The source.
    edit : Edit or PluginEdit
        The only edit.

    Notes
    -----
    The analysis window reaches the frame's context beyond the span on each side, so the
    coefficients over the span equal the whole sound's; the target is made once, from the
    source's analysis of that window, and every render is measured against it.
    """

    def __init__(self, frame, samples, edit) -> None:
        from scalgui.app.incremental import crop
        from scalgui.dsp.edits import touched_spans
        from scalgui.plugins import edit_list_targets

        self.frame = frame
        rate = frame.sample_rate
        frames = samples.shape[-1]
        (self.start_s, self.end_s), = touched_spans([edit], frames / rate)
        # Aligned to the largest hop, so the window's coefficient grid is a slice of the whole's.
        self.lo = max((int(self.start_s * rate) - frame.context) // frame.max_hop * frame.max_hop, 0)
        self.hi = min(math.ceil(self.end_s * rate) + frame.context, frames)
        source = self._analyse(samples)
        target = edit_list_targets(frame, samples, [edit])(source)
        span = crop(target, self.start_s, self.end_s)
        # A copy of a part lets the rest of the window go; the whole is kept as it is.
        self._target = span.groups if span is target else [g.clone() for g in span.groups]
        del source, target, span
        self._crop = crop

    def _analyse(self, signal):
        import numpy as np
        import torch

        window = self.frame.analyze(torch.from_numpy(np.ascontiguousarray(signal[:, self.lo:self.hi])))
        window.offset = self.lo
        return window

    def __call__(self, rendered) -> float:
        """Spectral convergence (dB) of ``rendered`` ``[channels, frames]`` over the span."""
        from scalgui.dsp.metrics import spectral_convergence_db

        estimate = self._crop(self._analyse(rendered), self.start_s, self.end_s)
        return spectral_convergence_db(estimate.groups, self._target)

    def changed_samples(self, n: int) -> slice:
        """The samples a render of the span may change: the span grown by the frame's reach."""
        rate = self.frame.sample_rate
        return slice(max(int(self.start_s * rate) - self.frame.pad, 0),
                     min(math.ceil(self.end_s * rate) + self.frame.pad, n))


def _render_once(sound: Sound, edit, settings, device: str) -> dict:
    """Render ``edit`` on a fresh document; what the render took and made."""
    import gc

    from scalgui.app.document import Document

    gc.collect()  # the last document (its signal connections make a cycle) goes before this one comes
    doc = Document.from_samples(sound.samples, sound.sample_rate, device=device)
    doc.restore([edit])
    started = time.perf_counter()
    result = doc.render(settings)
    seconds = time.perf_counter() - started
    out = {"seconds": seconds, "iterations": int(result.iterations), "stopped": getattr(result, "stopped", None),
           "reported_convergence_db": float(result.spectral_convergence_db),
           "cancelled": bool(result.cancelled), "rendered": doc.rendered, "render_frame": doc.render_frame}
    del doc
    return out


def _median(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def measure_row(sound: Sound, case: dict, sides: dict, repeat: int, device: str, row_index: int) -> dict:
    """Render ``case``'s edit with each of ``sides`` (name -> RetrievalSettings), alternating
    which goes first; medians over ``repeat``, plus the convergence measures."""
    import gc

    from scalgui.dsp.metrics import multiresolution_stft_convergence_db

    names = list(sides)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    measure = None
    mrstft = []
    for r in range(repeat):
        order = names if (row_index + r) % 2 == 0 else names[::-1]
        renders = {}
        for name in order:
            run = _render_once(sound, case["edit"], sides[name], device)
            if measure is None:
                measure = SpanConvergence(run["render_frame"], sound.samples, case["edit"])
            run["convergence_db"] = measure(run["rendered"])
            renders[name] = run.pop("rendered")
            run.pop("render_frame")
            runs[name].append(run)
            log(f"  {case['name']}, {name}: {run['seconds']:.2f} s, {run['iterations']} iterations, "
                f"{run['convergence_db']:.2f} dB")
        changed = measure.changed_samples(sound.samples.shape[-1])
        mrstft.append(multiresolution_stft_convergence_db(renders[names[1]][:, changed], renders[names[0]][:, changed]))
        del renders
        gc.collect()
    row = {"kind": case["kind"], "edit": case["name"], "span": case["span"],
           "span_s": [measure.start_s, measure.end_s], "local": case["local"]}
    for name in names:
        row[name] = {
            "seconds": _median([x["seconds"] for x in runs[name]]),
            "seconds_each": [x["seconds"] for x in runs[name]],
            "iterations": int(statistics.median([x["iterations"] for x in runs[name]])),
            "convergence_db": _median([x["convergence_db"] for x in runs[name]]),
            "reported_convergence_db": _median([x["reported_convergence_db"] for x in runs[name]]),
            "stopped": [x["stopped"] for x in runs[name]],
        }
    fixed, adaptive = row[names[0]], row[names[1]]
    row["speedup"] = fixed["seconds"] / adaptive["seconds"] if adaptive["seconds"] else None
    row["convergence_difference_db"] = adaptive["convergence_db"] - fixed["convergence_db"]
    row["mrstft_adaptive_vs_fixed_db"] = _median(mrstft)
    row["target_s"] = TIME_TARGETS_S[case["kind"]]
    row["time_met"] = adaptive["seconds"] < row["target_s"]
    row["quality_met"] = row["convergence_difference_db"] <= QUALITY_TOLERANCE_DB
    return row


def measure_previews(sound: Sound, cases: list[dict], repeat: int, device: str) -> list[dict]:
    """``Document.preview()`` after each local edit: median seconds over ``repeat``."""
    from scalgui.app.document import Document

    doc = Document.from_samples(sound.samples, sound.sample_rate, device=device)
    rows = []
    for case in cases:
        if not case["local"]:
            continue
        times = []
        for _ in range(repeat):
            doc.restore([case["edit"]])
            started = time.perf_counter()
            start_s, audio = doc.preview()
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        log(f"  preview after {case['name']}: {seconds:.3f} s")
        rows.append({"edit": case["name"], "span": case["span"], "seconds": seconds, "seconds_each": times,
                     "preview_start_s": float(start_s), "preview_frames": int(audio.shape[-1]),
                     "target_s": PREVIEW_TARGET_S, "met": seconds < PREVIEW_TARGET_S})
    return rows


def cancel_once(doc, settings, *, previous_edit, previous_render, edit, stage: str) -> dict:
    """Push ``edit`` on top of a rendered ``previous_edit``, start its render in a thread and
    cancel it at the first progress report whose ``stage`` is ``stage``.

    Returns
    -------
    dict
        ``reached`` (whether the cancel was requested before the render ended),
        ``cancel_at_s`` (seconds into the render), ``latency_s`` (seconds from the cancel
        request until ``render`` returned, None when not reached), ``stages_seen``,
        ``iterations_reported``, ``error`` (an exception the render raised, by name),
        and whether the render, the edits and the pending spans are as they were.
    """
    import numpy as np

    from scalgui.dsp.phase import CancelToken

    doc.restore([previous_edit], rendered=previous_render, pending=[])
    doc.push(edit)
    edits_before, pending_before = doc.edits, doc.pending_spans
    render_before = np.array(doc.rendered, copy=True)
    token = CancelToken()
    finished = threading.Event()
    lock = threading.Lock()
    state = {"cancel_at": None, "end": None, "stages": [], "iterations": 0, "error": None, "result": None}

    def request_cancel() -> None:
        with lock:
            if state["cancel_at"] is None and not finished.is_set():
                state["cancel_at"] = time.perf_counter()
                token.cancel()

    def progress(report) -> None:
        seen = report.stage
        if not state["stages"] or state["stages"][-1] != seen:
            state["stages"].append(seen)
        if seen == "iterating":
            state["iterations"] += 1
        if seen == stage:
            request_cancel()

    def work() -> None:
        try:
            state["result"] = doc.render(settings, progress=progress, cancel=token)
        except Exception as exc:  # noqa: BLE001  (a cancelled render may end by raising: the time counts)
            state["error"] = type(exc).__name__
        finally:
            with lock:
                state["end"] = time.perf_counter()
                finished.set()

    started = time.perf_counter()
    thread = threading.Thread(target=work, name="bench-render-cancel", daemon=True)
    thread.start()
    if not finished.wait(RENDER_TIMEOUT_S):
        token.cancel()
        raise RuntimeError(f"the render did not end within {RENDER_TIMEOUT_S:g} s")
    thread.join()
    reached = state["cancel_at"] is not None
    result = state["result"]
    return {
        "reached": reached,
        "cancel_at_s": state["cancel_at"] - started if reached else None,
        "latency_s": state["end"] - state["cancel_at"] if reached else None,
        "render_s": state["end"] - started,
        "stages_seen": state["stages"],
        "iterations_reported": state["iterations"],
        "result_cancelled": None if result is None else bool(result.cancelled),
        "error": state["error"],
        "render_unchanged": doc.rendered is not None and np.array_equal(doc.rendered, render_before),
        "edits_unchanged": doc.edits == edits_before,
        "pending_unchanged": doc.pending_spans == pending_before,
    }


def measure_cancels(sound: Sound, cases: list[dict], sides: dict, previous_render, device: str) -> list[dict]:
    """Cancel the whole-sound band edit's render at each stage, for each side's settings."""
    from scalgui.app.document import Document

    band = next(c for c in cases if c["kind"] == "band")
    previous = next(c for c in cases if c["kind"] == "rectangle")
    doc = Document.from_samples(sound.samples, sound.sample_rate, device=device)
    rows = []
    for side, settings in sides.items():
        for stage in STAGES:
            outcome = cancel_once(doc, settings, previous_edit=previous["edit"], previous_render=previous_render,
                                  edit=band["edit"], stage=stage)
            outcome.update({"settings": side, "stage": stage, "trigger": f'first report of stage "{stage}"',
                            "edit": band["name"], "previous_edit": f"{previous['name']}, {previous['span']}",
                            "target_s": CANCEL_TARGET_S})
            # A stage the render never goes through (a warm start takes no iterations) has
            # nothing to cancel: not applicable, rather than missed.
            outcome["met"] = None if not outcome["reached"] else (
                outcome["latency_s"] < CANCEL_TARGET_S and outcome["render_unchanged"]
                and outcome["edits_unchanged"] and outcome["pending_unchanged"])
            latency = "not reached" if not outcome["reached"] else f"{outcome['latency_s']:.3f} s"
            log(f"  cancel ({side}, {stage}): {latency}, render unchanged: {outcome['render_unchanged']}")
            rows.append(outcome)
    return rows


def _warm_up(sound: Sound, sides: dict, device: str) -> None:
    """Untimed renders of a paint and a transpose edit with each side's settings, and a
    preview, on the first second of the sound: the first renders in a process pay for
    compiling the initial phase's loops and importing the plugin, which no row should."""
    from scalgui.app.document import Document

    excerpt_s = min(sound.duration, WARM_UP_S)
    short = Sound("warm-up", sound.samples[:, : int(excerpt_s * sound.sample_rate)].copy(), sound.sample_rate)
    cases = [c for c in make_edits(short) if c["kind"] in ("paint", "transpose")]
    for case in cases:
        for settings in sides.values():
            _render_once(short, case["edit"], settings, device)
    doc = Document.from_samples(short.samples, short.sample_rate, device=device)
    doc.restore([cases[0]["edit"]])
    doc.preview()


# --------------------------------------------------------------------------- report


def _num(value, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}{suffix}"


def _mrstft(value) -> str:
    from scalgui.dsp.metrics import EXACT_DB

    return "identical" if value is not None and value <= EXACT_DB else _num(value)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def render_table(rows: list[dict]) -> str:
    header = ["edit", "span", "fixed s", "adaptive s", "speed-up", "iterations fixed / adaptive",
              "SC fixed dB", "SC adaptive dB", "difference dB", "MR-STFT adaptive vs fixed dB", "target",
              "time", f"quality (difference <= +{QUALITY_TOLERANCE_DB:g} dB)"]
    body = []
    for r in rows:
        f, a = r["fixed"], r["adaptive"]
        body.append([r["edit"], r["span"], _num(f["seconds"]), _num(a["seconds"]), _num(r["speedup"], 1, "x"),
                     f"{f['iterations']} / {a['iterations']}", _num(f["convergence_db"]),
                     _num(a["convergence_db"]), f"{r['convergence_difference_db']:+.2f}",
                     _mrstft(r["mrstft_adaptive_vs_fixed_db"]), f"< {r['target_s']:g} s", _met(r["time_met"]),
                     _met(r["quality_met"])])
    return markdown_table(header, body)


def preview_table(rows: list[dict]) -> str:
    body = [[r["edit"], r["span"], _num(r["seconds"], 3), f"< {r['target_s']:g} s", _met(r["met"])] for r in rows]
    return markdown_table(["preview after", "span", "seconds", "target", "result"], body)


def cancel_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        if not r["reached"]:
            body.append([r["settings"], r["stage"], r["trigger"],
                         f"not reached: the render ended at {r['render_s']:.2f} s without it", "-", "-", "-",
                         f"< {r['target_s']:g} s, nothing changed", "n/a"])
            continue
        body.append([r["settings"], r["stage"], r["trigger"], _num(r["cancel_at_s"], 2),
                     _num(r["latency_s"], 3), "yes" if r["render_unchanged"] else "no",
                     "yes" if r["edits_unchanged"] and r["pending_unchanged"] else "no",
                     f"< {r['target_s']:g} s, nothing changed", _met(r["met"])])
    return markdown_table(["settings", "stage", "cancelled at", "seconds into the render", "latency s",
                           "render unchanged", "edits and pending unchanged", "target", "result"], body)


def _settings_json(settings) -> dict:
    import dataclasses

    def plain(value):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)

    if dataclasses.is_dataclass(settings):
        return {f.name: plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    return {"repr": repr(settings)}


def _finite_or_none(value):
    """JSON holds no NaN or infinity: such numbers become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _device_problem(device: str) -> str | None:
    """Why the documents cannot use ``device``, or None."""
    import torch

    from scalgui.dsp.frame import resolve_device

    try:
        resolved = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        return f"--device {device!r} is not a torch device ({exc})"
    if resolved.type == "cuda" and not torch.cuda.is_available():
        return f"--device {device!r}: CUDA is not available here"
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        return f"--device {device!r}: MPS is not available here"
    return None


def run(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        return _fail(f"--seconds must be positive, got {args.seconds:g}")
    if args.repeat < 1:
        return _fail(f"--repeat must be at least 1, got {args.repeat}")
    corpus, problem = check_corpus_and_json(args)
    if problem:
        return _fail(problem)

    import scalgui  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)

    problem = _device_problem(args.device)
    if problem:
        return _fail(problem)
    from scalgui.app.document import DEFAULT_RENDER, FIXED_RENDER

    machine = machine_info()
    sides = {"fixed": FIXED_RENDER, "adaptive": DEFAULT_RENDER}
    started = time.perf_counter()
    sounds = [_generated(float(args.seconds))]
    if corpus is not None:
        sounds += _corpus_sounds(corpus, args.quick)
    log(f"warming up on the first seconds of {sounds[0].name}")
    _warm_up(sounds[0], sides, args.device)

    results: dict = {"benchmark": "render", "machine": machine, "device": args.device, "repeat": args.repeat,
                     "quick": bool(args.quick), "corpus": str(corpus) if corpus else None,
                     "settings": {name: _settings_json(s) for name, s in sides.items()},
                     "same_settings": FIXED_RENDER == DEFAULT_RENDER,
                     "sounds": []}
    for index, sound in enumerate(sounds):
        log(f"{sound.name}: rendering")
        cases = make_edits(sound)
        rows = [measure_row(sound, case, sides, args.repeat, args.device, i) for i, case in enumerate(cases)]
        entry = {"sound": sound.name, "duration_s": sound.duration, "channels": int(sound.samples.shape[0]),
                 "sample_rate": sound.sample_rate, "rows": rows}
        if index == 0:
            log(f"{sound.name}: quick previews")
            entry["preview"] = measure_previews(sound, cases, args.repeat, args.device)
            log(f"{sound.name}: cancels")
            rectangle = next(c for c in cases if c["kind"] == "rectangle")
            previous = _render_once(sound, rectangle["edit"], sides["fixed"], args.device)["rendered"]
            entry["cancel"] = measure_cancels(sound, cases, sides, previous, args.device)
        results["sounds"].append(entry)
    results["seconds"] = time.perf_counter() - started

    _print_report(results, args)
    if args.json:
        write_json_atomic(args.json, _finite_or_none(results))
        log(f"wrote {args.json}")
    return 0


def _print_report(results: dict, args: argparse.Namespace) -> None:
    machine = results["machine"]
    cuda = f", CUDA: {machine['cuda']}" if machine["cuda"] else ", no CUDA"
    fixed, adaptive = results["settings"]["fixed"], results["settings"]["adaptive"]
    shown = ("method", "init", "iterations")
    differ = [k for k in adaptive if adaptive[k] != fixed.get(k) and k not in shown]

    def describe(settings: dict) -> str:
        return ", ".join(f"{k}={settings.get(k)!r}" for k in (*shown, *differ))

    same = " (the same settings at present)" if results["same_settings"] else ""
    print("## scalgui bench render")
    print()
    print(f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs ({machine['usable_cpus']} usable){cuda}; "
          f"Python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads). "
          f"Documents on device {results['device']}; {results['repeat']} render(s) per side and edit, medians, "
          f"sides alternating which goes first{'; --quick' if results['quick'] else ''}; total "
          f"{results['seconds']:.0f} s.")
    print()
    print(f"fixed: `FIXED_RENDER` ({describe(fixed)}); adaptive: `DEFAULT_RENDER` ({describe(adaptive)}){same}; "
          "the JSON holds every field.")
    print()
    print("SC: spectral convergence of the render against the edited target over the edit's touched span, "
          "analysed on the render frame (lower is closer); difference = adaptive - fixed. MR-STFT: the "
          "adaptive render against the fixed one over the samples a render may change. Targets from issue 21 "
          "(time of the adaptive render); quality: the adaptive render no more than "
          f"{QUALITY_TOLERANCE_DB:g} dB further from the target than the fixed one.")
    for entry in results["sounds"]:
        print()
        print(f"### {entry['sound']}, {entry['sample_rate']:g} Hz")
        print()
        print(render_table(entry["rows"]))
        if "preview" in entry:
            print()
            print("Quick preview (`Document.preview()` after the edit, the sides' settings do not apply):")
            print()
            print(preview_table(entry["preview"]))
        if "cancel" in entry:
            print()
            first = entry["cancel"][0]
            print(f"Cancel: {first['edit']} pushed on top of a rendered {first['previous_edit']}, its "
                  "render cancelled at each stage; latency from `token.cancel()` until `render` returns, and "
                  "whether the previous render, the edit list and the pending spans are as they were:")
            print()
            print(cancel_table(entry["cancel"]))
