"""The element-wise steps of the projection methods (FGLA, ADMM), fused for the CPU.

Between its two transforms each iteration of ``fgla`` or ``admm`` does several passes
over all coefficients: the spectral convergence of the rebuilt coefficients against the
target (a modulus, a difference, a norm), the momentum or dual update, the phase of the
result (another modulus and a division) and the target magnitudes with that phase. In
torch on the CPU each of these is its own pass, and complex moduli and broadcast
products are slow there (measured on 107,000 complex64 coefficients, one thread:
``abs`` 420 us, ``sgn`` 280 us, a complex-by-real product 100-200 us, against 40 us for
a plain product of 214,000 floats). Here each step is one compiled loop over the
coefficients that reads and writes each value once, with the same arithmetic as the
torch formulation it replaces (in :mod:`scalgui.dsp.phase`, still used on GPUs).

Loops are serial: they are a small part of an iteration once fused, and numba's own
thread pools must not be entered from two threads at once (the editor renders on a
worker thread while another thread draws).

A target magnitude below zero (:data:`FREE`) marks a coefficient the magnitude projection
leaves as it is and the error does not count: the margins of a long signal's windows,
whose coefficients the neighbouring windows make (see :mod:`scalgui.dsp.memory`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from numba import njit

from .frame import compiled_loops_on

__all__ = ["FREE", "fusable", "admm_step", "fgla_step", "bound_admm_step", "bound_fgla_step", "modulus_error"]


#: The target magnitude of a coefficient left free (any magnitude below zero is).
FREE = -1.0


def fusable(parts: list[torch.Tensor], *more: list[torch.Tensor]) -> bool:
    """Whether the fused steps can work in place on these tensors: contiguous, on a
    device where the compiled loops are on (:func:`scalgui.dsp.frame.compiled_loops_on`)."""
    return all(compiled_loops_on(p.device) and p.is_contiguous() for group in (parts, *more) for p in group)


# The loops read the complex arrays as interleaved (real, imaginary) pairs of the real
# dtype: numba then vectorises them (measured 10x faster than torch's passes on 107,000
# complex64 coefficients; indexing the complex values directly was only 2.5x faster).
# fastmath lets the error sum be reordered; the inputs are finite (NaN audio is refused).
@njit(cache=True, fastmath=True)
def _admm_loop(x, u, target):
    error = 0.0
    if target.shape[0] == 0:
        return error
    zero = target[0] - target[0]  # of the target's dtype: a float64 zero stopped vectorisation
    one = zero + 1
    for i in range(target.shape[0]):
        t = target[i]
        free = t < zero
        xr = x[2 * i]
        xi = x[2 * i + 1]
        deviation = zero if free else np.sqrt(xr * xr + xi * xi) - t
        error += deviation * deviation
        wr = xr + u[2 * i]
        wi = xi + u[2 * i + 1]
        squared = wr * wr + wi * wi
        scale = one if free else (t / np.sqrt(squared) if squared > 0 else zero)
        zr = scale * wr
        zi = scale * wi
        ur = wr - zr
        ui = wi - zi
        u[2 * i] = ur
        u[2 * i + 1] = ui
        x[2 * i] = zr - ur
        x[2 * i + 1] = zi - ui
    return error


@njit(cache=True, fastmath=True)
def _fgla_loop(rebuilt, previous, target, beta, first):
    error = 0.0
    if target.shape[0] == 0:
        return error
    zero = target[0] - target[0]
    one = zero + 1
    keep = zero if first else beta
    for i in range(target.shape[0]):
        t = target[i]
        free = t < zero
        rr = rebuilt[2 * i]
        ri = rebuilt[2 * i + 1]
        deviation = zero if free else np.sqrt(rr * rr + ri * ri) - t
        error += deviation * deviation
        ar = rr - keep * previous[2 * i]
        ai = ri - keep * previous[2 * i + 1]
        squared = ar * ar + ai * ai
        scale = one if free else (t / np.sqrt(squared) if squared > 0 else zero)
        previous[2 * i] = rr
        previous[2 * i + 1] = ri
        rebuilt[2 * i] = scale * ar
        rebuilt[2 * i + 1] = scale * ai
    return error


def _arrays(*tensors: torch.Tensor) -> list[np.ndarray]:
    """1-D numpy views (no copies): complex tensors as interleaved real pairs."""
    out = []
    for t in tensors:
        a = t.detach().numpy().reshape(-1)
        out.append(a.view(a.real.dtype) if np.iscomplexobj(a) else a)
    return out


def admm_step(x: list[torch.Tensor], u: list[torch.Tensor], target: list[torch.Tensor]) -> float:
    """One ADMM update after the consistent projection, in place.

    With ``w = x + u`` and ``z`` the target magnitudes with the phase of ``w``: ``u``
    becomes ``w - z`` and ``x`` becomes ``z - u``, the next synthesis input.

    Returns
    -------
    float
        ``sum(|x| - target)^2`` over the incoming ``x`` (its squared magnitude error).
    """
    return bound_admm_step(x, u, target)()


def bound_admm_step(x: list[torch.Tensor], u: list[torch.Tensor], target: list[torch.Tensor]) -> Callable[[], float]:
    """:func:`admm_step` on these tensors, as a function of no arguments that each call
    repeats: for buffers the iterations update in place (the arrays behind the tensors
    are looked up once, a few microseconds per tensor that each iteration then saves)."""
    arrays = [_arrays(a, b, t) for a, b, t in zip(x, u, target)]
    return lambda: float(sum(_admm_loop(*a) for a in arrays))


def fgla_step(rebuilt: list[torch.Tensor], previous: list[torch.Tensor], target: list[torch.Tensor],
              beta: float, first: bool) -> float:
    """One accelerated Griffin-Lim update after the consistent projection, in place.

    ``previous`` becomes ``rebuilt``; ``rebuilt`` becomes the target magnitudes with the
    phase of ``rebuilt - beta * previous`` (of ``rebuilt`` alone when ``first``), the
    next synthesis input.

    Returns
    -------
    float
        ``sum(|rebuilt| - target)^2`` over the incoming ``rebuilt``.
    """
    return bound_fgla_step(rebuilt, previous, target, beta)(first)


def bound_fgla_step(rebuilt: list[torch.Tensor], previous: list[torch.Tensor], target: list[torch.Tensor],
                    beta: float) -> Callable[[bool], float]:
    """:func:`fgla_step` on these tensors, as a function of ``first`` (see
    :func:`bound_admm_step`)."""
    arrays = [_arrays(r, p, t) for r, p, t in zip(rebuilt, previous, target)]
    beta_values = [a[2].dtype.type(beta) for a in arrays]  # beta in the arrays' dtype

    def step(first: bool) -> float:
        return float(sum(_fgla_loop(*a, b, first) for a, b in zip(arrays, beta_values)))

    return step


@njit(cache=True, fastmath=True)
def _modulus_error_loop(estimate, wanted):
    error = 0.0
    energy = 0.0
    for i in range(wanted.shape[0] // 2):
        er = estimate[2 * i]
        ei = estimate[2 * i + 1]
        wr = wanted[2 * i]
        wi = wanted[2 * i + 1]
        t = np.sqrt(wr * wr + wi * wi)
        d = np.sqrt(er * er + ei * ei) - t
        error += d * d
        energy += t * t
    return error, energy


def modulus_error(estimate: list[torch.Tensor], wanted: list[torch.Tensor]) -> tuple[float, float]:
    """``(sum(|estimate| - |wanted|)^2, sum |wanted|^2)`` over complex coefficient
    groups of one layout, in one pass that forms no moduli: the measure of a warm start
    (the wanted magnitudes on a phase) against what its synthesis became."""
    error = energy = 0.0
    for e, w in zip(estimate, wanted):
        if fusable([e, w]) and e.is_complex() and w.is_complex():
            got, want = _arrays(e, w)
            part_error, part_energy = _modulus_error_loop(got, want)
        else:
            target = w.abs()
            part_error = float(torch.sum((e.abs() - target).double() ** 2))
            part_energy = float(torch.sum(target.double() ** 2))
        error += float(part_error)
        energy += float(part_energy)
    return error, energy
