"""Tests of scalgui.plotting: log-frequency scalogram pictures saved as PNG."""
import os

import numpy as np
import pytest

from scalgui.dsp.raster import Raster
from scalgui.plotting import (
    DEFAULT_RANGE_DB,
    band_edges_hz,
    hz_label,
    save_scalogram_png,
    scalogram_figure,
)

Q = 12
CENTRES = 20.0 * 2.0 ** (np.arange(Q * 10 + 1) / Q)  # 20 Hz .. 20.48 kHz, 121 bands


def _raster(width: int = 300, level_db: float = -100.0, loud_hz: float | None = 1000.0) -> Raster:
    db = np.full((len(CENTRES), width), level_db, dtype=np.float32)
    if loud_hz is not None:  # three bands (a quarter octave, several pixels tall) at 0 dB
        k = int(np.argmin(np.abs(CENTRES - loud_hz)))
        db[k - 1 : k + 2] = 0.0
    return Raster(db=db, centre_hz=CENTRES.copy(), start_s=0.0, end_s=2.0)


def test_band_edges_are_geometric_midpoints():
    edges = band_edges_hz(CENTRES)
    assert len(edges) == len(CENTRES) + 1
    assert np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(edges[1:-1], np.sqrt(CENTRES[:-1] * CENTRES[1:]))
    # every centre sits in the middle of its row on a log axis
    np.testing.assert_allclose(np.log(edges[1:]) - np.log(CENTRES), np.log(CENTRES) - np.log(edges[:-1]))
    np.testing.assert_allclose(band_edges_hz([100.0]), [50.0, 200.0])
    with pytest.raises(ValueError):
        band_edges_hz([200.0, 100.0])
    with pytest.raises(ValueError):
        band_edges_hz([])


@pytest.mark.parametrize("freq, label", [(20, "20"), (50, "50"), (500, "500"), (1000, "1k"), (2500, "2.5k"),
                                         (10000, "10k"), (20000, "20k")])
def test_hz_labels(freq, label):
    assert hz_label(freq) == label


def test_figure_has_log_frequency_axis_hz_ticks_and_db_colour_bar():
    raster = _raster()
    fig = scalogram_figure(raster, title="tone")
    ax, bar = fig.axes[0], fig.axes[1]
    assert ax.get_yscale() == "log"
    assert ax.get_xlim() == (0.0, 2.0)
    lo, hi = ax.get_ylim()
    assert lo < CENTRES[0] and hi > CENTRES[-1]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    for expected in ("50", "100", "200", "500", "1k", "2k", "5k", "10k"):
        assert expected in labels
    assert ax.get_title() == "tone"
    assert bar.get_ylabel() == "dB"
    mesh = ax.collections[0]
    assert mesh.get_clim() == (0.0 - DEFAULT_RANGE_DB, 0.0)


def test_loud_row_is_drawn_at_its_frequency():
    """A 0 dB stripe around 1 kHz must come out bright exactly where the axis says 1 kHz."""
    fig = scalogram_figure(_raster(), cmap="gray")
    ax = fig.axes[0]
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float).mean(axis=-1)
    height = image.shape[0]

    def brightness_at(freq_hz: float) -> float:
        x, y = ax.transData.transform((1.0, freq_hz))
        return image[int(round(height - y)), int(round(x))]

    assert brightness_at(1000.0) > 200  # white: 0 dB is the top of the range
    for quiet in (100.0, 300.0, 3000.0, 10000.0):
        assert brightness_at(quiet) < 60  # black: 100 dB down, below the 90 dB range


def test_save_png_dimensions_content_and_atomic(tmp_path):
    import matplotlib.image

    path = tmp_path / "scalogram.png"
    assert save_scalogram_png(_raster(), path, dpi=100) == path
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (500, 1200)
    assert float(image[..., :3].var()) > 0
    assert os.listdir(tmp_path) == ["scalogram.png"]  # no temporary file left behind
    save_scalogram_png(_raster(), path, dpi=50, figsize=(8, 4))  # overwrite in place
    assert matplotlib.image.imread(path).shape[:2] == (200, 400)


def test_colour_range_arguments(tmp_path):
    fig = scalogram_figure(_raster(), vmin_db=-40.0, vmax_db=-10.0)
    assert fig.axes[0].collections[0].get_clim() == (-40.0, -10.0)
    with pytest.raises(ValueError, match="colour range"):
        scalogram_figure(_raster(), vmin_db=0.0, vmax_db=0.0)


def test_silent_raster_still_draws(tmp_path):
    path = save_scalogram_png(_raster(level_db=-120.0, loud_hz=None), tmp_path / "silence.png")
    assert path.stat().st_size > 1000


def test_mismatched_raster_is_refused():
    bad = Raster(db=np.zeros((5, 10), dtype=np.float32), centre_hz=CENTRES, start_s=0.0, end_s=1.0)
    with pytest.raises(ValueError, match="does not match"):
        scalogram_figure(bad)


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        save_scalogram_png(_raster(), tmp_path / "missing" / "x.png")
    assert os.listdir(tmp_path) == []
