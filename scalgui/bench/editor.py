"""``scalgui bench editor``: how quickly the desktop editor shows a long sound and redraws.

Headless (offscreen Qt). A generated stereo 44.1 kHz sound of ``--seconds`` (the example
sound's variants one after another) is opened in a MainWindow with
``Document.from_samples``; the first number is the time from there to the first
scalogram picture on screen. Then the view is panned and zoomed through its public
methods, and each step is timed until the new picture is set (median and 95th
percentile), zoomed in (a 5 s window) and zoomed out (the whole sound) separately.
Last, with the whole sound in view, ``--edits`` one-second rectangle edits are applied
through the window's undo stack at different places, then undone and redone, each timed
until the picture of the new state (edit overlay included) is on screen: the cost of
keeping the zoomed-out picture current after a local change.

``--launch`` times the real program instead, from its launch: a generated stereo WAV of
``--seconds`` is written, and ``python -m scalgui.cli FILE`` is started ``--runs`` times
under the current display (``QT_QPA_PLATFORM`` as set, e.g. ``xcb`` under ``xvfb-run``;
offscreen where there is no display). Each child logs when its window was shown, its
sound set and its first picture on screen (the ``SCALGUI_FIRST_PICTURE_LOG`` variable of
:mod:`scalgui.ui.app`), then quits; the table gives the median of each, in seconds from
the launch, with the load average around the runs. ``--project`` also times a project of
that sound with a whole-sound band edit and a 2 s rectangle, launched the same way.
Settings, recent files and recovery go to a temporary folder, never the user's.
"""
from __future__ import annotations

import argparse
import os
import time

HELP = ("editor responsiveness: time to the first picture, redraw time when panning and zooming, "
        "picture refresh after a local edit, undo and redo (offscreen Qt)")

FIRST_PICTURE_TARGET_S = 5.0
LAUNCH_TARGET_S = 4.0  # from launch to the first picture, on screen
REDRAW_TARGET_MS = 33.0  # screen rate
SAMPLE_RATE = 44100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=210.0, metavar="S",
                        help="length of the generated stereo sound (default 210)")
    parser.add_argument("--pan-steps", type=int, default=20, metavar="N", help="pan steps (default 20)")
    parser.add_argument("--zoom-steps", type=int, default=10, metavar="N", help="zoom steps (default 10)")
    parser.add_argument("--edits", type=int, default=4, metavar="N",
                        help="local edits (then as many undos and redos) timed on the whole-sound view (default 4)")
    parser.add_argument("--launch", action="store_true",
                        help="time the real program from its launch to its first picture, under the current display")
    parser.add_argument("--runs", type=int, default=3, metavar="N", help="with --launch: launches of each file "
                                                                        "(default 3; the median is reported)")
    parser.add_argument("--project", action="store_true",
                        help="with --launch: also launch on a project of the sound (a whole-sound band edit and a "
                             "2 s rectangle)")


def make_sound(seconds: float, sample_rate: int = SAMPLE_RATE):
    """Stereo float32 ``[2, frames]``: example-sound variants (different noise seeds), repeated."""
    import numpy as np

    from scalgui.dsp.signals import example_sound

    frames = int(round(seconds * sample_rate))
    variants = [np.asarray(example_sound(sample_rate, seed=s), dtype=np.float32) for s in range(3)]
    parts, have, i = [], 0, 0
    while have < frames:
        part = variants[i % len(variants)]
        parts.append(part)
        have += part.shape[1]
        i += 1
    return np.ascontiguousarray(np.concatenate(parts, axis=1)[:, :frames])


def _percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def _wait_picture(app, view, timeout_s: float = 60.0) -> float:
    """Process events until the view shows the picture for its current range; seconds waited."""
    start = time.perf_counter()
    while True:
        app.processEvents()
        request = view._current_request()
        picture = view.picture
        # Done when the picture of the current range is shown; the throttle's timer may
        # still run (it only holds back the next request), so it is not waited for.
        if request is not None and picture is not None and not view.raster_busy and picture.request == request:
            return time.perf_counter() - start
        if not view.busy and time.perf_counter() - start > 0.5:
            view.refresh()  # a range that did not move (clamped at an edge) asks for nothing
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("the view did not draw its picture in time")
        time.sleep(0.0005)


def _timed_steps(app, view, steps) -> list[float]:
    times = []
    for step in steps:
        t0 = time.perf_counter()
        step()
        _wait_picture(app, view)
        times.append(1000.0 * (time.perf_counter() - t0))
    return times


#: What a launch logs, in order (see scalgui.ui.app.log_first_picture).
LAUNCH_STAGES = (("window", "window shown"), ("document", "sound set on the window"),
                 ("picture", "first picture on screen"), ("complete", "picture of the edited sound"))


