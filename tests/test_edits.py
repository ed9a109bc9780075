"""Edits as data: shapes, feathers, actions, rasterisation on any frame."""
import numpy as np
import pytest
import torch

from scalgui.dsp import signals
from scalgui.dsp.edits import (
    Band,
    Combined,
    Edit,
    Harmonic,
    Lasso,
    Rectangle,
    Stroke,
    TimeRange,
    apply_edits,
    touched_spans,
)
from scalgui.dsp.frame import FrameSettings, WaveletFrame

T = np.linspace(0.0, 2.0, 2001)


def test_rectangle_is_one_inside_zero_beyond_its_feather():
    shape = Rectangle(0.5, 1.0, 1000.0, 2000.0, feather_s=0.1, feather_oct=0.5)
    w = shape.weights(T, 1400.0)
    assert np.all(w[(T >= 0.5) & (T <= 1.0)] == 1.0)
    assert np.all(w[(T < 0.4) | (T > 1.1)] == 0.0)
    assert w[np.argmin(abs(T - 0.45))] == pytest.approx(0.5, abs=1e-6)
    assert shape.weights(T, 2000.0 * 2**0.25)[700] == pytest.approx(0.5, abs=1e-6)
    assert shape.weights(T, 4000.0).max() == 0.0
    assert shape.span() == pytest.approx((0.4, 1.1))


def test_time_range_and_band():
    assert TimeRange(0.5, 1.0, 0.0).weights(T, 50.0).sum() == pytest.approx(501)
    band = Band(100.0, 200.0, feather_oct=0.0)
    assert np.all(band.weights(T, 150.0) == 1.0) and np.all(band.weights(T, 250.0) == 0.0)
    assert band.span() == (-np.inf, np.inf)


def test_lasso_even_odd_inside_and_feather():
    triangle = Lasso(((0.0, 100.0), (1.0, 100.0), (0.5, 1600.0)), feather_s=0.05, feather_oct=0.25)
    # At 400 Hz (two octaves up of four) the triangle spans 0.25..0.75 s.
    w = triangle.weights(T, 400.0)
    assert np.all(w[(T > 0.26) & (T < 0.74)] == 1.0)
    assert np.all(w[(T < 0.15) | (T > 0.85)] == 0.0)
    assert 0.0 < w[np.argmin(abs(T - 0.23))] < 1.0
    assert triangle.weights(T, 3200.0).max() == 0.0


def test_harmonic_selects_multiples_of_the_fundamental():
    shape = Harmonic(f0=200.0, t0=0.0, t1=2.0, count=5, width_cents=50.0, feather_s=0.0)
    assert shape.weights(T, 600.0).min() == 1.0
    assert shape.weights(T, 1000.0 * 2 ** (10 / 1200)).min() == 1.0
    assert shape.weights(T, 700.0).max() == 0.0  # between harmonics 3 and 4
    assert shape.weights(T, 1400.0).max() == 0.0  # harmonic 7 > count


def test_stroke_follows_its_path_with_a_soft_tip():
    stroke = Stroke(((0.5, 500.0), (1.5, 2000.0)), radius_s=0.1, radius_oct=0.25, hardness=0.5)
    # On the path (one octave up at 1.0 s) the weight is 1; far off it is 0.
    assert stroke.weights(np.array([1.0]), 1000.0)[0] == 1.0
    assert stroke.weights(np.array([1.0]), 4000.0)[0] == 0.0
    assert stroke.weights(np.array([0.0]), 500.0)[0] == 0.0
    tip = stroke.weights(np.array([0.5 - 0.075]), 500.0)[0]  # 0.75 radius: halfway down the soft part
    assert tip == pytest.approx(0.5, abs=1e-6)


