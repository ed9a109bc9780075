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

Both come from the magnitudes. The phase is then integrated, as in PGHI, from the
loudest coefficient outwards with a max-heap, so that it travels along the loudest paths
where the estimates are most reliable: between neighbours in time within a band, and
between coincident samples of neighbouring bands (the grids of all bands align, hops
being powers of two). Each island of loud coefficients (linked to each other) starts
from its own loudest, found by a flood fill. Coefficients below a floor get a random
phase, as in PGHI.

The heap is serial, so a signal is integrated in pieces of :data:`PIECE_SECONDS`, all
channels' pieces side by side on the CPU's cores (the loops release the GIL), and the
pieces are joined as the whole would have been integrated: the heap grows much the tree
of the loudest links (a maximum spanning tree), and that tree of the whole is the one of
the pieces' trees together with the links across the cuts, which Kruskal's algorithm
finds from the few coefficients at the cuts (see :func:`_join`). Measured on speech,
orchestral music and a synth cue at ``invert``'s 48 voices: the same spectral
convergence at the start within 0.01 dB, and after 20 iterations within 0.1 dB, with
pieces of 1/4 to 8 s; a minute of stereo music at 12 voices took 3.7 s instead of 5.5
on two cores (a heap of a piece's coefficients stays in the processor's caches).
Pieces left unjoined (10 s of them) started 3.7 dB further off on orchestral music;
joined island by island (one turn per island, 8 s pieces), 1.7 dB further off and 3.6 dB
after 20 iterations: one island spans many partials, whose relative phases each piece
integrates along a different path. The heap loop is compiled with numba: in numpy, a
spanning-tree formulation of the same idea (scipy's minimum spanning tree, then prefix
sums by pointer jumping) was 2-3x slower.
So is the pass that derives both gradients from the magnitudes (band by band in numpy
it took 20 of the 29 ms that the 2048-sample chirp of ``bench invert`` spent here on
432 bands; compiled, 1 ms).

With constant-Q atoms ``sigma`` grows with ``f``; the relations above treat it as
constant across neighbouring bands, which is what makes this a heuristic.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

from .frame import Coefficients

__all__ = ["pghi_phase"]

@njit(cache=True, nogil=True)
def _on_grid(level, start, size, hop, t):
    """Band values ``level[start : start + size]`` (hop ``hop`` samples) at time ``t``
    samples, linearly interpolated and held at the ends (as ``np.interp``)."""
    p = t / hop
    if p <= 0.0:
        return level[start]
    if p >= size - 1:
        return level[start + size - 1]
    i = int(p)
    w = p - i
    return level[start + i] * (1.0 - w) + level[start + i + 1] * w


