"""Shared pytest fixtures for scalgui.

Environment first: Qt must render offscreen (no display in CI), and OpenMP threads must
not spin while idle (torch on a 2-core machine slows 10-30x otherwise). Both have to be
set before Qt or torch is imported anywhere, hence before every other import here.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import functools  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scalgui.dsp import signals  # noqa: E402

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
