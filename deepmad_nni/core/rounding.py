"""Rounding a point of the continuous relaxation (core/continuous.py) to designs of the family.

Per slot the candidates are the two grid widths nearest the point's width (in log), the ops of its kernel
with the two mids or expansions nearest its own, and the two depths around its depth; a value on the grid
(a held width, a depth at its bound) takes itself and both neighbours.  Every combination is scored exactly
(beyond the plan's ``combinations``, each slot keeps its best options by their Lagrangian value at the
relaxation's multipliers); the best feasible ones are returned, or, when none is feasible, the least
infeasible ones, which the local search then repairs.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .continuous import ContinuousPoint, ContinuousRelaxation
from .lagrangian import layer_price, relaxed_term
from .local_search import LocalSearch
from .plan import NUMERICS, QUICK_ROUNDING, Relaxation
from .score import CONVENTIONS

ON_GRID = NUMERICS.same  # a value within this (relative) of a grid value is on it


def _nearest(grid, x: float) -> list[int]:
    """Indices of the grid values just below and just above ``x`` (in log; one when x is beyond the grid).
    A value on the grid (:data:`ON_GRID`: a held width, a depth at its bound) takes its two neighbours
    too, so that float noise in it never changes the options."""
    logs = np.log(np.asarray(grid, float))
    lx = math.log(max(x, NUMERICS.log_floor))
    i = int(np.searchsorted(logs, lx))
    on = [k for k in (i - 1, i) if 0 <= k < len(logs) and abs(logs[k] - lx) <= ON_GRID]
    around = (on[0] - 1, on[0], on[0] + 1) if on else (i - 1, i)
    return sorted({min(max(k, 0), len(logs) - 1) for k in around})


def _closest(grid, x: float) -> int:
    """Index of the grid value closest to ``x`` in log."""
    return int(np.argmin(np.abs(np.log(np.asarray(grid, float)) - math.log(x))))


def _depths_around(depth: float) -> set[int]:
    """The integer depths just below and above ``depth``; an integer depth (up to :data:`ON_GRID`) and its
    two neighbours."""
    d = round(depth)
    if abs(depth - d) <= ON_GRID * max(1.0, depth):
        return {d - 1, d, d + 1}
    return {math.floor(depth), math.ceil(depth)}


def _slot_options(ls: LocalSearch, j: int, point: ContinuousPoint) -> np.ndarray:
    """Rows (output width index, op, mid index, depth) for slot ``j``."""
    s, slot = ls.slots[j], ls.scorer.program.family.slots[j]
    width, mid, depth, kernel = point.widths[j], point.mids[j], point.depths[j], point.kernels[j]
    ops = [o for o, op in enumerate(slot.ops) if op.kernel == kernel]
    around, depths_of = _depths_around(depth), {}   # per op: its allowed depths nearest those around
    for o in ops:
        allowed = np.asarray(s.sl.depths[o])
        depths_of[o] = sorted({int(allowed[np.argmin(np.abs(allowed - d))]) for d in around})
    rows = []
    for co in _nearest(s.sl.widths, width):
        if slot.ops[ops[0]].mid_from_grid:
            pairs = [(o, mi) for o in ops for mi in _nearest(s.mids, mid)]
        elif slot.ops[ops[0]].expansion:
            base = width if slot.ops[ops[0]].base == "out" else (point.widths[j - 1] if j else ls.family_in)
            es = np.array([slot.ops[o].expansion for o in ops])
            order = np.argsort(es)
            pairs = [(ops[order[i]], 0) for i in _nearest(es[order], mid / base)]
        else:
            pairs = [(o, 0) for o in ops]
        for o, mi in pairs:
            rows += [(co, o, mi, d) for d in depths_of[o]]
    return np.array(rows, np.int64)


def _lagrangian_order(ls: LocalSearch, point: ContinuousPoint, j: int, opts: np.ndarray) -> np.ndarray:
    """Slot ``j``'s options, best first by their Lagrangian value at the point's multipliers: the weighted
    log-widths less the multipliers' prices of FLOPs, params and layers (as in core/branch_and_bound.py),
    each option taken on the grid width nearest the point's input."""
    program, scorer = ls.scorer.program, ls.scorer
    lam_f, lam_p, mu, n0 = point.lagrange
    weight = sum(program.alpha[i] * math.log(scorer.area[i] * point.widths[e])
                 for i, e in enumerate(scorer.ends) if e >= j)
    weight = CONVENTIONS[program.convention] * weight + mu
    ci = _closest(ls.slots[j - 1].sl.widths, point.widths[j - 1]) if j else 0
    combos = np.maximum(ls.slots[j].resolve(ci, opts[:, 0], opts[:, 1], opts[:, 2]), 0)
    value = relaxed_term(ls.slots[j].sl, combos, opts[:, 3], weight, layer_price(program, mu, n0), lam_f, lam_p)
    return opts[np.argsort(-value, kind="stable")]


