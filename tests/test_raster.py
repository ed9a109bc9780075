"""Display rasters: any time range and width, from stored coefficients."""
import numpy as np
import pytest
import torch

from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.dsp.raster import resample_raster, scalogram_raster, select_channel


@pytest.fixture(scope="module")
def frame():
    return WaveletFrame(FrameSettings(44100, 12, fmin=40.0))


def tone(freq_hz, seconds=2.0, amplitude=0.5, sr=44100):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_a_tone_shows_in_its_band_at_its_level(frame):
    band = int(frame.bands.wavelet_indices[60])
    f0 = frame.bands.centre_hz[band]
    coeffs = frame.analyze(torch.from_numpy(tone(f0)))
    raster = scalogram_raster(coeffs, width=400)
    assert raster.db.shape == (len(frame.bands.wavelet_indices), 400)
    assert raster.db.dtype == np.float32
    row = 60
    middle = raster.db[:, 50:350]
    assert np.all(middle.argmax(axis=0) == row)
    assert np.allclose(middle[row], 20 * np.log10(0.5), atol=0.05)
    assert raster.centre_hz[row] == pytest.approx(f0)
    # Two octaves away the tone is far down.
    assert np.all(middle[row + 24] < middle[row] - 40)


def test_zoomed_raster_is_smooth_not_blocky(frame):
    """Zoomed in far past a low band's rate, pixels interpolate instead of repeating."""
    x = np.zeros(44100 * 2, dtype=np.float32)
    x[44100] = 1.0
    coeffs = frame.analyze(torch.from_numpy(x))
    raster = scalogram_raster(coeffs, start_s=0.95, end_s=1.05, width=1000)
    low_row = raster.db[5]  # hop of thousands of samples, ~1000 pixels across 0.1 s
    steps = np.abs(np.diff(low_row))
    assert np.count_nonzero(steps < 1e-6) < 50
    assert raster.pixel_times[np.argmax(raster.db[-10])] == pytest.approx(1.0, abs=0.002)


def test_zoomed_out_keeps_transients_visible(frame):
    x = np.zeros(44100 * 4, dtype=np.float32)
    x[int(2.53 * 44100)] = 1.0
    coeffs = frame.analyze(torch.from_numpy(x))
    narrow = scalogram_raster(coeffs, width=40)  # 0.1 s per pixel; top bands hop ~ 2 samples
    top = narrow.db[-5]
    assert top.argmax() == 25
    assert top.max() > -60
    exact = 20 * np.log10(float(coeffs.band(int(frame.bands.wavelet_indices[-5])).abs().max()))
    assert top.max() == pytest.approx(exact, abs=0.01)


def test_time_range_outside_the_signal_is_silence(frame):
    coeffs = frame.analyze(torch.from_numpy(tone(1000.0, seconds=1.0)))
    raster = scalogram_raster(coeffs, start_s=3.0, end_s=4.0, width=50, floor_db=-100)
    assert np.all(raster.db <= -99.9)


def test_channel_views_mid_and_side(frame):
    left = tone(440.0)
    right = tone(440.0) * 0.5
    coeffs = frame.analyze(torch.from_numpy(np.stack([left, right])))
    row = int(np.argmin(np.abs(frame.bands.centre_hz[frame.bands.wavelet_indices] - 440.0)))
    level = {}
    for view in ("left", "right", "mid", "side", 0, 1):
        raster = scalogram_raster(coeffs, width=100, channel=view)
        level[view] = float(np.median(raster.db[row, 20:80]))
    assert level["left"] == pytest.approx(level[0]) and level["right"] == pytest.approx(level[1])
    assert level["left"] - level["right"] == pytest.approx(6.02, abs=0.05)
    assert level["mid"] - level["left"] == pytest.approx(20 * np.log10(0.75), abs=0.05)
    assert level["side"] - level["left"] == pytest.approx(20 * np.log10(0.25), abs=0.05)


def test_bad_requests(frame):
    coeffs = frame.analyze(torch.from_numpy(tone(440.0, seconds=0.5)))
    with pytest.raises(ValueError, match="empty time range"):
        scalogram_raster(coeffs, start_s=1.0, end_s=1.0)
    with pytest.raises(ValueError, match="width"):
        scalogram_raster(coeffs, width=0)
    with pytest.raises(ValueError, match="mono"):
        select_channel(coeffs, "side")
    stereo = frame.analyze(torch.zeros(2, 1000))
    with pytest.raises(ValueError, match="does not exist"):
        select_channel(stereo, 5)
    with pytest.raises(ValueError, match="unknown channel view"):
        select_channel(stereo, "centre")


def test_resampled_overview_matches_a_direct_raster(frame):
    x = np.zeros(44100 * 4, dtype=np.float32)
    x[int(1.3 * 44100)] = 1.0
    x += tone(880.0, seconds=4.0, amplitude=0.1)
    coeffs = frame.analyze(torch.from_numpy(x))
    overview = scalogram_raster(coeffs, width=4000)
    cut = resample_raster(overview, 1.0, 3.0, 200)
    direct = scalogram_raster(coeffs, start_s=1.0, end_s=3.0, width=200)
    assert cut.db.shape == direct.db.shape
    # Steady parts agree closely; the click keeps its peak in its column.
    assert np.median(np.abs(cut.db - direct.db)) < 0.5
    column = int((1.3 - 1.0) / 2.0 * 200)
    assert cut.db[-10, column] == pytest.approx(direct.db[-10, column], abs=1.0)
    outside = resample_raster(overview, 5.0, 6.0, 10)
    assert np.all(outside.db == overview.db.min())
