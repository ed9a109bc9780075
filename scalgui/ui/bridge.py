"""A document's change events as a Qt signal."""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal

__all__ = ["DocumentBridge"]


class DocumentBridge(QObject):
    """Re-emits a document's psygnal ``changed`` as a Qt signal.

    A render or a plugin in a worker thread announces its result from that thread; Qt
    queues the signal to the GUI thread, where the widgets' slots run.
    """

    changed = pyqtSignal(str)

    def __init__(self, doc) -> None:
        super().__init__()
        self.doc = doc
        doc.events.changed.connect(self._forward)

    def _forward(self, kind: str) -> None:
        self.changed.emit(kind)

    def detach(self) -> None:
        self.doc.events.changed.disconnect(self._forward)