def round_point(ls: LocalSearch, point: ContinuousPoint, settings: Relaxation = QUICK_ROUNDING, *, count: int = 1):
    """Up to ``count`` best feasible roundings of ``point`` as (combos, depths, value), best first; when
    none is feasible, the ``count`` least infeasible ones (value -inf; of at most
    ``settings.nearest_over_budget`` over the budgets).  Beyond ``settings.combinations`` combinations,
    each slot keeps only its best options by :func:`_lagrangian_order` (the slot with the most options gives
    one up at a time)."""
    limit = settings.combinations
    options = [_slot_options(ls, j, point) for j in range(ls.n)]
    if math.prod(len(o) for o in options) > limit:
        options = [_lagrangian_order(ls, point, j, o) for j, o in enumerate(options)]
        keep = [len(o) for o in options]
        while math.prod(keep) > limit:
            keep[int(np.argmax(keep))] -= 1
        options = [o[:k] for o, k in zip(options, keep)]
    scorer, program, sizes = ls.scorer, ls.scorer.program, [len(o) for o in options]
    pick = np.stack([a.ravel() for a in np.meshgrid(*[np.arange(k) for k in sizes], indexing="ij")], axis=1)
    combos, depths, columns = [], [], []
    before = np.zeros(1, np.int64)   # the output width index of the slot before, per option
    for j, opts in enumerate(options):   # each slot's combos and features by (option before, own option)
        pair = ls.slots[j].resolve(before[:, None], opts[None, :, 0], opts[None, :, 1], opts[None, :, 2])
        flat = (pick[:, j - 1] * len(opts) if j else 0) + pick[:, j]
        combos.append(pair.ravel()[flat])
        depths.append(opts[pick[:, j], 3])
        column = scorer.column(j, np.maximum(pair, 0).ravel(), np.broadcast_to(opts[:, 3], pair.shape).ravel())
        columns.append((column, flat))   # features per option pair; ``flat`` picks each rounding's
        before = opts[:, 0]
    excess = np.where(np.all([c >= 0 for c in combos], axis=0), 0.0, np.inf)
    for f, budget in ((2, program.flops), (3, program.params)):   # FLOPs and params first: only the
        if budget is not None:                                    # roundings within both are scored
            excess += np.maximum(sum(col[f][flat] for col, flat in columns) / budget - 1.0, 0.0)
    if not np.isfinite(excess).any():
        return []
    # (when none is within, the ones that exceed them least)
    keep = np.flatnonzero(excess == 0) if (excess == 0).any() else np.argsort(excess, kind="stable")[:settings.nearest_over_budget]
    keep = keep[np.isfinite(excess[keep])]
    combos, depths = np.stack([c[keep] for c in combos], axis=1), np.stack([d[keep] for d in depths], axis=1)
    features = [np.stack([col[f][flat[keep]] for col, flat in columns], axis=1) for f in range(len(columns[0][0]))]
    out = scorer.evaluate(features)
    if not out["feasible"].any():   # the least infeasible ones, for the local search to repair
        order = np.lexsort((-out["objective"], _violation(program, out)))[:count]
        return [(combos[i], depths[i], -np.inf) for i in order]
    values = np.where(out["feasible"], out["objective"], -np.inf)
    order = np.argsort(-values, kind="stable")[:count]
    return [(combos[i], depths[i], float(values[i])) for i in order if np.isfinite(values[i])]


def _violation(program, out: dict) -> np.ndarray:
    """Relative excess of rho, FLOPs and params over their limits, summed (0 when feasible)."""
    excess = np.maximum(out["rho"] / program.rho - 1.0, 0.0)
    for total, budget in ((out["flops"], program.flops), (out["params"], program.params)):
        if budget is not None:
            excess = excess + np.maximum(total / budget - 1.0, 0.0)
    return excess


POINTS = ("optimum", "snapped", "last-stage", "spare", "small-kernels")


