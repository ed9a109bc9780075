"""Where a plugin made sound (an audio step: texture, image), should a render start from
that sound's phase or from the previous render's?

A plugin with an audio step makes a real sound, and the magnitudes it leaves are that
sound's, so its phase is consistent with them; the previous render's phase belongs to the
sound before the plugin. This script applies the built-in audio-step plugins to real and
generated sound, renders with ``scalgui.plugins.host.AUDIO_STEP_WARM_START`` off and on,
and prints the spectral convergence of the render against the edited target (dB, over the
re-rendered windows; lower is closer) before the first iteration and after the editor's
32, and the time.

    python scripts/audio_step_sweep.py [--corpus ../shared/corpus] [--iters 32]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from warm_start_sweep import load_signals, render  # noqa: E402  (the same sounds, rendered the same way)

from scalgui.dsp.edits import Rectangle, TimeRange  # noqa: E402
from scalgui.plugins import PluginEdit, default_registry, host  # noqa: E402


def picture(folder: Path) -> Path:
    """A picture to sound: three rising lines and a soft blob, 200 x 100 pixels."""
    rows, columns = np.mgrid[0:100, 0:200]
    brightness = np.zeros((100, 200))
    for offset in (20, 45, 70):
        brightness[np.abs(rows - (90 - offset - columns * 0.3)) < 1.5] = 1.0
    brightness += 0.6 * np.exp(-((rows - 30) ** 2 + (columns - 150) ** 2) / 200.0)
    path = folder / "lines.png"
    Image.fromarray((np.clip(brightness, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def edits(duration: float, folder: Path):
    """The built-in audio-step plugins over the middle fifth of the sound."""
    registry = default_registry()
    a, b = 0.4 * duration, 0.6 * duration
    image = str(picture(folder))
    return {
        "texture (the fifth before as reference)": PluginEdit.create(registry.get("texture"), {}, TimeRange(a, b)),
        "image, added, no selection": PluginEdit.create(
            registry.get("image"), {"file": image, "time": (a, b), "fmin": 300.0, "fmax": 5000.0}),
        "image, replacing a rectangle": PluginEdit.create(
            registry.get("image"), {"file": image, "mode": "replace", "fmin": 300.0, "fmax": 5000.0},
            Rectangle(a, b, 300.0, 5000.0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--iters", type=int, default=32)
    args = parser.parse_args(argv)
    print(f"| signal | edit | previous render's phase: start / {args.iters} it, s "
          f"| the audio step's phase: start / {args.iters} it, s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for label, (samples, sr) in load_signals(args.corpus).items():
            for what, edit in edits(samples.shape[-1] / sr, Path(folder)).items():
                cells = []
                for warm_start in (False, True):
                    host.AUDIO_STEP_WARM_START = warm_start
                    start, _ = render(samples, sr, edit, 0)
                    end, seconds = render(samples, sr, edit, args.iters)
                    cells.append(f"{start:.1f} / {end:.1f}, {seconds:.2f}")
                print(f"| {label} | {what} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
