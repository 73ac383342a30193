"""The exact search: depth-first branch and bound over the whole family, on the Lagrangian tables.

The search fixes slots from the last to the first, so every fixed slot's entropy weight ``G_j`` is exact
(core/lagrangian.py).  A node's bound is the relaxed value of its fixed suffix plus the prefix table of the
free slots (core/lagrangian.py's, or core/count_tables.py's at several multiplier sets, the smallest of them
for each count of the free prefix); children are visited best bound first, and a child whose bound cannot
beat the incumbents' threshold, or whose FLOPs/params cannot fit even with the smallest prefix, is pruned.
Nodes at slot 1 are expanded into every stem at once and scored exactly in batches (core/slots.py), including
the official convention's prefix-wise rho and the exact Q.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .incumbents import Incumbents
from .plan import BATCHES, NUMERICS
from .program import Program
from .rules import expand_depths
from .slots import BatchScorer, totals as _totals


@dataclass
class _Frame:
    """The children of one node (slots j+1..N-1 fixed), best bound first; ``pos`` is the next to visit."""

    j: int
    bounds: np.ndarray
    idx: np.ndarray          # combo of slot j per child
    depth: np.ndarray
    pos: int
    suffix: tuple            # (combo, depth) per fixed slot, last slot first
    g_next: float            # G_{j+1}
    lags: np.ndarray         # (multiplier sets, children): relaxed value of each child's fixed suffix
    counts: np.ndarray       # per child: its fixed suffix's count (core/count_tables.py; 0 for core/lagrangian.py)
    flops: float
    params: float


@dataclass
class TreeOutcome:
    nodes: int
    closed: bool             # the search ran out of open nodes (nothing better than the incumbents exists)
    interrupted: bool        # Ctrl-C
    open_bound: float        # the best bound of an open node (-inf when closed)


def _tolerance(value: float) -> float:
    return NUMERICS.same * max(1.0, abs(value)) if math.isfinite(value) else 0.0


def search(program: Program, scorer: BatchScorer, best: Incumbents, relax, root_bound: float,
           fmin, pmin, *, deadline: float, node_limit: int | None) -> TreeOutcome:
    """Search until the tree closes, ``deadline`` passes or ``node_limit`` nodes are visited; every
    scored leaf is offered to ``best``.  ``relax`` gives the node bounds: core/lagrangian.py's PrefixTables or
    core/count_tables.py's CountNodeBounds (``child_values``, ``child_steps``, ``node_bounds``)."""
    slots, n = scorer.slots, len(scorer.slots)

    def expand(j, idx, suffix, g_next, lag, count, flops, params):
        sl = slots[j]
        cidx, depth = expand_depths(sl, idx)
        t, nl, f, p = _totals(sl, cidx, depth)
        g = g_next + sl.delta[sl.co[cidx]]
        lags = lag[:, None] + relax.child_values(j, cidx, depth, g)
        counts = count + relax.child_steps(j, cidx, depth)
        bound = relax.node_bounds(j, sl.ci[cidx], g, lags, counts)
        ok = bound > best.threshold()
        if program.flops is not None:
            ok &= flops + f + (fmin[j - 1][sl.ci[cidx]] if j else 0) <= program.flops
        if program.params is not None:
            ok &= params + p + (pmin[j - 1][sl.ci[cidx]] if j else 0) <= program.params
        keep = np.flatnonzero(ok)
        keep = keep[np.argsort(-bound[keep], kind="stable")]
        return _Frame(j, bound[keep], cidx[keep], depth[keep], 0, suffix, g_next, lags[:, keep], counts[keep],
                      flops, params)

    pending, pending_rows = [], [0]

    def score_leaves(fr: _Frame, upto: int):
        """Score, in one batch, every design below children pos..upto-1 of a frame at slot 0 or 1."""
        rows = np.arange(fr.pos, upto)
        c_own, d_own = fr.idx[rows], fr.depth[rows]
        if fr.j == 1:   # expand each slot-1 child into all its stems
            stems = [expand_depths(slots[0], slots[0].by_co[w]) for w in slots[1].ci[c_own]]
            counts = np.array([len(c) for c, _ in stems])
            stem_c = np.concatenate([c for c, _ in stems])
            stem_d = np.concatenate([d for _, d in stems])
            c_own, d_own = np.repeat(c_own, counts), np.repeat(d_own, counts)
        combos = np.zeros((len(c_own), n), np.int64)
        depths = np.zeros_like(combos)
        for (c, d), j in zip(fr.suffix, range(n - 1, 0, -1)):
            combos[:, j], depths[:, j] = c, d
        combos[:, fr.j], depths[:, fr.j] = c_own, d_own
        if fr.j == 1:
            combos[:, 0], depths[:, 0] = stem_c, stem_d
        pending.append((combos, depths))
        pending_rows[0] += len(combos)
        if pending_rows[0] >= BATCHES.leaves:
            flush()
        return len(combos)

    def flush():
        """Score the pending leaves in one batch (the threshold they were pruned with was at most the
        current one, so deferring them prunes less, never wrongly)."""
        if pending:
            combos, depths = np.concatenate([c for c, _ in pending]), np.concatenate([d for _, d in pending])
            out = scorer(combos, depths)
            best.offer(combos, depths, np.where(out["feasible"], out["objective"], -np.inf))
        pending.clear()
        pending_rows[0] = 0

    stack = [expand(n - 1, np.arange(len(slots[-1].ci)), (), 0.0, np.zeros(relax.multiplier_sets), 0, 0.0, 0.0)]
    if root_bound <= best.threshold() + _tolerance(best.threshold()):
        stack = []   # the incumbents already meet the bound: they are optimal
    nodes, limited, interrupted = 0, False, False
    try:
        while stack:
            fr = stack[-1]
            thr = best.threshold()
            tol = _tolerance(thr)
            if fr.pos >= len(fr.bounds) or fr.bounds[fr.pos] <= thr + tol:
                stack.pop()
                continue
            if time.perf_counter() > deadline or (node_limit is not None and nodes >= node_limit):
                limited = True
                break
            if fr.j <= 1:   # score every design below the children whose bound beats the threshold at once
                upto = fr.pos + int(np.sum(fr.bounds[fr.pos:] > thr + tol))
                nodes += score_leaves(fr, upto)
                fr.pos = upto
                continue
            i = fr.pos
            fr.pos += 1
            nodes += 1
            sl = slots[fr.j]
            c, d = int(fr.idx[i]), int(fr.depth[i])
            t, nl, f, p = _totals(sl, c, d)
            g = fr.g_next + sl.delta[sl.co[c]]
            stack.append(expand(fr.j - 1, slots[fr.j - 1].by_co[sl.ci[c]], fr.suffix + ((c, d),), g, fr.lags[:, i],
                                int(fr.counts[i]), fr.flops + float(f), fr.params + float(p)))
    except KeyboardInterrupt:   # Ctrl-C: keep the best design; the root bound stays valid
        limited = interrupted = True
    flush()
    open_bound = max((float(fr.bounds[fr.pos]) for fr in stack if fr.pos < len(fr.bounds)), default=-math.inf)
    return TreeOutcome(nodes, not limited, interrupted, open_bound if limited else -math.inf)
