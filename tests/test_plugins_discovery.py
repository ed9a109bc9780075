"""Discovery: plugin folders, the environment variable, the user folder, entry points, the
built-ins (also from a regular, non-editable install), and broken plugins reported and skipped."""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from scalgui.plugins import ENV_VAR, PluginError, Registry, builtin_dir, search_folders, user_dir
from scalgui.plugins.discovery import plugin_modules

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = ("blur", "denoise", "freeze", "harmonics", "transpose")

GOOD = '''
from scalgui.plugins import Param, Plugin

def process(ctx):
    return ctx.magnitudes

PLUGIN = Plugin("{name}", "{title}", "Does nothing.", params=(Param("x", "float", 1.0),), process=process)
'''

BROKEN = {
    "syntax.py": "def process(ctx)\n    return ctx\n",
    "missing_import.py": "import scalgui_no_such_module\n",
    "bad_param.py": GOOD.replace('Param("x", "float", 1.0)', 'Param("x", "float", 5.0, maximum=1.0)').format(
        name="badparam", title="Bad"),
    "no_plugin.py": "VALUE = 1\n",
    "wrong_type.py": "PLUGIN = {'name': 'dict'}\n",
    "raises.py": "raise RuntimeError('boom at import')\n",
    "exits.py": "import sys\nsys.exit(3)\n",
}
EXPECTED = {
    "syntax.py": "syntax error at line 1",
    "missing_import.py": "import failed: ModuleNotFoundError: No module named 'scalgui_no_such_module'",
    "bad_param.py": "ValueError: parameter 'x': 5 is above the maximum 1",
    "no_plugin.py": "defines neither PLUGIN",
    "wrong_type.py": "expected a scalgui.plugins.Plugin, got dict",
    "raises.py": "RuntimeError: boom at import",
    "exits.py": "called exit(3) while loading",
}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def plugin_folder(tmp_path):
    folder = tmp_path / "plugins"
    _write(folder, "good.py", GOOD.format(name="good", title="Good"))
    _write(folder, "_helper.py", "raise RuntimeError('helpers are not plugins')\n")
    _write(folder, "pack/__init__.py", GOOD.format(name="packed", title="Packed"))
    _write(folder, "several.py", GOOD.format(name="one", title="One")
           + "\nPLUGINS = [PLUGIN, Plugin('two', 'Two', 'Also nothing.', process=process)]\n")
    for name, text in BROKEN.items():
        _write(folder, name, text)
    return folder


def test_a_folder_loads_good_plugins_and_reports_every_broken_one(plugin_folder):
    registry = Registry.discover(folders=[plugin_folder], entry_points=False)
    assert registry.names == ["good", "one", "packed", "two"]
    assert registry.get("good").source == str(plugin_folder / "good.py")
    assert registry.get("packed").source == str(plugin_folder / "pack")
    problems = {Path(p.source).name: p.problem for p in registry.problems}
    assert set(problems) == set(BROKEN)  # _helper.py is skipped, not reported
    for name, expected in EXPECTED.items():
        assert expected in problems[name], (name, problems[name])
    assert all("\n" not in str(p) for p in registry.problems)
    assert [p.title for p in registry] == ["Good", "One", "Packed", "Two"]
    # No byte code left in plugin folders.
    assert not any(plugin_folder.rglob("__pycache__"))


def test_asking_for_a_broken_plugin_says_why(plugin_folder):
    registry = Registry.discover(folders=[plugin_folder], entry_points=False)
    with pytest.raises(PluginError, match=r"plugin 'syntax' could not be loaded: .*syntax.py: syntax error"):
        registry.get("syntax")
    with pytest.raises(PluginError, match=r"no plugin named 'nothing' \(available: good, one, packed, two\)"):
        registry.get("nothing")


def test_a_duplicate_id_is_a_problem_and_the_first_plugin_stays(tmp_path):
    first = _write(tmp_path / "a", "dup.py", GOOD.format(name="dup", title="First"))
    _write(tmp_path / "b", "dup.py", GOOD.format(name="dup", title="Second"))
    registry = Registry.discover(folders=[tmp_path / "a", tmp_path / "b"], entry_points=False)
    assert registry.get("dup").title == "First"
    (problem,) = registry.problems
    assert problem.source == str(tmp_path / "b" / "dup.py")
    assert problem.problem == f"plugin id 'dup' is already provided by {first}"


