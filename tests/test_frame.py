"""The wavelet frame: exact inverse, segmentation, gradients, calibration, layout."""
import math

import numpy as np
import pytest
import torch
from kymatio.scattering1d.filter_bank import morlet_1d

from scalgui.dsp import signals
from scalgui.dsp.frame import FrameSettings, WaveletFrame


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return float((estimate - reference).norm() / reference.norm())


@pytest.mark.parametrize("voices", [8, 12, 24, 48])
@pytest.mark.parametrize("oversampling", [1.0, 2.0])
@pytest.mark.parametrize("bandwidth", ["same", 4])
def test_reconstruction_is_exact_for_real_audio(voices, oversampling, bandwidth, stereo_music, sample_rate):
    bandwidth_voices = None if bandwidth == "same" else min(bandwidth, voices)
    frame = WaveletFrame(
        FrameSettings(sample_rate, voices, oversampling=oversampling, bandwidth_voices=bandwidth_voices)
    )
    x = torch.from_numpy(stereo_music)
    y = frame.synthesize(frame.analyze(x))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert relative_error(y, x) < 1e-5


@pytest.mark.parametrize("sample_rate", [8000, 22050, 48000, 96000, 192000])
def test_reconstruction_at_other_sample_rates(sample_rate):
    x = torch.from_numpy(signals.noise_bursts(0.7, sample_rate, seed=3, band_hz=(100, 0.4 * sample_rate)))
    frame = WaveletFrame(FrameSettings(sample_rate, 12, fmin=30.0))
    assert relative_error(frame.synthesize(frame.analyze(x)), x) < 1e-5


def test_multichannel_batch_equals_channels_one_by_one(sample_rate):
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((3, 2, 20000)).astype(np.float32))
    frame = WaveletFrame(FrameSettings(sample_rate, 12))
    batched = frame.analyze(x)
    single = frame.analyze(x[1, 0])
    for group_batched, group_single in zip(batched.groups, single.groups):
        assert group_batched.shape[:2] == (3, 2)
        torch.testing.assert_close(group_batched[1, 0], group_single, rtol=1e-5, atol=1e-6)
    assert relative_error(frame.synthesize(batched), x) < 1e-5


def test_segmented_transform_matches_one_shot(sample_rate):
    # A short minimum segment forces many segments on a 6 s signal.
    frame = WaveletFrame(FrameSettings(sample_rate, 12, fmin=100.0), segment_length=2**17)
    x = torch.from_numpy(signals.example_sound(sample_rate))
    one_shot = frame.analyze(x, segmented=False)
    pieces = frame.analyze(x, segmented=True)
    assert len(frame.segment_starts(one_shot.padded_length)) >= 4
    for a, b in zip(one_shot.groups, pieces.groups):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) < 1e-5 * float(a.abs().max())
    # Synthesis of edited (inconsistent) coefficients agrees too: it is a local operator.
    generator = torch.Generator().manual_seed(0)
    edited = one_shot.map(lambda g: g * torch.rand(g.shape, generator=generator))
    y_one = frame.synthesize(edited, segmented=False)
    y_seg = frame.synthesize(edited, segmented=True)
    assert float((y_one - y_seg).abs().max()) < 1e-5 * float(y_one.abs().max())
    assert relative_error(frame.synthesize(pieces, segmented=True), x) < 1e-5


def test_ten_minute_stereo_analyses_in_bounded_memory():
    """10 minutes of stereo 44.1 kHz: analysed in segments, a tone found where it is."""
    sr, minutes = 44100, 10
    n = sr * 60 * minutes
    x = torch.zeros(2, n)
    t = torch.arange(sr * 2, dtype=torch.float64) / sr
    tone_at = n - 5 * sr
    x[1, tone_at : tone_at + 2 * sr] = (0.5 * torch.cos(2 * math.pi * 1000.0 * t)).float()
    frame = WaveletFrame(FrameSettings(sr, 12))
    coeffs = frame.analyze(x)
    assert len(frame.segment_starts(coeffs.padded_length)) > 10
    band = int(np.argmin(np.abs(frame.bands.centre_hz - 1000.0)))
    times = coeffs.times(band)
    mag = coeffs.band(band).abs()
    inside = (times > tone_at / sr + 0.5) & (times < tone_at / sr + 1.5)
    response = frame.atom_response(band, np.array([1000.0]))[0]
    assert np.allclose(mag[1, inside].numpy(), 0.5 * response, rtol=1e-3)
    assert float(mag[0].max()) < 1e-6
    assert float(mag[1, times < tone_at / sr - 2].max()) < 1e-4


