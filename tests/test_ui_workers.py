"""Worker threads and the calls they hand to the GUI thread (scalgui.ui.workers)."""
import threading

import pytest

pytest.importorskip("pytestqt")

from scalgui.ui.workers import Worker, keep_thread, main_thread_calls, start_worker, stop_threads  # noqa: E402


def test_a_worker_gets_work_done_on_the_gui_thread_and_its_errors_back(qtbot):
    calls = main_thread_calls()
    ran_on = []

    def on_gui_thread(x):
        ran_on.append(threading.current_thread())
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    def job(progress):
        doubled = calls(on_gui_thread, 21)
        try:
            calls(on_gui_thread, -1)
        except ValueError as exc:
            return doubled, str(exc), threading.current_thread()

    worker = Worker(job)
    threads: set = set()
    with qtbot.waitSignal(worker.finished, timeout=10000) as blocker:
        keep_thread(threads, start_worker(worker))
    doubled, message, worker_thread = blocker.args[0]
    assert (doubled, message) == (42, "negative")
    assert ran_on == [threading.main_thread()] * 2 and worker_thread is not threading.main_thread()
    qtbot.waitUntil(lambda: not threads)


def test_stopping_threads_serves_a_worker_that_waits_on_the_gui_thread(qtbot):
    """A window closing while its worker waits for the GUI thread must not deadlock:
    stop_threads runs the worker's call itself while it waits."""
    calls = main_thread_calls()
    asked = threading.Event()

    def job(progress):
        asked.set()
        return calls(lambda: "served")

    worker = Worker(job)
    results = []
    worker.finished.connect(results.append)
    threads: set = set()
    keep_thread(threads, start_worker(worker))
    assert asked.wait(10)
    stop_threads(threads)  # returns only once the worker has finished
    qtbot.waitUntil(lambda: results == ["served"])
