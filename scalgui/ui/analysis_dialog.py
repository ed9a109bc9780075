"""The Analysis Settings dialog: voices per octave, fmin, fmax, oversampling.

It builds a :class:`~scalgui.dsp.frame.FrameSettings` from the fields and refuses values
the frame does not take, showing the reason in the dialog (the dialog stays open). The
window re-analyses with the accepted :attr:`AnalysisSettingsDialog.result_settings` in a
worker thread.
"""
from __future__ import annotations

from dataclasses import replace

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from scalgui.dsp.frame import FrameSettings

__all__ = ["DEFAULT_FMAX_HZ", "AnalysisSettingsDialog"]

#: What ``fmax=None`` means (FrameSettings: 20 kHz).
DEFAULT_FMAX_HZ = 20000.0
VOICES_RANGE = (8, 48)


class AnalysisSettingsDialog(QDialog):
    """Edit a document's analysis settings.

    Parameters
    ----------
    settings : FrameSettings
        The current settings (their sample rate, tolerance and bandwidth are kept).
    """

    def __init__(self, settings: FrameSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Analysis Settings")
        self.settings = settings
        self.result_settings: FrameSettings | None = None
        nyquist = settings.sample_rate / 2
        self._fmax_shown = settings.fmax if settings.fmax is not None else min(DEFAULT_FMAX_HZ, nyquist)

        self.voices = QSpinBox()
        self.voices.setRange(*VOICES_RANGE)
        self.voices.setValue(int(min(max(settings.voices_per_octave, VOICES_RANGE[0]), VOICES_RANGE[1])))
        self.voices.setToolTip("Bands per octave: more gives finer frequency detail and costs time")
        # Wide ranges on purpose: out-of-range values are refused with the frame's reason.
        self.fmin = self._hz(settings.fmin, "Centre of the lowest band")
        self.fmax = self._hz(self._fmax_shown, "Upper limit for the centre of the highest band")
        self.oversampling = QDoubleSpinBox()
        self.oversampling.setRange(1.0, 16.0)
        self.oversampling.setDecimals(1)
        self.oversampling.setSingleStep(0.5)
        self.oversampling.setValue(settings.oversampling)
        self.oversampling.setSuffix("×")
        self.oversampling.setToolTip("Coefficient rate over bandwidth: higher helps phase retrieval, costs memory")

        form = QFormLayout()
        form.addRow("Voices per octave", self.voices)
        form.addRow("Lowest frequency (fmin)", self.fmin)
        form.addRow("Highest frequency (fmax)", self.fmax)
        form.addRow("Oversampling", self.oversampling)
        note = QLabel(f"Sample rate {settings.sample_rate:g} Hz (Nyquist {nyquist:g} Hz). "
                      "Edits are kept: they are in seconds and Hz.")
        note.setWordWrap(True)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff7b72;")
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    @staticmethod
    def _hz(value: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.1, 1_000_000.0)
        spin.setDecimals(1)
        spin.setSuffix(" Hz")
        spin.setValue(float(value))
        spin.setToolTip(tip)
        return spin

    def build(self) -> FrameSettings:
        """The settings the fields describe; raises ValueError with the reason if invalid."""
        s = self.settings
        voices = int(self.voices.value())
        fmin, fmax = float(self.fmin.value()), float(self.fmax.value())
        # Unchanged default: keep "None" (20 kHz, or what fits below Nyquist).
        fmax_value = None if s.fmax is None and abs(fmax - self._fmax_shown) < 0.05 else fmax
        bandwidth = s.bandwidth_voices
        if bandwidth is not None:
            bandwidth = min(int(bandwidth), voices)
        settings = replace(s, voices_per_octave=voices, fmin=fmin, fmax=fmax_value,
                           oversampling=float(self.oversampling.value()), bandwidth_voices=bandwidth)
        if fmin >= fmax:  # FrameSettings allows fmin == fmax (a single band); the editor does not
            raise ValueError(f"fmin ({fmin:g} Hz) must be below fmax ({fmax:g} Hz)")
        return settings

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def accept(self) -> None:
        try:
            settings = self.build()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self.result_settings = settings
        super().accept()
