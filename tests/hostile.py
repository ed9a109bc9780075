"""Shared harness of the hostile-input suite (``tests/test_hostile_*.py``).

Each hostile case runs ``scalgui`` in a child process, as a user would meet it, and is
judged on what the child did, not on what it printed alone:

* exit code and stderr: a refusal is exit code 2 and one line ``scalgui: error: ...``
  naming the file and the problem, no traceback;
* time: the child is killed after ``timeout`` seconds (a hang fails the case); the
  seconds are reported, not compared with a tight bound (this machine's speed drifts);
* memory: the child's peak resident memory is its own ``VmHWM`` (``/proc/self/status``),
  which it writes at exit (``ru_maxrss`` would not do: Linux starts a child's with the
  parent's resident size at the fork, and the test process may hold gigabytes); its
  address space is capped (``RLIMIT_AS``) so that a regression fails the case instead of
  filling the machine;
* files: :func:`snapshot` records a folder tree (size, modification time, mode, link
  target) before the case, so the test can assert that nothing but the output changed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scalgui.cli import printable

__all__ = ["ADDRESS_SPACE_LIMIT", "Outcome", "assert_refused", "run_scalgui", "snapshot"]

# Run in the child instead of ``python -m scalgui.cli``: caps the address space, then runs
# the command line as ``-m`` would, and at exit (normal, SystemExit or an exception) writes
# the process's peak resident memory in kB to the file $SCALGUI_TEST_PEAK_FILE names.
_LAUNCHER = """
import atexit, os, resource, runpy, sys
def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["SCALGUI_TEST_PEAK_FILE"], "w") as out:
        out.write(kb)
atexit.register(_peak)
cap = int(sys.argv.pop(1))
if cap > 0:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv[0] = "scalgui"
runpy.run_module("scalgui.cli", run_name="__main__", alter_sys=True)
"""

#: Address-space cap of a hostile case's child, in bytes: torch, numba and pedalboard map
#: about 2-3 GB of virtual memory at start-up; a case that tries to fill memory hits the
#: cap and fails (MemoryError, a traceback), instead of slowing the machine for everyone.
ADDRESS_SPACE_LIMIT = 6 * 2**30

#: Peak resident memory a refusal may take, in bytes: start-up (torch, numpy, pedalboard)
#: is about 0.3-0.5 GB; a refused file must not add more than a few hundred MB to it.
REFUSAL_PEAK_BYTES = 1536 * 2**20


@dataclass(frozen=True)
class Outcome:
    """What one ``scalgui`` child process did.

    Attributes
    ----------
    code : int or None
        Exit code; None when it was killed for running past the timeout.
    stdout : str
    stderr_lines : list of str
        Non-blank lines of stderr.
    seconds : float
        Wall-clock time from start to exit (start-up included).
    peak_bytes : int
        Peak resident memory of the child, in bytes (its ``VmHWM``; when it was killed
        before writing it, ``ru_maxrss``, which may be as high as this process's size).
    timed_out : bool
    """

    code: int | None
    stdout: str
    stderr_lines: list
    seconds: float
    peak_bytes: int
    timed_out: bool

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20


def run_scalgui(args, *, cwd=None, timeout: float = 120.0, env: dict | None = None,
                stdin=subprocess.DEVNULL, address_space: int | None = ADDRESS_SPACE_LIMIT) -> Outcome:
    """Run ``python -m scalgui.cli ARGS`` in a child process and measure it.

    Parameters
    ----------
    args : sequence of str, bytes or PathLike
        The command line after ``scalgui`` (bytes for names that are not UTF-8).
    cwd : path, optional
    timeout : float
        Seconds before the child is killed (``Outcome.timed_out``).
    env : dict, optional
        Extra environment variables (added to this process's).
    address_space : int or None
        ``RLIMIT_AS`` of the child in bytes (None: no cap).
    """
    peak_file = tempfile.NamedTemporaryFile(prefix="scalgui-peak-", delete=False)
    peak_file.close()
    full_env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {}),
                "SCALGUI_TEST_PEAK_FILE": peak_file.name}
    argv = [sys.executable, "-c", _LAUNCHER, str(address_space or 0),
            *[a if isinstance(a, bytes) else os.fspath(a) for a in args]]

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=stdin, stdout=out, stderr=err)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            child.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    try:
        peak_kb = int(Path(peak_file.name).read_text() or usage.ru_maxrss)  # both in kB on Linux
    finally:
        os.unlink(peak_file.name)
    outcome = Outcome(None if killed.is_set() else child.returncode, stdout,
                      [line for line in stderr.splitlines() if line.strip()], seconds,
                      peak_kb * 1024, killed.is_set())
    # For the record (pytest -s): docs/robustness.md quotes these lines.
    shown = printable(" ".join(os.path.basename(os.fsdecode(a)) or os.fsdecode(a) for a in args))
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].removesuffix(" (call)")
    print(f"[hostile] {test} | scalgui {shown}: exit {outcome.code}, {seconds:.1f} s, peak {outcome.peak_mb:.0f} MB")
    return outcome


def assert_refused(outcome: Outcome, *needles: str, peak_bytes: int = REFUSAL_PEAK_BYTES) -> None:
    """A clean refusal: not killed, exit code 2, exactly one stderr line ``scalgui: error:``
    holding every needle, no traceback, and peak memory under ``peak_bytes``."""
    assert not outcome.timed_out, f"hung: killed after {outcome.seconds:.0f} s"
    text = "\n".join(outcome.stderr_lines)
    assert "Traceback" not in text, text
    assert outcome.code == 2, (outcome.code, text)
    assert len(outcome.stderr_lines) == 1, outcome.stderr_lines
    line = outcome.stderr_lines[0]
    assert line.startswith("scalgui: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    assert outcome.peak_bytes < peak_bytes, f"peak memory {outcome.peak_mb:.0f} MB"


def snapshot(folder) -> dict:
    """``{relative path: (kind, size, mtime_ns, mode, link target)}`` of everything under
    ``folder`` (links not followed): compare two snapshots to see what a command touched."""
    folder = Path(folder)
    found = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            st = os.lstat(path)
            target = os.readlink(path) if os.path.islink(path) else None
            kind = "link" if target is not None else ("dir" if path.is_dir() else "file")
            size = None if kind == "dir" else st.st_size
            mtime = None if kind == "dir" else st.st_mtime_ns
            found[str(path.relative_to(folder))] = (kind, size, mtime, st.st_mode, target)
    return found
