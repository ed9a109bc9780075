"""The export options dialog: bit depth (lossless formats) and quality (codecs with one).

The window opens it after the file name has been chosen; the choices are those
:data:`scalgui.audio.formats.SUPPORTED_WRITE_FORMATS` lists for the file's extension.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from scalgui.audio.formats import SUPPORTED_WRITE_FORMATS

__all__ = ["ExportOptionsDialog"]


class ExportOptionsDialog(QDialog):
    """Bit depth and/or quality for exporting to ``path``.

    Attributes
    ----------
    bit_depth : QComboBox or None
        Present for formats with bit depths (WAV, AIFF, FLAC); defaults to the format's
        ``default_bit_depth``.
    quality : QComboBox or None
        Present for formats with a quality setting (Ogg, MP3: bitrate or VBR preset;
        FLAC: compression level); defaults to the format's ``default_quality``.
    buttons : QDialogButtonBox
        OK (export with these options) and Cancel.
    """

    def __init__(self, path: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.spec = SUPPORTED_WRITE_FORMATS.get(self.path.suffix.lower())
        self.setWindowTitle("Export Options")
        form = QFormLayout(self)
        form.addRow(QLabel(f"<b>{self.path.name}</b>"))
        self.bit_depth: QComboBox | None = None
        self.quality: QComboBox | None = None
        spec = self.spec
        if spec is None:
            form.addRow(QLabel(f"Unknown format {self.path.suffix or '(no extension)'}: written with defaults"))
        else:
            if spec.bit_depths:
                self.bit_depth = QComboBox()
                for bits in spec.bit_depths:
                    kind = "float" if bits in spec.float_bit_depths else "integer"
                    self.bit_depth.addItem(f"{bits}-bit {kind}", bits)
                if spec.default_bit_depth in spec.bit_depths:
                    self.bit_depth.setCurrentIndex(spec.bit_depths.index(spec.default_bit_depth))
                form.addRow("Bit depth:", self.bit_depth)
            if spec.qualities:
                self.quality = QComboBox()
                self.quality.setToolTip(spec.quality_meaning)
                if spec.default_quality is None:
                    self.quality.addItem("default", None)
                for q in spec.qualities:
                    self.quality.addItem(q, q)
                if spec.default_quality is not None:
                    index = self.quality.findData(spec.default_quality)
                    self.quality.setCurrentIndex(max(index, 0))
                label = "Compression:" if not spec.lossy else "Quality:"
                form.addRow(label, self.quality)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def options(self) -> dict:
        """``{"bit_depth": int | None, "quality": str | None}`` for ``Document.export``."""
        return {
            "bit_depth": self.bit_depth.currentData() if self.bit_depth is not None else None,
            "quality": self.quality.currentData() if self.quality is not None else None,
        }

    def select_bit_depth(self, bits: int) -> None:
        """Pick ``bits`` in the bit-depth combo (as a person would)."""
        index = self.bit_depth.findData(bits)
        if index < 0:
            raise ValueError(f"{bits}-bit is not offered for {self.path.suffix}")
        self.bit_depth.setCurrentIndex(index)
