"""The GPU checks, in one short run on a machine with CUDA (see scripts/gpu_check.sh).

Writes a JSON report (the path given, default ``gpu_check.json``) and prints one line
per check:

1. the frame on the GPU: exact reconstruction, and coefficients equal to the CPU's;
2. retrieval on the GPU against the CPU, same settings and seed (FGLA, ADMM, Adam on
   6 s of the example sound at 12 voices, 50 iterations): convergence within 1 dB;
3. a long sound retrieved whole and in windows under a memory limit on the GPU (60 s
   of the generated stereo song at 48 voices, ADMM, 20 iterations), with the GPU's peak
   memory;
4. issue 3's GPU target: the 3.5-minute generated stereo song, 100 iterations (FGLA, as
   ``scalgui bench invert`` times it, PGHI start included; ADMM too), target under 5 s;
5. ``scalgui invert --device cuda`` on a short file: the report names the GPU;
6. issue 21's GPU targets: on the 3.5-minute generated stereo song, the editor's render
   (``Document.render`` with ``DEFAULT_RENDER``) of a band -30 dB edit over the whole song
   and of a partial painted over the whole song, each timed after a warm-up render, with
   the fixed 32-iteration render beside them; target under 1 s each.

Exits 1 if a check fails (after running the rest), 2 without CUDA. ``--cpu`` runs the
same checks with the CPU standing in for the GPU (and a 20 s song): a rehearsal, so that
the script's own mistakes do not cost device time.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


import scalgui  # noqa: E402,F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from scalgui.bench import write_json_atomic  # noqa: E402
from scalgui.bench.analyze import generated_song  # noqa: E402
from scalgui.bench.invert import SONG_ITERATIONS, SONG_SECONDS, SONG_TARGET_S, THROUGHPUT_RATE, _throughput  # noqa: E402
from scalgui.dsp import signals  # noqa: E402
from scalgui.dsp.frame import RETRIEVAL_PAD_LIMIT, RETRIEVAL_VOICES, FrameSettings, WaveletFrame  # noqa: E402
from scalgui.dsp.metrics import spectral_convergence_db  # noqa: E402
from scalgui.dsp.phase import RetrievalSettings, retrieve  # noqa: E402

AGREEMENT_DB = 1.0  # CPU and GPU round differently; the convergence must not
LONG_SECONDS, LONG_LIMIT_MB = 60.0, 2000
DEVICE = "cuda"  # "cpu" with --cpu
REHEARSAL_SONG_SECONDS = 20.0


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _frame_agrees() -> dict:
    x = torch.as_tensor(signals.example_sound(44100))
    cpu = WaveletFrame(FrameSettings(44100, 12))
    gpu = WaveletFrame(FrameSettings(44100, 12), device=DEVICE)
    a, b = cpu.analyze(x), gpu.analyze(x.to(DEVICE))
    worst = max(float((ga.cpu() - ca).abs().max() / ca.abs().max()) for ca, ga in zip(a.groups, b.groups))
    error = float((gpu.synthesize(b).cpu() - x).norm() / x.norm())
    return {"coefficients_max_relative_difference": worst, "reconstruction_relative_error": error,
            "ok": worst < 1e-4 and error < 1e-5}


def _retrieval_agrees() -> dict:
    x = torch.as_tensor(signals.example_sound(44100))
    rows, ok = [], True
    for method in ("fgla", "admm", "adam"):
        row = {"method": method}
        for side, device in (("cpu", "cpu"), ("gpu", DEVICE)):
            frame = WaveletFrame(FrameSettings(44100, 12), device=device)
            target = frame.analyze(x.to(frame.device)).map(torch.abs)
            _sync()
            started = time.perf_counter()
            result = retrieve(frame, target, RetrievalSettings(method=method, iterations=50, seed=0))
            _sync()
            row[f"{side}_db"] = float(result.spectral_convergence_db)
            row[f"{side}_s"] = time.perf_counter() - started
            row[f"{side}_result_device"] = str(result.signal.device)
        row["ok"] = (abs(row["cpu_db"] - row["gpu_db"]) < AGREEMENT_DB
                     and row["gpu_result_device"].startswith(DEVICE))
        ok &= row["ok"]
        rows.append(row)
    return {"rows": rows, "ok": ok}


def _long_sound() -> dict:
    song = torch.as_tensor(generated_song(LONG_SECONDS, 44100))
    settings = FrameSettings(44100, RETRIEVAL_VOICES).for_retrieval()
    frame = WaveletFrame(settings, device=DEVICE, pad_limit=RETRIEVAL_PAD_LIMIT)
    target = frame.analyze(song.to(DEVICE)).map(torch.abs)
    out = {}
    for name, limit in (("whole", 2**50), ("windowed", LONG_LIMIT_MB * 2**20)):
        _sync()
        if DEVICE == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = retrieve(frame, target, RetrievalSettings(method="admm", iterations=20), memory_limit=limit)
        _sync()
        exact = spectral_convergence_db(frame.analyze(result.signal).groups, target.groups)
        out[name] = {"windows": result.windows, "spectral_convergence_db": float(result.spectral_convergence_db),
                     "recomputed_db": float(exact), "seconds": time.perf_counter() - started,
                     "gpu_peak_gb": torch.cuda.max_memory_allocated() / 1e9 if DEVICE == "cuda" else None}
        del result
    out["ok"] = (out["windowed"]["windows"] > 1
                 and out["windowed"]["spectral_convergence_db"] < out["whole"]["spectral_convergence_db"] + 1.0
                 and abs(out["windowed"]["recomputed_db"] - out["windowed"]["spectral_convergence_db"]) < 0.05)
    return out


def _song_target() -> dict:
    song = generated_song(SONG_SECONDS if DEVICE == "cuda" else REHEARSAL_SONG_SECONDS, THROUGHPUT_RATE)
    rows = [_throughput(song, DEVICE, SONG_ITERATIONS, setup_run=True, warmup=True, method=method)
            for method in ("fgla", "admm")]
    return {"rows": rows, "target_s": SONG_TARGET_S, "ok": rows[0]["seconds"] < SONG_TARGET_S}


def _cli_on_cuda() -> dict:
    from pedalboard.io import AudioFile

    from scalgui.cli import main

    with tempfile.TemporaryDirectory() as folder:
        wav, out, report = (Path(folder) / name for name in ("in.wav", "out.wav", "report.json"))
        x = signals.example_sound(44100)[:, : 3 * 44100]
        with AudioFile(str(wav), "w", 44100, x.shape[0]) as f:
            f.write(np.ascontiguousarray(x))
        code = main(["invert", str(wav), "-o", str(out), "--device", DEVICE, "--iters", "20",
                     "--report", str(report)])
        data = json.loads(report.read_text()) if report.exists() else {}
    return {"exit_code": code, "device": data.get("device"), "spectral_convergence_db":
            data.get("spectral_convergence_db"), "ok": code == 0 and str(data.get("device", "")).startswith(DEVICE)}


RENDER_TARGET_S = 1.0


def _render_targets() -> dict:
    from scalgui.app.document import DEFAULT_RENDER, FIXED_RENDER, Document
    from scalgui.bench.editor import make_sound
    from scalgui.dsp.edits import Band, Edit, Rectangle, Stroke

    seconds = SONG_SECONDS if DEVICE == "cuda" else REHEARSAL_SONG_SECONDS
    doc = Document.from_samples(make_sound(seconds), 44100, device=DEVICE)
    doc.push(Edit(Rectangle(1.0, 2.0, 300.0, 3000.0), "gain", -10.0))
    doc.render()  # warm-up: plans, compiled kernels
    edits = {"band -30 dB, whole song": Edit(Band(2000.0, 4000.0), "gain", -30.0),
             "painted partial, whole song": Edit(Stroke(((0.0, 1000.0), (seconds, 2000.0)), radius_s=0.05,
                                                        radius_oct=1 / 24), "paint", -20.0)}
    rows = []
    for name, edit in edits.items():
        for label, settings in (("adaptive", DEFAULT_RENDER), ("fixed", FIXED_RENDER)):
            doc.restore([edit])
            _sync()
            started = time.perf_counter()
            result = doc.render(settings)
            _sync()
            rows.append({"edit": name, "settings": label, "seconds": time.perf_counter() - started,
                         "iterations": result.iterations, "stopped": result.stopped,
                         "spectral_convergence_db": result.spectral_convergence_db})
    adaptive = [r for r in rows if r["settings"] == "adaptive"]
    return {"rows": rows, "target_s": RENDER_TARGET_S, "met": all(r["seconds"] < RENDER_TARGET_S for r in adaptive),
            "ok": all(np.isfinite(r["spectral_convergence_db"]) for r in rows)}


def main(argv: list[str]) -> int:
    global DEVICE
    if "--cpu" in argv:
        DEVICE = "cpu"
        argv = [a for a in argv if a != "--cpu"]
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here", file=sys.stderr)
        return 2
    path = Path(argv[0] if argv else "gpu_check.json")
    report: dict = {"gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "none (a rehearsal on the CPU)",
                    "torch": torch.__version__, "cpus": os.cpu_count()}
    checks = (("frame", _frame_agrees), ("retrieval", _retrieval_agrees), ("long_sound", _long_sound),
              ("song_target", _song_target), ("cli", _cli_on_cuda), ("render_targets", _render_targets))
    for name, check in checks:
        started = time.perf_counter()
        try:
            report[name] = check()
        except Exception:  # noqa: BLE001 - a broken check is reported and the others still run
            report[name] = {"ok": False, "error": traceback.format_exc()}
        report[name]["check_seconds"] = time.perf_counter() - started
        print(f"{name}: {'ok' if report[name]['ok'] else 'FAILED'} "
              f"{json.dumps(report[name], default=str)[:1500]}", flush=True)
        write_json_atomic(path, report)
    return 0 if all(report[name]["ok"] for name, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
