"""The render's loss plot: spectral convergence (dB) per iteration, drawn live.

A render reports :class:`~scalgui.dsp.phase.RetrievalProgress` after every iteration; a
render over several spans restarts its iteration count per span, so the plot's x axis
counts iterations done in all (the spans one after another).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from .render_status import convergence_text

__all__ = ["ConvergencePlot"]


class ConvergencePlot(pg.PlotWidget):
    """A small plot of spectral convergence in dB against iterations."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="#1b1c20")
        self.setMinimumHeight(120)
        item = self.getPlotItem()
        item.layout.setContentsMargins(2, 2, 12, 2)  # room for the last tick label in a narrow dock
        item.setLabel("left", "dB")
        item.setLabel("bottom", "iteration")
        item.getAxis("left").setWidth(34)
        self.setToolTip("Spectral convergence of the render per iteration, dB (lower is closer to the target)")
        item.getAxis("bottom").enableAutoSIPrefix(False)
        item.getAxis("left").enableAutoSIPrefix(False)
        item.showGrid(x=True, y=True, alpha=0.2)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        self.curve = item.plot([], [], pen=pg.mkPen((255, 170, 90), width=1.5))
        self._x: list[float] = []
        self._y: list[float] = []
        self._offset = 0  # iterations of the spans before the current one
        self._last = 0
        self._title("no render yet")

    def _title(self, text: str) -> None:
        self.getPlotItem().setTitle(text, size="8pt", color="#a0a2a8")

    @property
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Iterations and spectral convergence (dB) plotted so far."""
        return np.asarray(self._x, dtype=np.float64), np.asarray(self._y, dtype=np.float64)

    def reset(self, title: str = "no render yet") -> None:
        """Clear the plot (a new render starts: ``title="rendering…"``)."""
        self._x, self._y = [], []
        self._offset = self._last = 0
        self.curve.setData([], [])
        self.getPlotItem().setXRange(0, 1, padding=0)  # iterations count from 0, whatever came before
        self._title(title)

    def add(self, progress) -> None:
        """Add one progress report (``iteration`` and ``spectral_convergence_db``)."""
        db = float(progress.spectral_convergence_db)
        iteration = int(progress.iteration)
        if iteration <= self._last:  # the next span's retrieval started
            self._offset += self._last
        self._last = iteration
        if not math.isfinite(db):
            return
        self._x.append(float(self._offset + iteration))
        self._y.append(db)
        self.curve.setData(self._x, self._y)
        self.getPlotItem().setXRange(0, max(self._x[-1], 1.0), padding=0.02)
        self._title(f"iteration {int(self._x[-1])}: {db:.1f} dB")

    def finish(self, result) -> None:
        """Say how the render ended (a :class:`~scalgui.dsp.phase.RetrievalResult`)."""
        if result.cancelled:
            self._title("render cancelled")
        elif result.iterations == 0 and result.spectral_convergence_db == -math.inf:
            self._title("nothing to render")
        else:
            self._title(f"{result.iterations} it.: {convergence_text(result.spectral_convergence_db)}")
