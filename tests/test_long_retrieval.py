"""Long signals: retrieval in overlapping windows sized to a memory budget."""
import numpy as np
import pytest
import scipy.signal
import torch

from scalgui.dsp import signals
from scalgui.dsp.frame import RETRIEVAL_PAD_LIMIT, FrameSettings, WaveletFrame
from scalgui.dsp.memory import plan_windows, retrieval_bytes
from scalgui.dsp.metrics import spectral_convergence_db
from scalgui.dsp.phase import CancelToken, RetrievalSettings, retrieve

SR = 22050
ITERATIONS = 30
NO_LIMIT = 2**50


@pytest.fixture(scope="module")
def frame():
    # The retrieval frame's padding rule (pad_limit), whose windows must be long enough
    # to be padded by the atoms' whole reach.
    return WaveletFrame(FrameSettings(SR, 12, fmin=100.0), pad_limit=RETRIEVAL_PAD_LIMIT)


@pytest.fixture(scope="module")
def long_stereo():
    """9 s of stereo: a steady chord on the left (where a seam's click would stand out),
    speech-like bursts, a chord and a chirp on the right."""
    left = signals.chord((220.0, 277.18, 329.63), 9.0, SR)
    right = np.concatenate([signals.noise_bursts(3.0, SR, seed=2), signals.chord((196.0, 246.94), 3.0, SR),
                            signals.exponential_chirp(100.0, 8000.0, 3.0, SR)])
    return np.stack([left, right[: len(left)]]).astype(np.float32)


@pytest.fixture(scope="module")
def target(frame, long_stereo):
    return frame.analyze(torch.as_tensor(long_stereo)).map(torch.abs)


def _two_window_limit(frame, x):
    return int(retrieval_bytes(frame, x.shape[-1], x.shape[0], "admm") / 1.4)


def _exact_db(frame, signal, target):
    return spectral_convergence_db(frame.analyze(signal).groups, target.groups)


def test_the_plan_partitions_the_signal_into_windows_that_fit(frame):
    length, rows = 9 * SR, 2
    limit = int(retrieval_bytes(frame, length, rows, "fgla") / 2.2)
    windows, fade = plan_windows(frame, length, rows, "fgla", limit)
    assert len(windows) >= 3
    assert windows[0].core_start == 0 and windows[-1].core_stop == length
    for before, after in zip(windows, windows[1:]):
        assert before.core_stop == after.core_start
        # The cross-fade and the atoms' reach lie inside both windows.
        assert after.start <= after.core_start - fade - frame.pad
        assert before.stop >= before.core_stop + fade + frame.pad
    for window in windows:
        assert window.start % frame.max_hop == 0
        assert frame.pad_for(window.length) == frame.pad  # coefficients line up with the whole's
        assert retrieval_bytes(frame, window.length, rows, "fgla") <= limit
    # What fits is not cut; a budget below the shortest window is refused, by name.
    assert plan_windows(frame, length, rows, "fgla", NO_LIMIT) is None
    with pytest.raises(ValueError, match="memory limit of .* MB is too small"):
        plan_windows(frame, length, rows, "fgla", 10**6)
    # L-BFGS keeps a signal-sized history: it needs more windows in the same budget.
    lbfgs_windows, _ = plan_windows(frame, length, rows, "lbfgs", limit)
    assert len(lbfgs_windows) > len(windows)


