"""The projection methods' FFTW block (scalgui.dsp.fftw_block) computes the frame's own
transforms, in its own layout, and retrieval through it reaches the same result."""
import numpy as np
import pytest
import torch

from scalgui.dsp import fftw_block, signals
from scalgui.dsp.frame import FrameSettings, WaveletFrame
from scalgui.dsp.phase import RetrievalSettings, retrieve

pytestmark = pytest.mark.skipif(not fftw_block.available(), reason="pyFFTW is not installed")

SR = 22050


def _frame(dtype=torch.float32):
    return WaveletFrame(FrameSettings(SR, 48, bandwidth_voices=24), dtype=dtype, pad_limit=0.1)


def _signal(rows: int, dtype=torch.float32):
    x = torch.as_tensor(signals.exponential_chirp(50.0, 9000.0, 2048 / SR, SR))
    if rows == 2:
        x = torch.stack([x, torch.as_tensor(signals.chord((220.0, 440.0), 2048 / SR, SR))])
    return x.to(dtype)


@pytest.mark.parametrize("content, threads", [(True, 1), (False, 1), (False, 2)])
@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_block_gives_the_frames_transforms(content, threads, rows, dtype):
    frame = _frame(dtype)
    x = _signal(rows, dtype)
    plain = frame.analyze(x)
    n, start, length = plain.padded_length, plain.pad_left, plain.length
    plan = frame.content_plan(n, start, length) if content else frame._plan(n)
    assert plan is not None
    block = fftw_block.FftwBlock(frame, plan, plain.batch_shape, start, length, threads=threads)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-11

    padded = torch.nn.functional.pad(x, (start, n - length - start))
    expected = frame.forward_block(padded, plan)
    got = block.analyse(x)
    assert got.data_ptr() == block.coefficients.data_ptr()  # the block's own buffer
    first = got.clone()
    assert torch.equal(block.analyse(x), first)  # the same plans, the same bits (threads too)
    scale = max(float(g.abs().max()) for g in expected)
    for g, e in zip(block.unpack(got), expected):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=tolerance * scale)

    # Synthesis of arbitrary coefficients (not only consistent ones), on the span.
    rng = torch.Generator().manual_seed(3)
    scrambled = [e * torch.exp(2j * torch.pi * torch.rand(e.shape, generator=rng, dtype=dtype)) for e in expected]
    reference = frame.inverse_block(scrambled, n, plan)[..., start : start + length]
    rebuilt = block.synthesise(block.pack(scrambled))
    assert rebuilt.shape == x.shape and rebuilt.dtype == dtype
    torch.testing.assert_close(rebuilt, reference, rtol=0, atol=tolerance * float(reference.abs().max()))
    # From its own buffer too (the projection methods hand analyse's result back).
    block.coefficients.copy_(block.pack(scrambled))
    torch.testing.assert_close(block.synthesise(block.coefficients), reference, rtol=0,
                               atol=tolerance * float(reference.abs().max()))


def test_the_layout_aligns_groups_and_keeps_zeros_between_them():
    frame = _frame()
    x = _signal(2)
    plain = frame.analyze(x)
    plan = frame.content_plan(plain.padded_length, plain.pad_left, plain.length)
    block = fftw_block.FftwBlock(frame, plan, plain.batch_shape, plain.pad_left, plain.length)
    ones = [torch.ones(2, g.bins.shape[0], g.length, dtype=torch.complex64) for g in plan.groups]
    flat = block.pack(ones)
    covered = torch.zeros(flat.shape[0], dtype=torch.bool)
    for offset, size in zip(block.offsets, block.sizes):
        assert (offset * 8) % 64 == 0  # complex64: each group starts on a 64-byte boundary
        covered[offset : offset + size] = True
    assert (flat[covered] == 1).all() and (flat[~covered] == 0).all()
    assert block.coefficients.data_ptr() % 64 == 0
    # The analysis keeps the gaps at zero (the element-wise steps run over them).
    coefficients = block.analyse(x)
    assert (coefficients[~covered] == 0).all()
    assert [tuple(v.shape) for v in block.unpack(flat)] == [tuple(o.shape) for o in ones]


@pytest.mark.parametrize("method", ["fgla", "admm"])
def test_retrieval_through_the_block_matches_the_frames_transforms(monkeypatch, method):
    frame = _frame()
    x = _signal(2)
    target = frame.analyze(x).map(torch.abs)
    settings = RetrievalSettings(method=method, iterations=20)
    first = retrieve(frame, target, settings)
    again = retrieve(frame, target, settings)
    # FFTW_ESTIMATE plans are the same every time: results are reproducible bit for bit.
    assert torch.equal(first.signal, again.signal) and first.history == again.history
    monkeypatch.setattr(fftw_block, "pyfftw", None)
    assert not fftw_block.available()
    without = retrieve(frame, target, settings)
    np.testing.assert_allclose(first.history[:5], without.history[:5], atol=0.01)
    assert first.spectral_convergence_db == pytest.approx(without.spectral_convergence_db, abs=0.1)
    assert first.spectral_convergence_db < first.history[0] - 3  # from the PGHI start (-32 dB)
