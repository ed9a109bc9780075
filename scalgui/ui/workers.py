"""Background work off the GUI thread: a generic worker, and the view's raster thread.

torch releases the GIL inside its kernels, so a worker QThread keeps the event loop
responsive while a render or an analysis runs. Results come back through queued signals,
so slots run in the GUI thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from .picture import PictureRequest, compute_picture

__all__ = ["RasterWorker", "Worker", "start_worker"]


class Worker(QObject):
    """Runs ``fn(progress)`` once in its thread.

    ``fn`` receives a callable that forwards progress reports (any object) to the
    :attr:`progress` signal. Exactly one of :attr:`finished` (the result) or
    :attr:`failed` (the exception) is emitted.
    """

    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, fn: Callable[[Callable[[Any], None]], Any]) -> None:
        super().__init__()
        self._fn = fn

    @pyqtSlot()
    def run(self) -> None:
        try:
            result = self._fn(self.progress.emit)
        except Exception as exc:  # noqa: BLE001 (reported to the GUI, never raised in the thread)
            self.failed.emit(exc)
        else:
            self.finished.emit(result)


def start_worker(worker: Worker, parent: QObject | None = None) -> QThread:
    """Move ``worker`` to a new QThread and start it; the thread quits when it is done.

    Keep a reference to the returned thread (and the worker) until :attr:`Worker.finished`
    or :attr:`Worker.failed` arrives; ``thread.wait()`` blocks until it has stopped.
    """
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


class RasterWorker(QObject):
    """Computes view pictures in its own thread; only the latest request is served.

    :meth:`submit` may be called at any rate from the GUI thread: requests that arrive
    while a picture is being computed replace each other, so a fast pan costs one picture
    per computation time, never a backlog.
    """

    finished = pyqtSignal(object)  # Picture
    failed = pyqtSignal(object)  # Exception
    _wake = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: tuple[object, PictureRequest] | None = None
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("scalgui-raster")
        self.moveToThread(self._thread)
        self._wake.connect(self._process)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a request is queued or being computed."""
        with self._lock:
            return self._busy or self._pending is not None

    def submit(self, doc, request: PictureRequest) -> None:
        """Ask for a picture (replaces a request not yet started)."""
        with self._lock:
            self._pending = (doc, request)
        self._wake.emit()

    @pyqtSlot()
    def _process(self) -> None:
        with self._lock:
            job, self._pending = self._pending, None
            self._busy = job is not None
        if job is None:
            return
        try:
            picture = compute_picture(*job)
        except Exception as exc:  # noqa: BLE001 (shown in the status bar, never raised in the thread)
            self.failed.emit(exc)
        else:
            self.finished.emit(picture)
        finally:
            with self._lock:
                self._busy = False

    def stop(self) -> None:
        """Stop the thread (after the picture in progress); safe to call twice."""
        with self._lock:
            self._pending = None
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
