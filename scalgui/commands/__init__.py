"""Headless ``scalgui`` sub-commands, one module each.

Every module defines ``HELP`` (one line), ``add_parser(subparsers)`` (which adds the
sub-command and sets ``run`` as its default) and ``run(args) -> int``. Like
:mod:`scalgui.cli`, a module imports nothing heavy (torch, pedalboard) at import time, so
that building the command line stays fast; the work is imported inside ``run``.
"""
