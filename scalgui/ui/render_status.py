"""What the editor says about a render: progress lines, the result, a quality hint.

One place words the render's state, so that the status bar, the convergence plot's title
and the History say the same number the same way. No signal processing here: the
numbers come from :class:`~scalgui.dsp.phase.RetrievalProgress` and
:class:`~scalgui.dsp.phase.RetrievalResult`.
"""
from __future__ import annotations

import math

__all__ = ["QUALITY_HINTS", "convergence_text", "progress_text", "quality_hint", "result_text"]

#: Plain-language reading of a render's spectral convergence (dB, lower is closer):
#: ``(upper bound, hint)``, first match wins. Placed from the renders measured in
#: docs/rendering.md (cuts and boosts end at -22 to -34 dB, painted partials and
#: transposes at -15 to -25 dB, a bare warm start of new content at -9 to -14 dB): a
#: reading aid for the figure, not the verdict of a listening test.
QUALITY_HINTS = ((-25.0, "very close"), (-18.0, "close"), (-10.0, "rough"), (math.inf, "far off"))

_STAGE_WORDS = {"analysing": "Analysing", "initial phase": "Initial phase", "finishing": "Measuring"}
_STOPPED_WORDS = {"converged": "converged", "budget": "time budget reached"}


def quality_hint(db: float) -> str:
    """A few words on how close a render came to its target, from its convergence in dB."""
    if not math.isfinite(db):
        return "unmeasured" if math.isnan(db) else "exact"
    return next(hint for bound, hint in QUALITY_HINTS if db <= bound)


def convergence_text(db: float) -> str:
    """The one way a render's convergence is written: ``"-23.4 dB (close)"``."""
    return f"{db:.1f} dB ({quality_hint(db)})" if math.isfinite(db) else quality_hint(db)


def progress_text(progress) -> str:
    """The status bar's line for a progress report."""
    if progress is None:
        return "Rendering: starting…"
    if progress.stage != "iterating":
        return f"Rendering: {_STAGE_WORDS.get(progress.stage, progress.stage)}…"
    eta = f"   {progress.eta_s:.0f} s left" if math.isfinite(progress.eta_s) else ""
    return (f"Rendering: iteration {progress.iteration} of at most {progress.iterations}   "
            f"{convergence_text(progress.spectral_convergence_db)}{eta}")


def result_text(result) -> str:
    """The status bar's line for a finished render."""
    if result.cancelled:
        return "Render cancelled: the previous render and the edits are as they were"
    if result.iterations == 0 and result.stopped == "iterations" and result.spectral_convergence_db == -math.inf:
        return "Nothing to render: no edits since the last render"
    why = _STOPPED_WORDS.get(result.stopped)
    iterations = f"{result.iterations} iteration{'s' if result.iterations != 1 else ''}"
    return (f"Rendered in {result.seconds:.1f} s: {convergence_text(result.spectral_convergence_db)}, "
            f"{iterations}{f' ({why})' if why else ''}")
