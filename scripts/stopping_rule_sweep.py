"""When should a render stop iterating? The stopping rule against the fixed 32 iterations.

Renders each edit of the warm-start sweep (scripts/warm_start_sweep.py: a painted
partial, a transpose, a heal and three gains, on generated sound, speech and orchestra)
once with 64 fixed FGLA iterations as the editor renders (warm start, render frame), and
reads off its convergence history what the editor's fixed 32 iterations reach and where
the stopping rule would stop: at the first iteration after which the last ``--window``
iterations together gained less than the threshold (dB of spectral convergence against
the edited target, over the re-rendered windows; lower is closer). Each cell: the
convergence where the rule stops, its difference from the fixed 32 iterations' (dB) and
the iterations run (at most 32). The rule is read off the history, which is exactly what
the run does, except that it first looks back to the start at iteration ``window + 1``
rather than ``window``.

    python scripts/stopping_rule_sweep.py [--corpus ../shared/corpus] [--thresholds DB ...] [--window N]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scalgui  # noqa: E402,F401  (sets OMP_WAIT_POLICY=PASSIVE before torch is imported)

from scalgui.app.document import FIXED_RENDER, Document  # noqa: E402
from warm_start_sweep import edits, load_signals  # noqa: E402

CAP = 32


def stop(best: np.ndarray, threshold: float, window: int) -> int:
    """Iterations the rule runs, given the best convergence after each iteration."""
    for k in range(window + 1, CAP + 1):
        if best[k - 1 - window] - best[k - 1] < threshold:
            return k
    return CAP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--window", type=int, default=4)
    args = parser.parse_args(argv)
    heads = " | ".join(f"{t:g} dB over {args.window}: dB (vs 32), it." for t in args.thresholds)
    print(f"| signal | edit | 32 it.: dB | 64 it.: dB | {heads} |")
    print("|---|---|---|---|" + "---|" * len(args.thresholds))
    for label, (samples, sr) in load_signals(args.corpus).items():
        for what, edit in edits(samples, sr).items():
            doc = Document.from_samples(samples, sr, device="cpu")
            doc.push(edit)
            result = doc.render(replace(FIXED_RENDER, iterations=2 * CAP))
            best = np.minimum.accumulate(np.asarray(result.history))
            fixed = best[CAP - 1]
            cells = []
            for threshold in args.thresholds:
                k = stop(best, threshold, args.window)
                cells.append(f"{best[k - 1]:.2f} ({best[k - 1] - fixed:+.2f}), {k}")
            print(f"| {label} | {what} | {fixed:.2f} | {best[-1]:.2f} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
