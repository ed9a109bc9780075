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
loudest coefficient outwards, always from the loudest reached so far (a priority
queue), so that it travels along the loudest paths
where the estimates are most reliable: between neighbours in time within a band, and
between coincident samples of neighbouring bands (the grids of all bands align, hops
being powers of two). Each island of loud coefficients (linked to each other) starts
from its own loudest, found by a flood fill. Coefficients below a floor get a random
phase, as in PGHI.

This is serial, so a signal is integrated in pieces of :data:`PIECE_SECONDS`, all
channels' pieces side by side on the CPU's cores (the loops release the GIL), and the
pieces are joined as the whole would have been integrated: the queue grows much the tree
of the loudest links (a maximum spanning tree), and that tree of the whole is the one of
the pieces' trees together with the links across the cuts, which Kruskal's algorithm
finds from the few coefficients at the cuts (see :func:`_join`). Measured on speech,
orchestral music and a synth cue at ``invert``'s 48 voices: the same spectral
convergence at the start within 0.01 dB, and after 20 iterations within 0.1 dB, with
pieces of 1/4 to 8 s; a minute of stereo music at 12 voices took 3.7 s instead of 5.5
on two cores (a piece's coefficients stay in the processor's caches).
Pieces left unjoined (10 s of them) started 3.7 dB further off on orchestral music;
joined island by island (one turn per island, 8 s pieces), 1.7 dB further off and 3.6 dB
after 20 iterations: one island spans many partials, whose relative phases each piece
integrates along a different path. The integration is compiled with numba: in numpy,
a spanning-tree formulation of the same idea (scipy's minimum spanning tree, then
prefix sums by pointer jumping) was 2-3x slower. So is the pass that derives both gradients from the magnitudes (band by band in numpy
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
def _gradients(level, starts, sizes, hops, centre_hz, sigma_hz, sample_rate, first, local_starts, local_sizes,
               frequency, delay):
    """The phase's gradients of a piece's coefficients, from the whole channel's
    log-magnitudes ``level`` (bands laid end to end, low to high frequency, band ``b``
    at ``starts[b]``): for band ``b``'s coefficients ``first[b]`` onwards, into
    ``frequency[local_starts[b]:][:local_sizes[b]]`` and the same of ``delay``. The
    instantaneous frequency (Hz) from the log-magnitude's slope across the neighbouring
    bands (on this band's time grid), the group delay (s) from its slope along time
    (central differences, one-sided at the ends, as ``np.gradient``: across the piece's
    edges too, so that pieces see the gradients of the whole)."""
    n_bands = hops.shape[0]
    for b in range(n_bands):
        lo, hi = max(b - 1, 0), min(b + 1, n_bands - 1)
        sigma = sigma_hz[b]
        across = centre_hz[hi] - centre_hz[lo]
        step = hops[b] / sample_rate
        size = sizes[b]
        for k in range(local_sizes[b]):
            m = first[b] + k
            n = starts[b] + m
            out = local_starts[b] + k
            t = float(m * hops[b])
            slope_f = (_on_grid(level, starts[hi], sizes[hi], hops[hi], t)
                       - _on_grid(level, starts[lo], sizes[lo], hops[lo], t)) / across
            # Clamped to a few widths of the atom: beyond that the slope is a side lobe
            # of another component, not this band's frequency.
            frequency[out] = centre_hz[b] + min(max(sigma * sigma * slope_f, -3.0 * sigma), 3.0 * sigma)
            if size < 2:
                slope_t = 0.0
            elif m == 0:
                slope_t = (level[n + 1] - level[n]) / step
            elif m == size - 1:
                slope_t = (level[n] - level[n - 1]) / step
            else:
                slope_t = (level[n + 1] - level[n - 1]) / (2.0 * step)
            delay[out] = -slope_t / (4.0 * math.pi**2 * sigma * sigma)


#: The integration's priority queue: a bucket queue of the log-magnitudes quantised to
#: this many buckets per neper (0.0087 dB each), the loudest bucket first, last in first
#: out within one. 1.5x faster than a 4-ary heap on a minute of music, with the same
#: spectral convergence at the start (within 0.02 dB) and after 20 iterations (within
#: 0.03 dB in both measures) on speech, orchestral music and a synth cue; at 100 per
#: neper the synth cue ended 0.3 dB further off in MR-STFT.
BUCKETS_PER_NEPER = 1000.0


@njit(cache=True, nogil=True)
def _links(n, band_of, starts, sizes, hops, out):
    """The neighbours of coefficient ``n`` that the integration links it to, in
    ``out[:count]`` as (coefficient, band it is in); returns ``count``. Within a band: the
    coefficients before and after; across bands: the one at the same time in each
    neighbouring band, where that band has a coefficient then (the grids of all bands
    align, hops being powers of two, so the links go both ways)."""
    b = band_of[n]
    m = n - starts[b]
    count = 0
    for mm in (m - 1, m + 1):
        if 0 <= mm < sizes[b]:
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
def _island_peak(start, level, loud, band_of, starts, sizes, hops, seen, stack, links):
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
        for i in range(_links(n, band_of, starts, sizes, hops, links)):
            nb = links[i, 0]
            if loud[nb] and not seen[nb]:
                seen[nb] = True
                stack[top] = nb
                top += 1
    return peak


@njit(cache=True, nogil=True)
def _grow(first, after, top, waiting, taken, level, low, loud, frequency, delay, starts, sizes, hops, centre_hz,
          sample_rate, phase, done, parent, order, band_of, links):
    """Drains the bucket queue (``waiting`` coefficients, the loudest in bucket ``top``
    or below): each taken coefficient gives its loud neighbours not yet reached the phase
    integrated over the link, trapezoidal rule (along time with the instantaneous
    frequency, across bands with the group delay), and queues them. Returns ``taken``
    plus how many it took."""
    two_pi = 2.0 * math.pi
    while waiting > 0:
        while first[top] < 0:
            top -= 1
        n = first[top]
        first[top] = after[n]
        waiting -= 1
        order[taken] = n
        taken += 1
        b = band_of[n]
        for i in range(_links(n, band_of, starts, sizes, hops, links)):
            nb, j = links[i, 0], links[i, 1]
            if loud[nb] and not done[nb]:
                if j == b:
                    dm = 1 if nb > n else -1
                    phase[nb] = phase[n] + two_pi * 0.5 * (frequency[n] + frequency[nb]) * dm * hops[b] / sample_rate
                else:
                    phase[nb] = phase[n] + two_pi * 0.5 * (delay[n] + delay[nb]) * (centre_hz[j] - centre_hz[b])
                done[nb] = True
                parent[nb] = n
                q = int((level[nb] - low) * BUCKETS_PER_NEPER)
                first[q], after[nb] = nb, first[q]
                waiting += 1
                top = max(top, q)
    return taken


@njit(cache=True, nogil=True)
def _integrate(level, loud, frequency, delay, starts, sizes, hops, centre_hz, sample_rate, phase, done, parent,
               order, band_of, seen, after, fixed, fixed_phase):
    """PGHI's integration of one piece (its bands laid end to end, band ``b`` at
    ``starts[b]``, its first coefficients at the piece's start). Each island of loud
    coefficients starts from its loudest and always continues from the loudest
    coefficient reached so far (a bucket queue: see :data:`BUCKETS_PER_NEPER`): see
    :func:`_grow`. Writes the phases (radians, unwrapped) into ``phase``, which
    coefficients were reached (the loud ones) into ``done`` and the coefficient each was
    reached from into ``parent`` (-1 for an island's loudest): the integration's tree;
    and into ``order`` the reached coefficients in the order they were taken from the
    queue (every parent before its children), returning how many. ``band_of``, ``seen``
    (all false) and ``after`` are scratch arrays as long as ``level``.

    Where ``fixed`` (as long as ``level``, or empty) holds, the phase is known
    (``fixed_phase``, radians): the loud ones all start the queue, each with its own
    phase, and the islands they are in grow from them, as RTPGHI continues the phase
    of the frames before.

    Islands share no link, so the order they are taken in changes nothing; each one's
    loudest is found by a flood fill (sorting every loud coefficient by level to find
    them took a third of the time on a minute of music)."""
    count = level.shape[0]
    for b in range(sizes.shape[0]):
        band_of[starts[b] : starts[b] + sizes[b]] = b
    low, high = np.inf, -np.inf
    for i in range(count):
        if loud[i]:
            low = min(low, level[i])
            high = max(high, level[i])
    # Buckets as linked lists: the first coefficient of each, and after each the next.
    first = np.full(int((high - low) * BUCKETS_PER_NEPER) + 1 if high >= low else 1, -1, dtype=np.int64)
    taken = 0
    links = np.empty((4, 2), dtype=np.int64)
    if fixed.shape[0]:
        waiting, top = 0, 0
        for i in range(count):
            if fixed[i] and loud[i]:
                done[i] = True
                phase[i] = fixed_phase[i]
                parent[i] = -1
                q = int((level[i] - low) * BUCKETS_PER_NEPER)
                first[q], after[i] = i, first[q]
                waiting += 1
                top = max(top, q)
        taken = _grow(first, after, top, waiting, taken, level, low, loud, frequency, delay, starts, sizes, hops,
                      centre_hz, sample_rate, phase, done, parent, order, band_of, links)
    for start in range(count):
        if not loud[start] or seen[start] or done[start]:
            continue
        # The buckets are empty between islands: the list array serves as the fill's stack.
        seed = _island_peak(start, level, loud, band_of, starts, sizes, hops, seen, after, links)
        done[seed] = True
        phase[seed] = 0.0
        parent[seed] = -1
        top = int((level[seed] - low) * BUCKETS_PER_NEPER)
        first[top], after[seed] = seed, first[top]
        taken = _grow(first, after, top, 1, taken, level, low, loud, frequency, delay, starts, sizes, hops,
                      centre_hz, sample_rate, phase, done, parent, order, band_of, links)
    return taken


@njit(cache=True, nogil=True)
def _fixed(known_angle, bases, strides, first, sizes, row, fixed, fixed_phase):
    """Where a channel's piece (laid out as for :func:`_peak`) has a known phase (a
    ``known_angle`` in radians, NaN where unknown): into ``fixed``, and the angle into
    ``fixed_phase``."""
    n = 0
    for b in range(bases.shape[0]):
        at = bases[b] + row * strides[b] + first[b]
        for k in range(sizes[b]):
            v = known_angle[at + k]
            fixed[n] = not math.isnan(v)
            fixed_phase[n] = 0.0 if math.isnan(v) else v
            n += 1


# Joining the pieces. The queue grows each island's tree along its loudest links, much as
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
def _virtual_tree(terminals, parent, level, mark):
    """The virtual tree of ``terminals`` (coefficients) in the integration's tree
    ``parent``, marking in ``mark`` (zero before) the coefficients on their paths to the
    root and, as joints, the terminals, the points where paths meet and the roots.
    Returns its edges: (lower joint, upper joint, weight of the path's weakest link, the
    coefficient below that link), and the roots among the joints."""
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
    roots = np.empty(n_joints - k, dtype=np.int64)
    r = 0
    for i in range(n_joints):
        if parent[joints[i]] < 0:
            roots[r] = joints[i]
            r += 1
    return lower[:k], upper[:k], weight[:k], weakest[:k], roots


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
def _join(lower, upper, weight, weakest, cross_weight, before, after, cross_turn, roots, root_level):
    """Kruskal's maximum spanning forest over the pieces' virtual trees (edges that keep
    their ends' phases as they are) and the links across the cuts (edges that turn the
    second end by ``cross_turn``), all as coefficients numbered across the pieces.
    ``roots`` are the roots among the virtual trees' joints, ``root_level`` their
    log-magnitudes. Returns the coefficients whose phase turns with its subtree, and by
    how much (radians): the roots and, of every virtual edge rejected, the coefficient
    below its weakest link."""
    labels = np.unique(np.concatenate((lower, upper, before, after, roots)))
    group = np.arange(labels.shape[0])
    relative = np.zeros(labels.shape[0])  # turn relative to the parent in the union-find
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
    # As when integrating the whole, each joined island's phase is 0 at its loudest
    # coefficient (the loudest of its pieces' roots, the first of equals), rather than
    # wherever Kruskal's algorithm rooted it: the same phase where an island crosses a
    # cut untouched.
    root_of = np.searchsorted(labels, roots)
    loudest = np.full(labels.shape[0], -1)
    loudest_level = np.empty(labels.shape[0])
    for order in np.argsort(roots):
        i = root_of[order]
        g = _root(group, relative, i)[0]
        if loudest[g] < 0 or root_level[order] > loudest_level[g]:
            loudest[g] = i
            loudest_level[g] = root_level[order]
    anchor = np.empty(labels.shape[0])
    for i in range(labels.shape[0]):
        anchor[i] = turned[loudest[_root(group, relative, i)[0]]]
    turned -= anchor
    nodes = np.empty(roots.shape[0] + np.count_nonzero(rejected), dtype=np.int64)
    turns = np.empty(nodes.shape[0])
    nodes[: roots.shape[0]] = roots
    turns[: roots.shape[0]] = turned[root_of]
    k = roots.shape[0]
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
def _peak(values, bases, strides, first, sizes, row):
    """The largest magnitude of a channel's piece: band ``b``'s coefficients ``first[b]``
    onwards (``sizes[b]`` of them) lie at ``values[bases[b] + row * strides[b]:]``."""
    peak = 0.0
    for b in range(bases.shape[0]):
        at = bases[b] + row * strides[b] + first[b]
        for k in range(sizes[b]):
            peak = max(peak, float(values[at + k]))
    return peak


@njit(cache=True, nogil=True)
def _levels(values, bases, strides, first, sizes, row, floor, starts, level, local_starts, piece_level, piece_loud):
    """Log-magnitudes of a channel's piece (laid out as for :func:`_peak`), clamped below
    the floor a little lower still (so that slopes into silence stay finite but steep):
    into the channel's ``level`` at ``starts[b] + first[b]`` onwards (its gradients read
    across the cuts) and into the piece's own ``piece_level`` at ``local_starts[b]``
    onwards; and whether each is louder than the floor into ``piece_loud``."""
    clamp = floor * 1e-3
    for b in range(bases.shape[0]):
        at = bases[b] + row * strides[b] + first[b]
        into = starts[b] + first[b]
        local = local_starts[b]
        for k in range(sizes[b]):
            m = float(values[at + k])
            value = math.log(max(m, clamp))
            level[into + k] = value
            piece_level[local + k] = value
            piece_loud[local + k] = m > floor


@njit(cache=True, fastmath=True, nogil=True)
def _phasors(phase, turn, reached, random_phase, bases, strides, first, sizes, row, out):
    """``exp(i (phase + turn))`` of a piece's coefficients where the integration reached
    them, else with the next of ``random_phase`` (in order), into ``out`` (laid out as
    ``values`` for :func:`_peak`)."""
    q = 0
    n = 0
    full = 2.0 * math.pi
    for b in range(bases.shape[0]):
        at = bases[b] + row * strides[b] + first[b]
        for k in range(sizes[b]):
            if reached[n]:
                angle = phase[n] + turn[n]
            else:
                angle = random_phase[q]
                q += 1
            # Wrapped in double precision (the unwrapped phase of a high band grows to
            # ~1e7 rad in a minute), then cos and sin in single (twice as fast).
            wrapped = np.float32(angle - full * math.floor(angle / full))
            out[at + k] = complex(np.cos(wrapped), np.sin(wrapped))
            n += 1


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask on Linux)."""
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
    """One channel's working arrays, the pieces' coefficients one piece after another
    (each piece's bands laid end to end): a few large arrays rather than many small
    ones, because numpy asks for transparent huge pages for large ones, and on a
    3.5-minute song touching fresh memory page by page took as long as the
    integration."""

    def __init__(self, count: int, largest_piece: int, bands: int):
        # Indices within a piece, in as few bytes as they fit (a quarter less memory).
        index = np.int32 if largest_piece < 2**31 else np.int64
        self.level = np.empty(count)
        self.loud = np.empty(count, dtype=np.bool_)
        self.frequency = np.empty(count)
        self.turn = np.empty(count)  # the group delay; once integrated, how far each phase turns
        self.phase = np.empty(count)
        self.done = np.zeros(count, dtype=np.bool_)
        self.parent = np.empty(count, dtype=index)
        self.order = np.empty(count, dtype=index)
        self.mark = np.zeros(count, dtype=np.uint8)
        # Scratch of the integration.
        self.band_of = np.empty(count, dtype=np.int16 if bands < 2**15 else np.int32)
        self.seen = np.zeros(count, dtype=np.bool_)
        self.after = np.empty(count, dtype=index)

    def piece(self, lo: int, hi: int) -> "_Channel":
        """The same arrays' views of coefficients ``lo:hi`` (a piece)."""
        view = _Channel.__new__(_Channel)
        view.__dict__.update({name: array[lo:hi] for name, array in self.__dict__.items()})
        return view


def pghi_phase(target: Coefficients, *, silence_db: float = -60.0, seed: int = 0,
               piece_seconds: float | None = None, known: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
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
    known : list of torch.Tensor, optional
        Phases already known, as unit phasors in ``target``'s group layout, 0 where
        unknown: the integration grows from them into the islands they touch (and the
        signal is integrated in one piece, so that no join turns them). Where the
        phase is known the result is that phase for the loud coefficients.

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
    # All groups flat, one after another (each group: channel, band, time); band b of
    # channel r starts at bases[b] + r * strides[b]. The phases come out in the same
    # layout, so each group's is a view.
    # In numpy's memory, not torch's: numpy asks for huge pages (see _Channel).
    flat = [g.detach().to("cpu", torch.float32).reshape(-1).numpy() for g in target.groups]
    values = np.concatenate(flat)
    block_start = np.concatenate([[0], np.cumsum([f.size for f in flat])]).astype(np.int64)
    lengths = np.array([g.shape[-1] for g in target.groups], dtype=np.int64)
    group = table.group[wavelets].astype(np.int64)
    sizes = lengths[group]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    strides = np.array([target.groups[g].shape[-2] * lengths[g] for g in group], dtype=np.int64)
    bases = block_start[group] + table.row[wavelets].astype(np.int64) * sizes
    hops = table.hop[wavelets].astype(np.int64)
    centre_hz = np.asarray(table.centre_hz[wavelets], dtype=np.float64)
    sigma_hz = np.asarray(table.sigma_hz[wavelets], dtype=np.float64)
    sample_rate = float(frame.sample_rate)
    out = np.ones(int(block_start[-1]), dtype=np.complex64 if frame.complex_dtype == torch.complex64 else np.complex128)
    phases = torch.from_numpy(out)

    seconds = PIECE_SECONDS if piece_seconds is None else float(piece_seconds)
    if known is not None:
        seconds = math.inf
        # Angles in single precision (a start: the integration adds in double from it),
        # written group by group: a long window's phasors are hundreds of MB.
        known_angle = np.empty(sum(k.numel() for k in known), dtype=np.float32)
        at = 0
        for k in known:
            k = k.detach().to("cpu")
            angle = torch.from_numpy(known_angle[at : at + k.numel()]).view(k.shape)
            if k.is_complex():
                torch.angle(k, out=angle)
            else:
                angle.copy_(torch.where(k < 0, math.pi, 0.0))
            angle.masked_fill_(k == 0, math.nan)
            at += k.numel()
    span = target.padded_length
    top = frame.max_hop
    piece = span if not math.isfinite(seconds) else max(int(round(seconds * sample_rate / top)), 1) * top
    cuts = np.arange(piece, span, piece, dtype=np.int64)
    # Each piece's coefficients in each band (cuts fall on every band's grid).
    edges = np.concatenate([[0], cuts, [span]])
    firsts = [np.minimum(lo // hops, sizes) for lo in edges[:-1]]
    local_sizes = [np.minimum(hi // hops, sizes) - f for f, hi in zip(firsts, edges[1:])]
    local_starts = [np.concatenate([[0], np.cumsum(s)]).astype(np.int64) for s in local_sizes]
    pieces = range(len(firsts))
    jobs = [(row, p) for row in range(rows) for p in pieces]

    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        peaks = dict(zip(jobs, pool.map(
            lambda job: _peak(values, bases, strides, firsts[job[1]], local_sizes[job[1]], job[0]), jobs)))
        loud_rows = [row for row in range(rows) if max(peaks[(row, p)] for p in pieces) > 0]  # silent: phases of 1
        floor = {row: max(peaks[(row, p)] for p in pieces) * 10.0 ** (silence_db / 20.0) for row in loud_rows}
        jobs = [(row, p) for row in loud_rows for p in pieces]
        level = {row: np.empty(int(starts[-1])) for row in loud_rows}

        # Each channel's pieces one after another: piece p at base[p].
        base = np.concatenate([[0], np.cumsum([int(s[-1]) for s in local_starts])]).astype(np.int64)
        largest = int(np.diff(base).max())
        channels = {row: _Channel(int(base[-1]), largest, sizes.shape[0]) for row in loud_rows}

        def levels(job):
            row, p = job
            w = channels[row].piece(int(base[p]), int(base[p + 1]))
            _levels(values, bases, strides, firsts[p], local_sizes[p], row, floor[row], starts, level[row],
                    local_starts[p], w.level, w.loud)

        def integrate(job):
            # On the piece's own part of the arrays, so that the queue's reach stays in cache.
            row, p = job
            w = channels[row].piece(int(base[p]), int(base[p + 1]))
            _gradients(level[row], starts[:-1], sizes, hops, centre_hz, sigma_hz, sample_rate, firsts[p],
                       local_starts[p], local_sizes[p], w.frequency, w.turn)
            fixed, fixed_phase = np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.float32)
            if known is not None:
                fixed = np.empty(w.level.shape[0], dtype=np.bool_)
                fixed_phase = np.empty(w.level.shape[0], dtype=np.float32)
                _fixed(known_angle, bases, strides, firsts[p], local_sizes[p], row, fixed, fixed_phase)
            taken = _integrate(w.level, w.loud, w.frequency, w.turn, local_starts[p], local_sizes[p], hops,
                               centre_hz, sample_rate, w.phase, w.done, w.parent, w.order, w.band_of, w.seen, w.after,
                               fixed, fixed_phase)
            w.order = w.order[:taken]
            return w

        list(pool.map(levels, jobs))
        # Gradients read the levels on both sides of a cut, so all levels come first.
        work = dict(zip(jobs, pool.map(integrate, jobs)))
        del level
        for c in channels.values():
            c.turn[:] = 0.0
        if cuts.shape[0]:
            _join_pieces(work, loud_rows, pieces, base, local_starts, local_sizes, hops, sample_rate, pool)
        # The random phases are drawn in one sequence, channel after channel and piece
        # after piece, so they do not depend on how the work was scheduled.
        rng = np.random.default_rng(seed)
        draws = {job: rng.uniform(0.0, 2 * math.pi, work[job].done.shape[0] - np.count_nonzero(work[job].done))
                 for job in jobs}

        def phasors(job):
            row, p = job
            w = work[job]
            _phasors(w.phase, w.turn, w.done, draws[job], bases, strides, firsts[p], local_sizes[p], row, out)

        list(pool.map(phasors, jobs))
    return [phases[lo:hi].view(g.shape).to(device) for g, lo, hi in zip(target.groups, block_start[:-1], block_start[1:])]


def _join_pieces(work, rows, pieces, base, local_starts, local_sizes, hops, sample_rate, pool) -> None:
    """Sets the turns (``_Channel.turn``) that join each channel's pieces (piece ``p``'s
    coefficients numbered from ``base[p]`` across the channel): see the notes above
    :func:`_virtual_tree`."""
    n_pieces = len(pieces)
    # In every band, the piece's first coefficient and its last: where the links across
    # the cuts before and after it begin.
    head = [s[:-1] for s in local_starts]
    tail = [s[:-1] + z - 1 for s, z in zip(local_starts, local_sizes)]

    def crossings(row):
        found = []
        for p in range(n_pieces - 1):
            a, b = work[(row, p)], work[(row, p + 1)]
            n, nb = tail[p], head[p + 1]
            both = a.done[n] & b.done[nb]
            n, nb = n[both], nb[both]
            turn = (a.phase[n] + 2 * math.pi * 0.5 * (a.frequency[n] + b.frequency[nb]) * hops[both] / sample_rate
                    - b.phase[nb])
            found.append((np.minimum(a.level[n], b.level[nb]), base[p] + n, base[p + 1] + nb, turn, n, nb))
        return found

    links = dict(zip(rows, pool.map(crossings, rows)))

    def virtual_tree(job):
        row, p = job
        w = work[job]
        at_cuts = [links[row][p - 1][5]] if p > 0 else []
        if p < n_pieces - 1:
            at_cuts.append(links[row][p][4])
        lower, upper, weight, weakest, roots = _virtual_tree(np.concatenate(at_cuts), w.parent, w.level, w.mark)
        return lower + base[p], upper + base[p], weight, weakest + base[p], roots + base[p], w.level[roots]

    jobs = [(row, p) for row in rows for p in pieces]
    trees = dict(zip(jobs, pool.map(virtual_tree, jobs)))

    def join(row):
        tree = [np.concatenate([trees[(row, p)][i] for p in pieces]) for i in range(6)]
        cross = [np.concatenate([c[i] for c in links[row]]) for i in range(4)]
        nodes, turns = _join(*tree[:4], *cross, *tree[4:])
        piece_of = np.searchsorted(base, nodes, side="right") - 1
        for p in np.unique(piece_of):
            w = work[(row, int(p))]
            mine = piece_of == p
            local = nodes[mine] - base[p]
            w.turn[local] = turns[mine]
            w.mark[local] = _TURNED

    list(pool.map(join, rows))
    list(pool.map(lambda job: _turn_subtrees(work[job].order, work[job].parent, work[job].mark, work[job].turn), jobs))
