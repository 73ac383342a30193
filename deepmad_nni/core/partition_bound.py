"""A root bound from a partition: the family split by its last ``levels`` slots, one multiplier set per part.

The optimum is the largest of the parts' optima, and each part's optimum is at most its Lagrangian bound at
*any* multipliers (core/lagrangian.py).  So ``max over parts of min over multipliers`` is a valid bound, and
at most the root's ``min over multipliers of max over parts``: every part gets the multipliers that suit it.

One table build at multipliers theta bounds every part at once: a part fixes the last slots' combos and
depths, so its relaxed value is ``A + mu T - nu N - lambda_F F - lambda_P P`` (its fixed slots' weighted
log-widths, log-widths, layers, FLOPs and params, computed once) plus the prefix table at its input width.
Each part keeps the smallest bound of every theta tried; the search for theta (Nelder-Mead, core/
multipliers.py) then aims at the part whose bound is the largest, in turn.  Parts that cannot fit the
budgets even with the smallest prefix, or whose bound falls below the incumbent, drop out.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .lagrangian import PrefixTables
from .multipliers import fit_multipliers
from .plan import PartitionBound
from .program import Program
from .rules import expand_depths


class _Parts:
    """Every part (the last ``levels`` slots fixed) with its fixed-suffix sums."""

    def __init__(self, relax: PrefixTables, program: Program, levels: int, fmin, pmin, max_parts: int):
        slots, n = relax.slots, len(relax.slots)
        self.j = n - levels          # the first free slot is j - 1; the prefix table is tables[j - 1]
        c, d = expand_depths(slots[-1], np.arange(len(slots[-1].ci)))
        t, nl, f, p = (a[c] + (d - 1) * b[c] for a, b in zip(slots[-1].first, slots[-1].rep))
        g = slots[-1].delta[slots[-1].co[c]]
        A, T, N, F, P, ci = g * t, t, nl, f, p, slots[-1].ci[c]
        for k in range(n - 2, self.j - 1, -1):
            sl = slots[k]
            parts = [expand_depths(sl, sl.by_co[w]) for w in range(len(sl.widths))]
            counts = np.array([len(parts[w][0]) for w in ci])
            if counts.sum() > max_parts:
                raise _TooMany
            rows = np.repeat(np.arange(len(ci)), counts)
            c = np.concatenate([parts[w][0] for w in ci]) if len(ci) else np.zeros(0, np.int64)
            d = np.concatenate([parts[w][1] for w in ci]) if len(ci) else np.zeros(0, np.int64)
            t, nl, f, p = (a[c] + (d - 1) * b[c] for a, b in zip(sl.first, sl.rep))
            g = g[rows] + sl.delta[sl.co[c]]
            A, T, N, F, P = A[rows] + g * t, T[rows] + t, N[rows] + nl, F[rows] + f, P[rows] + p
            ci = sl.ci[c]
            ok = self._fits(program, F, P, ci, fmin, pmin)
            A, T, N, F, P, ci, g = A[ok], T[ok], N[ok], F[ok], P[ok], ci[ok], g[ok]
        ok = self._fits(program, F, P, ci, fmin, pmin)
        self.A, self.T, self.N, self.F, self.P, self.ci, self.g = A[ok], T[ok], N[ok], F[ok], P[ok], ci[ok], g[ok]
        self.best = np.full(len(self.A), np.inf)

    def _fits(self, program, F, P, ci, fmin, pmin):
        ok = np.ones(len(F), bool)
        j = self.j
        if program.flops is not None:
            ok &= F + (fmin[j - 1][ci] if j else 0) <= program.flops
        if program.params is not None:
            ok &= P + (pmin[j - 1][ci] if j else 0) <= program.params
        return ok

    def bounds(self, relax: PrefixTables) -> np.ndarray:
        """Every part's bound at the tables' multipliers (and each part's smallest so far, updated)."""
        own = (self.A + relax.mu * self.T - relax.nu * self.N - relax.lam_f * self.F - relax.lam_p * self.P
               + relax.prefix(self.j, self.ci, self.g) + relax.const)
        np.minimum(self.best, own, out=self.best)
        return own

    def keep(self, floor: float):
        """Drop the parts whose bound cannot beat ``floor``."""
        ok = self.best > floor
        for name in ("A", "T", "N", "F", "P", "ci", "g", "best"):
            setattr(self, name, getattr(self, name)[ok])


class _TooMany(Exception):
    pass


def partition_bound(relax: PrefixTables, program: Program, settings: PartitionBound, fmin, pmin, *,
                    floor: float, deadline: float) -> float:
    """The partition's bound (module docstring), at least ``floor`` (the incumbent's objective, or -inf);
    ``relax`` keeps the multipliers it had.  ``inf`` when the parts are too many to list."""
    theta = (relax.lam_f, relax.lam_p, relax.mu, relax.n0)
    try:
        parts = _Parts(relax, program, min(settings.levels, len(relax.slots)), fmin, pmin, settings.max_parts)
    except _TooMany:
        return math.inf
    tried = {}   # part -> multipliers it was aimed at already

    try:
        parts.bounds(relax)
        parts.keep(floor)
        for _ in range(settings.rounds):
            if not len(parts.best) or time.perf_counter() > deadline:
                break
            worst = int(np.argmax(parts.best))
            key = (float(parts.A[worst]), float(parts.F[worst]), float(parts.P[worst]), int(parts.ci[worst]))
            if key in tried:   # aimed at before and still the worst: its own fit is done
                break
            tried[key] = True

            def value(tables, w=worst):
                return float(parts.bounds(tables)[w])
            fit_multipliers(relax, program, settings.fit, deadline=deadline, value=value, starts=[theta],
                            start=(relax.lam_f, relax.lam_p, relax.mu, relax.n0))
            parts.keep(floor)
    finally:
        relax.set(*theta)
    return max(float(parts.best.max()) if len(parts.best) else -math.inf, floor)
