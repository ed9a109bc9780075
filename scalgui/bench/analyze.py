"""``scalgui bench analyze``: scalgui's wavelet frame against ssqueezepy's CWT.

For every signal, at the same number of voices per octave, in one run:

* **ours**: ``WaveletFrame(FrameSettings(sr, Q)).analyze`` and ``.synthesize`` (median
  wall time of ``--repeat`` runs after one warm-up; the frame and its FFT plans are
  built by the warm-up), relative L2 reconstruction error, coefficients per sample;
* **ssqueezepy**: ``cwt(x, nv=Q)`` (default generalised Morse wavelet, full rate) and
  ``icwt(Wx, scales=scales, nv=Q, x_mean=mean(x))``, timed the same way, and its
  reconstruction error; the ratio of its time to ours.

Signals: a generated 10 s mono mix at 44.1 kHz (exponential chirp + chord + noise
bursts), every audio file in ``--corpus`` (ssqueezepy on the mono mix-down; ours on the
mono mix-down and on all channels), and a generated 3.5-minute stereo "song" (ours only:
a full-rate CWT of 210 s holds ~1 GB per band-octave and ~9 GB per channel).

Peak memory is measured in fresh interpreters (one per method and signal), so the figure
is what that transform needs on top of the imports, not what this process has touched.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

from . import (
    check_corpus_and_json,
    log,
    machine_info,
    markdown_table,
    peak_rss_bytes,
    run_in_fresh_process,
    time_median,
    write_json_atomic,
)

HELP = "time wavelet analysis and synthesis against ssqueezepy's cwt/icwt (same voices per octave)"

SAMPLE_RATE = 44100
SPEED_TARGET = 30.0  # ours at least this many times faster than ssqueezepy's cwt
SPEED_TARGET_SECONDS = 10.0
SONG_SECONDS = 210.0
SONG_TARGET_S = 3.0
SONG_TARGET_RSS = 2 * 1024**3
CHILD_TIMEOUT_S = 1800


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", metavar="DIR", help="also benchmark every audio file in this folder")
    parser.add_argument("--voices", type=int, default=12, metavar="Q", help="voices per octave for both (default 12)")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="timed runs per measurement after one warm-up; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="one timed run per measurement")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                        help="device for scalgui's transform (default cpu; ssqueezepy runs on the CPU)")
    parser.add_argument("--ssq-max-seconds", type=float, default=60.0, metavar="S",
                        help="skip ssqueezepy on signals longer than this (its full-rate CWT needs "
                             "~200 MB per second of 44.1 kHz audio at Q=12; default 60)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    # For tests: a short generated signal, no song.
    parser.add_argument("--seconds", type=float, default=SPEED_TARGET_SECONDS, help=argparse.SUPPRESS)
    parser.add_argument("--no-song", action="store_true", help=argparse.SUPPRESS)


def _fail(message: str) -> int:
    print(f"scalgui: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- signals


def generated_mix(seconds: float, sample_rate: float):
    """A mono test mix: exponential chirp 50 Hz-16 kHz + A-major chord + noise bursts."""
    import numpy as np

    from scalgui.dsp import signals

    x = (
        signals.exponential_chirp(50.0, 16000.0, seconds, sample_rate, amplitude=0.3)
        + signals.chord((220.0, 277.18, 329.63), seconds, sample_rate, amplitude=0.3)
        + signals.noise_bursts(seconds, sample_rate, seed=0, amplitude=0.3)
    )
    return x.astype(np.float32)


def generated_song(seconds: float, sample_rate: float):
    """A stereo 'song': example-sound variants (different seeds) end to end, cut to length."""
    import numpy as np

    from scalgui.dsp import signals

    pieces = math.ceil(seconds / signals.EXAMPLE_DURATION_S)
    song = np.concatenate([signals.example_sound(sample_rate, seed=s) for s in range(pieces)], axis=1)
    return np.ascontiguousarray(song[:, : int(round(seconds * sample_rate))])


def _corpus_files(folder: Path) -> list[Path]:
    from pedalboard.io import get_supported_read_formats

    extensions = {e.lower() for e in get_supported_read_formats()}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)


# --------------------------------------------------------------------------- measurements


def _relative_error(y, x) -> float:
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    norm = np.linalg.norm(x)
    return float(np.linalg.norm(y - x) / norm) if norm > 0 else float(np.linalg.norm(y))


def _ours(x, sample_rate: float, voices: int, device: str, repeat: int) -> dict:
    import torch

    from scalgui.dsp.frame import FrameSettings, WaveletFrame

    frame = WaveletFrame(FrameSettings(sample_rate, voices), device=device)
    sync = torch.cuda.synchronize if frame.device.type == "cuda" else None
    signal = torch.as_tensor(x).to(frame.device)
    analyze_s, analyze_runs = time_median(lambda: frame.analyze(signal), repeat, sync=sync)
    coeffs = frame.analyze(signal)
    synth_s, synth_runs = time_median(lambda: frame.synthesize(coeffs), repeat, sync=sync)
    y = frame.synthesize(coeffs).cpu().numpy()
    return {
        "analyze_s": analyze_s,
        "analyze_runs_s": analyze_runs,
        "synthesize_s": synth_s,
        "synthesize_runs_s": synth_runs,
        "error": _relative_error(y, x),
        "bands": len(frame.bands.wavelet_indices),
        "atoms": len(frame.bands),
        "coefficients_per_sample": float(frame.coefficients_per_sample),
        "device": str(frame.device),
    }


def _ssq(x, voices: int, repeat: int) -> dict:
    from ssqueezepy import cwt, icwt

    mean = float(x.mean())
    cwt_s, cwt_runs = time_median(lambda: cwt(x, nv=voices), repeat)
    wx, scales = cwt(x, nv=voices)
    icwt_s, icwt_runs = time_median(lambda: icwt(wx, scales=scales, nv=voices, x_mean=mean), repeat)
    y = icwt(wx, scales=scales, nv=voices, x_mean=mean)
    return {
        "cwt_s": cwt_s,
        "cwt_runs_s": cwt_runs,
        "icwt_s": icwt_s,
        "icwt_runs_s": icwt_runs,
        "error": _relative_error(y, x),
        "scales": int(wx.shape[0]),
    }


def memory_ours(job: dict) -> dict:
    """Child process: peak RSS of one analysis and one synthesis with scalgui's frame."""
    start = peak_rss_bytes()
    import time

    import numpy as np
    import torch

    from scalgui.dsp.frame import FrameSettings, WaveletFrame

    x = np.load(job["signal"])
    baseline = peak_rss_bytes()
    frame = WaveletFrame(FrameSettings(job["sample_rate"], job["voices"]), device=job["device"])
    signal = torch.as_tensor(x).to(frame.device)
    sync = torch.cuda.synchronize if frame.device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    coeffs = frame.analyze(signal)
    sync()
    first = time.perf_counter() - t0
    after_analysis = peak_rss_bytes()
    y = frame.synthesize(coeffs)
    sync()
    del y
    return {"interpreter": start, "baseline": baseline, "after_analysis": after_analysis,
            "after_inverse": peak_rss_bytes(), "first_call_s": first}


