"""Hostile plugin folders (issue 20): a plugin that never finishes importing, prints at
import, raises KeyboardInterrupt, duplicates a built-in's id, or sits in a folder every
user may write to must not hang, corrupt or take over ``scalgui plugins`` and the editor.

Hangs run ``scalgui`` in a child process (tests/hostile.py) with a short import limit
(``SCALGUI_PLUGIN_IMPORT_TIMEOUT``) and a hang-detector timeout; the rest runs in-process.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import pytest

from hostile import run_scalgui
from scalgui.cli import main
from scalgui.plugins import ENV_VAR, Registry, set_default_registry
from scalgui.plugins import discovery
from scalgui.plugins.discovery import IMPORT_TIMEOUT_VAR, declared_ids

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_BLUR = ROOT / "plugins" / "blur.py"
#: Seconds a child waits for a hung plugin before skipping it.
CHILD_IMPORT_LIMIT_S = 2
#: Seconds after which a child is taken as hung: start-up, two hung plugins at the limit
#: above, and plenty of room for a slow, shared machine.
HANG_DETECTOR_S = 120

GOOD = '''
from scalgui.plugins import Plugin

PLUGIN = Plugin("{name}", "{title}", "Does nothing.", process=lambda ctx: ctx.magnitudes)
'''

posix_only = pytest.mark.skipif(os.name == "nt", reason="mode bits mean nothing on Windows")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _marker_code(marker: Path) -> str:
    """A line that leaves ``marker`` behind when a module's code runs."""
    return f"open({str(marker)!r}, 'w').write('ran')\n"


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """An empty folder on SCALGUI_PLUGIN_PATH (user folder elsewhere, empty), discovered
    afresh by the in-process command."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv(ENV_VAR, str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    previous = set_default_registry(None)
    yield folder
    set_default_registry(previous)


def _child_env(folder: Path, tmp_path: Path) -> dict:
    return {ENV_VAR: str(folder), "XDG_DATA_HOME": str(tmp_path / "data"),
            IMPORT_TIMEOUT_VAR: str(CHILD_IMPORT_LIMIT_S)}


def _problems(registry) -> dict:
    return {Path(p.source).name: p.problem for p in registry.problems}


def _import_threads(name: str) -> list:
    return [t for t in threading.enumerate() if t.name.startswith("scalgui plugin import: ") and t.name.endswith(name)]


# --------------------------------------------------------------------------- hangs


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_plugins_that_never_finish_importing_are_skipped_and_named(plugin_path, tmp_path, as_json):
    _write(plugin_path, "spins.py", "while True:\n    pass\n")
    _write(plugin_path, "sleeps.py", "import time\ntime.sleep(10**6)\n")
    _write(plugin_path, "fine.py", GOOD.format(name="fine", title="Fine"))
    outcome = run_scalgui(["plugins", *(["--json"] if as_json else [])], cwd=tmp_path, timeout=HANG_DETECTOR_S,
                          env=_child_env(plugin_path, tmp_path))
    assert not outcome.timed_out, f"hung: killed after {outcome.seconds:.0f} s"
    assert outcome.code == 0, outcome.stderr_lines
    assert "Traceback" not in "\n".join(outcome.stderr_lines)
    hung = f"did not finish importing within {CHILD_IMPORT_LIMIT_S} s (it may loop forever); skipped"
    if as_json:
        listing = json.loads(outcome.stdout)
        problems = {p["source"]: p["problem"] for p in listing["problems"]}
        assert problems == {str(plugin_path / "sleeps.py"): hung, str(plugin_path / "spins.py"): hung}
        assert {"fine", "blur", "transpose"} <= {p["name"] for p in listing["plugins"]}
    else:
        assert f"{plugin_path / 'spins.py'}: {hung}" in outcome.stdout
        assert f"{plugin_path / 'sleeps.py'}: {hung}" in outcome.stdout
        assert any(line.startswith("fine  Fine") for line in outcome.stdout.splitlines())


def test_a_plugin_looping_in_its_own_code_is_stopped_and_not_left_registered(tmp_path):
    folder = tmp_path / "plugins"
    _write(folder, "spins.py", "while True:\n    pass\n")
    registry = Registry.discover(folders=[folder], entry_points=False, import_timeout=0.5)
    assert _problems(registry) == {"spins.py": "did not finish importing within 0.5 s (it may loop forever); skipped"}
    assert not [name for name in sys.modules if name.startswith("scalgui_plugin_spins_")]
    # It would otherwise take a core (and the GIL) for as long as the editor runs.
    deadline = time.monotonic() + 30
    while _import_threads("spins.py") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _import_threads("spins.py")


def test_a_plugin_blocked_outside_its_code_is_not_imported_twice_and_vanishes_when_it_ends(tmp_path, monkeypatch):
    """A plugin waiting in someone else's code (here an Event) cannot be stopped: a rescan
    must not start a second import of it, and when it ends late it registers nothing."""
    gate = types.ModuleType("scalgui_test_plugin_gate")
    gate.EVENT = threading.Event()
    monkeypatch.setitem(sys.modules, gate.__name__, gate)
    folder = tmp_path / "plugins"
    _write(folder, "waits.py", f"import {gate.__name__}\n{gate.__name__}.EVENT.wait()\n"
           + GOOD.format(name="waits", title="Waits"))
    try:
        first = Registry.discover(folders=[folder], entry_points=False, import_timeout=0.3)
        assert "did not finish importing within 0.3 s" in _problems(first)["waits.py"]
        assert len(_import_threads("waits.py")) == 1
        again = Registry.discover(folders=[folder], entry_points=False, import_timeout=0.3)
        assert _problems(again)["waits.py"].startswith("still importing since an earlier scan")
        assert len(_import_threads("waits.py")) == 1
    finally:
        gate.EVENT.set()
    deadline = time.monotonic() + 30
    while _import_threads("waits.py") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _import_threads("waits.py")
    assert not [name for name in sys.modules if name.startswith("scalgui_plugin_waits_")]
    assert "waits" not in first and "waits" not in again
    # Finished, it is an ordinary plugin to the next scan.
    assert "waits" in Registry.discover(folders=[folder], entry_points=False, import_timeout=10)


@posix_only
def test_a_real_ctrl_c_still_interrupts_while_a_plugin_imports(plugin_path, tmp_path):
    started = tmp_path / "importing"
    _write(plugin_path, "slow.py", _marker_code(started) + "import time\ntime.sleep(10**6)\n")
    env = {**os.environ, **_child_env(plugin_path, tmp_path), IMPORT_TIMEOUT_VAR: "600"}
    child = subprocess.Popen([sys.executable, "-m", "scalgui.cli", "plugins"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_DETECTOR_S
        while not started.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the plugin never started importing"
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=HANG_DETECTOR_S)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 130, err
    assert err.strip() == "scalgui: interrupted"


def test_an_unusable_time_limit_is_reported_and_the_default_used(plugin_path, monkeypatch):
    monkeypatch.setenv(IMPORT_TIMEOUT_VAR, "inf")
    registry = Registry.discover(folders=[plugin_path], entry_points=False)
    assert registry.import_timeout == discovery.IMPORT_TIMEOUT_S
    (problem,) = registry.problems
    assert str(problem) == (f"{IMPORT_TIMEOUT_VAR}: 'inf' is not a number of seconds above 0 and at most 3600; "
                            f"using 30 s")


# --------------------------------------------------------------------------- output and exceptions


CHATTY = '''
import os
import sys

from scalgui.plugins import Plugin

print("hello from the import")
print("to stderr", file=sys.stderr)
sys.stdout.buffer.write(b"raw bytes\\n")
sys.stdout.flush()
os.write(1, b"{{not json, from file descriptor 1\\n")


def describe():
    print("printed by the declaration")
    return "Prints a lot."


PLUGIN = Plugin("chatty", "Chatty", describe(), process=lambda ctx: ctx.magnitudes)
'''


def test_plugins_printing_at_import_leave_the_json_valid(plugin_path, capfd):
    _write(plugin_path, "chatty.py", CHATTY)
    _write(plugin_path, "floods.py", "for _ in range(10**4):\n    print('x' * 10**4)\nraise ValueError('flooded')\n")
    code = main(["plugins", "--json"])
    out, err = capfd.readouterr()
    assert code == 0
    listing = json.loads(out)  # the whole of standard output, file descriptor 1 included
    assert "chatty" in {p["name"] for p in listing["plugins"]}
    problems = {Path(p["source"]).name: p["problem"] for p in listing["problems"]}
    # A failing plugin's last printed line (cut short) comes with its problem.
    assert problems == {"floods.py": "ValueError: flooded (it printed: " + "x" * 159 + "…)"}
    for printed in ("hello from the import", "to stderr", "raw bytes", "printed by the declaration"):
        assert printed not in out + err, printed
    assert "not json, from file descriptor 1" in err  # C-level output goes to stderr
    assert "Traceback" not in err


@pytest.mark.parametrize("raised, problem", [
    ("raise KeyboardInterrupt", "raised KeyboardInterrupt while loading"),
    ("raise SystemExit('bye')", "called exit(bye) while loading"),
    ("class Mine(BaseException):\n    pass\nraise Mine('odd')", "raised Mine while loading: odd"),
    ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)",
     "ValueError: signal only works in main thread of the main interpreter"),
])
def test_whatever_a_plugin_raises_at_import_is_its_own_problem(plugin_path, capsys, raised, problem):
    _write(plugin_path, "raises.py", raised + "\n")
    code = main(["plugins"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert f"{plugin_path / 'raises.py'}: {problem}" in out.splitlines()[-3]
    assert any(line.startswith("transpose  ") for line in out.splitlines())
    # Ctrl-C is still the user's: the plugin could not take the handler over.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("declaration", [
    'PLUGIN = Plugin("blur", "B", "Again.", process=lambda ctx: ctx.magnitudes)',
    'PLUGIN = scalgui.plugins.Plugin(title="B", name="blur", description="Again.", process=print)',
    'ONE = Plugin("blur", "B", "Again.", process=print)\nTWO = Plugin(name="freeze", title="F", '
    'description="Again.", process=print)\nPLUGINS = [ONE, TWO]',
    'BLUR: Plugin = Plugin("blur", "B", "Again.", process=print)\nPLUGIN = BLUR',
])
def test_a_duplicate_of_a_builtin_is_refused_without_running_its_code(plugin_path, tmp_path, declaration):
    marker = tmp_path / "duplicate-ran"
    _write(plugin_path, "again.py", _marker_code(marker) + "import scalgui.plugins\nfrom scalgui.plugins import Plugin\n"
           + declaration + "\n")
    registry = Registry.discover(folders=[ROOT / "plugins", plugin_path], entry_points=False)
    assert not marker.exists()
    duplicates = [str(p) for p in registry.problems]
    assert f"{plugin_path / 'again.py'}: plugin id 'blur' is already provided by {BUILTIN_BLUR}" in duplicates
    assert registry.get("blur").source == str(BUILTIN_BLUR)


def test_a_duplicate_whose_id_cannot_be_read_is_imported_then_refused(plugin_path, tmp_path):
    marker = tmp_path / "duplicate-ran"
    _write(plugin_path, "again.py", _marker_code(marker) + "from scalgui.plugins import Plugin\nNAME = 'bl' + 'ur'\n"
           "PLUGIN = Plugin(NAME, 'B', 'Again.', process=print)\n")
    registry = Registry.discover(folders=[ROOT / "plugins", plugin_path], entry_points=False)
    assert marker.exists()  # documented: only literal ids are read without running the module
    assert f"{plugin_path / 'again.py'}: plugin id 'blur' is already provided by {BUILTIN_BLUR}" in map(
        str, registry.problems)


def test_a_module_with_one_new_id_among_taken_ones_is_imported(plugin_path, tmp_path):
    _write(plugin_path, "mixed.py", "from scalgui.plugins import Plugin\n"
           "PLUGINS = (Plugin('blur', 'B', 'Again.', process=print), Plugin('fresh', 'F', 'New.', process=print))\n")
    registry = Registry.discover(folders=[ROOT / "plugins", plugin_path], entry_points=False)
    assert "fresh" in registry and registry.get("blur").source == str(BUILTIN_BLUR)


@pytest.mark.parametrize("source, ids", [
    ('PLUGIN = Plugin("a", "A", "x")', ("a",)),
    ('PLUGINS = (Plugin("a", "A", "x"), p.Plugin(name="b"))', ("a", "b")),
    ('A = Plugin("a")\nALL = [A]\nPLUGINS = ALL', ("a",)),
    ('PLUGIN = Plugin("a")\nPLUGINS = [Plugin("b")]', ("b",)),  # PLUGINS wins, as at import
    ('PLUGIN = Plugin("a")\nif x:\n    PLUGIN = Plugin("b")', None),
    ('if x:\n    PLUGIN = Plugin("a")', None),
    ('PLUGIN = Plugin("a")\ndef f():\n    global PLUGIN\n    PLUGIN = 1', None),
    ('PLUGIN = Plugin("a")\nfrom elsewhere import *', None),
    ('PLUGIN = Plugin("a")\nfrom elsewhere import PLUGIN', None),
    ('PLUGIN = Plugin(**options)', None),
    ('PLUGIN = Plugin(f"{x}")', None),
    ('PLUGIN = make("a")', None),
    ('PLUGINS = [Plugin("a"), *more]', None),
    ('PLUGINS = []', None),
    ('PLUGIN = Plugin("a")\nPLUGINS += []', None),
    ('VALUE = 1', None),
    ('def broken(:', None),
])
def test_declared_ids_are_read_only_when_certain(source, ids):
    assert declared_ids(source) == ids


def test_the_builtins_declare_their_ids_statically():
    for path, ids in [("blur.py", ("blur", "freeze")), ("transpose.py", ("transpose",)), ("heal.py", ("heal",))]:
        assert declared_ids((ROOT / "plugins" / path).read_bytes()) == ids


# --------------------------------------------------------------------------- permissions


@posix_only
@pytest.mark.parametrize("mode", [0o777, 0o1777], ids=["world-writable", "sticky"])
def test_a_world_writable_plugin_folder_is_not_imported(plugin_path, tmp_path, capsys, mode):
    marker = tmp_path / "ran"
    _write(plugin_path, "mine.py", _marker_code(marker) + GOOD.format(name="mine", title="Mine"))
    os.chmod(plugin_path, mode)
    code = main(["plugins"])
    out, _ = capsys.readouterr()
    assert code == 0 and not marker.exists()
    assert (f"{plugin_path}: the folder is writable by every user (mode {mode:04o}), so anyone on this computer "
            f"could put code in it; not loaded (fix: chmod o-w '{plugin_path}')") in out
    assert not any(line.startswith("mine  ") for line in out.splitlines())
    code = main(["apply", "mine", "example", "-o", str(tmp_path / "out.wav")])
    _, err = capsys.readouterr()
    assert code == 2 and "plugin 'mine' could not be loaded" in err and "writable by every user" in err


@posix_only
def test_a_world_writable_plugin_file_or_package_is_not_imported_and_the_rest_are(tmp_path):
    folder = tmp_path / "plugins"
    marker = tmp_path / "ran"
    os.chmod(_write(folder, "open_file.py", _marker_code(marker) + GOOD.format(name="one", title="One")), 0o666)
    _write(folder, "open_pack/__init__.py", _marker_code(marker) + GOOD.format(name="two", title="Two"))
    os.chmod(folder / "open_pack", 0o757)
    os.chmod(_write(folder, "open_init/__init__.py", _marker_code(marker) + GOOD.format(name="three", title="T")), 0o646)
    _write(folder, "fine.py", GOOD.format(name="fine", title="Fine"))
    registry = Registry.discover(folders=[folder], entry_points=False)
    assert registry.names == ["fine"] and not marker.exists()
    problems = _problems(registry)
    assert problems["open_file.py"].startswith("the file is writable by every user (mode 0666)")
    assert problems["open_pack"].startswith("the folder is writable by every user (mode 0757)")
    assert problems["open_init"].startswith("open_init/__init__.py: the file is writable by every user (mode 0646)")


@posix_only
def test_a_plugin_folder_inside_a_folder_anyone_may_rename_in_is_not_imported(tmp_path):
    shared = tmp_path / "shared"
    folder = shared / "plugins"
    _write(folder, "mine.py", GOOD.format(name="mine", title="Mine"))
    os.chmod(shared, 0o777)
    registry = Registry.discover(folders=[folder], entry_points=False)
    assert len(registry) == 0
    (problem,) = registry.problems
    assert problem.problem.startswith(f"it is inside {shared}, which every user may write to (mode 0777)")
    # With the sticky bit (as /tmp has), others cannot rename what is not theirs.
    os.chmod(shared, 0o1777)
    assert Registry.discover(folders=[folder], entry_points=False).names == ["mine"]


# --------------------------------------------------------------------------- files and sizes


@posix_only
def test_special_files_named_like_plugins_are_never_opened(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    os.mkfifo(folder / "fifo.py")
    (folder / "zeros.py").symlink_to("/dev/zero")
    (folder / "pack").mkdir()
    os.mkfifo(folder / "pack" / "__init__.py")
    _write(folder, "fine.py", GOOD.format(name="fine", title="Fine"))
    registry = Registry.discover(folders=[folder], entry_points=False, import_timeout=10)
    assert registry.names == ["fine"] and registry.problems == []


def test_an_oversized_plugin_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(discovery, "MAX_SOURCE_BYTES", 2**20)
    folder = tmp_path / "plugins"
    _write(folder, "huge.py", GOOD.format(name="huge", title="Huge") + "#" * 2**20 + "\n")
    registry = Registry.discover(folders=[folder], entry_points=False)
    assert str(registry.problems[0]) == (f"{folder / 'huge.py'}: huge.py is 1.0 MB; a plugin file may be at most 1 MB "
                                         f"(keep data in files of its own)")
    assert len(registry) == 0


def test_a_folder_of_too_many_plugin_files_is_cut_short_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(discovery, "MAX_MODULES_PER_FOLDER", 3)
    folder = tmp_path / "plugins"
    for i in range(5):
        _write(folder, f"p{i}.py", GOOD.format(name=f"p{i}", title=f"P{i}"))
    registry = Registry.discover(folders=[folder], entry_points=False)
    assert registry.names == ["p0", "p1", "p2"]
    assert [str(p) for p in registry.problems] == [
        f"{folder}: holds 5 plugin modules; only the first 3 by name were looked at"]
