"""Which frame retrieves phase best? FGLA on frames of different redundancy vs Griffin-Lim.

Prints a markdown table: for each frame (voices per octave / bandwidth voices) and each
signal, the multi-resolution STFT spectral convergence (dB, FFT sizes 256/1024/4096)
of the retrieved signal against the original, and the wall time; librosa's Griffin-Lim
(momentum 0.99, the better of n_fft 1024 and 2048, hop n_fft/4) on the same signals.

    python scripts/frame_sweep.py --corpus ../shared/corpus [--iters 100]

Without --corpus it uses generated speech-like and music signals.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scalgui  # noqa: E402,F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from scalgui.dsp import signals  # noqa: E402
from scalgui.dsp.frame import RETRIEVAL_PAD_LIMIT, FrameSettings, WaveletFrame  # noqa: E402
from scalgui.dsp.metrics import multiresolution_stft_convergence_db  # noqa: E402
from scalgui.dsp.phase import RetrievalSettings, retrieve  # noqa: E402

FRAMES = ((12, 12), (12, 6), (24, 12), (48, 24), (48, 12))


def load_signals(corpus: Path | None) -> dict[str, tuple[np.ndarray, float]]:
    if corpus is None:
        sr = 44100
        return {
            "speech-like, 2 s (generated)": (signals.noise_bursts(2.0, sr, seed=0), sr),
            "example music, 6 s (generated)": (signals.example_sound(sr).mean(0), sr),
        }
    from scalgui.audio import load_audio

    speech = load_audio(corpus / "Front_Center.wav", channels="mono")
    music = load_audio(corpus / "sad.ogg", channels="mono")
    sr = music.sample_rate
    return {
        "speech (Front_Center.wav), 1.4 s": (speech.samples[0], speech.sample_rate),
        "orchestra (sad.ogg 10-16 s)": (music.samples[0, int(10 * sr) : int(16 * sr)], sr),
    }


def griffin_lim(x: np.ndarray, iterations: int) -> tuple[float, float]:
    import librosa

    best = None
    for n_fft in (1024, 2048):
        hop = n_fft // 4
        spectrum = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
        started = time.perf_counter()
        y = librosa.griffinlim(spectrum, n_iter=iterations, hop_length=hop, n_fft=n_fft, momentum=0.99,
                               random_state=0, length=len(x))
        seconds = time.perf_counter() - started
        db = multiresolution_stft_convergence_db(y, x)
        if best is None or db < best[0]:
            best = (db, seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--init", default="pghi", help="initial phase (default pghi)")
    args = parser.parse_args()
    data = load_signals(args.corpus)
    names = list(data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FGLA from the {args.init} phase; "
          f"each cell: the initial phase alone (0 iterations), then after {args.iters} iterations with the time; "
          "multi-resolution STFT spectral convergence vs the original (lower is closer)\n")
    print("| frame (voices / bandwidth voices) | coefficients per sample | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for voices, bandwidth in FRAMES:
        cells, cps = [], None
        for name in names:
            x, sr = data[name]
            frame = WaveletFrame(FrameSettings(sr, voices, bandwidth_voices=bandwidth), pad_limit=RETRIEVAL_PAD_LIMIT)
            cps = frame.coefficients_per_sample
            target = frame.analyze(torch.from_numpy(x)).map(torch.abs)
            start = retrieve(frame, target, RetrievalSettings(iterations=0, init=args.init))
            result = retrieve(frame, target, RetrievalSettings(iterations=args.iters, init=args.init))
            start_db = multiresolution_stft_convergence_db(start.signal.numpy(), x)
            db = multiresolution_stft_convergence_db(result.signal.numpy(), x)
            cells.append(f"{start_db:.1f} dB, {start.seconds:.1f} s / {db:.1f} dB, {result.seconds:.1f} s")
        print(f"| {voices} / {bandwidth} | {cps:.1f} | " + " | ".join(cells) + " |", flush=True)
    cells = []
    for name in names:
        db, seconds = griffin_lim(*data[name][:1], args.iters)
        cells.append(f"{db:.1f} dB, {seconds:.1f} s")
    print("| librosa Griffin-Lim (better of n_fft 1024/2048) | 2.0 | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