def memory_ssq(job: dict) -> dict:
    """Child process: peak RSS of one ssqueezepy cwt and one icwt."""
    start = peak_rss_bytes()
    import time

    import numpy as np
    from ssqueezepy import cwt, icwt

    x = np.load(job["signal"])
    baseline = peak_rss_bytes()
    t0 = time.perf_counter()
    wx, scales = cwt(x, nv=job["voices"])
    first = time.perf_counter() - t0
    after_analysis = peak_rss_bytes()
    y = icwt(wx, scales=scales, nv=job["voices"], x_mean=float(x.mean()))
    del y
    return {"interpreter": start, "baseline": baseline, "after_analysis": after_analysis,
            "after_inverse": peak_rss_bytes(), "first_call_s": first}


# --------------------------------------------------------------------------- formatting


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _e(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.1f}x"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _signal_table(rows: list[dict]) -> str:
    header = ["signal", "rate kHz", "channels", "length s", "ours bands", "ours coef/sample",
              "ours analyse s", "ours synth s", "ours error", "ssq scales", "ssq cwt s", "ssq icwt s",
              "ssq error", "cwt ratio", "inverse ratio"]
    body = []
    notes = []
    for r in rows:
        o, q = r["ours"], r.get("ssq")
        if q is None or "skipped" in q:
            if q is not None:
                notes.append(f"- {r['signal']} ({r['channels']}): ssqueezepy skipped: {q['skipped']}")
            q = {}
        body.append([
            r["signal"], f"{r['sample_rate'] / 1000:g}", r["channels"], f"{r['seconds']:.1f}",
            o["bands"], f"{o['coefficients_per_sample']:.2f}", _s(o["analyze_s"]), _s(o["synthesize_s"]),
            _e(o["error"]), q.get("scales", "-"), _s(q.get("cwt_s")), _s(q.get("icwt_s")), _e(q.get("error")),
            _ratio(q.get("cwt_s"), o["analyze_s"]), _ratio(q.get("icwt_s"), o["synthesize_s"]),
        ])
    return markdown_table(header, body) + ("\n\n" + "\n".join(notes) if notes else "")


