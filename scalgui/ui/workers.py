"""Background work off the GUI thread: a generic worker, and the view's raster thread.

torch releases the GIL inside its kernels, so a worker QThread keeps the event loop
responsive while a render or an analysis runs. Results come back through queued signals,
so slots run in the GUI thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QCoreApplication, QObject, QThread, pyqtSignal, pyqtSlot

from .picture import PictureRequest, compute_picture

__all__ = ["MainThreadCalls", "RasterWorker", "Worker", "keep_thread", "main_thread_calls", "start_worker",
           "stop_threads"]


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
            outcome, value = self.failed, exc
        else:
            outcome, value = self.finished, result
        # Back to the GUI thread before saying so, to be destroyed there when the GUI lets
        # go of it. Destroyed in its own thread (deleteLater), it disconnected from the
        # QThread's signals there, which asks PyQt (so the GIL) while holding one of Qt's
        # pooled connection mutexes: a GUI thread destroying any widget that hashes to
        # the same mutex then deadlocked (seen in the tests, one run in a few).
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        outcome.emit(value)


class _Call:
    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        if self.done.is_set():
            return
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            self.error = exc
        self.done.set()


class MainThreadCalls(QObject):
    """Runs functions on the GUI thread for worker threads, which wait for the result.

    For what must happen on the main thread, such as making a VST3 plugin in pedalboard.
    A call is posted to the GUI thread's event loop; :func:`stop_threads` also runs the
    posted calls while it waits for workers, so a worker waiting here never deadlocks a
    window that is closing.
    """

    _posted = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[_Call] = []
        self._lock = threading.Lock()
        self._posted.connect(self.run_pending)  # queued: this object lives in the GUI thread

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            return fn(*args)
        call = _Call(fn, args)
        with self._lock:
            self._pending.append(call)
        self._posted.emit()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    @pyqtSlot()
    def run_pending(self) -> None:
        """Run the calls posted so far (on the GUI thread)."""
        with self._lock:
            calls, self._pending = self._pending, []
        for call in calls:
            call.run()


_calls: MainThreadCalls | None = None


def main_thread_calls() -> MainThreadCalls:
    """The application's :class:`MainThreadCalls`, made (on the GUI thread) at first use and
    installed as the VST3 loader's main-thread runner."""
    global _calls
    if _calls is None:
        from scalgui.audio.vst3 import set_main_thread_runner

        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("main_thread_calls() must first be called on the main thread")
        _calls = MainThreadCalls()
        set_main_thread_runner(_calls)
    return _calls


def keep_thread(threads: set, thread: QThread) -> QThread:
    """Hold a reference to ``thread`` in ``threads`` until it has finished."""
    threads.add(thread)
    thread.finished.connect(lambda t=thread: threads.discard(t))
    return thread


def stop_threads(threads: set) -> None:
    """Ask each thread to quit and wait for it, running what its workers asked of the GUI
    thread meanwhile (see :class:`MainThreadCalls`)."""
    calls = _calls
    for thread in list(threads):
        thread.quit()
        while not thread.wait(20):
            if calls is not None:
                calls.run_pending()


def start_worker(worker: Worker, parent: QObject | None = None) -> QThread:
    """Move ``worker`` to a new QThread and start it; the thread quits when it is done.

    Keep a reference to the returned thread (and the worker) until :attr:`Worker.finished`
    or :attr:`Worker.failed` arrives; ``thread.wait()`` blocks until it has stopped. The
    worker is back in the GUI thread by then, and destroyed there once unreferenced.
    """
    thread = QThread(parent)
    thread.worker = worker  # alive as long as the thread is referenced (see keep_thread)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
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