def test_hand_drawn_strokes_and_lassos_weigh_as_measured_against_every_segment():
    # Shapes measure only the segments that can reach a band; the weights are those of
    # measuring every point against every segment (no reach given).
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(0, [0.004, 0.03], size=(300, 2)), axis=0)
    points = tuple((0.5 + t, 1000.0 * 2**o) for t, o in walk)
    stroke = Stroke(points, radius_s=0.03, radius_oct=1 / 12, hardness=0.4)
    lasso = Lasso(points, feather_s=0.02, feather_oct=1 / 24)
    times = np.linspace(0.0, 2.5, 3001)
    from scalgui.dsp.edits import _distance_to_segments, _normalised, _ramp

    reached = 0
    for f in 1000.0 * 2 ** np.linspace(-1.5, 1.5, 61):
        path = _normalised(points, stroke.radius_s, stroke.radius_oct)
        y = np.log2(f) / stroke.radius_oct
        distance = _distance_to_segments(times / stroke.radius_s, y, path[:-1], path[1:])
        expected = _ramp(distance - stroke.hardness, 1 - stroke.hardness)
        got = stroke.weights(times, f)
        assert np.array_equal(got, expected)
        reached += int(np.count_nonzero(got))
        lasso_w = lasso.weights(times, f)
        poly = _normalised(points, lasso.feather_s, lasso.feather_oct)
        outside = lasso_w < 1.0
        y = np.log2(f) / lasso.feather_oct
        far = _distance_to_segments(times / lasso.feather_s, y, poly, np.roll(poly, -1, axis=0))
        assert np.array_equal(lasso_w[outside], _ramp(far, 1.0)[outside])
    assert reached > 1000


def test_combined_add_and_subtract():
    shape = Combined(((TimeRange(0.0, 1.0, 0.0), "add"), (Rectangle(0.4, 0.6, 100, 200, 0, 0), "subtract")))
    assert shape.weights(np.array([0.5]), 150.0)[0] == 0.0
    assert shape.weights(np.array([0.5]), 1500.0)[0] == 1.0
    assert shape.weights(np.array([1.5]), 1500.0)[0] == 0.0


@pytest.fixture(scope="module")
def analysed():
    sr = 22050
    frame = WaveletFrame(FrameSettings(sr, 12, fmin=50.0))
    x = torch.from_numpy(signals.example_sound(sr)[:, : 2 * sr])
    return frame, frame.analyze(x)


def band_index(frame, freq_hz):
    wav = frame.bands.wavelet_indices
    return int(wav[np.argmin(np.abs(frame.bands.centre_hz[wav] - freq_hz))])


def test_actions_on_magnitudes(analysed):
    frame, coeffs = analysed
    rect = Rectangle(0.5, 1.0, 300.0, 3000.0, feather_s=0.0, feather_oct=0.0)
    k = band_index(frame, 1000.0)
    times = coeffs.times(k)
    inside, outside = (times > 0.55) & (times < 0.95), (times < 0.4)
    source = coeffs.band(k).abs()

    def band_of(target):
        return target.band(k)

    gained = band_of(apply_edits(coeffs, [Edit(rect, "gain", -20.0)]))
    torch.testing.assert_close(gained[..., inside], source[..., inside] * 0.1)
    torch.testing.assert_close(gained[..., outside], source[..., outside])
    erased = apply_edits(coeffs, [Edit(rect, "erase")])
    assert float(band_of(erased)[..., inside].abs().max()) == 0.0
    restored = apply_edits(coeffs, [Edit(rect, "erase"), Edit(rect, "restore")])
    torch.testing.assert_close(band_of(restored), source)
    painted = apply_edits(coeffs, [Edit(rect, "erase"), Edit(rect, "paint", -12.0)])
    level = 10 ** (-12 / 20)
    torch.testing.assert_close(band_of(painted)[..., inside], torch.full_like(source[..., inside], level))
    # Lowpass and highpass atoms are never edited.
    for atom in (0, len(frame.bands) - 1):
        torch.testing.assert_close(apply_edits(coeffs, [Edit(TimeRange(0, 2), "erase")]).band(atom), coeffs.band(atom).abs())


def test_edits_are_resolution_independent(analysed):
    """The same edit rasterised on a 24-voice frame attenuates the same region."""
    frame, coeffs = analysed
    other = WaveletFrame(FrameSettings(frame.sample_rate, 24, fmin=50.0, oversampling=2.0))
    x = frame.synthesize(coeffs)
    coeffs24 = other.analyze(x)
    edit = Edit(Rectangle(0.5, 1.0, 300.0, 3000.0, 0.0, 0.0), "gain", -30.0)
    for fr, c in ((frame, coeffs), (other, coeffs24)):
        target = apply_edits(c, [edit])
        k = band_index(fr, 1000.0)
        times = c.times(k)
        inside = (times > 0.55) & (times < 0.95)
        ratio = target.band(k)[..., inside] / c.band(k)[..., inside].abs().clamp_min(1e-12)
        assert torch.allclose(ratio, torch.full_like(ratio, 10 ** (-30 / 20)), rtol=1e-4)


