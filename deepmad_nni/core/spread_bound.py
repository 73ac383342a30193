"""A root bound that keeps part of the depth penalty Q, which the Lagrangian tables bound by 1."""
from __future__ import annotations

import math
import time

import numpy as np

from .lagrangian import PrefixTables
from .plan import SpreadBound
from .program import Program
from .rules import counted_slots


def depth_spread_bound(relax: PrefixTables, program: Program, settings: SpreadBound, *, deadline: float) -> float:
    """A bound that keeps part of Q = exp(std of the counted depths), which the tables bound by 1.

    For any x0 and any depths, exp(std) >= e^x0 (1 + std - x0) (tangent of exp) and std >= the mean
    absolute deviation about the median m, itself the smallest mean |d - m| over m.  So for each x0 the
    program's optimum is at most the largest, over integer m, of the tables' bound with
    ``beta e^x0 |d_j - m| / M`` subtracted per counted slot j (M of them) and ``beta`` (Q >= 1)
    replaced by ``beta e^x0 (1 - x0)``; the smallest of these over the plan's x0 is returned (``inf`` when Q's
    counted slots depend on the design or a limit cuts the search short)."""
    counted = counted_slots(program.family, program.convention)
    if counted is None or sum(counted) < 2 or program.beta == 0:
        return math.inf
    theta = (relax.lam_f, relax.lam_p, relax.mu, relax.n0)
    top = max(int(np.max(sl.lmax)) for sl, c in zip(relax.slots, counted) if c)
    beta, size = program.beta, sum(counted)
    best = math.inf
    try:
        for x0 in settings.tangents:
            worst = -math.inf
            for m in range(1, top + 1):
                if time.perf_counter() > deadline:
                    return best
                relax.set(*theta, depth_penalty=(m, beta * math.exp(x0) / size, counted))
                worst = max(worst, relax.root_bound() + beta - beta * math.exp(x0) * (1 - x0))
            best = min(best, worst)
    finally:   # the tables of the multipliers alone again
        relax.set(*theta)
    return best
