"""Phase-gradient heuristic integration (PGHI) on the multi-rate wavelet frame.

A phase built from magnitudes alone, before any iteration: the approach of Průša,
Balazs & Søndergaard ("A noniterative method for reconstruction of phase from STFT
magnitude", 2017) and of Průša & Holighaus for non-uniform filter banks ("Non-iterative
filter bank phase (re)construction", 2017), adapted to this frame's Gaussian atoms and
absolute (not demodulated) phases.

For an atom that is Gaussian in frequency with width ``sigma`` Hz, the coefficients
``c(t, f)`` of any signal satisfy ``d/dt c = 2 pi i (f c + sigma^2 d/df c)``, so

- the phase's time derivative (instantaneous frequency, rad/s) is
  ``2 pi (f + sigma^2 d/df log|c|)``;
- its frequency derivative (local group delay, rad/Hz) is
  ``-d/dt log|c| / (2 pi sigma^2)``.

Both come from the magnitudes. The phase is then integrated over a spanning tree of the
coefficients that are louder than a floor: neighbours in time within a band, and
coincident samples of neighbouring bands (the grids of all bands align, hops being powers
of two). PGHI integrates from the loudest coefficient outwards with a heap; here the tree
is the one that keeps the loudest links (a minimum spanning tree on "quietness"), built
with scipy in compiled code, and the integration runs as prefix sums along the tree by
pointer jumping, vectorised with numpy. Coefficients below the floor get a random phase,
as in PGHI.

With constant-Q atoms ``sigma`` grows with ``f``; the relations above treat it as
constant across neighbouring bands, which is what makes this a heuristic.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from .frame import Coefficients

__all__ = ["pghi_phase"]

#: Weight of the links from the virtual root to every loud coefficient: larger than any
#: real link, so the tree uses exactly one of them per island (at its loudest coefficient).
_ROOT_LINK = 1e6


def _on_grid(values: np.ndarray, hop_from: int, hop_to: int, length: int) -> np.ndarray:
    """A band's values at the sample times of a band with another hop (linear)."""
    if hop_from == hop_to:
        return values
    return np.interp(np.arange(length) * float(hop_to), np.arange(len(values)) * float(hop_from), values)


def _prefix_sums_on_tree(parent: np.ndarray, step: np.ndarray, root: int) -> np.ndarray:
    """Sum of ``step`` along each node's path up to ``root``.

    ``step[i]`` is the increment from ``parent[i]`` to ``i``; ``parent[root] == root`` and
    ``step[root] == 0``. Pointer jumping: every round each unfinished node adds its
    parent's partial sum and skips to its grandparent, so a path of depth ``d`` finishes
    in ``log2(d)`` rounds.
    """
    total = step.copy()
    parent = parent.copy()
    active = np.flatnonzero(parent != root)
    while active.size:
        above = parent[active]
        total[active] += total[above]
        parent[active] = parent[above]
        active = active[parent[active] != root]
    return total