def test_touched_spans_and_validation():
    edits = [Edit(Rectangle(0.5, 1.0, 100, 200, feather_s=0.1), "erase"), Edit(Band(100, 200), "gain", -6)]
    assert touched_spans(edits, 3.0) == [pytest.approx((0.4, 1.1)), (0.0, 3.0)]
    with pytest.raises(ValueError, match="action"):
        Edit(Band(100, 200), "explode")
    with pytest.raises(ValueError, match="rectangle"):
        Rectangle(1.0, 0.5, 100, 200)
    with pytest.raises(ValueError, match="three points"):
        Lasso(((0, 100), (1, 100)))
    with pytest.raises(ValueError, match="add"):
        Combined(((Band(1, 2), "xor"),))


def test_paint_reaches_neighbouring_bands_as_a_partial_would(analysed):
    """A thin stroke between two band centres gives each the response a sinusoid would."""
    frame, coeffs = analysed
    silent = coeffs.map(torch.zeros_like)
    k = band_index(frame, 1000.0)
    f = float(np.sqrt(frame.bands.centre_hz[k] * frame.bands.centre_hz[k + 1]))  # between k and k+1
    stroke = Stroke(((0.5, f), (1.5, f)), radius_s=0.05, radius_oct=1 / 96, hardness=1.0)
    target = apply_edits(silent, [Edit(stroke, "paint", -6.0)])
    level = 10 ** (-6 / 20)
    edges = np.array([f * 2 ** (-1 / 96), f * 2 ** (1 / 96)])
    for band in (k - 1, k, k + 1, k + 2):
        times = coeffs.times(band)
        middle = (times > 0.8) & (times < 1.2)
        # Between a sinusoid at the stroke's centre and one at its nearest edge.
        low = level * frame.atom_response(band, np.array([f]))[0]
        high = level * frame.atom_response(band, edges).max()
        got = target.band(band)[..., middle]
        assert float(got.min()) >= low * 0.999 and float(got.max()) <= high * 1.001
        assert float(got.std()) < 1e-6  # steady along the stroke
    # The two bands around the stroke see it about equally: no staircase.
    a, b = (float(target.band(j)[..., (coeffs.times(j) > 0.8) & (coeffs.times(j) < 1.2)].mean()) for j in (k, k + 1))
    assert a == pytest.approx(b, rel=0.05)


def test_paint_weights_skip_only_frequencies_the_shape_cannot_reach(monkeypatch):
    import scalgui.dsp.edits as edits_module
    from scalgui.dsp import signals
    from scalgui.dsp.edits import Band, Combined, Harmonic, Lasso, Stroke, TimeRange, paint_weights
    from scalgui.dsp.frame import FrameSettings, WaveletFrame

    frame = WaveletFrame(FrameSettings(22050, 12, fmin=50.0), device="cpu")
    coeffs = frame.analyze(torch.from_numpy(signals.example_sound(22050)[:, : 22050 * 2]))
    shapes = [Stroke(((0.5, 1500.0), (1.5, 3000.0)), radius_s=0.05, radius_oct=1 / 24),
              Rectangle(0.5, 1.0, 300.0, 600.0), Lasso(((0.5, 400.0), (1.0, 900.0), (0.8, 2000.0))),
              Combined(((Rectangle(0.5, 1.0, 300.0, 600.0), "add"), (Band(400.0, 500.0), "subtract"))),
              Harmonic(220.0, 0.5, 1.0), TimeRange(1.0, 1.5)]
    for shape in shapes:
        edit = Edit(shape, "paint", -20.0)
        reached = {(g, r): w for g, r, _, w in paint_weights(coeffs, edit)}
        with monkeypatch.context() as m:
            m.setattr(edits_module, "_frequency_reach", lambda shape: (0.0, float("inf")))
            everywhere = {(g, r): w for g, r, _, w in paint_weights(coeffs, edit)}
        assert reached.keys() == everywhere.keys() and reached
        for key, weights in reached.items():
            np.testing.assert_array_equal(weights, everywhere[key])