@njit(cache=True, nogil=True)
def _band_span(size, hop, t_lo, t_hi):
    """The coefficients ``m`` of a band (``size`` of them, hop ``hop`` samples) whose times
    ``m * hop`` lie in ``t_lo <= t < t_hi`` (samples), as a range ``lo, hi``."""
    return min(-(-t_lo // hop), size), min(-(-t_hi // hop), size)


@njit(cache=True, nogil=True)
def _gradients(level, starts, sizes, hops, centre_hz, sigma_hz, sample_rate, t_lo, t_hi, frequency, delay):
    """Per coefficient of bands laid end to end (low to high frequency) in the piece
    ``t_lo <= t < t_hi`` (samples), into ``frequency`` and ``delay``: the instantaneous
    frequency (Hz) from the log-magnitude's slope across the neighbouring bands (on this
    band's time grid), and the group delay (s) from its slope along time (central
    differences, one-sided at the ends, as ``np.gradient``; across the piece's edges
    too, so pieces see the same gradients as the whole)."""
    n_bands = hops.shape[0]
    for b in range(n_bands):
        lo, hi = max(b - 1, 0), min(b + 1, n_bands - 1)
        sigma = sigma_hz[b]
        across = centre_hz[hi] - centre_hz[lo]
        step = hops[b] / sample_rate
        size = sizes[b]
        first, last = _band_span(size, hops[b], t_lo, t_hi)
        for m in range(first, last):
            n = starts[b] + m
            t = float(m * hops[b])
            slope_f = (_on_grid(level, starts[hi], sizes[hi], hops[hi], t)
                       - _on_grid(level, starts[lo], sizes[lo], hops[lo], t)) / across
            # Clamped to a few widths of the atom: beyond that the slope is a side lobe
            # of another component, not this band's frequency.
            frequency[n] = centre_hz[b] + min(max(sigma * sigma * slope_f, -3.0 * sigma), 3.0 * sigma)
            if size < 2:
                slope_t = 0.0
            elif m == 0:
                slope_t = (level[n + 1] - level[n]) / step
            elif m == size - 1:
                slope_t = (level[n] - level[n - 1]) / step
            else:
                slope_t = (level[n + 1] - level[n - 1]) / (2.0 * step)
            delay[n] = -slope_t / (4.0 * math.pi**2 * sigma * sigma)


# A 4-ary max-heap of (key, node) in two arrays, sifting a hole instead of swapping:
# half the levels of a binary heap for about the same comparisons, and the integration's
# time fell by a quarter on a minute of music (the same order of pops: keys pop largest
# first whatever the heap's shape, and equal keys are all but absent).
_ARITY = 4


@njit(cache=True, nogil=True)
def _push(keys, nodes, size, key, node):
    i = size
    while i > 0:
        parent = (i - 1) // _ARITY
        if keys[parent] >= key:
            break
        keys[i] = keys[parent]
        nodes[i] = nodes[parent]
        i = parent
    keys[i] = key
    nodes[i] = node
    return size + 1


@njit(cache=True, nogil=True)
def _pop(keys, nodes, size):
    top = nodes[0]
    size -= 1
    key = keys[size]
    node = nodes[size]
    i = 0
    while True:
        first = _ARITY * i + 1
        if first >= size:
            break
        child = first
        for c in range(first + 1, min(first + _ARITY, size)):
            if keys[c] > keys[child]:
                child = c
        if key >= keys[child]:
            break
        keys[i] = keys[child]
        nodes[i] = nodes[child]
        i = child
    keys[i] = key
    nodes[i] = node
    return top, size


@njit(cache=True, nogil=True)
def _links(n, band_of, starts, sizes, hops, t_lo, t_hi, out):
    """The neighbours of coefficient ``n`` that the integration links it to, in
    ``out[:count]`` as (coefficient, band it is in); returns ``count``. Within a band: the
    coefficients before and after, if they lie in the piece ``t_lo <= t < t_hi``
    (samples); across bands: the one at the same time in each neighbouring band, where
    that band has a coefficient then (the grids of all bands align, hops being powers of
    two, so the links go both ways and never leave the piece)."""
    b = band_of[n]
    m = n - starts[b]
    count = 0
    for mm in (m - 1, m + 1):
        if 0 <= mm < sizes[b] and t_lo <= mm * hops[b] < t_hi:
            out[count, 0] = starts[b] + mm
            out[count, 1] = b
            count += 1
    for j in (b - 1, b + 1):
        if 0 <= j < hops.shape[0]:
            t = m * hops[b]
            if t % hops[j] == 0 and t // hops[j] < sizes[j]:
                out[count, 0] = starts[j] + t // hops[j]
                out[count, 1] = j
                count += 1
    return count


@njit(cache=True, nogil=True)
def _island_peak(start, level, loud, band_of, starts, sizes, hops, t_lo, t_hi, seen, stack, links):
    """The loudest coefficient (the first of equals) of the island of loud coefficients
    linked to ``start``, marking the island in ``seen``."""
    peak = start
    seen[start] = True
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        n = stack[top]
        if level[n] > level[peak] or (level[n] == level[peak] and n < peak):
            peak = n
        for i in range(_links(n, band_of, starts, sizes, hops, t_lo, t_hi, links)):
            nb = links[i, 0]
            if loud[nb] and not seen[nb]:
                seen[nb] = True
                stack[top] = nb
                top += 1
    return peak


@njit(cache=True, nogil=True)
def _integrate(level, loud, frequency, delay, band_of, starts, sizes, hops, centre_hz, sample_rate, t_lo, t_hi,
               phase, done, seen, parent):
    """PGHI's integration within the piece ``t_lo <= t < t_hi`` (samples). Each island
    of loud coefficients starts from its loudest and always continues from the loudest
    coefficient reached so far (a max-heap), giving each loud neighbour the phase
    integrated over the link, trapezoidal rule: along time with the instantaneous
    frequency, across bands with the group delay. Writes the phases (radians,
    unwrapped) into ``phase``, which coefficients were reached (the loud ones) into
    ``done`` and the coefficient each was reached from into ``parent`` (-1 for an
    island's loudest): the integration's tree. Returns the reached coefficients in the
    order they were taken from the heap (every parent before its children). Pieces
    touch disjoint coefficients, so they can run side by side.

    Islands share no link, so the order they are taken in changes nothing; each one's
    loudest is found by a flood fill (sorting every loud coefficient by level to find
    them took a third of the time on a minute of music)."""
    n_bands = hops.shape[0]
    count = 0
    for b in range(n_bands):
        first, last = _band_span(sizes[b], hops[b], t_lo, t_hi)
        count += last - first
    keys = np.empty(max(count, 1))
    nodes = np.empty(max(count, 1), dtype=np.int64)
    order = np.empty(max(count, 1), dtype=np.int64)
    taken = 0
    links = np.empty((4, 2), dtype=np.int64)
    two_pi = 2.0 * math.pi
    for band in range(n_bands):
        first, last = _band_span(sizes[band], hops[band], t_lo, t_hi)
        for start in range(starts[band] + first, starts[band] + last):
            if not loud[start] or seen[start]:
                continue
            # The heap is empty between islands: its node array serves as the fill's stack.
            seed = _island_peak(start, level, loud, band_of, starts, sizes, hops, t_lo, t_hi, seen, nodes, links)
            done[seed] = True
            phase[seed] = 0.0
            parent[seed] = -1
            size = _push(keys, nodes, 0, level[seed], seed)
            while size > 0:
                n, size = _pop(keys, nodes, size)
                order[taken] = n
                taken += 1
                b = band_of[n]
                for i in range(_links(n, band_of, starts, sizes, hops, t_lo, t_hi, links)):
                    nb, j = links[i, 0], links[i, 1]
                    if loud[nb] and not done[nb]:
                        if j == b:
                            dm = 1 if nb > n else -1
                            phase[nb] = phase[n] + two_pi * 0.5 * (frequency[n] + frequency[nb]) * dm * hops[b] / sample_rate
                        else:
                            phase[nb] = phase[n] + two_pi * 0.5 * (delay[n] + delay[nb]) * (centre_hz[j] - centre_hz[b])
                        done[nb] = True
                        parent[nb] = n
                        size = _push(keys, nodes, size, level[nb], nb)
    return order[:taken]


# Joining the pieces. The heap grows each island's tree along its loudest links, much as
# a maximum spanning tree of the links weighted by the quieter end's level would, and the
# maximum spanning tree of a graph is that of its pieces' trees together with the links
# between the pieces (an edge a piece's tree left out closes a cycle within the piece
# on which it is the weakest, so it is no part of the whole's tree either). So the pieces
# are joined by Kruskal's algorithm over the links across the cuts and, of each piece's
# tree, only what connects the coefficients at its cuts: those coefficients, where
# their paths to the root meet, and the roots (the tree's "virtual tree"), each edge of
# it standing for a path of the tree and as strong as that path's weakest link. An edge
# Kruskal's algorithm rejects removes that weakest link, and the subtree below it turns
# with what it is now joined to; a link across a cut that it accepts turns the second
# piece's subtree so that the phase continues across the link as the integration would
# have carried it.

_ON_PATH, _JOINT, _TURNED = 1, 2, 3


@njit(cache=True, nogil=True)
def _crossings(level, frequency, phase, done, starts, sizes, hops, sample_rate, cuts):
    """The links PGHI's pieces left out: in each band, between the last coefficient
    before each cut (samples) and the first after it, where both were reached. For each:
    the smaller of the two log-magnitudes (how strong the link is), the coefficients
    either side, and how far the second's phase must turn (radians) to continue the
    first's across the link."""
    n_bands = hops.shape[0]
    total = cuts.shape[0] * n_bands
    weight = np.empty(total)
    before = np.empty(total, dtype=np.int64)
    after = np.empty(total, dtype=np.int64)
    turn = np.empty(total)
    k = 0
    two_pi = 2.0 * math.pi
    for c in range(cuts.shape[0]):
        for b in range(n_bands):
            m = -(-cuts[c] // hops[b])  # the first coefficient at or after the cut
            if m < 1 or m >= sizes[b]:
                continue
            n, nb = starts[b] + m - 1, starts[b] + m
            if not (done[n] and done[nb]):
                continue
            weight[k] = min(level[n], level[nb])
            before[k] = n
            after[k] = nb
            turn[k] = phase[n] + two_pi * 0.5 * (frequency[n] + frequency[nb]) * hops[b] / sample_rate - phase[nb]
            k += 1
    return weight[:k], before[:k], after[:k], turn[:k]


def _cut_of(before, starts, hops, cuts):
    """Which of ``cuts`` (samples) each coefficient ``before`` lies just before."""
    band = np.searchsorted(starts, before, side="right") - 1
    time = (before - starts[band]) * hops[band]
    return np.searchsorted(cuts, time, side="right")


@njit(cache=True, nogil=True)
def _virtual_tree(terminals, parent, level, mark):
    """The virtual tree of ``terminals`` (coefficients) in the integration's tree
    ``parent``, marking in ``mark`` (zero before) the coefficients on their paths to the
    root and, as joints, the terminals, the points where paths meet and the roots.
    Returns its edges: (lower joint, upper joint, weight of the path's weakest link, the
    coefficient below that link)."""
    joints = np.empty(2 * terminals.shape[0] + 1, dtype=np.int64)
    n_joints = 0
    for t in terminals:
        if mark[t] == _JOINT:
            continue
        was_walked = mark[t] == _ON_PATH
        mark[t] = _JOINT
        joints[n_joints] = t
        n_joints += 1
        if was_walked:  # an earlier terminal's path runs through it: marked above already
            continue
        u = t
        while True:
            up = parent[u]
            if up < 0:  # u is the root, reached first by this path
                if u != t:
                    mark[u] = _JOINT
                    joints[n_joints] = u
                    n_joints += 1
                break
            if mark[up] != 0:  # meets an earlier path
                if mark[up] == _ON_PATH:
                    mark[up] = _JOINT
                    joints[n_joints] = up
                    n_joints += 1
                break
            mark[up] = _ON_PATH
            u = up
    lower = np.empty(n_joints, dtype=np.int64)
    upper = np.empty(n_joints, dtype=np.int64)
    weight = np.empty(n_joints)
    weakest = np.empty(n_joints, dtype=np.int64)
    k = 0
    for i in range(n_joints):
        u = joints[i]
        if parent[u] < 0:
            continue
        lower[k] = u
        weight[k] = np.inf
        while True:
            up = parent[u]
            w = min(level[u], level[up])
            if w < weight[k]:
                weight[k] = w
                weakest[k] = u
            u = up
            if mark[u] == _JOINT:
                break
        upper[k] = u
        k += 1
    return lower[:k], upper[:k], weight[:k], weakest[:k]


@njit(cache=True, nogil=True)
def _root(parent, relative, i):
    """The root of ``i``'s group in a union-find that keeps each member's turn relative
    to its parent (``relative``), and ``i``'s turn relative to the root; compresses the
    path."""
    root, total = i, 0.0
    while parent[root] != root:
        total += relative[root]
        root = parent[root]
    remaining = total
    while parent[i] != root and i != root:
        up = parent[i]
        step = relative[i]
        parent[i] = root
        relative[i] = remaining
        remaining -= step
        i = up
    return root, total


@njit(cache=True, nogil=True)
def _join(lower, upper, weight, weakest, cross_weight, before, after, cross_turn, tree_parent, level):
    """Kruskal's maximum spanning forest over the pieces' virtual trees (edges that keep
    their ends' phases as they are) and the links across the cuts (edges that turn the
    second end by ``cross_turn``). Returns the coefficients whose phase turns with its
    subtree, and by how much (radians): the roots of the pieces' trees and, of every
    virtual edge rejected, the coefficient below its weakest link."""
    labels = np.unique(np.concatenate((lower, upper, before, after)))
    group = np.arange(labels.shape[0])
    relative = np.zeros(labels.shape[0])
    tree_edges = lower.shape[0]
    a_of = np.searchsorted(labels, np.concatenate((upper, before)))
    b_of = np.searchsorted(labels, np.concatenate((lower, after)))
    turn = np.concatenate((np.zeros(tree_edges), cross_turn))
    rejected = np.zeros(tree_edges, dtype=np.bool_)
    for e in np.argsort(-np.concatenate((weight, cross_weight)), kind="mergesort"):
        ra, oa = _root(group, relative, a_of[e])
        rb, ob = _root(group, relative, b_of[e])
        if ra == rb:
            if e < tree_edges:
                rejected[e] = True
            continue
        # turn(b) = turn(a) + turn[e], so relative to ra, rb turns by oa + turn[e] - ob.
        group[rb] = ra
        relative[rb] = oa + turn[e] - ob
    turned = np.empty(labels.shape[0])
    for i in range(labels.shape[0]):
        turned[i] = _root(group, relative, i)[1]
    is_root = tree_parent[labels] < 0
    # As when integrating the whole, each joined island's phase is 0 at its loudest
    # coefficient (the loudest of its pieces' roots, the first of equals), rather than
    # wherever Kruskal's algorithm rooted it: the same phase where an island crosses a
    # cut untouched.
    loudest = np.full(labels.shape[0], -1)
    for i in range(labels.shape[0]):
        if is_root[i]:
            g = _root(group, relative, i)[0]
            if loudest[g] < 0 or level[labels[i]] > level[labels[loudest[g]]]:
                loudest[g] = i
    anchor = np.empty(labels.shape[0])
    for i in range(labels.shape[0]):
        anchor[i] = turned[loudest[_root(group, relative, i)[0]]]
    turned -= anchor
    nodes = np.empty(np.count_nonzero(is_root) + np.count_nonzero(rejected), dtype=np.int64)
    turns = np.empty(nodes.shape[0])
    k = 0
    for i in range(labels.shape[0]):
        if is_root[i]:
            nodes[k], turns[k] = labels[i], turned[i]
            k += 1
    lower_of = np.searchsorted(labels, lower)
    for e in range(tree_edges):
        if rejected[e]:
            nodes[k], turns[k] = weakest[e], turned[lower_of[e]]
            k += 1
    return nodes, turns


@njit(cache=True, nogil=True)
def _turn_subtrees(order, parent, mark, turn):
    """Each coefficient of a piece's tree (``order``: parents first) turns as its parent
    does (``turn``, radians), except those marked as turning with their own subtree
    (already set) and untouched roots (no turn)."""
    for n in order:
        if mark[n] == _TURNED:
            continue
        p = parent[n]
        turn[n] = turn[p] if p >= 0 else 0.0


@njit(cache=True, nogil=True)
def _peak(values, where, lo, hi):
    """The largest of ``values[where[lo:hi]]``."""
    peak = 0.0
    for i in range(lo, hi):
        peak = max(peak, float(values[where[i]]))
    return peak


@njit(cache=True, nogil=True)
def _levels(values, where, lo, hi, floor, level, loud):
    """For ``i`` in ``lo:hi``: the log-magnitude of ``values[where[i]]`` into ``level``
    (clamped below the floor a little lower still, so that slopes into silence stay
    finite but steep), and whether it is louder than the floor into ``loud``."""
    clamp = floor * 1e-3
    for i in range(lo, hi):
        m = float(values[where[i]])
        level[i] = math.log(max(m, clamp))
        loud[i] = m > floor


@njit(cache=True, fastmath=True, nogil=True)
def _phasors(phase, turn, reached, lo, hi, random_phase, where, out):
    """For ``i`` in ``lo:hi``: ``out[where[i]] = exp(i (phase[i] + turn[i]))`` where the
    integration reached coefficient ``i``, else with the next of ``random_phase`` (in
    order)."""
    q = 0
    full = 2.0 * math.pi
    for i in range(lo, hi):
        if reached[i]:
            angle = phase[i] + turn[i]
        else:
            angle = random_phase[q]
            q += 1
        # Wrapped in double precision (the unwrapped phase of a high band grows to
        # ~1e7 rad in a minute), then cos and sin in single (twice as fast).
        wrapped = np.float32(angle - full * math.floor(angle / full))
        out[where[i]] = complex(np.cos(wrapped), np.sin(wrapped))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: PGHI integrates a long signal in pieces of about this length (seconds), side by side
#: on the CPU's cores, and joins them where the integration would have continued across
#: each cut (see :func:`pghi_phase`). Fixed, not sized to the machine, so that a seed
#: gives the same phase on any machine.
PIECE_SECONDS = 1.0


class _Channel:
    """One channel's working arrays, indexed by coefficient (bands laid end to end)."""

    def __init__(self, count: int):
        self.level = np.empty(count)
        self.loud = np.empty(count, dtype=np.bool_)
        self.frequency = np.empty(count)
        # The group delay; once the integration is done, how far each phase turns to
        # join the pieces (radians).
        self.delay = np.empty(count)
        self.phase = np.empty(count)
        self.done = np.zeros(count, dtype=np.bool_)
        self.seen = np.zeros(count, dtype=np.bool_)
        self.parent = np.empty(count, dtype=np.int64)
        self.mark = np.zeros(count, dtype=np.uint8)
        self.orders: dict[int, np.ndarray] = {}


def pghi_phase(target: Coefficients, *, silence_db: float = -60.0, seed: int = 0,
               piece_seconds: float | None = None) -> list[torch.Tensor]:
    """Unit-modulus phases for ``target``'s magnitudes by phase-gradient integration.

    A signal longer than a piece is integrated in pieces (cut at multiples of the
    frame's largest hop), all at once on the CPU's cores, and the pieces joined along
    the loudest links across the cuts, as integrating the whole would have joined them
    (see the module's notes: level with integrating the whole, and faster). The
    pieces do not depend on the machine, so a seed gives the same phase on any number
    of cores.

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
    piece_seconds : float or None
        Length of the pieces (seconds); ``None`` for :data:`PIECE_SECONDS`, ``inf`` for
        one piece.

    Returns
    -------
    list of torch.Tensor
        Complex phases in ``target``'s group layout, on its device. The real lowpass
        and highpass atoms get +1 (a sign is all their phase is).
    """
    frame = target.frame
    table = frame.bands
    device = target.groups[0].device
    rows = int(np.prod(target.batch_shape, dtype=np.int64))
    wavelets = table.wavelet_indices
    # Each channel's groups side by side, and where each wavelet band's coefficients sit
    # there (low to high frequency).
    group_values = [g.detach().to("cpu", torch.float32).reshape(rows, -1).numpy() for g in target.groups]
    group_start = np.concatenate([[0], np.cumsum([v.shape[1] for v in group_values])])
    lengths = [g.shape[-1] for g in target.groups]
    sizes = np.array([lengths[int(table.group[k])] for k in wavelets], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    count = int(starts[-1])
    where = np.concatenate([group_start[int(table.group[k])] + int(table.row[k]) * size + np.arange(size)
                            for k, size in zip(wavelets, sizes)])
    band_of = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
    magnitudes = np.concatenate(group_values, axis=1)
    phases = torch.ones(magnitudes.shape, dtype=frame.complex_dtype)
    hops = table.hop[wavelets].astype(np.int64)
    centre_hz = np.asarray(table.centre_hz[wavelets], dtype=np.float64)
    sigma_hz = np.asarray(table.sigma_hz[wavelets], dtype=np.float64)
    sample_rate = float(frame.sample_rate)

    seconds = PIECE_SECONDS if piece_seconds is None else float(piece_seconds)
    span = target.padded_length
    top = frame.max_hop
    piece = span if not math.isfinite(seconds) else max(int(round(seconds * sample_rate / top)), 1) * top
    cuts = np.arange(piece, span, piece, dtype=np.int64)
    bounds = list(zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [span]])))
    # Contiguous runs of coefficients for the element-wise passes, a few per core.
    chunk = max(-(-count // (4 * _usable_cores())), 1 << 16)
    runs = [(lo, min(lo + chunk, count)) for lo in range(0, count, chunk)]

    with ThreadPoolExecutor(max_workers=_usable_cores()) as pool:
        peaks = np.array(list(pool.map(lambda job: _peak(magnitudes[job[0]], where, *job[1]),
                                       [(row, run) for row in range(rows) for run in runs]))).reshape(rows, -1)
        loud_rows = [row for row in range(rows) if peaks[row].max() > 0]  # a silent channel keeps phases of 1
        floor = {row: float(peaks[row].max()) * 10.0 ** (silence_db / 20.0) for row in loud_rows}
        work = {row: _Channel(count) for row in loud_rows}

        def levels(job):
            row, (lo, hi) = job
            c = work[row]
            _levels(magnitudes[row], where, lo, hi, floor[row], c.level, c.loud)

        def integrate(job):
            row, piece_index = job
            t_lo, t_hi = bounds[piece_index]
            c = work[row]
            _gradients(c.level, starts[:-1], sizes, hops, centre_hz, sigma_hz, sample_rate, t_lo, t_hi,
                       c.frequency, c.delay)
            c.orders[piece_index] = _integrate(c.level, c.loud, c.frequency, c.delay, band_of, starts, sizes, hops,
                                               centre_hz, sample_rate, t_lo, t_hi, c.phase, c.done, c.seen, c.parent)

        list(pool.map(levels, [(row, run) for row in loud_rows for run in runs]))
        # Gradients read the levels on both sides of a cut, so all levels come first.
        list(pool.map(integrate, [(row, k) for row in loud_rows for k in range(len(bounds))]))
        for c in work.values():
            c.delay[:] = 0.0  # from here on, the turns
        if cuts.shape[0]:
            crossings = {row: _crossings(work[row].level, work[row].frequency, work[row].phase, work[row].done,
                                         starts, sizes, hops, sample_rate, cuts) for row in loud_rows}

            def virtual_tree(job):
                row, k = job
                _, before, after, _ = crossings[row]
                # The piece's coefficients at its cuts: after the cut before it, before
                # the cut after it (cut k - 1 and cut k).
                at_cuts = np.concatenate([after[c_of[row] == k - 1], before[c_of[row] == k]])
                return _virtual_tree(at_cuts, work[row].parent, work[row].level, work[row].mark)

            c_of = {row: _cut_of(crossings[row][1], starts, hops, cuts) for row in loud_rows}
            trees = dict(zip([(row, k) for row in loud_rows for k in range(len(bounds))],
                             pool.map(virtual_tree, [(row, k) for row in loud_rows for k in range(len(bounds))])))

            def join(row):
                c = work[row]
                parts = [trees[(row, k)] for k in range(len(bounds))]
                lower, upper, weight, weakest = (np.concatenate([p[i] for p in parts]) for i in range(4))
                nodes, turns = _join(lower, upper, weight, weakest, *crossings[row], c.parent, c.level)
                c.delay[nodes] = turns
                c.mark[nodes] = _TURNED

            list(pool.map(join, loud_rows))
            list(pool.map(lambda job: _turn_subtrees(work[job[0]].orders[job[1]], work[job[0]].parent,
                                                     work[job[0]].mark, work[job[0]].delay),
                          [(row, k) for row in loud_rows for k in range(len(bounds))]))
        # The random phases are drawn in one sequence, channel after channel and run
        # after run, so they do not depend on how the work was scheduled.
        rng = np.random.default_rng(seed)
        jobs = []
        for row in loud_rows:
            unreached = [int(hi - lo - np.count_nonzero(work[row].done[lo:hi])) for lo, hi in runs]
            randoms = rng.uniform(0.0, 2 * math.pi, sum(unreached))
            offsets = np.concatenate([[0], np.cumsum(unreached)])
            jobs += [(row, run, randoms[offsets[i]:offsets[i + 1]]) for i, run in enumerate(runs)]

        def phasors(job):
            row, (lo, hi), random_phase = job
            c = work[row]
            _phasors(c.phase, c.delay, c.done, lo, hi, random_phase, where, phases[row].numpy())

        list(pool.map(phasors, jobs))
    return [phases[:, lo:hi].reshape(g.shape).to(device)
            for g, lo, hi in zip(target.groups, group_start[:-1], group_start[1:])]