def relaxation_points(relaxation, settings: Relaxation):
    """The relaxation's points to round, those of ``settings.points`` in its order, each from the optimum:

    * ``optimum``: the relaxation's optimum (always first: its multipliers seed the bounds);
    * ``snapped``: the width of every stage but the stem held at its grid width nearest the optimum's (in log);
    * ``last-stage``: the last stage's width held at the grid width just below the optimum's (that width
      weighs alpha_M, the most, in the entropy), then just above;
    * ``spare``: room to spare in the budgets and rho (``settings.spare_margin``);
    * ``small-kernels``: every slot at its smallest kernel (the relaxation holds kernels fixed, at the
      largest by default; a small kernel leaves FLOPs and params for width and depth).

    When no climb from the optimum's roundings reaches a feasible design, the callers retry with
    ``settings.margins``."""
    unknown = set(settings.points) - set(POINTS)
    if unknown:
        raise ValueError(f"relaxation points must be among {list(POINTS)}, but got {sorted(unknown)}.")
    fam = relaxation.family
    base = relaxation.solve(relaxation.start(settings.start), max_iterations=settings.first_iterations)
    yield base
    more = settings.more_iterations
    for name in settings.points:
        if name == "snapped":
            snapped = {}
            for j in relaxation.ends[1:]:
                grid = sorted(set(fam.slots[j].widths))
                snapped[relaxation.c_var[j]] = math.log(grid[_closest(grid, base.widths[j])])
            yield relaxation.solve(base.x, fixed=snapped, max_iterations=more)
        elif name == "last-stage":
            last = relaxation.ends[-1]
            grid = sorted(set(fam.slots[last].widths))
            for k in _nearest(grid, base.widths[last]):
                yield relaxation.solve(base.x, fixed={relaxation.c_var[last]: math.log(grid[k])},
                                       max_iterations=more)
        elif name == "spare":
            yield relaxation.solve(base.x, margin=settings.spare_margin, max_iterations=more)
        elif name == "small-kernels":
            small = tuple(min(o.kernel for o in s.ops) for s in fam.slots)
            if small != relaxation.kernels:
                other = ContinuousRelaxation(relaxation.program, kernels=small)
                yield other.solve(np.clip(base.x, other.lo, other.hi), max_iterations=settings.first_iterations)


def relax_and_round(ls: LocalSearch, settings: Relaxation = QUICK_ROUNDING, *, deadline: float = math.inf):
    """Designs from the continuous relaxation (core/continuous.py): for each point of :func:`relaxation_points`
    (the optimum, then ``settings.points``), its ``settings.roundings`` best roundings (:func:`round_point`; the
    least infeasible ones when none is feasible), each climbed over the neighbourhoods ``settings.climb``
    (core/local_search.py); the best local optimum is then climbed over ``settings.polish``.  Returns
    (optima as (combos, depths, value), best first; the relaxation's optimum).  The list is empty when no
    climb reached a feasible design, even with the margins of ``settings.margins``."""
    relaxation = ContinuousRelaxation(ls.scorer.program)
    optima, first, seen = [], None, set()

    def climbed(point):   # its roundings, each climbed once (local optima that stay infeasible are dropped)
        found = []
        for c, d, _ in round_point(ls, point, settings, count=settings.roundings):
            if _key(c, d) not in seen:
                seen.add(_key(c, d))
                found.append(ls.climb(c, d, kinds=settings.climb, deadline=deadline))
        return [f for f in found if np.isfinite(f[2])]

    for k, point in enumerate(relaxation_points(relaxation, settings)):
        found = climbed(point)
        if first is None:
            first = point
            for margin in settings.margins if not found else ():
                found = climbed(relaxation.solve(point.x, margin=margin, max_iterations=settings.more_iterations))
                if found:
                    break
        optima += found
        if time.perf_counter() > deadline:
            break
    optima.sort(key=lambda o: -o[2])
    if settings.polish:
        optima, k = _distinct(optima), settings.polished
        optima = [ls.climb(c, d, kinds=settings.polish, deadline=deadline) for c, d, _ in optima[:k]] + optima[k:]
        optima.sort(key=lambda o: -o[2])
    return optima, first


def _key(combos, depths) -> tuple:
    """A design (combos, depths) as a set member."""
    return combos.tobytes(), depths.tobytes()


def _distinct(optima):
    """The optima with repeats of a design dropped, in their order."""
    seen, out = set(), []
    for o in optima:
        key = _key(o[0], o[1])
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out