def _memory_table(rows: list[dict]) -> str:
    header = ["signal", "method", "first call s", "baseline RSS MB", "peak RSS after analysis MB",
              "peak RSS after inverse MB", "analysis own MB"]
    body = []
    for r in rows:
        m = r["memory"]
        if "error" in m:
            body.append([r["signal"], r["method"], "-", "-", f"failed: {m['error']}", "-", "-"])
            continue
        body.append([r["signal"], r["method"], _s(m["first_call_s"]), _mb(m["baseline"]),
                     _mb(m["after_analysis"]), _mb(m["after_inverse"]),
                     _mb(m["after_analysis"] - m["baseline"])])
    return markdown_table(header, body)


# --------------------------------------------------------------------------- run


def _measure_memory(method: str, signal_name: str, x, sample_rate: float, args, folder: Path) -> dict:
    import numpy as np

    path = folder / f"{len(os.listdir(folder))}.npy"
    np.save(path, x)
    job = {"signal": str(path), "sample_rate": sample_rate, "voices": args.voices, "device": args.device}
    target = f"scalgui.bench.analyze:memory_{'ours' if method == 'scalgui' else 'ssq'}"
    log(f"  peak memory of {method} on {signal_name} in a fresh process...")
    try:
        memory = run_in_fresh_process(target, job, timeout=CHILD_TIMEOUT_S)
    except RuntimeError as exc:
        memory = {"error": str(exc)}
    finally:
        path.unlink(missing_ok=True)
    return {"signal": signal_name, "method": method, "memory": memory}


def _bench_signal(name: str, x, sample_rate: float, channels: str, args, repeat: int,
                  with_ssq: bool, ssq_skip: str | None = None) -> dict:
    seconds = x.shape[-1] / sample_rate
    log(f"{name} ({channels}, {seconds:.1f} s): scalgui...")
    row = {"signal": name, "channels": channels, "sample_rate": sample_rate, "seconds": seconds,
           "ours": _ours(x, sample_rate, args.voices, args.device, repeat)}
    if ssq_skip is not None:
        row["ssq"] = {"skipped": ssq_skip}
    elif with_ssq:
        if seconds > args.ssq_max_seconds:
            gigabytes = row["ours"]["bands"] * x.shape[-1] * 8 / 1e9
            row["ssq"] = {"skipped": f"longer than --ssq-max-seconds {args.ssq_max_seconds:g} s "
                                     f"(its full-rate CWT alone would hold > {gigabytes:.1f} GB)"}
        else:
            log(f"{name} ({channels}): ssqueezepy...")
            row["ssq"] = _ssq(x, args.voices, repeat)
    return row


def _targets(rows: list[dict], memory: list[dict], args) -> list[dict]:
    out = []
    gen = next((r for r in rows if r["signal"] == "generated mix"), None)
    q = (gen or {}).get("ssq") or {}
    label = (f"analysis >= {SPEED_TARGET:g}x faster than ssqueezepy cwt at {args.voices} voices/octave "
             f"on {SPEED_TARGET_SECONDS:g} s of 44.1 kHz")
    if gen is None or "cwt_s" not in q:
        out.append({"target": label, "value": "not measured (ssqueezepy missing)", "status": "n/a"})
    else:
        ratio = q["cwt_s"] / gen["ours"]["analyze_s"]
        judged = abs(gen["seconds"] - SPEED_TARGET_SECONDS) < 1e-6
        out.append({"target": label, "value": f"{ratio:.1f}x",
                    "status": ("PASS" if ratio >= SPEED_TARGET else "MISS") if judged
                    else f"not judged (signal is {gen['seconds']:g} s)"})
    song = next((r for r in rows if r["signal"] == "generated song"), None)
    song_mem = next((m["memory"] for m in memory if m["signal"] == "generated song"), None)
    label = f"3.5-minute stereo song analysed in < {SONG_TARGET_S:g} s"
    if song is None:
        out.append({"target": label, "value": "not measured (--no-song)", "status": "n/a"})
    else:
        t = song["ours"]["analyze_s"]
        out.append({"target": label + " (median after a warm-up)", "value": f"{t:.2f} s",
                    "status": "PASS" if t < SONG_TARGET_S else "MISS"})
        first = song_mem.get("first_call_s") if song_mem else None
        label_cold = label + " (first call in a fresh process, FFT plans included)"
        if first is None:
            out.append({"target": label_cold, "value": "not measured", "status": "n/a"})
        else:
            out.append({"target": label_cold, "value": f"{first:.2f} s",
                        "status": "PASS" if first < SONG_TARGET_S else "MISS"})
    label = f"... with peak RSS < {SONG_TARGET_RSS / 2**30:g} GB (fresh process, imports included)"
    if song_mem is None or "error" in song_mem:
        out.append({"target": label, "value": "not measured", "status": "n/a"})
    else:
        peak = song_mem["after_analysis"]
        out.append({"target": label, "value": f"{peak / 2**30:.2f} GB",
                    "status": "PASS" if peak < SONG_TARGET_RSS else "MISS"})
    return out