def test_gradients_match_finite_differences():
    frame = WaveletFrame(FrameSettings(8000, 8, fmin=400.0), dtype=torch.float64)
    x = torch.randn(2, 300, dtype=torch.float64, requires_grad=True)
    weights = [torch.rand(g.shape, dtype=torch.float64) for g in frame.analyze(x.detach()).groups]

    def scalogram_energy(signal):
        coeffs = frame.analyze(signal)
        return sum(((g.abs() + 1e-3) ** 0.5 * w).sum() for g, w in zip(coeffs.groups, weights))

    assert torch.autograd.gradcheck(scalogram_energy, (x,), eps=1e-6, atol=1e-5)

    coeffs = frame.analyze(x.detach())
    real_parts = [g.real.clone().requires_grad_(True) for g in coeffs.groups]

    def resynthesis(*parts):
        groups = [torch.complex(p, g.imag) for p, g in zip(parts, coeffs.groups)]
        return frame.synthesize(coeffs.with_groups(groups)).pow(2).sum()

    assert torch.autograd.gradcheck(resynthesis, tuple(real_parts), eps=1e-6, atol=1e-5)


def test_sine_at_a_band_centre_reads_its_amplitude(sample_rate):
    frame = WaveletFrame(FrameSettings(sample_rate, 12))
    band = int(frame.bands.wavelet_indices[70])
    f0 = frame.bands.centre_hz[band]
    t = np.arange(sample_rate) / sample_rate
    x = torch.from_numpy((0.25 * np.sin(2 * np.pi * f0 * t)).astype(np.float32))
    coeffs = frame.analyze(x)
    times = coeffs.times(band)
    middle = (times > 0.3) & (times < 0.7)
    mag = coeffs.band(band).abs()[middle]
    assert torch.allclose(mag, torch.full_like(mag, 0.25), rtol=1e-4)
    # Absolute phase: the analytic signal of sin is -i e^{i 2 pi f t}.
    phase = torch.angle(coeffs.band(band)[middle]).numpy()
    expected = np.angle(np.exp(1j * (2 * np.pi * f0 * times[middle] - np.pi / 2)))
    assert np.allclose(np.angle(np.exp(1j * (phase - expected))), 0.0, atol=1e-3)


def test_an_impulse_is_located_in_time_by_every_band(sample_rate):
    frame = WaveletFrame(FrameSettings(sample_rate, 12, fmin=50.0))
    x = torch.zeros(sample_rate * 2)
    click = int(1.234 * sample_rate)
    x[click] = 1.0
    coeffs = frame.analyze(x)
    for band in frame.bands.wavelet_indices[::10]:
        times = coeffs.times(band)
        peak = times[int(coeffs.band(band).abs().argmax())]
        assert abs(peak - click / sample_rate) <= frame.bands.hop[band] / sample_rate


def test_band_layout_is_constant_q_and_covers_the_spectrum(sample_rate):
    frame = WaveletFrame(FrameSettings(sample_rate, 24, fmin=20.0, fmax=16000.0))
    bands = frame.bands
    centres = bands.centre_hz[bands.wavelet_indices]
    assert len(centres) == math.floor(24 * math.log2(16000 / 20)) + 1
    assert np.allclose(centres[1:] / centres[:-1], 2 ** (1 / 24))
    assert np.allclose(bands.sigma_hz[bands.wavelet_indices] / centres, bands.sigma_hz[1] / centres[0])
    assert bands.kind[0] == "lowpass" and bands.kind[-1] == "highpass"
    # Bandwidth voices widen the atoms: half the voices, twice the width.
    wide = WaveletFrame(FrameSettings(sample_rate, 24, fmin=20.0, fmax=16000.0, bandwidth_voices=12)).bands
    ratio = wide.sigma_hz[wide.wavelet_indices] / bands.sigma_hz[bands.wavelet_indices][: len(wide.wavelet_indices)]
    assert np.allclose(ratio, ratio[0]) and 1.9 < ratio[0] < 2.1
    # Neighbouring wavelets cross at -3 dB (kymatio's design rule, r = sqrt(1/2)).
    k = bands.wavelet_indices[100]
    crossing = math.sqrt(bands.centre_hz[k] * bands.centre_hz[k + 1])
    assert frame.atom_response(k, np.array([crossing]))[0] == pytest.approx(math.sqrt(0.5), rel=0.02)
    # Each band tensor holds bands of one hop; bands are grouped by it.
    coeffs = frame.analyze(torch.zeros(4096))
    for k in range(len(bands)):
        assert coeffs.groups[bands.group[k]].shape[-1] == coeffs.padded_length // bands.hop[k]
    assert 2.0 < frame.coefficients_per_sample < 12.0


