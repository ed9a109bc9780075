#!/usr/bin/env python3
"""Regenerate ``resources/example.flac`` from :func:`scalgui.dsp.signals.example_sound`.

The file is 24-bit FLAC, 44.1 kHz, stereo, and is fully determined by the generator
(seed 0), so running this twice gives identical samples. It is written atomically: to a
temporary ``.flac`` file in the same folder, then moved into place with ``os.replace``.

Usage::

    python scripts/make_example.py            # write resources/example.flac
    python scripts/make_example.py --check    # exit 1 if the file differs from the generator
    python scripts/make_example.py --out x.flac
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # runnable from a plain checkout, without installing
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from pedalboard.io import AudioFile  # noqa: E402

from scalgui.dsp.signals import example_sound  # noqa: E402

SAMPLE_RATE = 44100
BIT_DEPTH = 24
SEED = 0
# A 24-bit step is 2**-23 ~ 1.2e-7; allow for rounding either way.
TOLERANCE = 1e-6


def default_path() -> Path:
    return REPO / "resources" / "example.flac"


def write(path: Path) -> None:
    audio = example_sound(SAMPLE_RATE, seed=SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".flac", prefix=".example-", dir=path.parent)
    os.close(fd)
    try:
        with AudioFile(tmp, "w", SAMPLE_RATE, audio.shape[0], bit_depth=BIT_DEPTH) as f:
            f.write(audio)
        # mkstemp makes the file private (0600); give it ordinary permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def check(path: Path) -> bool:
    expected = example_sound(SAMPLE_RATE, seed=SEED)
    with AudioFile(str(path)) as f:
        ok_format = f.samplerate == SAMPLE_RATE and f.num_channels == expected.shape[0]
        got = f.read(f.frames)
    if not ok_format or got.shape != expected.shape:
        print(f"{path}: format or length differs from the generator", file=sys.stderr)
        return False
    err = float(np.max(np.abs(got - expected)))
    if err > TOLERANCE:
        print(f"{path}: differs from the generator by up to {err:.3g}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_path(), help="output file (.flac)")
    parser.add_argument("--check", action="store_true",
                        help="don't write; exit 1 if the file doesn't match the generator")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if check(args.out) else 1
    write(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0 if check(args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