def test_windowed_retrieval_converges_as_far_as_the_whole(frame, long_stereo, target):
    whole = retrieve(frame, target, RetrievalSettings(method="admm", iterations=ITERATIONS), memory_limit=NO_LIMIT)
    windowed = retrieve(frame, target, RetrievalSettings(method="admm", iterations=ITERATIONS),
                        memory_limit=_two_window_limit(frame, long_stereo))
    assert whole.windows == 1 and windowed.windows == 2
    assert windowed.iterations == ITERATIONS and len(windowed.history) == 2 * ITERATIONS
    assert windowed.signal.shape == long_stereo.shape
    # The seams cost little (measured: -26.4 dB against -26.3 for the whole)...
    assert windowed.spectral_convergence_db < whole.spectral_convergence_db + 0.5
    # ...nor are they worse than the rest: within a quarter of a second of the seam the
    # sound is as close to the original as the whole's retrieval makes it (STFT
    # magnitudes; measured -16.0 dB against -15.9; -14.9 when the second window's new
    # content was integrated from its own loudest coefficient, not from the first's phase).
    windows, _ = plan_windows(frame, long_stereo.shape[-1], 2, "admm", _two_window_limit(frame, long_stereo))
    seam = slice(windows[1].core_start - SR // 4, windows[1].core_start + SR // 4)

    def stft_db(y):
        truth = np.abs(scipy.signal.stft(long_stereo[..., seam], nperseg=1024)[2])
        got = np.abs(scipy.signal.stft(y.numpy()[..., seam], nperseg=1024)[2])
        return 10 * np.log10(((got - truth) ** 2).sum() / (truth**2).sum())

    assert stft_db(windowed.signal) < stft_db(whole.signal) + 0.5
    # ...and the figure reported is the whole signal's, computed exactly.
    assert windowed.spectral_convergence_db == pytest.approx(_exact_db(frame, windowed.signal, target), abs=0.02)
    # No click at the seam: above 2 kHz the steady chord's channel holds as little
    # energy in any 512-sample frame as the whole signal's retrieval does.
    high = scipy.signal.butter(6, 2000.0, "highpass", fs=SR, output="sos")

    def loudest_high_frame(y):
        h = scipy.signal.sosfiltfilt(high, y.numpy()[0].astype(np.float64))
        return float((h[: len(h) // 512 * 512].reshape(-1, 512) ** 2).mean(axis=1).max())

    assert loudest_high_frame(windowed.signal) < 1.5 * loudest_high_frame(whole.signal)
    # Both channels keep their level (a sign flip between windows would cancel at the fade).
    rms = windowed.signal.pow(2).mean(-1).sqrt().numpy()
    np.testing.assert_allclose(rms, np.sqrt((long_stereo.astype(np.float64) ** 2).mean(-1)), rtol=0.1)


def test_windows_start_from_a_given_reference_or_signal(frame, long_stereo, target):
    limit = _two_window_limit(frame, long_stereo)
    coeffs = frame.analyze(torch.as_tensor(long_stereo))
    warm = retrieve(frame, target, RetrievalSettings(method="fgla", init="original", iterations=2),
                    reference=coeffs, memory_limit=limit)
    assert warm.windows == 2
    # The true phase is a near-exact start in every window.
    assert warm.spectral_convergence_db < -45.0
    np.testing.assert_allclose(warm.signal.numpy(), long_stereo, atol=2e-3)
    restart = retrieve(frame, target, RetrievalSettings(method="fgla", iterations=2),
                       initial_signal=warm.signal, memory_limit=limit)
    assert restart.windows == 2 and restart.spectral_convergence_db < -45.0


def test_a_cancelled_windowed_run_keeps_the_windows_done(frame, long_stereo, target):
    cancel = CancelToken()
    seen = []

    def progress(p):
        seen.append(p)
        if p.iteration == ITERATIONS + 5:  # five iterations into the second window
            cancel.cancel()

    limit = int(retrieval_bytes(frame, long_stereo.shape[-1], 2, "admm") / 2.2)
    windows, fade = plan_windows(frame, long_stereo.shape[-1], 2, "admm", limit)
    assert len(windows) >= 3
    result = retrieve(frame, target, RetrievalSettings(method="admm", iterations=ITERATIONS), progress=progress,
                      cancel=cancel, memory_limit=limit)
    assert result.cancelled and result.windows == len(windows) and result.iterations == 5
    assert all(p.iterations == len(windows) * ITERATIONS for p in seen)
    iterating = [p for p in seen if p.stage == "iterating"]
    assert [p.iteration for p in iterating] == list(range(1, ITERATIONS + 6))
    assert iterating[-1].eta_s > 0
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and 0.25 < fractions[-1] < 1.0
    y = result.signal
    assert y.shape == long_stereo.shape and torch.isfinite(y).all()
    # The first two windows' parts are there (the second's best so far, faded out past
    # its core), the rest is silent, and the figure reported says so.
    end = windows[1].core_stop + 2 * fade
    assert float(y[..., : windows[1].core_stop].abs().amax(-1).min()) > 0.1
    assert float(y[..., end:].abs().max()) == 0.0
    assert result.spectral_convergence_db == pytest.approx(_exact_db(frame, y, target), abs=0.02)


def test_a_continuing_windows_phase_is_the_original_phase_continued(frame, long_stereo, target):
    # A window after the first starts from the phase of what the windows before left,
    # wherever its target is within CONTINUATION_NEW_CONTENT_DB of it; elsewhere the new
    # content's PGHI phase (integrated from the known one: tests/test_phase.py).
    from scalgui.dsp import phase as phase_module

    windows, fade = plan_windows(frame, long_stereo.shape[-1], 2, "admm", _two_window_limit(frame, long_stereo))
    window = windows[1]
    out = torch.as_tensor(long_stereo).clone()
    out[..., window.core_start + fade :] = 0  # the windows before wrote up to here
    local = phase_module._window_of(target, window.start, window.length, free_margins=True)
    built = phase_module._continuing_phase(frame, local, out, window, fade, RetrievalSettings(init="pghi", seed=3))
    reference = phase_module._continuation(frame, out, window, fade)
    ratio = 10 ** (phase_module.CONTINUATION_NEW_CONTENT_DB / 20)
    kept_somewhere = new_somewhere = False
    for b, t, r in zip(built, local.map(lambda g: g.clamp(min=0)).groups, reference.groups):
        keep = (t <= r.abs() * ratio) & (r.abs() > 1e-6 * float(r.abs().max()))
        assert torch.allclose(b[keep], torch.sgn(r)[keep], atol=1e-4)
        assert torch.allclose(b.abs(), torch.ones_like(b.abs()), atol=1e-4)
        kept_somewhere |= bool(keep.any())
        new_somewhere |= bool((t > r.abs() * ratio).any())
    assert kept_somewhere and new_somewhere


def test_a_signal_longer_than_a_segment_iterates_in_one_block_and_reports_exactly(monkeypatch, long_stereo):
    # On the CPU the projection methods iterate through an FFTW block of the whole
    # padded signal even past the frame's segment (where the frame's own transforms
    # cut it into segments): the same retrieval as through those transforms, and the
    # reported convergence is the exact one of the returned signal.
    from scalgui.dsp import fftw_block

    frame = WaveletFrame(FrameSettings(SR, 12, fmin=100.0), pad_limit=RETRIEVAL_PAD_LIMIT,
                         segment_length=2**16)
    x = torch.as_tensor(long_stereo[:, : 5 * SR])
    target = frame.analyze(x).map(torch.abs)
    assert target.padded_length > frame.segment_length
    if not fftw_block.available():
        pytest.skip("pyFFTW is not installed")
    settings = RetrievalSettings(method="admm", iterations=ITERATIONS)
    block = retrieve(frame, target, settings, memory_limit=NO_LIMIT)
    assert block.spectral_convergence_db == pytest.approx(_exact_db(frame, block.signal, target), abs=0.01)
    monkeypatch.setattr(fftw_block, "iterates_whole", lambda frame: False)
    segmented = retrieve(frame, target, settings, memory_limit=NO_LIMIT)
    assert block.spectral_convergence_db == pytest.approx(segmented.spectral_convergence_db, abs=0.1)
    assert block.spectral_convergence_db < -20.0
