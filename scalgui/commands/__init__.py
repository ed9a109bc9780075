"""Headless ``scalgui`` sub-commands, one module each.

Every module defines ``HELP`` (one line), ``DESCRIPTION``, optionally ``EPILOG``,
``add_arguments(parser)`` and ``run(args) -> int``, which :mod:`scalgui.cli` turns into a
sub-command (``plugins`` adds its two with its own ``add_parser(subparsers)``). Like
:mod:`scalgui.cli`, a module imports nothing heavy (torch, pedalboard) at import time, so
that building the command line stays fast; the work is imported inside ``run``.
"""
