"""Lagrange multipliers that minimise the Lagrangian root bound (core/lagrangian.py).

Nelder-Mead on the logarithms of (lambda_F, lambda_P, mu, n0), missing budgets keeping lambda = 0, from the
relaxation's KKT multipliers (when given) and from the plan's further starts.  Any multipliers give a valid
bound, so stopping early (at the deadline) leaves a valid, looser one.
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import minimize

from .lagrangian import PrefixTables
from .plan import NUMERICS, FitMultipliers
from .program import Program

N_REF, MU_UNIT = NUMERICS.n_unit, NUMERICS.mu_unit   # units of the search, so that the starts read O(1)


class _OutOfTime(Exception):
    pass


def fit_multipliers(relax: PrefixTables, program: Program, settings: FitMultipliers, *, deadline: float = math.inf,
                    start: tuple | None = None, value=None, starts=None) -> PrefixTables:
    """``relax`` set to the multipliers of the smallest root bound found (``settings``: the plan's).

    ``value(relax)``, if given, is minimised instead of the root bound (core/partition_bound.py minimises
    one node's bound); ``starts`` replaces the plan's further starts (as multipliers)."""
    fb, pb = program.flops is not None, program.params is not None
    scale = max(abs(relax.set(0, 0, 0, 1.0).root_bound()), 1.0)
    clip = NUMERICS.clip_log
    value = value or (lambda tables: tables.root_bound())

    def unpack(x):
        lam_f = math.exp(x[0]) * scale / program.flops if fb else 0.0
        lam_p = math.exp(x[1]) * scale / program.params if pb else 0.0
        return lam_f, lam_p, math.exp(x[2]) * scale / MU_UNIT, math.exp(x[3]) * N_REF

    def f(x):
        if time.perf_counter() > deadline:
            raise _OutOfTime
        x = np.clip(x, -clip, clip)
        v = value(relax.set(*unpack(x)))
        if v < best_seen[0]:
            best_seen[:] = [v, x.copy()]
        return v

    def pack(theta):
        lam_f, lam_p, mu, n0 = theta
        tiny = NUMERICS.log_floor
        return [math.log(max(lam_f * (program.flops or 0.0) / scale, tiny)),
                math.log(max(lam_p * (program.params or 0.0) / scale, tiny)),
                math.log(max(mu * MU_UNIT / scale, tiny)), math.log(n0 / N_REF)]

    best_seen = [math.inf, np.zeros(4)]
    starts = [list(s) for s in settings.starts] if starts is None else [pack(t) for t in starts]
    if start is not None:
        starts.insert(0, pack(start))
    for x0 in starts:
        try:
            minimize(f, np.array(x0), method="Nelder-Mead",
                     options={"maxfev": settings.evaluations, "xatol": settings.xatol,
                              "fatol": NUMERICS.same * scale})
        except _OutOfTime:
            break
    relax.set(*unpack(np.clip(best_seen[1], -clip, clip)))
    return relax