def launch_once(path, workdir, *, timeout_s: float = 180.0) -> dict:
    """Start ``python -m scalgui.cli path`` and return the seconds from its launch to each
    stage it logs (``window``, ``document``, ``picture``, ``complete``)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from scalgui.bench import child_environment
    from scalgui.ui.app import FIRST_PICTURE_LOG

    workdir = Path(workdir)
    log_path = workdir / "first-picture.jsonl"
    log_path.unlink(missing_ok=True)
    env = child_environment()
    # The user's settings, recent files and recovery folder stay untouched.
    env.update({FIRST_PICTURE_LOG: str(log_path), "SCALGUI_CONFIG_DIR": str(workdir / "config"),
                "SCALGUI_RECOVERY_DIR": str(workdir / "recovery"), "XDG_CONFIG_HOME": str(workdir / "xdg")})
    launched = time.time()
    result = subprocess.run([sys.executable, "-m", "scalgui.cli", str(path)], env=env, capture_output=True,
                            text=True, timeout=timeout_s, check=False)
    if result.returncode != 0 or not log_path.exists():
        tail = (result.stderr or "").strip().splitlines()[-3:]
        raise RuntimeError(f"the editor did not log its first picture (exit {result.returncode}): {' / '.join(tail)}")
    times = json.loads(log_path.read_text(encoding="utf-8").splitlines()[-1])
    return {key: times[key] - launched for key, _ in LAUNCH_STAGES if key in times}


def _write_launch_files(seconds: float, folder, with_project: bool) -> list:
    from pathlib import Path

    from scalgui.audio import save_audio

    folder = Path(folder)
    sound = folder / f"song-{seconds:g}s.wav"
    save_audio(sound, make_sound(seconds), SAMPLE_RATE, bit_depth=24)
    files = [("sound", sound)]
    if with_project:
        from scalgui.app.document import Document
        from scalgui.dsp.edits import Band, Edit, Rectangle

        doc = Document.open(sound, device="cpu")
        doc.push(Edit(Band(500.0, 2000.0), "gain", -30.0))
        start = min(doc.duration / 2, max(doc.duration - 2.0, 0.0))
        doc.push(Edit(Rectangle(start, min(start + 2.0, doc.duration), 300.0, 3000.0), "gain", -20.0))
        files.append(("project", doc.save_project(folder / "song.scalproj")))
        del doc
    return files


def run_launch(args: argparse.Namespace) -> int:
    """``--launch``: the real program, timed from its launch (see the module's notes)."""
    import platform
    import statistics
    import tempfile

    from scalgui.bench import log, markdown_table

    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display to launch on
    display = os.environ.get("QT_QPA_PLATFORM") or ("wayland" if os.environ.get("WAYLAND_DISPLAY") else "xcb")
    seconds, runs = float(args.seconds), max(int(args.runs), 1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scalgui-launch-") as tmp:
        log(f"writing {seconds:g} s of stereo sound at {SAMPLE_RATE} Hz")
        files = _write_launch_files(seconds, tmp, bool(args.project))
        load_before = os.getloadavg()
        for kind, path in files:
            measured = []
            for k in range(runs):
                times = launch_once(path, tmp)
                log(f"{kind} launch {k + 1}/{runs}: " + ", ".join(f"{key} {v:.2f} s" for key, v in times.items()))
                measured.append(times)
            for key, label in LAUNCH_STAGES:
                values = [m[key] for m in measured if key in m]
                if not values or (key == "complete" and kind == "sound"):
                    continue  # a sound without edits: its first picture is complete
                median = statistics.median(values)
                target = key == "picture"
                rows.append([f"{kind}: {label}", f"{median:.2f}", " ".join(f"{v:.2f}" for v in values),
                             f"< {LAUNCH_TARGET_S:g}" if target else "",
                             ("PASS" if median < LAUNCH_TARGET_S else "MISS") if target else ""])
        load_after = os.getloadavg()
    print(f"## scalgui bench editor --launch: {seconds:g} s stereo, {SAMPLE_RATE} Hz, QT_QPA_PLATFORM={display}, "
          f"{runs} launch(es) each, {platform.node()} ({os.cpu_count()} CPUs)\n")
    print(markdown_table(["from launch (python -m scalgui.cli FILE)", "median s", "runs s", "target s", "result"],
                         rows))
    print(f"\nLoad average (1, 5, 15 min) before the runs: {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after: {', '.join(f'{v:.2f}' for v in load_after)}.")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.launch:
        return run_launch(args)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile
    from pathlib import Path

    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from scalgui.app.document import Document
    from scalgui.bench import log, markdown_table
    from scalgui.dsp.edits import Edit, Rectangle
    from scalgui.ui import transport
    from scalgui.ui.main_window import MainWindow

    seconds = float(args.seconds)
    app = QApplication.instance() or QApplication(["scalgui-bench"])
    transport.default_audio_output = lambda: None  # no sound needed
    log(f"generating {seconds:g} s of stereo sound at {SAMPLE_RATE} Hz")
    samples = make_sound(seconds)

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        t0 = time.perf_counter()
        doc = Document.from_samples(samples, SAMPLE_RATE, device="cpu")
        t_doc = time.perf_counter() - t0
        window = MainWindow(settings)
        window.resize(1400, 900)
        window.show()
        window.set_document(doc)
        _wait_picture(app, window.view)
        t_first = time.perf_counter() - t0
        view = window.view
        log(f"first picture after {t_first:.2f} s (analysis {t_doc:.2f} s)")

        n_pan, n_zoom = max(int(args.pan_steps), 1), max(int(args.zoom_steps), 1)
        # Zoomed out: the whole sound; zooming in and back out around it, panning a near-whole view.
        view.fit()
        _wait_picture(app, view)
        out_zoom = _timed_steps(app, view, [
            (lambda k=k: view.zoom_time(1 / 1.25 if k % 2 == 0 else 1.25)) for k in range(n_zoom)])
        view.fit()
        view.zoom_time(1 / 1.25)
        _wait_picture(app, view)
        out_pan = _timed_steps(app, view, [
            (lambda k=k: view.pan_time(0.02 if (k // 5) % 2 == 0 else -0.02)) for k in range(n_pan)])
        # Zoomed in: a 5 s window (or a quarter of a short sound).
        width = min(5.0, doc.duration / 4)
        view.show_time_range(doc.duration / 3, doc.duration / 3 + width)
        _wait_picture(app, view)
        in_pan = _timed_steps(app, view, [
            (lambda k=k: view.pan_time(0.1 if (k // 10) % 2 == 0 else -0.1)) for k in range(n_pan)])
        in_zoom = _timed_steps(app, view, [
            (lambda k=k: view.zoom_time(1 / 1.25 if k % 2 == 0 else 1.25)) for k in range(n_zoom)])
        # Local edits on the whole-sound view: each changes a 1 s stretch of a long sound.
        view.fit()
        _wait_picture(app, view)
        n_edits = max(int(args.edits), 1)
        places = [doc.duration * (k + 1) / (n_edits + 1) for k in range(n_edits)]
        edits = [Edit(Rectangle(t, min(t + 1.0, doc.duration), 300.0, 3000.0), "gain", -20.0) for t in places]
        edit_ms = _timed_steps(app, view, [(lambda e=e: window.apply_edit(e)) for e in edits])
        undo_ms = _timed_steps(app, view, [window.undo_stack.undo] * n_edits)
        redo_ms = _timed_steps(app, view, [window.undo_stack.redo] * n_edits)
        window.set_document(None)
        window.shutdown()
        window.close()

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    rows = [["first picture (from_samples + window)", f"{seconds:g} s stereo", f"{t_first * 1000:.0f}",
             f"{t_first * 1000:.0f}", f"< {FIRST_PICTURE_TARGET_S * 1000:.0f}",
             verdict(t_first < FIRST_PICTURE_TARGET_S)],
            ["  of which analysis (from_samples)", "", f"{t_doc * 1000:.0f}", f"{t_doc * 1000:.0f}", "", ""]]
    for name, span, values, target in (
        ("pan, zoomed in", f"{width:g} s view", in_pan, REDRAW_TARGET_MS),
        ("zoom, zoomed in", f"{width:g} s view", in_zoom, REDRAW_TARGET_MS),
        ("pan, zoomed out", "~whole sound", out_pan, None),
        ("zoom, zoomed out", "whole sound", out_zoom, None),
    ):
        med, p95 = _percentile(values, 50), _percentile(values, 95)
        rows.append([f"redraw: {name} ({len(values)} steps)", span, f"{med:.1f}", f"{p95:.1f}",
                     f"< {target:.0f}" if target else "(reported)",
                     verdict(p95 < target) if target else ("PASS" if p95 < REDRAW_TARGET_MS else "info")])
    for name, values in (("a local edit", edit_ms), ("undo", undo_ms), ("redo", redo_ms)):
        # The first edit also builds whatever the target needs first: it shows in the p95.
        rows.append([f"overview refresh after {name} ({len(values)}x)", "whole sound, 1 s edit",
                     f"{_percentile(values, 50):.1f}", f"{_percentile(values, 95):.1f}", "(reported)", "info"])
    print(f"## scalgui bench editor: {seconds:g} s stereo, {SAMPLE_RATE} Hz, offscreen Qt, window 1400x900\n")
    print(markdown_table(["measurement", "view", "median ms", "p95 ms", "target ms", "result"], rows))
    print("\nPASS/MISS: first picture within 5 s; zoomed-in redraws at screen rate (p95 under 33 ms). "
          "Zoomed-out redraws are reported (info when slower than screen rate).")
    return 0