def test_default_fmax_keeps_the_top_wavelet_below_nyquist():
    frame = WaveletFrame(FrameSettings(44100, 12))
    top = frame.bands.wavelet_indices[-1]
    assert frame.bands.support_hi_hz[top] < 22050
    assert 15000 < frame.fmax < 20000
    assert WaveletFrame(FrameSettings(96000, 12)).fmax == pytest.approx(20000, rel=2 ** (1 / 12) - 1)


def test_wavelets_match_kymatio_morlet_design():
    """Our atoms are kymatio's Morlet wavelets (Gabor part, peak-normalised)."""
    sr, n = 8192, 8192
    frame = WaveletFrame(FrameSettings(sr, 12, fmin=200.0))
    freqs = np.fft.fftfreq(n) * sr
    for k in frame.bands.wavelet_indices[::7]:
        xi, sigma = frame.bands.centre_hz[k] / sr, frame.bands.sigma_hz[k] / sr
        theirs = morlet_1d(n, xi, sigma)
        ours = frame.atom_response(k, np.abs(freqs)) * (freqs >= 0)
        # kymatio normalises by the L1 norm in time; compare shapes at the best scale.
        theirs = theirs * (ours @ ours) / (ours @ theirs)
        assert np.max(np.abs(ours - theirs)) < 1e-4


def test_real_atoms_have_zero_imaginary_part(sample_rate, chirp):
    frame = WaveletFrame(FrameSettings(sample_rate, 12))
    coeffs = frame.analyze(torch.from_numpy(chirp))
    for k in (0, len(frame.bands) - 1):
        assert frame.bands.real[k]
        assert float(coeffs.band(k).imag.abs().max()) == 0.0
        assert float(coeffs.band(k).real.abs().max()) > 0.0


