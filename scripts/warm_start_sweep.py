"""How should a render after an edit start? The source's phase, or PGHI where the edit
made new content?

The editor's renders start from the source's phase (``init="original"``). Where an edit
asks for much more than the source has there (a partial painted into silence, content
moved by a transpose), that phase is round-off or faint noise. This script renders
typical edits on real and generated sound and prints, for several values of
``scalgui.dsp.phase.NEW_CONTENT_DB`` (off: the source's phase everywhere), the spectral
convergence of the render against the edited target (dB, over the re-rendered windows;
lower is closer) before the first iteration and after the editor's 32, and the time.

    python scripts/warm_start_sweep.py [--corpus ../shared/corpus] [--iters 32] [--method fgla|admm]
                                       [--thresholds DB ...] [--edits NAME ...]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scalgui  # noqa: E402,F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)
import numpy as np  # noqa: E402

from scalgui.app.document import Document  # noqa: E402
from scalgui.bench.render import loudest_stretch  # noqa: E402
from scalgui.dsp import phase, signals  # noqa: E402
from scalgui.dsp.edits import Edit, Rectangle, Stroke, TimeRange  # noqa: E402
from scalgui.dsp.phase import RetrievalSettings  # noqa: E402
from scalgui.plugins import PluginEdit, default_registry  # noqa: E402

THRESHOLDS = (math.inf, 40.0, 30.0, 20.0)


def load_signals(corpus: Path | None) -> dict[str, tuple[np.ndarray, float]]:
    sr = 44100
    out = {"example sound, 6 s stereo (generated)": (signals.example_sound(sr), sr)}
    if corpus is not None:
        from scalgui.audio import load_audio

        speech = load_audio(corpus / "Front_Center.wav", channels="mono")
        music = load_audio(corpus / "sad.ogg", channels="mono")
        m = music.sample_rate
        out["speech (Front_Center.wav), 1.4 s"] = (speech.samples, speech.sample_rate)
        out["orchestra (sad.ogg 10-16 s)"] = (music.samples[:, int(10 * m) : int(16 * m)], m)
    return out


def edits(samples: np.ndarray, sr: float):
    """Typical edits: a partial painted at 35-55 % of the sound's length (wherever that
    is, silence included), the others over its loudest fifth."""
    registry = default_registry()
    duration = samples.shape[-1] / sr
    p, q = 0.35 * duration, 0.55 * duration
    a = loudest_stretch(samples, sr, 0.2 * duration)
    b = a + 0.2 * duration
    return {
        "paint a rising partial (-20 dBFS)": Edit(Stroke(((p, 1500.0), (q, 3000.0)), radius_s=0.05,
                                                         radius_oct=1 / 24), "paint", -20.0),
        "transpose a rectangle up 7 semitones": PluginEdit.create(registry.get("transpose"), {"semitones": 7.0},
                                                                  Rectangle(a, b, 200.0, 2000.0)),
        "heal a gap": PluginEdit.create(registry.get("heal"), {}, TimeRange(a, a + 0.05 * duration)),
        "gain +12 dB (no new content)": Edit(Rectangle(a, b, 300.0, 3000.0), "gain", 12.0),
        "gain +24 dB (no new content)": Edit(Rectangle(a, b, 300.0, 3000.0), "gain", 24.0),
        "gain -30 dB (no new content)": Edit(Rectangle(a, b, 300.0, 3000.0), "gain", -30.0),
    }


def render(samples: np.ndarray, sr: float, edit, iterations: int, method: str = "fgla") -> tuple[float, float]:
    doc = Document.from_samples(samples, sr, device="cpu")
    doc.push(edit)
    started = time.perf_counter()
    result = doc.render(RetrievalSettings(method=method, init="original", iterations=iterations))
    return result.spectral_convergence_db, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--iters", type=int, default=32)
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS,
                        help="values of NEW_CONTENT_DB to compare (inf: the source's phase everywhere)")
    parser.add_argument("--edits", nargs="+", default=None, help="only the edits whose names start so")
    parser.add_argument("--method", default="fgla", choices=phase.METHODS,
                        help="retrieval method of the renders (the editor's: fgla)")
    args = parser.parse_args(argv)
    thresholds = args.thresholds
    names = ["off" if math.isinf(t) else f"{t:g} dB" for t in thresholds]
    print(f"| signal | edit | {' | '.join(f'{n}: start / {args.iters} it, s' for n in names)} |")
    print("|---|---|" + "---|" * len(thresholds))
    for label, (samples, sr) in load_signals(args.corpus).items():
        for what, edit in edits(samples, sr).items():
            if args.edits and not any(what.startswith(e) for e in args.edits):
                continue
            cells = []
            for threshold in thresholds:
                phase.NEW_CONTENT_DB = threshold
                start, _ = render(samples, sr, edit, 0, args.method)
                end, seconds = render(samples, sr, edit, args.iters, args.method)
                cells.append(f"{start:.1f} / {end:.1f}, {seconds:.2f}")
            print(f"| {label} | {what} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