def _channel_phase(
    magnitudes: list[np.ndarray],
    hops: np.ndarray,
    centre_hz: np.ndarray,
    sigma_hz: np.ndarray,
    sample_rate: float,
    silence_db: float,
    rng: np.random.Generator,
) -> list[np.ndarray] | None:
    """Phases (radians, wrapped) of one channel's wavelet bands, low to high frequency."""
    peak = max(float(m.max()) for m in magnitudes)
    if not peak > 0:
        return None
    floor = peak * 10.0 ** (silence_db / 20.0)
    # Below the floor the log-magnitude is clamped a little lower still, so that slopes
    # into silence stay finite but steep.
    logs = [np.log(np.maximum(m, floor * 1e-3)) for m in magnitudes]
    sizes = np.array([len(m) for m in magnitudes])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    count = int(starts[-1])
    n_bands = len(magnitudes)

    # Per coefficient: instantaneous frequency (Hz) and group delay (s).
    frequency = np.empty(count, dtype=np.float32)
    delay = np.empty(count, dtype=np.float32)
    for i, log_mag in enumerate(logs):
        lo, hi = max(i - 1, 0), min(i + 1, n_bands - 1)
        slope_f = (
            _on_grid(logs[hi], hops[hi], hops[i], sizes[i]) - _on_grid(logs[lo], hops[lo], hops[i], sizes[i])
        ) / (centre_hz[hi] - centre_hz[lo])
        slope_t = np.gradient(log_mag, hops[i] / sample_rate) if sizes[i] > 1 else np.zeros(1)
        sigma = sigma_hz[i]
        span = slice(starts[i], starts[i + 1])
        # Clamped to a few widths of the atom: beyond that the slope is a side lobe of
        # another component, not this band's frequency.
        frequency[span] = centre_hz[i] + np.clip(sigma**2 * slope_f, -3 * sigma, 3 * sigma)
        delay[span] = -slope_t / (4 * math.pi**2 * sigma**2)

    # Arrays over all coefficients are kept few and narrow: on this kind of machine
    # touching fresh memory costs more than the arithmetic.
    # The tree's link weights need float64: in float32 near-equal weights tie, and which
    # of them the tree keeps changed the result by 2 dB on a chirp.
    level = np.concatenate(logs).astype(np.float64)
    loud = np.concatenate(magnitudes) > floor

    # Links between loud coefficients: successive samples of a band, and each sample of
    # the coarser of two neighbouring bands to the finer band's sample at the same time.
    successive = loud[:-1] & loud[1:]
    successive[starts[1:-1] - 1] = False  # the last sample of a band and the next band's first
    first = np.flatnonzero(successive)
    ends_a, ends_b = [first], [first + 1]
    for i in range(n_bands - 1):
        coarse, fine = (i, i + 1) if hops[i] >= hops[i + 1] else (i + 1, i)
        a = starts[coarse] + np.arange(sizes[coarse])
        b = starts[fine] + np.arange(sizes[coarse]) * (hops[coarse] // hops[fine])
        both = loud[a] & loud[b]
        ends_a.append(a[both])
        ends_b.append(b[both])
    ends_a = np.concatenate(ends_a)
    ends_b = np.concatenate(ends_b)

    # A minimum spanning tree on quietness keeps the loudest paths, where the gradient
    # estimates are most reliable (what PGHI's heap does); each island of loud
    # coefficients hangs from a virtual root at its loudest one.
    top = float(level.max())
    root = count
    loud_nodes = np.flatnonzero(loud)
    weights = np.concatenate([
        top - 0.5 * (level[ends_a] + level[ends_b]) + 1e-3,
        _ROOT_LINK + top - level[loud_nodes] + 1e-3,
    ])
    graph = coo_matrix(
        (weights, (np.concatenate([ends_a, np.full(len(loud_nodes), root)]), np.concatenate([ends_b, loud_nodes]))),
        shape=(count + 1, count + 1),
    ).tocsr()
    tree = minimum_spanning_tree(graph)
    _, parent = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    parent[root] = root
    reached = parent >= 0
    parent[~reached] = root

    # Trapezoidal steps along time (instantaneous frequency) and frequency (group delay).
    # A link within a band joins samples one hop apart (either way); a link across
    # bands joins samples at the same time.
    step = np.zeros(count + 1)
    nodes = np.flatnonzero(reached[:count] & (parent[:count] != root))
    up = parent[nodes]
    band_node = np.searchsorted(starts, nodes, side="right") - 1
    band_up = np.searchsorted(starts, up, side="right") - 1
    same = band_node == band_up
    seconds = np.where(same, (nodes - up) * (hops[band_node] / sample_rate), 0.0)
    step[nodes] = 2 * math.pi * (
        0.5 * (frequency[up] + frequency[nodes]) * seconds
        + 0.5 * (delay[up] + delay[nodes]) * (centre_hz[band_node] - centre_hz[band_up])
    )
    phase = _prefix_sums_on_tree(parent, step, root)[:count]
    quiet = ~reached[:count]
    phase[quiet] = rng.uniform(0.0, 2 * math.pi, int(quiet.sum()))
    phase = np.remainder(phase, 2 * math.pi)
    return [phase[starts[i] : starts[i + 1]] for i in range(n_bands)]


def pghi_phase(target: Coefficients, *, silence_db: float = -60.0, seed: int = 0) -> list[torch.Tensor]:
    """Unit-modulus phases for ``target``'s magnitudes by phase-gradient integration.

    Parameters
    ----------
    target : Coefficients
        Target magnitudes (real, non-negative groups); leading batch dimensions
        (channels) are treated independently.
    silence_db : float
        Level, relative to each channel's loudest coefficient (dB), below which a
        coefficient is left out of the integration and given a random phase.
    seed : int
        Seed of those random phases.

    Returns
    -------
    list of torch.Tensor
        Complex phases in ``target``'s group layout, on its device. The real lowpass
        and highpass atoms get +1 (a sign is all their phase is).
    """
    frame = target.frame
    table = frame.bands
    device = target.groups[0].device
    batch_shape = target.batch_shape
    rows = int(np.prod(batch_shape, dtype=np.int64))
    wavelets = [int(k) for k in table.wavelet_indices]
    hops = np.array([int(table.hop[k]) for k in wavelets])
    out = [torch.ones(g.shape, dtype=frame.complex_dtype) for g in target.groups]
    flat_out = [o.reshape(rows, *o.shape[-2:]) for o in out]
    rng = np.random.default_rng(seed)
    for row in range(rows):
        magnitudes = [
            target.band(k).reshape(rows, -1)[row].detach().to("cpu", torch.float32).numpy() for k in wavelets
        ]
        phases = _channel_phase(
            magnitudes, hops, table.centre_hz[wavelets], table.sigma_hz[wavelets], frame.sample_rate, silence_db, rng
        )
        if phases is None:
            continue
        for k, phase in zip(wavelets, phases):
            values = torch.polar(torch.ones(len(phase), dtype=torch.float64), torch.from_numpy(phase))
            flat_out[int(table.group[k])][row, int(table.row[k])] = values.to(frame.complex_dtype)
    return [o.to(device) for o in out]
