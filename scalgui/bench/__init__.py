"""Benchmarks: ``scalgui bench <what>``, each printing ratios against peers in one run.

Every benchmark is a module in this package that defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and is listed in :data:`BENCHMARKS`.
Benchmark modules import nothing heavy at module level (torch, ssqueezepy... are
imported inside ``run``), so building the command line stays fast.

This module holds what benchmarks share: timing (median of repeats after a warm-up),
peak-memory measurement in a fresh interpreter, a description of the machine, markdown
tables and atomic JSON output. Standard library only at import time.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS",
    "add_parser",
    "child_environment",
    "log",
    "machine_info",
    "markdown_table",
    "peak_rss_bytes",
    "run_in_fresh_process",
    "time_median",
    "write_json_atomic",
]

#: Benchmark name -> module. ``scalgui bench invert`` (phase retrieval) will join later.
BENCHMARKS: dict[str, str] = {
    "analyze": "scalgui.bench.analyze",
    "invert": "scalgui.bench.invert",
    "editor": "scalgui.bench.editor",
    "memory": "scalgui.bench.memory",
    "render": "scalgui.bench.render",
}

_RESULT_MARK = "@@SCALGUI-BENCH-RESULT@@"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bench`` command group, with one sub-command per entry of :data:`BENCHMARKS`."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks against peer libraries (ratios in one run)",
        description="Run a benchmark and print a markdown table with ratios against peer libraries.",
    )
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True, prog=f"{parser.prog}")
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        bench = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(bench)
        bench.set_defaults(run=module.run)
    return parser


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing


def time_median(fn: Callable[[], Any], repeat: int, *, warmup: int = 1,
                sync: Callable[[], None] | None = None) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed ones.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before starting and before
    stopping the clock, so asynchronous device work is counted. Results of ``fn`` are
    dropped before the next run, so two results never have to fit in memory together.

    Returns
    -------
    (median seconds, list of every timed run in seconds)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        result = fn()
        sync()
        del result
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
        del result
    return statistics.median(times), times


# --------------------------------------------------------------------------- memory


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, the high-water mark of this
    program's own address space. ``getrusage(RUSAGE_SELF).ru_maxrss`` is the fallback
    elsewhere; on Linux it is no use in a child, because it survives ``execve`` and so
    starts at the peak of the parent that forked it.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes, Linux: KiB


def child_environment() -> dict[str, str]:
    """Environment for a benchmark child: OpenMP threads that sleep when idle, and
    ``scalgui`` importable from wherever this copy was loaded."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_in_fresh_process(target: str, job: dict, *, timeout: float | None = None) -> dict:
    """Run ``module:function(job)`` in a new interpreter and return the dict it returns.

    The child starts from nothing (``python -c``), so ``peak_rss_bytes()`` read inside it
    measures only what that child did: use it for honest peak-memory figures. ``job``
    and the result travel as JSON.

    Raises
    ------
    RuntimeError
        The child failed (its last stderr lines are in the message) or timed out.
    """
    module, _, function = target.partition(":")
    code = (
        "import importlib, json, sys\n"
        f"fn = getattr(importlib.import_module({module!r}), {function!r})\n"
        "result = fn(json.loads(sys.argv[1]))\n"
        f"print({_RESULT_MARK!r} + json.dumps(result), flush=True)\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(job)],
            env=child_environment(), capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{target} did not finish within {timeout:g} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            return json.loads(line[len(_RESULT_MARK):])
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    raise RuntimeError(f"{target} failed (exit code {proc.returncode}): {tail}")


# --------------------------------------------------------------------------- reporting


def check_corpus_and_json(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    """The ``--corpus`` folder as a Path, and a message if it or ``--json``'s folder is
    missing (``None`` when both are fine)."""
    corpus = Path(args.corpus) if args.corpus else None
    if corpus is not None and not corpus.is_dir():
        return corpus, f"corpus folder '{corpus}' does not exist"
    if args.json:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            return corpus, f"cannot write '{args.json}': folder '{parent}' does not exist"
    return corpus, None


def machine_info() -> dict:
    """What the numbers were measured on. Imports torch (call it inside ``run``)."""
    import torch

    from ..dsp.pghi import usable_cores
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cores(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (cells are converted with ``str``)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and ``os.replace``."""
    from scalgui.atomic import write_atomic

    def dump(handle) -> None:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")

    return write_atomic(path, dump)
