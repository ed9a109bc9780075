"""The CPU's compiled loops (numba) agree with the torch formulation GPUs run, and
small retrievals run on one torch thread without changing the caller's setting."""
import numpy as np
import pytest
import torch

from scalgui.dsp import frame as frame_module
from scalgui.dsp import signals
from scalgui.dsp.frame import FrameSettings, WaveletFrame, _irfft, _rfft
from scalgui.dsp.phase import RetrievalSettings, retrieve
from scalgui.dsp.projections import admm_step, fgla_step

SR = 22050


def _complex(rng, shape, dtype=torch.complex64):
    z = torch.complex(torch.as_tensor(rng.standard_normal(shape)), torch.as_tensor(rng.standard_normal(shape)))
    return z.to(dtype)


def _with_zeros(z):
    z = z.clone()
    z.view(-1)[::7] = 0  # moduli of exactly zero: the phase of 0 is taken as 0, as torch.sgn does
    return z


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_admm_step_matches_the_torch_formulation(dtype):
    rng = np.random.default_rng(0)
    x, u = _with_zeros(_complex(rng, (3, 500), dtype)), _complex(rng, (3, 500), dtype)
    u.view(-1)[::7] = 0
    target = torch.as_tensor(rng.random((3, 500))).to(x.real.dtype)
    error = torch.linalg.vector_norm(x.abs() - target) ** 2
    w = x + u
    z = torch.sgn(w) * target
    u_next = w - z
    x_next = z - u_next
    got_x, got_u = x.clone(), u.clone()
    got_error = admm_step([got_x], [got_u], [target])
    tolerance = 1e-5 if dtype == torch.complex64 else 1e-12
    torch.testing.assert_close(got_u, u_next, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(got_x, x_next, rtol=tolerance, atol=tolerance)
    assert got_error == pytest.approx(float(error), rel=tolerance)
    assert torch.isfinite(torch.view_as_real(got_x)).all()


def test_fgla_step_matches_the_torch_formulation():
    rng = np.random.default_rng(1)
    beta = 0.99 / 1.99
    parts = [_with_zeros(_complex(rng, (4, 64))), _complex(rng, (2, 300))]
    targets = [torch.as_tensor(rng.random(p.shape), dtype=torch.float32) for p in parts]
    # First iteration: no momentum; the previous buffer may hold anything finite.
    previous = [torch.full_like(p, 3 + 4j) for p in parts]
    rebuilt = [p.clone() for p in parts]
    error = fgla_step(rebuilt, previous, targets, beta, first=True)
    for p, r, prev, t in zip(parts, rebuilt, previous, targets):
        torch.testing.assert_close(r, torch.sgn(p) * t, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(prev, p, rtol=0, atol=0)
    expected = sum(float(torch.linalg.vector_norm(p.abs() - t) ** 2) for p, t in zip(parts, targets))
    assert error == pytest.approx(expected, rel=1e-5)
    # Later iterations: the phase of rebuilt - beta * previous.
    new = [_complex(rng, p.shape) for p in parts]
    rebuilt = [p.clone() for p in new]
    fgla_step(rebuilt, previous, targets, beta, first=False)
    for n, p, r, prev, t in zip(new, parts, rebuilt, previous, targets):
        torch.testing.assert_close(r, torch.sgn(n - beta * p) * t, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(prev, n, rtol=0, atol=0)


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_transforms_match_torch(monkeypatch, rows, dtype):
    frame = WaveletFrame(FrameSettings(SR, 24, bandwidth_voices=12), dtype=dtype, pad_limit=0.1)
    x = torch.as_tensor(np.random.default_rng(2).standard_normal((rows, SR // 3)), dtype=dtype)
    compiled = frame.analyze(x)
    rebuilt_compiled = frame.synthesize(compiled)
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", False)
    reference = frame.analyze(x)
    tolerance = 2e-6 if dtype == torch.float32 else 1e-12
    assert [g.shape for g in compiled.groups] == [g.shape for g in reference.groups]
    for a, b in zip(compiled.groups, reference.groups):
        torch.testing.assert_close(a, b, rtol=0, atol=tolerance * float(b.abs().max()))
    # Synthesis of other (here: phase-scrambled) coefficients, not only a round trip.
    scrambled = compiled.map(lambda g: g * torch.exp(1j * torch.linspace(0, 6, g.shape[-1], dtype=dtype)))
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", True)
    y_compiled = frame.synthesize(scrambled)
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", False)
    y_reference = frame.synthesize(scrambled)
    torch.testing.assert_close(y_compiled, y_reference, rtol=0, atol=tolerance * float(y_reference.abs().max()))
    torch.testing.assert_close(rebuilt_compiled, x, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-10)


def test_real_ffts_through_scipy_match_torch():
    rng = np.random.default_rng(3)
    for rows, n in [(1, 12288), (2, 4096), (3, 1000)]:
        x = torch.as_tensor(rng.standard_normal((rows, n)), dtype=torch.float32)
        spectrum = _rfft(x)
        assert spectrum.dtype == torch.complex64
        torch.testing.assert_close(spectrum, torch.fft.rfft(x), rtol=0, atol=2e-3)
        back = _irfft(spectrum, n)
        assert back.dtype == torch.float32 and back.shape == (rows, n)
        torch.testing.assert_close(back, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", ["fgla", "admm"])
def test_retrieval_is_the_same_with_and_without_compiled_loops(monkeypatch, method):
    frame = WaveletFrame(FrameSettings(SR, 24, bandwidth_voices=12), pad_limit=0.1)
    x = torch.as_tensor(signals.exponential_chirp(200.0, 6000.0, 0.4, SR))
    target = frame.analyze(x).map(torch.abs)
    settings = RetrievalSettings(method=method, iterations=15, init="random", seed=0)
    compiled = retrieve(frame, target, settings)
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", False)
    reference = retrieve(frame, target, settings)
    assert compiled.iterations == reference.iterations == 15
    # The same iteration, up to float32 round-off (which grows slowly over iterations).
    np.testing.assert_allclose(compiled.history[:5], reference.history[:5], atol=0.01)
    assert compiled.spectral_convergence_db == pytest.approx(reference.spectral_convergence_db, abs=0.2)
    assert compiled.spectral_convergence_db < reference.history[0] - 5


def test_small_retrievals_use_one_thread_and_restore_the_setting():
    frame = WaveletFrame(FrameSettings(SR, 12), pad_limit=0.1)
    x = torch.as_tensor(signals.chord((220.0, 330.0), 0.25, SR))
    target = frame.analyze(x).map(torch.abs)
    assert frame.small_block(target.padded_length)
    seen = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        retrieve(frame, target, RetrievalSettings(iterations=3),
                 progress=lambda p: seen.append(torch.get_num_threads()))
        assert seen == [1, 1, 1, 1]  # the set-up's report and the three iterations
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError):  # restored on errors too
            retrieve(frame, target, RetrievalSettings(iterations=3), initial_signal=x[:-1])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_content_plan_gives_the_plain_transform_on_the_span(monkeypatch, compiled):
    """A short signal's high bands, periodised to fewer samples, hold the same
    coefficients as the plain plan around the signal, and synthesis gives the same span."""
    monkeypatch.setattr(frame_module, "COMPILED_LOOPS", compiled)
    frame = WaveletFrame(FrameSettings(SR, 48, bandwidth_voices=24), pad_limit=0.1)
    x = torch.as_tensor(signals.exponential_chirp(50.0, 9000.0, 2048 / SR, SR))
    plain = frame.analyze(x)
    n, start, length = plain.padded_length, plain.pad_left, plain.length
    plan = frame.content_plan(n, start, length)
    assert plan is not None and plan.strided
    strided_count = sum(g.bins.shape[0] * g.length for g in plan.groups)
    assert strided_count < plain.count / 2  # the point of it (2.2x fewer here)
    padded = torch.nn.functional.pad(x, (start, n - length - start))
    groups = frame.forward_block(padded, plan)
    scale = max(float(g.abs().max()) for g in plain.groups)
    for g, reference, times in zip(groups, plain.groups, frame.content_times(plan)):
        expected = reference if times is None else reference.index_select(-1, times)
        assert g.shape == expected.shape
        torch.testing.assert_close(g, expected, rtol=0, atol=1e-5 * scale)
    # Synthesis of arbitrary coefficients (not only consistent ones), on the span.
    rng = torch.Generator().manual_seed(4)
    scrambled = [g * torch.exp(2j * torch.pi * torch.rand(g.shape, generator=rng)) for g in plain.groups]
    expected = frame.inverse_block(scrambled, n)[start : start + length]
    within = [s if t is None else s.index_select(-1, t) for s, t in zip(scrambled, frame.content_times(plan))]
    got = frame.inverse_block(within, n, plan)[start : start + length]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))
    # Signals that fill their block gain nothing.
    assert frame.content_plan(n, 0, n) is None


@pytest.mark.parametrize("channels", [1, 2])
def test_retrieval_on_a_content_plan_reaches_the_plain_result(monkeypatch, channels):
    frame = WaveletFrame(FrameSettings(SR, 48, bandwidth_voices=24), pad_limit=0.1)
    x = torch.as_tensor(signals.exponential_chirp(50.0, 9000.0, 2048 / SR, SR))
    if channels == 2:
        x = torch.stack([x, torch.as_tensor(signals.chord((220.0, 440.0), 2048 / SR, SR))])
    target = frame.analyze(x).map(torch.abs)
    settings = RetrievalSettings(method="admm", iterations=20)
    strided = retrieve(frame, target, settings)
    monkeypatch.setattr(frame_module.WaveletFrame, "content_plan", lambda self, n, start, length: None)
    plain = retrieve(frame, target, settings)
    assert strided.spectral_convergence_db == pytest.approx(plain.spectral_convergence_db, abs=0.1)
    # The reported figure is the returned signal's on the plain frame too.
    achieved = float(10 * torch.log10(sum(((g.abs() - t) ** 2).sum() for g, t in
                                          zip(frame.analyze(strided.signal).groups, target.groups))
                                      / sum((t ** 2).sum() for t in target.groups)))
    assert achieved == pytest.approx(strided.spectral_convergence_db, abs=0.1)