def test_runs_on_each_available_device(torch_device, chirp, sample_rate):
    frame = WaveletFrame(FrameSettings(sample_rate, 12), device=torch_device)
    x = torch.from_numpy(chirp).to(torch_device)
    coeffs = frame.analyze(x)
    assert coeffs.groups[0].device.type == torch.device(torch_device).type
    assert relative_error(frame.synthesize(coeffs), x) < 1e-5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sample_rate=44100, voices_per_octave=2), "voices per octave"),
        (dict(sample_rate=44100, voices_per_octave=12.5), "voices per octave"),
        (dict(sample_rate=44100, fmin=30000.0), "fmin"),
        (dict(sample_rate=44100, fmin=0.0), "fmin"),
        (dict(sample_rate=44100, fmin=100.0, fmax=50.0), "fmax"),
        (dict(sample_rate=44100, oversampling=0.5), "oversampling"),
        (dict(sample_rate=44100, voices_per_octave=12, bandwidth_voices=24), "bandwidth voices"),
        (dict(sample_rate=44100, voices_per_octave=12, bandwidth_voices=3), "bandwidth voices"),
        (dict(sample_rate=-1.0), "sample rate"),
        (dict(sample_rate=float("nan")), "sample rate"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrameSettings(**kwargs)


def test_bad_signals_are_refused():
    frame = WaveletFrame(FrameSettings(44100, 12))
    with pytest.raises(ValueError, match="empty"):
        frame.analyze(torch.zeros(0))
    with pytest.raises(TypeError, match="real"):
        frame.analyze(torch.zeros(100, dtype=torch.complex64))
    with pytest.raises(ValueError, match="fmin"):
        WaveletFrame(FrameSettings(8000, 12, fmin=3900.0))


def test_batched_segments_give_the_same_result(sample_rate):
    x = torch.from_numpy(signals.example_sound(sample_rate))
    one = WaveletFrame(FrameSettings(sample_rate, 12, fmin=100.0), segment_length=2**17, segments_per_batch=1)
    three = WaveletFrame(FrameSettings(sample_rate, 12, fmin=100.0), segment_length=2**17, segments_per_batch=3)
    a, b = one.analyze(x, segmented=True), three.analyze(x, segmented=True)
    for ga, gb in zip(a.groups, b.groups):
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(one.synthesize(a, segmented=True), three.synthesize(a, segmented=True), rtol=1e-5, atol=1e-6)


def test_a_pad_limit_shortens_short_signals_and_stays_exact():
    rate = 22050
    x = torch.as_tensor(signals.exponential_chirp(50.0, 8000.0, 0.2, rate))
    settings = FrameSettings(rate, 48).for_retrieval()
    linear, limited = WaveletFrame(settings), WaveletFrame(settings, pad_limit=0.25)
    # A 20 Hz atom at 24 voices' width reaches seconds: the linear transform pads 0.2 s to far more.
    assert linear.padded_length(len(x)) > 10 * len(x)
    assert limited.padded_length(len(x)) < 0.3 * linear.padded_length(len(x))
    coeffs = limited.analyze(x)
    assert coeffs.pad_left == limited.pad_for(len(x)) < linear.pad
    y = limited.synthesize(coeffs)
    assert float((y - x).norm() / x.norm()) < 1e-5
    # Long signals keep the full padding, so segmented processing stays exact.
    assert limited.pad_for(4 * limited.segment_length) == limited.pad
    with pytest.raises(ValueError, match="pad limit"):
        WaveletFrame(settings, pad_limit=0.0)


def test_flat_and_group_by_group_layouts_agree(monkeypatch, sample_rate):
    """Small blocks work on all groups at once (one buffer), large ones group by group:
    both give the same coefficients and the same synthesis, with gradients too."""
    from scalgui.dsp import frame as frame_module

    # The torch formulation (GPUs'): on the CPU compiled loops stand in for it (their own
    # tests are in test_compiled_loops.py).
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", False)
    x = torch.as_tensor(np.random.default_rng(5).standard_normal((2, sample_rate // 4)), dtype=torch.float32)
    frame = WaveletFrame(FrameSettings(sample_rate, 24, bandwidth_voices=12), pad_limit=0.1)
    n = frame.padded_length(x.shape[-1])
    assert frame.flat_layout(n, 2)
    flat = frame.analyze(x)
    assert flat.flat().data_ptr() == flat.groups[0].data_ptr()  # a view of one buffer
    monkeypatch.setattr(frame_module, "FLAT_LAYOUT_LIMIT", 0)
    assert not frame.flat_layout(n, 2)
    grouped = frame.analyze(x)
    for a, b in zip(flat.groups, grouped.groups):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(flat.flat(), grouped.flat())  # the same order either way
    torch.testing.assert_close(frame.synthesize(flat), x, rtol=0, atol=1e-5)
    torch.testing.assert_close(frame.synthesize(grouped), x, rtol=0, atol=1e-5)

    def gradient():
        signal = x[0].clone().requires_grad_(True)
        sum((g.abs() ** 2).sum() for g in frame.analyze(signal).groups).backward()
        return signal.grad

    on_groups = gradient()
    monkeypatch.setattr(frame_module, "FLAT_LAYOUT_LIMIT", 1 << 30)
    torch.testing.assert_close(gradient(), on_groups, rtol=1e-4, atol=1e-6)


def test_the_plan_cache_is_bounded_and_keeps_what_was_used_last(sample_rate):
    # Re-renders of spans of ever new lengths must not grow the frame's plans without
    # bound; a plan let go is rebuilt alike.
    frame = WaveletFrame(FrameSettings(sample_rate, 12, fmin=100.0))
    fresh = WaveletFrame(FrameSettings(sample_rate, 12, fmin=100.0))
    lengths = [int(sample_rate * s) for s in (0.5, 0.7, 0.9, 1.1, 1.3, 1.5)]
    sizes = []
    for length in lengths:
        frame.analyze(torch.zeros(length), segmented=False)
        sizes.append(sum(p.nbytes() for p in frame._plans.values() if p is not None))
    assert sizes[-1] > sizes[0] > 0
    frame.plan_cache_bytes = sizes[2]  # about three plans' worth
    x = torch.from_numpy(signals.example_sound(sample_rate))[: lengths[0]]
    frame.analyze(x, segmented=False)  # the first length: now the most recently used
    for length in lengths[3:]:
        frame.analyze(torch.zeros(length), segmented=False)
        kept = sum(p.nbytes() for p in frame._plans.values() if p is not None)
        assert kept <= frame.plan_cache_bytes or len(frame._plans) == 1
    assert frame.padded_length(lengths[1]) not in frame._plans  # least recently used: gone
    assert frame.padded_length(lengths[-1]) in frame._plans  # the newest: kept
    # A plan let go and rebuilt gives the same coefficients as a frame that never let go.
    for a, b in zip(frame.analyze(x, segmented=False).groups, fresh.analyze(x, segmented=False).groups):
        assert torch.equal(a, b)
