"""Shared pytest fixtures for scalgui.

Environment first: Qt must render offscreen (no display in CI), and OpenMP threads must
not spin while idle (torch on a 2-core machine slows 10-30x otherwise). Both have to be
set before Qt or torch is imported anywhere, hence before every other import here.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import functools  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scalgui.dsp import signals  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 44100
CHIRP_F0_HZ, CHIRP_F1_HZ, CHIRP_S = 50.0, 16000.0, 2.0
CHORD_FREQS_HZ = (220.0, 277.18, 329.63)  # A major: A3, C#4, E4
STEREO_MUSIC_SPAN_S = (1.0, 3.0)  # chord, bass, a click, start of the glide


# --------------------------------------------------------------------------- devices


@functools.lru_cache(maxsize=1)
def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def _device_params() -> list:
    params = [pytest.param("cpu", id="cpu")]
    if _cuda_available():
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.gpu))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrise over devices only for tests that ask for one, so that torch is not
    # imported (nor CUDA probed) by test sessions that never touch it.
    if "torch_device" in metafunc.fixturenames:
        metafunc.parametrize("torch_device", _device_params(), indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    # The `gpu` marker (see pyproject.toml) means "needs CUDA": skip those without it.
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def torch_device(request) -> str:
    """A torch device name: "cpu", and also "cuda" when a CUDA device is available.

    Tests using this fixture run once per available device; the CUDA run carries the
    ``gpu`` marker.
    """
    return getattr(request, "param", "cpu")


# --------------------------------------------------------------------------- the user's settings


@pytest.fixture(autouse=True)
def isolated_user_settings(tmp_path_factory, monkeypatch):
    """Every test sees an empty settings folder of its own and no VST3 trust left over from
    another test (the developer's own ~/.config/scalgui must not change what a test sees)."""
    from scalgui.audio.vst3 import forget_allowed_vst3

    monkeypatch.setenv("SCALGUI_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("SCALGUI_VST3_PATH", raising=False)
    forget_allowed_vst3()
    yield
    forget_allowed_vst3()


# --------------------------------------------------------------------------- signals
# Generated once per session and copied per test, so a test may modify its array freely.


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> np.ndarray:
    sr = SAMPLE_RATE
    if name == "chirp":
        x = signals.exponential_chirp(CHIRP_F0_HZ, CHIRP_F1_HZ, CHIRP_S, sr)
    elif name == "chord":
        x = signals.chord(CHORD_FREQS_HZ, 2.0, sr)
    elif name == "speech":
        x = signals.noise_bursts(2.0, sr, seed=0)
    elif name == "example":
        x = signals.example_sound(sr, seed=0)
    else:  # pragma: no cover
        raise KeyError(name)
    x.setflags(write=False)
    return x


@pytest.fixture(scope="session")
def sample_rate() -> int:
    """Sample rate of every signal fixture, in Hz (44100)."""
    return SAMPLE_RATE


@pytest.fixture
def chirp() -> np.ndarray:
    """2 s exponential sine sweep, 50 Hz -> 16 kHz, peak 0.5; float32 ``[frames]``."""
    return _cached("chirp").copy()


@pytest.fixture(scope="session")
def chord_freqs_hz() -> tuple:
    """Fundamentals of :func:`chord_signal`, in Hz (A major: 220, 277.18, 329.63)."""
    return CHORD_FREQS_HZ


@pytest.fixture
def chord_signal() -> np.ndarray:
    """2 s A-major chord, 6 partials per note, peak 0.5; float32 ``[frames]``."""
    return _cached("chord").copy()


@pytest.fixture
def speech_like() -> np.ndarray:
    """2 s of speech-like buzz and noise bursts (seed 0), peak 0.5; float32 ``[frames]``."""
    return _cached("speech").copy()


@pytest.fixture
def stereo_music() -> np.ndarray:
    """Seconds 1.0-3.0 of the example sound; float32 ``[2, frames]`` (88200 frames)."""
    a, b = (int(round(t * SAMPLE_RATE)) for t in STEREO_MUSIC_SPAN_S)
    return _cached("example")[:, a:b].copy()


@pytest.fixture
def example_audio() -> np.ndarray:
    """The whole example sound, ``example_sound(44100, seed=0)``; float32 ``[2, frames]``."""
    return _cached("example").copy()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator, ``np.random.default_rng(1234)``, for each test."""
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- editor windows
# Qt is imported inside the fixtures, so that sessions without GUI tests never load it.


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch, stereo_music, sample_rate):
    """Open editor windows as a person finds them: ``make_window(silent=True)``.

    Each is a shown :class:`~scalgui.ui.main_window.MainWindow` with :func:`stereo_music`
    open (seconds 1-3 of the example, stereo 44.1 kHz), its picture drawn and the
    keyboard focus on the view. With ``silent`` the transport finds no sound device,
    whatever this machine has, so playback runs on the silent clock; without it, the
    system's default output is used. Questions are answered yes; error boxes are
    collected in ``window.errors`` instead of shown; settings (recent files) go to a
    temporary file. At the end the players and previews stop and the documents close,
    so nothing is left to confirm.
    """
    import pyqtgraph as pg
    from PyQt6.QtCore import QSettings

    from scalgui.app.document import Document
    from scalgui.ui import transport
    from scalgui.ui.main_window import MainWindow
    from scalgui.ui.testing import show_window

    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)  # no lost drag events
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *args: self.errors.append(args))
    windows = []

    def make(silent: bool = True):
        if silent:
            monkeypatch.setattr(transport, "default_audio_output", lambda: None)
        window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        window.errors = []
        windows.append(window)
        show_window(qtbot, window, Document.from_samples(stereo_music, sample_rate, device="cpu"))
        return window

    yield make
    for window in windows:
        window.player.stop()
        window.cancel_preview()
        window.set_document(None)


@pytest.fixture
def empty_window(qtbot, tmp_path, monkeypatch):
    """A shown editor window with nothing open, as the editor starts: questions answered
    yes, error boxes collected in ``window.errors``, settings in a temporary file; the
    document it ends with is closed, so nothing is left to confirm."""
    import pyqtgraph as pg
    from PyQt6.QtCore import QSettings

    from scalgui.ui.main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", mouseRateLimit=-1)  # no lost drag events
    monkeypatch.setattr(MainWindow, "ask", lambda self, title, text: True)
    monkeypatch.setattr(MainWindow, "show_error", lambda self, *args: self.errors.append(args))
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window.errors = []
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.set_document(None)


@pytest.fixture
def silent_window(make_window):
    """An editor window on :func:`stereo_music` playing on the silent clock (see :func:`make_window`)."""
    return make_window(silent=True)


# --------------------------------------------------------------------------- plugins


@pytest.fixture(scope="session")
def builtin_plugins():
    """The registry of the repository's ``plugins/`` folder (entry points left out)."""
    from scalgui.plugins import Registry

    registry = Registry.discover(folders=[REPO_ROOT / "plugins"], entry_points=False)
    assert not registry.problems, registry.problems
    return registry
