"""Headless ``scalgui`` sub-commands, one module each.

Every module defines ``HELP`` (one line), ``DESCRIPTION``, optionally ``EPILOG``,
``add_arguments(parser)`` and ``run(args) -> int``, which :mod:`scalgui.cli` turns into a
sub-command (``plugins`` adds its two with its own ``add_parser(subparsers)``). Like
:mod:`scalgui.cli`, a module imports nothing heavy (torch, pedalboard) at import time, so
that building the command line stays fast; the work is imported inside ``run``.
"""
from __future__ import annotations

import math
import sys

__all__ = ["RenderProgress"]


class RenderProgress:
    """A render's progress on stderr, for commands that render a document: each stage once
    (``PROG: render: analysing…``), then a line about every tenth of the iterations.

    Parameters
    ----------
    prog : str
        The command's name, the lines' prefix.
    iterations : int
        The most iterations a span may run.
    """

    def __init__(self, prog: str, iterations: int) -> None:
        self.prog = prog
        self.every = max(1, math.ceil(iterations / 10))
        self.stage = None

    def __call__(self, p) -> None:
        if p.stage != "iterating":
            if p.stage != self.stage:  # a stage is said once, however often it reports
                print(f"{self.prog}: render: {p.stage}…", file=sys.stderr, flush=True)
            self.stage = p.stage
            return
        self.stage = p.stage
        if p.iteration % self.every == 0 or p.iteration == p.iterations:
            print(f"{self.prog}: render iteration {p.iteration}/{p.iterations}, "
                  f"SC {p.spectral_convergence_db:.1f} dB", file=sys.stderr, flush=True)
