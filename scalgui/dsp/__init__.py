"""Signal processing for scalgui: pure numpy/torch, no Qt, no audio I/O.

This package is deliberately import-light: it does not import its submodules, so
``import scalgui.dsp`` costs nothing (and in particular does not import torch). Import
what you need explicitly, e.g. ``from scalgui.dsp import signals``.
"""
