"""The count bound: the count tables of core/count_tables.py at multipliers fitted part by part.

A part is one choice of the last slots (combo and depth of each; as many slots as keep the parts within
``max_parts``) together with one count of the free prefix before them (its layers or the sum of Q's depths).
The optimum is the largest of the parts' optima, and each part's optimum is at most its bound at *any*
multipliers; one table build bounds every part at once (:meth:`CountNodeBounds.values` at the first fixed
slot), so each part keeps the smallest of its bounds over every multiplier set tried, and Nelder-Mead aims in
turn at the part whose bound is the largest.  Parts that cannot fit the budgets even with the smallest prefix
drop out, and so do those whose bound falls to the incumbent.  A family whose last slot alone has more than
``max_parts`` choices is split by the whole network's count (:meth:`CountTables.bounds`).
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import minimize

from .count_tables import CountNodeBounds, CountTables
from .plan import NUMERICS, CountBound
from .program import Program
from .rules import expand_depths


class _Parts:
    """The choices of the last slots (as many as keep them within ``max_parts``; at least the last) that fit
    the budgets, as nodes of core/branch_and_bound.py's tree: per fixed slot its combos, depths and weights."""

    def __init__(self, tables: CountTables, program: Program, fmin, pmin, max_parts: int):
        slots = tables.slots
        j = len(slots) - 1
        sl = slots[j]
        c, d = expand_depths(sl, np.arange(len(sl.ci)))
        f, p = (sl.first[k][c] + (d - 1) * sl.rep[k][c] for k in (2, 3))
        g, ci = sl.delta[sl.co[c]], sl.ci[c]
        cols = [(c, d, g)]
        while True:
            ok = np.ones(len(ci), bool)   # within the budgets with the smallest free prefix
            if program.flops is not None:
                ok &= f + (fmin[j - 1][ci] if j else 0) <= program.flops
            if program.params is not None:
                ok &= p + (pmin[j - 1][ci] if j else 0) <= program.params
            cols, f, p, g, ci = [tuple(a[ok] for a in col) for col in cols], f[ok], p[ok], g[ok], ci[ok]
            if j == 0:
                break
            nxt = slots[j - 1]
            below = [expand_depths(nxt, nxt.by_co[w]) for w in range(len(nxt.widths))]
            sizes = np.array([len(b[0]) for b in below])[ci]
            if sizes.sum() > max_parts:
                break
            rows = np.repeat(np.arange(len(ci)), sizes)
            c = np.concatenate([below[w][0] for w in ci]) if len(ci) else np.zeros(0, np.int64)
            d = np.concatenate([below[w][1] for w in ci]) if len(ci) else np.zeros(0, np.int64)
            j -= 1
            g = g[rows] + nxt.delta[nxt.co[c]]
            f = f[rows] + nxt.first[2][c] + (d - 1) * nxt.rep[2][c]
            p = p[rows] + nxt.first[3][c] + (d - 1) * nxt.rep[3][c]
            cols = [tuple(a[rows] for a in col) for col in cols] + [(c, d, g)]
            ci = nxt.ci[c]
        self.j, self.cols, self.ci, self.g = j, cols, ci, g   # slot j is the first fixed one
        self.ids = np.arange(len(ci))

    def __len__(self):
        return len(self.ci)

    def values(self, tables: CountTables) -> np.ndarray:
        """(parts, free prefix counts): every part's bound at the tables' multipliers."""
        nb = CountNodeBounds(tables)
        last = len(tables.slots) - 1
        lags, steps = 0.0, 0
        for k, (c, d, g) in enumerate(self.cols):
            lags = lags + nb.child_values(last - k, c, d, g)
            steps = steps + nb.child_steps(last - k, c, d)
        return next(nb.values(self.j, self.ci, self.g, lags, steps))

    def keep(self, rows: np.ndarray):
        self.cols = [tuple(a[rows] for a in col) for col in self.cols]
        self.ci, self.g, self.ids = self.ci[rows], self.g[rows], self.ids[rows]


class _OutOfTime(Exception):
    pass


