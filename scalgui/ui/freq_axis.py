"""A log-frequency axis for pyqtgraph, and note names.

The scalogram view plots frequency as ``log2(Hz)`` (octaves), so equal distances are
equal musical intervals. :class:`LogFrequencyAxis` puts ticks at round frequencies in Hz
(50, 100, 200, 500, 1k, ... and finer ones when zoomed in) or, in note mode, at notes
(C of every octave, then the naturals, then every semitone).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

__all__ = ["NOTE_NAMES", "LogFrequencyAxis", "format_hz", "note_name"]

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_NATURALS = (0, 2, 4, 5, 7, 9, 11)

# Mantissas of tick frequencies, most important first: each level adds ticks between the
# previous ones. Level 0 and 1 together give 10, 20, 50, 100, 200, 500, 1k, ...
_HZ_LEVELS = (
    (1.0,),
    (2.0, 5.0),
    (3.0, 4.0, 6.0, 7.0, 8.0, 9.0),
    (1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5),
    tuple(m / 10 for m in range(11, 100) if m % 5),
)
_MAJOR, _MINOR = 1.0, 0.5  # "spacings" that tell tickStrings which level it labels
MIN_LABEL_GAP_PX = 34.0


def note_name(freq_hz: float, a4_hz: float = 440.0) -> tuple[str, int]:
    """Nearest equal-tempered note and the offset from it in cents.

    >>> note_name(440.0)
    ('A4', 0)
    >>> note_name(452.0)
    ('A4', 47)
    """
    if not freq_hz > 0:
        return "-", 0
    midi = 69.0 + 12.0 * math.log2(freq_hz / a4_hz)
    nearest = round(midi)
    cents = round(100.0 * (midi - nearest))
    return f"{NOTE_NAMES[nearest % 12]}{nearest // 12 - 1}", cents


def format_hz(freq_hz: float) -> str:
    """Compact frequency label: ``"50"``, ``"1.5k"``, ``"10k"``."""
    if freq_hz >= 1000.0:
        return f"{freq_hz / 1000.0:.4g}k"
    if freq_hz >= 10.0:
        return f"{freq_hz:.4g}"
    return f"{freq_hz:.3g}"


def _hz_ticks(lo_oct: float, hi_oct: float, level: int) -> np.ndarray:
    """log2 of the level's tick frequencies within [lo_oct, hi_oct]."""
    lo_hz, hi_hz = 2.0**lo_oct, 2.0**hi_oct
    decades = range(math.floor(math.log10(lo_hz)) - 1, math.ceil(math.log10(hi_hz)) + 1)
    hz = np.array([m * 10.0**d for d in decades for m in _HZ_LEVELS[level]])
    octaves = np.log2(hz)
    return np.sort(octaves[(octaves >= lo_oct) & (octaves <= hi_oct)])


def _note_ticks(lo_oct: float, hi_oct: float, level: int, a4_hz: float = 440.0) -> np.ndarray:
    """log2 of note frequencies: level 0 the Cs, 1 the other naturals, 2 the sharps."""
    lo_midi = 69 + 12 * (lo_oct - math.log2(a4_hz))
    hi_midi = 69 + 12 * (hi_oct - math.log2(a4_hz))
    midi = np.arange(math.floor(lo_midi), math.ceil(hi_midi) + 1)
    pitch = midi % 12
    if level == 0:
        keep = pitch == 0
    elif level == 1:
        keep = np.isin(pitch, _NATURALS) & (pitch != 0)
    else:
        keep = ~np.isin(pitch, _NATURALS)
    octaves = math.log2(a4_hz) + (midi[keep] - 69) / 12.0
    return octaves[(octaves >= lo_oct) & (octaves <= hi_oct)]


class LogFrequencyAxis(pg.AxisItem):
    """Axis for values in octaves (``log2(Hz)``), labelled in Hz or with note names."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._notes = False
        self._minor_hz: float | None = None

    @property
    def notes(self) -> bool:
        return self._notes

    def set_notes(self, on: bool) -> None:
        """Label ticks with note names (C4, A4, ...) instead of Hz."""
        self._notes = bool(on)
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float):
        lo, hi = sorted((float(minVal), float(maxVal)))
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or size <= 0:
            return []
        px_per_oct = size / (hi - lo)
        ticks = _note_ticks if self._notes else _hz_ticks
        levels = 3 if self._notes else len(_HZ_LEVELS)
        major = np.array([])
        minor = np.array([])
        for level in range(levels):
            candidate = np.union1d(major, ticks(lo, hi, level))
            if len(candidate) >= 2 and np.diff(candidate).min() * px_per_oct < MIN_LABEL_GAP_PX:
                minor = np.setdiff1d(candidate, major)
                if np.diff(candidate).min() * px_per_oct < 6:  # too dense even unlabelled
                    minor = np.array([])
                break
            major = candidate
        result = [(_MAJOR, major.tolist())]
        if len(minor):
            result.append((_MINOR, minor.tolist()))
        return result

    def tickStrings(self, values, scale, spacing):
        if spacing == _MINOR:
            return ["" for _ in values]
        if self._notes:
            return [note_name(2.0**v)[0] for v in values]
        return [format_hz(round(2.0**v, 6)) for v in values]
