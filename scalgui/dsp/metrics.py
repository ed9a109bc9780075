"""Quality measures for resynthesis, in dB (lower is closer)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["spectral_convergence_db", "multiresolution_stft_convergence_db", "MR_STFT_SIZES"]

#: FFT sizes of the multi-resolution STFT measure; hops are a quarter of each.
MR_STFT_SIZES = (256, 1024, 4096)


def spectral_convergence_db(estimate: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> float:
    """``20 log10(|| |estimate| - target ||_F / || target ||_F)``, in dB.

    Parameters
    ----------
    estimate : sequence of torch.Tensor
        Coefficient groups (complex, or magnitudes) of the estimate.
    target : sequence of torch.Tensor
        Target magnitudes in the same layout.
    """
    error = sum(((e.abs() - t) ** 2).sum() for e, t in zip(estimate, target))
    reference = sum((t.abs() ** 2).sum() for t in target)
    return float(10.0 * torch.log10(torch.as_tensor(error).clamp_min(1e-30) / torch.as_tensor(reference).clamp_min(1e-30)))


def multiresolution_stft_convergence_db(
    estimate: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    *,
    fft_sizes: Sequence[int] = MR_STFT_SIZES,
) -> float:
    """Spectral convergence between two signals' STFT magnitudes, averaged over resolutions.

    A measure neither a wavelet-domain nor an STFT-domain phase retrieval optimises
    directly: for each FFT size (Hann window, hop a quarter of the size) it computes
    ``20 log10(|| |S y| - |S x| ||_F / || |S x| ||_F)`` and averages the dB values.

    Parameters
    ----------
    estimate, reference : array [shape=(..., n_samples)]
        Signals of equal shape (leading dimensions, e.g. channels, are pooled).
    fft_sizes : sequence of int
        FFT sizes, in samples.

    Returns
    -------
    float
        Mean spectral convergence in dB.
    """
    y = torch.as_tensor(np.asarray(estimate, dtype=np.float32) if not torch.is_tensor(estimate) else estimate)
    x = torch.as_tensor(np.asarray(reference, dtype=np.float32) if not torch.is_tensor(reference) else reference)
    if y.shape != x.shape:
        raise ValueError(f"signals differ in shape: {tuple(y.shape)} and {tuple(x.shape)}")
    y = y.detach().to("cpu", torch.float64).reshape(-1, y.shape[-1])
    x = x.detach().to("cpu", torch.float64).reshape(-1, x.shape[-1])
    values = []
    for size in fft_sizes:
        window = torch.hann_window(size, dtype=torch.float64)
        def mag(s):
            return torch.stft(s, size, hop_length=size // 4, window=window, center=True, return_complex=True).abs()
        sx, sy = mag(x), mag(y)
        ratio = (sy - sx).norm() / sx.norm().clamp_min(1e-30)
        values.append(20.0 * math.log10(max(float(ratio), 1e-15)))
    return float(np.mean(values))
