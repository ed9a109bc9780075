"""``scalgui bench memory``: peak memory of the editor's work on a long sound.

The issue's requirement is that a one-hour stereo 44.1 kHz file opens and renders on a
24 GiB machine. This benchmark checks exactly that, headless: it writes a generated
stereo file of ``--minutes`` minutes to disk in chunks (a few tones, a slow glide and
noise, so that every band carries energy), opens it with :meth:`Document.open`, makes one
local edit (a one-second rectangle at -30 dB in the middle), renders, and exports the
result. For each step it reports the wall time, the peak resident memory during the step
and the resident memory after it.

Peak memory per step: on Linux the process's high-water mark (``VmHWM``) is reset before
each step by writing ``5`` to ``/proc/self/clear_refs``; where that is not possible the
peaks are cumulative (the table says so).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HELP = ("peak memory and time to open, edit, render and export a long stereo file "
        "(default one hour at 44.1 kHz)")

SAMPLE_RATE = 44100
CHANNELS = 2
CHUNK_S = 60.0  # seconds generated and written per step, so generation itself stays small
GIB = 2.0**30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=60.0, metavar="M",
                        help="length of the generated stereo 44.1 kHz file (default 60)")
    parser.add_argument("--folder", metavar="DIR", default=None,
                        help="where to write the generated file and the export (default: a temporary "
                             "folder, removed afterwards; it needs about 21 MB per minute)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="torch device of the document (default auto)")


def write_long_file(path: Path, minutes: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Write a stereo 16-bit WAV of ``minutes`` minutes in one-minute chunks.

    Returns
    -------
    int
        Frames per channel written.
    """
    import numpy as np
    from pedalboard.io import AudioFile

    frames = int(round(minutes * 60.0 * sample_rate))
    chunk = int(CHUNK_S * sample_rate)
    rng = np.random.default_rng(0)
    with AudioFile(str(path), "w", sample_rate, CHANNELS, bit_depth=16) as out:
        for start in range(0, frames, chunk):
            t = (np.arange(start, min(start + chunk, frames)) / sample_rate)
            glide_hz = 200.0 * 2.0 ** (4.0 * ((t / 600.0) % 1.0))  # 200 Hz to 3.2 kHz every 10 min
            phase = 2 * np.pi * np.cumsum(glide_hz) / sample_rate
            tone = 0.2 * np.sin(2 * np.pi * 110.0 * t) + 0.1 * np.sin(2 * np.pi * 1760.0 * t)
            left = tone + 0.1 * np.sin(phase) + 0.02 * rng.standard_normal(t.size)
            right = tone + 0.1 * np.cos(phase) + 0.02 * rng.standard_normal(t.size)
            out.write(np.stack([left, right]).astype(np.float32))
    return frames


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset this process's peak-RSS mark (Linux); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _rss_now() -> int:
    now = _status_bytes("VmRSS")
    if now is not None:
        return now
    from scalgui.bench import peak_rss_bytes

    return peak_rss_bytes()


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def run(args: argparse.Namespace) -> int:
    from scalgui.bench import log, markdown_table, peak_rss_bytes

    minutes = float(args.minutes)
    if not minutes > 0:
        print("scalgui: error: bench memory: --minutes must be positive", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="scalgui-bench-memory-", dir=args.folder) as folder:
        folder = Path(folder)
        source = folder / "long.wav"
        rows, resettable = [], True

        def step(name: str, fn):
            nonlocal resettable
            resettable = _reset_peak() and resettable
            log(f"bench memory: {name} ...")
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
            peak, after = peak_rss_bytes(), _rss_now()
            rows.append([name, f"{seconds:.1f}", f"{peak / GIB:.2f}", f"{after / GIB:.2f}"])
            log(f"bench memory: {name}: {seconds:.1f} s, peak {peak / GIB:.2f} GiB")
            return result

        step(f"write {minutes:g} min stereo WAV", lambda: write_long_file(source, minutes))
        from scalgui.app.document import Document
        from scalgui.dsp.edits import Edit, Rectangle

        doc = step("open (decode + analyse)", lambda: Document.open(source, device=args.device))
        middle = doc.duration / 2
        step("local edit (1 s, 500-4000 Hz, -30 dB)",
             lambda: doc.push(Edit(Rectangle(middle, middle + 1.0, 500.0, 4000.0), "gain", -30.0)))
        result = step("render", doc.render)
        step("export (24-bit WAV)", lambda: doc.export(folder / "long-edited.wav"))
        overall = max(float(r[2]) for r in rows)
        total = _total_memory()
        print(f"## scalgui bench memory: {minutes:g} min stereo {SAMPLE_RATE} Hz "
              f"({doc.frames * doc.channels / 1e6:.0f} M samples), device {doc.frame.device}\n")
        print(markdown_table(["step", "seconds", "peak RSS GiB", "RSS after GiB"], rows))
        note = "" if resettable else " (peaks are cumulative: this system cannot reset the peak mark)"
        print(f"\nPeak over all steps: {overall:.2f} GiB{note}"
              + (f" of {total / GIB:.1f} GiB physical memory" if total else "")
              + f"; render: {result.iterations} iterations, spectral convergence "
                f"{result.spectral_convergence_db:.1f} dB over the re-rendered span.")
    return 0