def test_the_environment_variable_and_the_user_folder_are_searched(tmp_path, monkeypatch):
    env_a, env_b, data = tmp_path / "env_a", tmp_path / "env_b", tmp_path / "data"
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(env_a), str(env_b)]))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    assert user_dir() == data / "scalgui" / "plugins"
    kinds = search_folders()
    assert kinds[0] == ("builtin", ROOT / "plugins")
    assert kinds[1:] == [("env", env_a), ("env", env_b), ("user", data / "scalgui" / "plugins")]
    _write(env_b, "from_env.py", GOOD.format(name="from-env", title="From env"))
    _write(data / "scalgui" / "plugins", "mine.py", GOOD.format(name="mine", title="Mine"))
    registry = Registry.discover(entry_points=False)
    assert {"from-env", "mine", *BUILTINS} <= set(registry.names)
    assert registry.get("mine").source.startswith(str(data))


def test_user_folder_without_platformdirs_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # import fails
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_dir() == tmp_path / "scalgui" / "plugins"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert user_dir() == Path.home() / ".local" / "share" / "scalgui" / "plugins"


def test_entry_points_load_and_broken_ones_are_reported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _write(site, "scalgui_fake_ext/__init__.py", GOOD.format(name="ext", title="Extension")
           + "\ndef make():\n    return [Plugin('made', 'Made', 'From a factory.', process=process)]\n")
    info = site / "scalgui_fake_ext-1.0.dist-info"
    _write(info, "METADATA", "Metadata-Version: 2.1\nName: scalgui-fake-ext\nVersion: 1.0\n")
    _write(info, "entry_points.txt", textwrap.dedent("""\
        [scalgui.plugins]
        ext = scalgui_fake_ext:PLUGIN
        factory = scalgui_fake_ext:make
        module = scalgui_fake_ext
        gone = scalgui_fake_missing:PLUGIN
        """))
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    loaded = registry.add_entry_points()
    assert {p.name for p in loaded} == {"ext", "made"}
    assert registry.get("ext").source == "entry point ext = scalgui_fake_ext:PLUGIN (scalgui-fake-ext)"
    # The module entry point provides "ext" again: a duplicate, reported.
    problems = {p.source.split(" = ")[0]: p.problem for p in registry.problems}
    assert "already provided" in problems["entry point module"]
    assert "No module named 'scalgui_fake_missing'" in problems["entry point gone"]
    with pytest.raises(PluginError, match="gone.*could not be loaded"):
        registry.get("gone")


def test_the_builtins_are_found_in_the_checkout_and_all_load():
    assert builtin_dir() == ROOT / "plugins"
    registry = Registry.discover(folders=[ROOT / "plugins"], entry_points=False)
    assert registry.problems == []
    assert set(BUILTINS) <= set(registry.names)
    for plugin in registry:
        assert plugin.description and plugin.title
        for param in plugin.params:
            assert param.description, (plugin.name, param.name)  # the form's tooltips and the CLI help
    # One file each (blur.py declares blur and freeze).
    names = {p.name for p in plugin_modules(ROOT / "plugins")}
    assert {"transpose.py", "harmonics.py", "denoise.py", "blur.py"} <= names


@pytest.mark.slow
def test_a_regular_install_ships_the_builtins_and_finds_them(tmp_path):
    """Build a wheel, install it (not editable) into a fresh environment, and ask it."""
    # Built from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("scalgui", "plugins", "resources"):
        shutil.copytree(ROOT / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, source / part)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300,
                   cwd=tmp_path)
    (wheel,) = wheels.glob("scalgui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if "/share/scalgui/plugins/" in n}
    assert {f"{name}.py" for name in ("transpose", "harmonics", "denoise", "blur")} <= shipped
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    # torch and friends come from this interpreter's site-packages, on PYTHONPATH (which,
    # unlike a site folder, does not run the editable install's hook): scalgui itself
    # comes from the fresh environment.
    site_packages = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir())
    code = ("import scalgui, scalgui.plugins as p; r = p.Registry.discover(entry_points=False); "
            "print(scalgui.__file__); print(p.builtin_dir()); print(','.join(r.names)); print(len(r.problems))")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": site_packages, "SCALGUI_PLUGIN_PATH": "",
                                 "XDG_DATA_HOME": str(tmp_path / "nothing")})
    assert result.returncode == 0, result.stderr
    package, folder, names, problems = result.stdout.split("\n")[:4]
    assert package.startswith(str(venv))
    assert folder == str(venv / "share" / "scalgui" / "plugins")
    assert set(BUILTINS) <= set(names.split(",")) and problems == "0"