def count_bound(tables: CountTables, program: Program, settings: CountBound, fmin, pmin, *, start: tuple,
                floor: float, deadline: float, resume: tuple | None = None) -> tuple[float, list]:
    """(the bound of the parts (module docstring), at least ``floor``, the incumbent's objective or -inf; up to
    ``settings.tree_sets`` multiplier sets for the branch and bound, as arguments of :meth:`CountTables.set`: the
    one of the smallest bound of all parts at once, then those of the largest parts' bounds), from ``start`` =
    (lambda_F, lambda_P, mu, n0), the fitted root multipliers of core/lagrangian.py, or from ``resume``, a
    multiplier set an earlier call returned (its line under Q too; else the best of ``settings.tangents``).

    Nelder-Mead on log(lambda_F F / s), log(lambda_P P / s), log(mu_unit mu / s) (s the scale of the start's
    bound; a missing budget keeps lambda = 0), the std x0 of the line under Q (where it applies) and
    log(n0 / n_unit) (the ``"depths"`` count), first on the largest bound of all parts, then on the largest
    one's alone, in turn.  Stopping early (the deadline) leaves a valid, looser bound."""
    fb, pb = program.flops is not None, program.params is not None
    spread, depths = tables.depth_sum is not None, tables.count == "depths"
    clip, tiny = NUMERICS.clip_log, NUMERICS.log_floor
    prefix = [0.0] * (len(tables.rho_ends) - 1)
    lam_f, lam_p, mu, n0 = start
    line = None
    if resume is not None:
        lam_f, lam_p, mus, line, resumed_n0 = resume
        mu, n0 = mus[-1], n0 if resumed_n0 is None else resumed_n0
    start_theta = (lam_f, lam_p, prefix + [mu], None, n0 if depths else None)   # Q bounded by 1
    scale = max(abs(tables.set(*start_theta).root_bound()), 1.0)
    parts = _Parts(tables, program, fmin, pmin, settings.max_parts)
    if len(parts) > settings.max_parts:
        parts = None
    tried: list = []                       # the multiplier sets built, as Nelder-Mead points

    def unpack(x):
        x = np.clip(x, -clip, clip)
        return (math.exp(x[0]) * scale / program.flops if fb else 0.0,
                math.exp(x[1]) * scale / program.params if pb else 0.0,
                prefix + [math.exp(x[2]) * scale / NUMERICS.mu_unit], float(x[3]) if spread else None,
                math.exp(x[-1]) * NUMERICS.n_unit if depths else None)

    def bounds_now():
        return parts.values(tables) if parts is not None else tables.bounds()[None, :]

    # per part and count its smallest bound and where (an index of tried); the smallest largest bound, and where
    state = {"best": bounds_now(), "whole": (math.inf, None)}
    state["at"] = np.full(state["best"].shape, -1, np.int32)

    def value(x, target):
        if time.perf_counter() > deadline:
            raise _OutOfTime
        tables.set(*unpack(x))
        own = bounds_now()
        tried.append(np.array(x, float))
        better = own < state["best"]
        state["best"][better], state["at"][better] = own[better], len(tried) - 1
        if own.size and own.max() < state["whole"][0]:
            state["whole"] = (float(own.max()), len(tried) - 1)
        return float(own.max() if target is None else own[target])

    def descend(x0, target, evaluations):
        minimize(value, x0, args=(target,), method="Nelder-Mead",
                 options={"maxfev": evaluations, "xatol": settings.xatol, "fatol": NUMERICS.same * scale})

    def drop():   # the parts whose every bound is at most the incumbent's objective
        if parts is not None:
            rows = np.flatnonzero(state["best"].max(axis=1) > floor)
            parts.keep(rows)
            state["best"], state["at"] = state["best"][rows], state["at"][rows]

    head = [math.log(max(lam_f * (program.flops or 0.0) / scale, tiny)),
            math.log(max(lam_p * (program.params or 0.0) / scale, tiny)),
            math.log(max(mu * NUMERICS.mu_unit / scale, tiny))]
    tail = [math.log(n0 / NUMERICS.n_unit)] if depths else []
    x = head + ([settings.tangents[0]] if spread else []) + tail
    aimed = set()

    def closed():   # every part is bounded by the incumbent
        drop()
        return not state["best"].size or state["best"].max() <= floor

    try:
        if spread and not closed():   # the line's x0 that suits the start best
            x = head + [line if line is not None else
                        min(settings.tangents, key=lambda t: value(head + [t] + tail, None))] + tail
        if not closed():
            descend(np.array(x, float), None, settings.evaluations)
        for _ in range(settings.rounds):
            if closed():
                break
            best, at = state["best"], state["at"]
            worst = np.unravel_index(int(np.argmax(best)), best.shape)
            key = (int(parts.ids[worst[0]]), int(worst[1])) if parts is not None else worst
            if key in aimed:   # aimed at before and still the largest: its own fit is done
                break
            aimed.add(key)
            descend(tried[at[worst]] if at[worst] >= 0 else np.array(x, float), worst, settings.round_evaluations)
    except _OutOfTime:
        pass
    best, at = state["best"], state["at"]
    whole = state["whole"][1]
    thetas = [unpack(tried[whole]) if whole is not None else start_theta]
    for k in np.argsort(-best, axis=None, kind="stable"):
        if best.flat[k] <= floor or len(thetas) == settings.tree_sets:
            break
        theta = unpack(tried[at.flat[k]]) if at.flat[k] >= 0 else start_theta
        if theta not in thetas:
            thetas.append(theta)
    return max(float(best.max()) if best.size else -math.inf, floor), thetas