def run(args: argparse.Namespace) -> int:
    repeat = 1 if args.quick and args.repeat is None else (args.repeat or 3)
    if repeat < 1:
        return _fail(f"--repeat must be at least 1, got {repeat}")
    if args.seconds < 0.5:
        return _fail(f"--seconds must be at least 0.5, got {args.seconds:g}")
    corpus, problem = check_corpus_and_json(args)
    if problem:
        return _fail(problem)

    import numpy as np
    import torch

    from scalgui.audio import AudioError, load_audio
    from scalgui.dsp.frame import resolve_device

    if resolve_device(args.device).type == "cuda" and not torch.cuda.is_available():
        return _fail("--device cuda: no CUDA device is available")
    try:
        import ssqueezepy
    except ImportError:
        ssqueezepy = None
    machine = machine_info()
    machine["ssqueezepy"] = getattr(ssqueezepy, "__version__", None)
    with_ssq = ssqueezepy is not None

    rows: list[dict] = []
    memory: list[dict] = []
    skipped_files: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scalgui-bench-") as tmp:
        folder = Path(tmp)
        x = generated_mix(args.seconds, SAMPLE_RATE)
        rows.append(_bench_signal("generated mix", x, SAMPLE_RATE, "mono", args, repeat, with_ssq))
        memory.append(_measure_memory("scalgui", "generated mix", x, SAMPLE_RATE, args, folder))
        if with_ssq:
            memory.append(_measure_memory("ssqueezepy", "generated mix", x, SAMPLE_RATE, args, folder))

        for path in _corpus_files(corpus) if corpus is not None else []:
            try:
                audio = load_audio(path)
            except AudioError as exc:
                log(f"skipping {path.name}: {exc}")
                skipped_files.append(str(exc))
                continue
            mono = audio.samples.mean(axis=0, dtype=np.float32) if audio.channels > 1 else audio.samples[0]
            rows.append(_bench_signal(path.name, mono, audio.sample_rate,
                                      "mono mix" if audio.channels > 1 else "mono", args, repeat, with_ssq))
            if audio.channels > 1:
                rows.append(_bench_signal(path.name, audio.samples, audio.sample_rate,
                                          f"{audio.channels} ch", args, repeat, with_ssq,
                                          ssq_skip="it analyses one channel at a time, so its cost "
                                                   "is the mono row's times the number of channels"))

        if not args.no_song:
            song = generated_song(SONG_SECONDS, SAMPLE_RATE)
            scales = rows[0].get("ssq", {}).get("scales") or rows[0]["ours"]["bands"]
            gigabytes = scales * song.shape[-1] * 8 / 1e9  # complex64 scales x samples, one channel
            rows.append(_bench_signal(
                "generated song", song, SAMPLE_RATE, "stereo", args, repeat, with_ssq,
                ssq_skip=f"a full-rate CWT of {SONG_SECONDS:g} s holds ~{gigabytes:.0f} GB per "
                         f"channel ({scales} scales x {song.shape[-1]} samples x 8 bytes)"))
            memory.append(_measure_memory("scalgui", "generated song", song, SAMPLE_RATE, args, folder))
            del song

    targets = _targets(rows, memory, args)
    _print_report(machine, args, repeat, rows, memory, targets, skipped_files)
    if args.json:
        write_json_atomic(args.json, {
            "benchmark": "analyze", "voices_per_octave": args.voices, "repeat": repeat,
            "device": args.device, "machine": machine, "signals": rows, "memory": memory,
            "targets": targets, "skipped_files": skipped_files,
        })
        log(f"wrote {args.json}")
    return 0


def _print_report(machine, args, repeat, rows, memory, targets, skipped_files) -> None:
    cuda = f", CUDA: {machine['cuda']}" if machine["cuda"] else ""
    print("## scalgui bench analyze")
    print()
    print(f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs ({machine['usable_cpus']} usable){cuda}; "
          f"Python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads, "
          f"OMP_WAIT_POLICY={machine['omp_wait_policy']}), ssqueezepy {machine['ssqueezepy'] or 'not installed'}.")
    print(f"Voices per octave: {args.voices} for both. scalgui on {args.device}, float32; "
          f"ssqueezepy cwt/icwt defaults (GMW wavelet, float32, CPU). "
          f"Times: median of {repeat} run(s) after one warm-up. Errors: relative L2 of the reconstruction. "
          f"Ratios: ssqueezepy time / scalgui time.")
    print()
    print(_signal_table(rows))
    print()
    print("Peak resident memory, each in a fresh interpreter (baseline = after imports and loading the signal; "
          "'first call' includes building FFT plans):")
    print()
    print(_memory_table(memory))
    if skipped_files:
        print()
        print("Corpus files skipped: " + "; ".join(skipped_files))
    print()
    print("Targets:")
    for t in targets:
        print(f"- {t['target']}: {t['value']} -> {t['status']}")
