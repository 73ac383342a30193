"""Exact branch and bound for the DeepMAD program, with Lagrangian bounds from a dynamic program.

Write the objective as ``sum_j G_j T_j - beta Q`` over the slots j of the family: ``T_j`` is the sum of
log-widths of slot j's main-path convs, and ``G_j = s * sum_{stages i ending at or after j} alpha_i
log(r_i^2 c_i)`` is fixed once the widths of the slots after j are.  The search fixes slots from the last
to the first, so every fixed slot's contribution is exact.

Bound of a node (slots j..N-1 fixed, input width c of slot j): relax FLOPs, params and rho with
multipliers lambda_F, lambda_P, mu >= 0 (rho <= rho_0 is ``S >= phi(n) = n log(n / rho_0)``, S the total
log-width sum and n the number of counted convs; phi is convex, so it is replaced by its tangent at n0)
and use ``Q >= 1``.  What remains is a sum over slots; the free slots 0..j-1 are bounded by a table
``W_{j-1}(c; g)``, the best relaxed value of a prefix that ends in width c when the fixed suffix weighs its
log-widths by g.  ``W`` is convex in g (a maximum of lines), so storing it on a grid and interpolating
linearly over-estimates it: the bound stays valid.  Within a slot the relaxed value is linear in the
depth, so the table only needs its smallest and largest depth.  The multipliers minimise the root bound
(Nelder-Mead on their logarithms).  At the root, a second bound keeps part of Q
(:func:`_depth_spread_bound`).  Leaves are scored exactly (core.score), including the official
convention's prefix-wise rho and the exact Q.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .program import Program
from .score import convention_rules
from .result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, Design, DesignResult
from .evolution import evolve
from .continuous import relaxable
from .slots import BatchScorer, SlotTable, build_slot_tables, totals as _totals

NEG = -1e200
GRID = 48
LEAF_BATCH = 4096   # leaves scored per batch
POLISH_NODES = 2000  # nodes per box when the box search polishes a local optimum
QUICK_FALLBACK = 10.0  # seconds a quick solve (no time limit) searches on when the rounding found nothing
QUICK_PLAN = {"points": 2, "roundings": 1, "kinds": ("global",), "polish": ("global", "shift")}   # quick solve
TIMED_PLAN = {"points": 5, "roundings": 3, "polish": ("global", "shift", "trade", "pair")}   # with a limit


def _interp(table: np.ndarray, grid: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``table[rows, :]`` (on ``grid``) at ``x`` (same shape as rows, or broadcast)."""
    if len(grid) == 1:
        return table[rows, 0] if np.ndim(x) == np.ndim(rows) else table[rows, 0][..., None] + 0 * x
    step = grid[1] - grid[0]
    pos = np.clip((x - grid[0]) / step, 0, len(grid) - 1 - 1e-12)
    i0 = np.floor(pos).astype(np.int64)
    w = pos - i0
    v0, v1 = table[rows, i0], table[rows, i0 + 1]
    return v0 + w * (v1 - v0)


def layer_price(program: Program, mu: float, n0: float) -> float:
    """nu, the price of one layer: rho's multiplier ``mu`` times the slope of the tangent of
    n log(n / rho_0) at ``n0``."""
    return mu * (math.log(n0 / program.rho) + 1.0)


def relaxed_term(sl: SlotTable, idx, depth, weight, nu: float, lam_f: float, lam_p: float) -> np.ndarray:
    """Lagrangian value of slot blocks (combos ``idx`` at ``depth``): their log-widths weighted by
    ``weight`` (mu included), less the prices of their layers, FLOPs and params."""
    t, n, f, p = _totals(sl, idx, depth)
    return weight * t - nu * n - lam_f * f - lam_p * p


class _Relaxation:
    """Multipliers theta = (lambda_F, lambda_P, mu, n0) and the prefix tables W_j(c; g) they induce."""

    def __init__(self, program: Program, slots: list[SlotTable]):
        self.program, self.slots = program, slots
        n = len(slots)
        lo, hi = [0.0] * (n + 1), [0.0] * (n + 1)   # range of G_j (weight of the stages ending at or after j)
        for j in range(n - 1, -1, -1):
            lo[j] = lo[j + 1] + slots[j].delta.min()
            hi[j] = hi[j + 1] + slots[j].delta.max()
        # W_j takes g = G_{j+1}; its grid spans [lo[j+1], hi[j+1]].
        self.grid_size = GRID
        self.lo, self.hi = lo, hi
        self.groups = []     # per slot: combo order by output width, and where each width's run starts
        for sl in slots:
            order = np.argsort(sl.co, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(sl.co[order]) != 0])
            self.groups.append((order, starts, sl.co[order][starts]))
        self.resize(GRID)

    def resize(self, size: int):
        """Grid points per table (more points: tighter bounds, slower tables)."""
        lo, hi = self.lo, self.hi
        self.grids = [np.linspace(lo[j + 1], hi[j + 1], size if hi[j + 1] > lo[j + 1] else 1)
                      for j in range(len(self.slots))]
        return self

    def set(self, lam_f: float, lam_p: float, mu: float, n0: float, depth_penalty=None):
        """Tables for these multipliers.  ``depth_penalty`` = (m, c, counted) also subtracts
        ``c * |depth - m|`` in the slots flagged by ``counted`` (see :func:`_depth_spread_bound`)."""
        p = self.program
        self.lam_f, self.lam_p, self.mu, self.n0 = lam_f, lam_p, mu, n0
        self.nu = layer_price(p, mu, n0)
        self.const = (lam_f * (p.flops or 0.0) + lam_p * (p.params or 0.0) - mu * n0 * math.log(n0 / p.rho)
                      + self.nu * n0 - p.beta)
        self.tables = []
        prev = None
        for j, sl in enumerate(self.slots):
            g = self.grids[j]
            weight = g[None, :] + sl.delta[sl.co][:, None] + mu                       # (C, K)
            base = weight * sl.first[0][:, None] - self._cost(sl.first)[:, None]
            slope = weight * sl.rep[0][:, None] - self._cost(sl.rep)[:, None]
            depths = [sl.lmin, sl.lmax]
            if depth_penalty is not None and depth_penalty[2][j]:
                m, c, _ = depth_penalty
                depths.append(np.clip(m, sl.lmin, sl.lmax))   # linear minus |d - m|: best at an end or at m
                val = base + np.max([(d - 1)[:, None] * slope - c * np.abs(d - m)[:, None] for d in depths], axis=0)
            else:   # linear in the depth: best at an end
                val = base + np.maximum((sl.lmin - 1)[:, None] * slope, (sl.lmax - 1)[:, None] * slope)
            if prev is not None:
                x = g[None, :] + sl.delta[sl.co][:, None]
                val = val + _interp(prev, self.grids[j - 1], np.broadcast_to(sl.ci[:, None], x.shape), x)
            order, starts, widths = self.groups[j]
            table = np.full((len(sl.widths), len(g)), NEG)
            table[widths] = np.maximum.reduceat(val[order], starts, axis=0)
            prev = np.maximum(table, NEG)
            self.tables.append(prev)
        return self

    def _cost(self, terms) -> np.ndarray:
        _, n, macs, params = terms
        return self.nu * n + self.lam_f * macs + self.lam_p * params

    def root_bound(self) -> float:
        return float(self.tables[-1][:, 0].max() + self.const)

    def term(self, sl: SlotTable, idx: np.ndarray, depth: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Relaxed value of slot blocks (combos ``idx`` at ``depth``) whose log-widths weigh ``weight``."""
        return relaxed_term(sl, idx, depth, weight + self.mu, self.nu, self.lam_f, self.lam_p)

    def prefix(self, j: int, ci: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Upper bound of the free slots 0..j-1 given slot j's input width index ``ci`` and weight ``g``."""
        if j == 0:
            return np.zeros(np.shape(ci))
        return _interp(self.tables[j - 1], self.grids[j - 1], ci, g)


def _counted_slots(program: Program):
    """Which slots' depths enter Q, when that does not depend on the design (else None)."""
    from .arch import REPEATABLE
    fam = program.family
    rep = []
    for slot in fam.slots:
        flags = {op.block in REPEATABLE for op in slot.ops}
        if len(flags) > 1:
            return None
        rep.append(flags.pop())
    if convention_rules(program.convention).entry_depths:
        first = next((j for j, r in enumerate(rep) if r), None)
        if first is None:
            return None
        btn = {op.block == "bottleneck" for op in fam.slots[first].ops}
        if len(btn) > 1:
            return None
        btn_first = btn.pop()   # the TinyNAS code then drops the first two repeated entries
        return [r and not (btn_first and k <= 2) for r, k in zip(rep, np.cumsum(rep))]
    stage = np.searchsorted([j for j in range(len(fam.slots)) if j == len(fam.slots) - 1
                             or fam.slots[j + 1].stride == 2], np.arange(len(fam.slots)))
    per_stage = np.bincount(stage, weights=np.array(rep, float))
    return rep if per_stage.max() <= 1 else None


def _depth_spread_bound(relax: _Relaxation, program: Program, deadline: float) -> float:
    """A bound that keeps part of Q = exp(std of the counted depths), which the tables bound by 1.

    For any x0 and any depths, exp(std) >= e^x0 (1 + std - x0) (tangent of exp) and std >= the mean
    absolute deviation about the median m, itself the smallest mean |d - m| over m.  So for each x0 the
    program's optimum is at most the largest, over integer m, of the tables' bound with
    ``beta e^x0 |d_j - m| / M`` subtracted per counted slot j (M of them) and ``beta`` (Q >= 1)
    replaced by ``beta e^x0 (1 - x0)``; the smallest of these over a few x0 is returned (``inf`` when Q's
    counted slots depend on the design or a limit cuts the search short)."""
    counted = _counted_slots(program)
    if counted is None or sum(counted) < 2 or program.beta == 0:
        return math.inf
    theta = (relax.lam_f, relax.lam_p, relax.mu, relax.n0)
    top = max(int(np.max(sl.lmax)) for sl, c in zip(relax.slots, counted) if c)
    beta, size = program.beta, sum(counted)
    best = math.inf
    try:
        for x0 in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0):
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


def _fit_multipliers(relax: _Relaxation, program: Program, max_evals: int = 120, deadline: float = math.inf,
                     start: tuple | None = None):
    """Multipliers minimising the root bound (Nelder-Mead on logs; missing budgets keep lambda = 0), from
    ``start`` (lambda_F, lambda_P, mu, n0; e.g. the continuous relaxation's) and two typical optima."""
    fb, pb = program.flops is not None, program.params is not None
    scale = max(abs(relax.set(0, 0, 0, 1.0).root_bound()), 1.0)
    n_ref = 50.0

    def unpack(x):
        lam_f = math.exp(x[0]) * scale / program.flops if fb else 0.0
        lam_p = math.exp(x[1]) * scale / program.params if pb else 0.0
        return lam_f, lam_p, math.exp(x[2]) * scale / 1000.0, math.exp(x[3]) * n_ref

    def f(x):
        if time.perf_counter() > deadline:
            raise _OutOfTime
        x = np.clip(x, -40, 40)
        value = relax.set(*unpack(x)).root_bound()
        if value < best_seen[0]:
            best_seen[:] = [value, x.copy()]
        return value

    best_seen = [math.inf, np.zeros(4)]
    starts = [[-2.8, -2.5, 0.9, 0.7], [-2.0, -3.0, 1.0, 0.3]]   # typical optima over the presets
    if start is not None:
        lam_f, lam_p, mu, n0 = start
        starts.insert(0, [math.log(max(lam_f * (program.flops or 0.0) / scale, 1e-12)),
                          math.log(max(lam_p * (program.params or 0.0) / scale, 1e-12)),
                          math.log(max(mu * 1000.0 / scale, 1e-12)), math.log(n0 / n_ref)])
    for x0 in starts:
        try:
            minimize(f, np.array(x0), method="Nelder-Mead",
                     options={"maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-9 * scale})
        except _OutOfTime:
            break
    relax.set(*unpack(np.clip(best_seen[1], -40, 40)))
    return relax


class _OutOfTime(Exception):
    pass




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
    lag: float               # relaxed value of the fixed suffix
    flops: float
    params: float


class _Incumbents:
    """The ``top_k`` best distinct feasible designs seen (a min-heap on the objective)."""

    def __init__(self, program: Program, slots, top_k: int, floor: float = -math.inf):
        self.program, self.slots, self.top_k, self.floor = program, slots, top_k, floor
        self.heap: list = []
        self.keys: set = set()
        self.count = 0

    def threshold(self) -> float:
        return self.heap[0][0] if len(self.heap) >= self.top_k else self.floor

    def offer_design(self, design: Design):
        key = design.architecture.canonical()
        s = design.score
        if key in self.keys or not self.program.feasible(s) or not s.objective > self.threshold():
            return
        self.count += 1
        item = (s.objective, -self.count, design)
        if len(self.heap) < self.top_k:
            heapq.heappush(self.heap, item)
        else:
            old = heapq.heapreplace(self.heap, item)
            self.keys.discard(old[2].architecture.canonical())
        self.keys.add(key)

    def offer(self, combos: np.ndarray, depths: np.ndarray, values: np.ndarray):
        """Designs (rows) with their exact objectives (-inf when infeasible)."""
        for r in np.argsort(-values, kind="stable"):
            if not values[r] > self.threshold():
                break
            design = _design(self.program.family, self.slots,
                             tuple((int(combos[r, j]), int(depths[r, j])) for j in range(len(self.slots) - 1, -1, -1)))
            if design.architecture.canonical() in self.keys:
                continue
            self.offer_design(_scored(self.program, design))

    def designs(self) -> list[Design]:
        return [d for _, _, d in sorted(self.heap, key=lambda x: (-x[0], -x[1]))]


def solve_branch_and_bound(program: Program, *, top_k: int = 1, time_limit: float | None = 10.0,
                           node_limit: int | None = None, seed: int = 0, heuristic_share: float = 0.85,
                           evaluations: int = 500_000, starts: int = 24, progress=None,
                           multipliers: tuple | None = None, floor: float = -math.inf,
                           fallback: bool = True) -> DesignResult:
    """Branch and bound (module docstring).

    With ``heuristic_share`` > 0, the relaxation and rounding (core/rounding.py) first gives incumbents and
    the relaxation's multipliers.  ``time_limit=None`` (quick) stops there: the result is the rounded
    design with the bound those multipliers prove (when nothing feasible came out, the search goes on as
    with a limit of :data:`QUICK_FALLBACK` seconds).  Otherwise the primal heuristics
    (:func:`_primal_heuristics`: at most ``starts`` evolutions, the first of up to ``evaluations``
    candidates, local search, box search) spend at most that share of ``time_limit`` on incumbents before
    the exact search of the whole family; the multiplier fit takes up to 0.1 of ``time_limit`` after them.
    ``multipliers`` (lambda_F, lambda_P, mu, n0) skip the fit; ``floor`` prunes every design whose objective
    cannot exceed it (the result is then "infeasible" when nothing beats it).  ``progress``, if given, is
    called with a line of text at each phase.  Ctrl-C ends the search early like a time limit: the best
    design so far comes back with a valid bound.  ``fallback=False`` makes a quick solve that rounded nothing
    feasible return ``"limit-reached"`` at once instead of searching on.
    """
    say = progress or (lambda line: None)
    t0 = time.perf_counter()
    fam = program.family
    slots = build_slot_tables(program)
    scorer = BatchScorer(program, slots)
    n = len(slots)
    best = _Incumbents(program, slots, top_k, floor)

    fmin, pmin = _min_prefix_costs(slots)
    if ((program.flops is not None and float(np.min(fmin[-1])) > program.flops)
            or (program.params is not None and float(np.min(pmin[-1])) > program.params)):
        return DesignResult(INFEASIBLE, _infeasible_message(program, fmin, pmin), [], -math.inf,
                            time.perf_counter() - t0, 0, fam.name, program.as_dict())   # no design is that small
    relax = _Relaxation(program, slots).resize(12)
    evaluated, box_note, rounded = 0, "", None
    if heuristic_share > 0 and fam.size() > 10**6 and relaxable(program):
        rounded = _relaxation_and_rounding(program, scorer, best, t0, time_limit, say)
    quick = time_limit is None
    if quick and best.heap:
        return _quick_result(program, relax, best, rounded, t0)
    if quick and not fallback:
        return DesignResult(LIMIT_REACHED, "The quick solve rounded no feasible design (no fallback search).", [],
                            math.nan, time.perf_counter() - t0, 0, fam.name, program.as_dict())
    time_limit = QUICK_FALLBACK if quick else time_limit
    if heuristic_share > 0:
        evaluated, box_note = _primal_heuristics(program, scorer, best, t0, heuristic_share * time_limit, seed,
                                                 evaluations, starts, say)
    if multipliers is None:
        _fit_multipliers(relax, program, max_evals=60, deadline=time.perf_counter() + 0.1 * time_limit,
                         start=rounded.lagrange if rounded is not None else None)
    else:
        relax.set(*multipliers)
    spread_bound = _depth_spread_bound(relax, program, deadline=time.perf_counter() + 0.05 * time_limit)
    relax.resize(GRID).set(relax.lam_f, relax.lam_p, relax.mu, relax.n0)
    root_bound = min(relax.root_bound(), spread_bound)
    say(f"branch and bound: root bound {root_bound:.6g}")

    def expand(j, idx, suffix, g_next, lag, flops, params):
        sl = slots[j]
        reps = np.array([len(sl.depths[o]) for o in sl.op[idx]], dtype=np.int64)
        cidx = np.repeat(idx, reps)
        depth = np.concatenate([sl.depths[o] for o in sl.op[idx]]) if len(idx) else np.zeros(0, np.int64)
        t, nl, f, p = _totals(sl, cidx, depth)
        g = g_next + sl.delta[sl.co[cidx]]
        child_lag = lag + relax.term(sl, cidx, depth, g)
        bound = child_lag + relax.prefix(j, sl.ci[cidx], g) + relax.const
        ok = bound > best.threshold()
        if program.flops is not None:
            ok &= flops + f + (fmin[j - 1][sl.ci[cidx]] if j else 0) <= program.flops
        if program.params is not None:
            ok &= params + p + (pmin[j - 1][sl.ci[cidx]] if j else 0) <= program.params
        keep = np.flatnonzero(ok)
        keep = keep[np.argsort(-bound[keep], kind="stable")]
        return _Frame(j, bound[keep], cidx[keep], depth[keep], 0, suffix, g_next, lag, flops, params)

    def score_leaves(fr: _Frame, upto: int):
        """Score, in one batch, every design below children pos..upto-1 of a frame at slot 0 or 1."""
        rows = np.arange(fr.pos, upto)
        c_own, d_own = fr.idx[rows], fr.depth[rows]
        if fr.j == 1:   # expand each slot-1 child into all its stems
            s0 = slots[0]
            stems = [s0.by_co[w] for w in slots[1].ci[c_own]]
            reps = [np.array([len(s0.depths[o]) for o in s0.op[st]], dtype=np.int64) for st in stems]
            counts = np.array([r.sum() for r in reps])
            stem_c = np.concatenate([np.repeat(st, r) for st, r in zip(stems, reps)])
            stem_d = np.concatenate([np.concatenate([s0.depths[o] for o in s0.op[st]]) for st in stems])
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
        if pending_rows[0] >= LEAF_BATCH:
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

    pending, pending_rows = [], [0]

    stack = [expand(n - 1, np.arange(len(slots[-1].ci)), (), 0.0, 0.0, 0.0, 0.0)]
    if root_bound <= best.threshold() + 1e-9 * max(1.0, abs(best.threshold())):
        stack = []   # the incumbents already meet the bound: they are optimal
    nodes, limited, interrupted = 0, False, False
    try:
        while stack:
            fr = stack[-1]
            thr = best.threshold()
            tol = 1e-9 * max(1.0, abs(thr)) if math.isfinite(thr) else 0.0
            if fr.pos >= len(fr.bounds) or fr.bounds[fr.pos] <= thr + tol:
                stack.pop()
                continue
            if time.perf_counter() - t0 > time_limit or (node_limit is not None and nodes >= node_limit):
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
            lag = fr.lag + float(relax.term(sl, np.array([c]), np.array([d]), np.array([g]))[0])
            stack.append(expand(fr.j - 1, slots[fr.j - 1].by_co[sl.ci[c]], fr.suffix + ((c, d),), g, lag,
                                fr.flops + float(f), fr.params + float(p)))
    except KeyboardInterrupt:   # Ctrl-C: keep the best design; the root bound stays valid
        limited = interrupted = True
    flush()

    designs = best.designs()
    elapsed = time.perf_counter() - t0
    info = program.as_dict()
    heuristics = f"{box_note + ': ' if box_note else ''}{evaluated} designs scored; " if evaluated else ""
    searched = (f"{heuristics}{nodes} branch-and-bound nodes, "
                f"root bound {root_bound:.6g}")
    if limited:
        open_bound = max((float(fr.bounds[fr.pos]) for fr in stack if fr.pos < len(fr.bounds)), default=-math.inf)
        k_th = designs[-1].score.objective if len(designs) >= top_k else -math.inf
        bound = min(max(open_bound, designs[0].score.objective if designs else -math.inf), root_bound)
        if interrupted:
            bound = root_bound
        if not designs:
            return DesignResult(LIMIT_REACHED, f"The time/node limit stopped the search before any feasible design "
                                f"({searched}); the optimum is at most {bound:.6g}.", [], bound, elapsed,
                                nodes, fam.name, info)
        if open_bound <= k_th:   # the open nodes could not have improved the top_k
            return DesignResult(OPTIMAL, f"Optimal ({searched}).", designs, designs[0].score.objective, elapsed,
                                nodes, fam.name, info)
        return _gap_result(program, designs, bound, elapsed, nodes,
                           f"The time limit stopped the search ({searched})")
    if not designs:
        return DesignResult(INFEASIBLE, _infeasible_message(program, fmin, pmin), [], -math.inf, elapsed, nodes,
                            fam.name, info)
    return DesignResult(OPTIMAL, f"Optimal: the branch and bound closed ({searched}).", designs,
                        designs[0].score.objective, elapsed, nodes, fam.name, info)


def _primal_heuristics(program, scorer, best: _Incumbents, t0: float, budget: float, seed: int, evaluations: int,
                       starts: int, say):
    """Incumbents before the exact search, within ``budget`` seconds from ``t0``.  Families of more than
    10^6 designs: local search (core/local_search.py) from the best design of the official evolution (up
    to ``evaluations`` candidates and 0.3 of the budget), then from those of shorter evolutions (at most
    ``starts`` in all), each local optimum polished by the box search (core/neighbourhood.py, small boxes)
    until 0.8 of the budget; then the box search with larger boxes around the best.  Smaller ones: the
    evolution until 200 generations pass without progress, then the box search."""
    from .local_search import climb_with_restarts
    from .neighbourhood import improve
    evaluated, note = 0, ""
    if program.family.size() <= 10**6:
        evo = evolve(program, evaluations=evaluations, time_limit=0.7 * budget, slots=scorer.slots, seed=seed,
                     patience=200)
        best.offer(*evo.population)
        evaluated = evo.evaluations
        say(f"evolution: {evaluated} candidates in {evo.time_s:.1f} s, best objective {evo.objective:.6g}")
    else:
        def polish(ls, combos, depths, value):   # the box search around each local optimum
            start = _scored(program, _design(program.family, scorer.slots, tuple(zip(combos[::-1], depths[::-1]))))
            box = improve(program, start, deadline=min(t0 + 0.8 * budget, time.perf_counter() + 0.1 * budget),
                          box_time=0.05 * budget, box_nodes=POLISH_NODES)
            if not box.designs:
                return combos, depths, value
            return (*ls.encode(box.designs[-1].choices), box.designs[-1].score.objective)

        optima, evaluated = climb_with_restarts(scorer, deadline=t0 + 0.8 * budget, seed=seed,
                                                first_evaluations=evaluations, first_time=0.3 * budget,
                                                restart_evaluations=min(evaluations, 60_000), starts=starts,
                                                polish=polish, progress=say)
        for c, d, v in optima:
            best.offer(c[None, :], d[None, :], np.array([v]))
        note = f"local search and box search from {len(optima)} evolved starts, then "
    if not best.heap:
        return evaluated, note
    box = improve(program, best.designs()[0], deadline=t0 + budget, box_time=0.1 * budget)
    for design in box.designs:
        best.offer_design(design)
    say(f"box search: {box.boxes} boxes, best objective {best.designs()[0].score.objective:.6g}")
    return evaluated, note + f"{box.boxes} boxes around the incumbent, {box.improvements} improving it"


def _relaxation_and_rounding(program, scorer, best: _Incumbents, t0: float, time_limit, say):
    """Incumbents from the continuous relaxation, rounded and climbed (core/rounding.py); returns the
    relaxation's optimum (its multipliers seed the bound)."""
    from .local_search import LocalSearch
    from .rounding import relax_and_round
    deadline = math.inf if time_limit is None else t0 + 0.5 * time_limit
    plan = QUICK_PLAN if time_limit is None else TIMED_PLAN
    optima, point = relax_and_round(LocalSearch(scorer), deadline=deadline, **plan)
    for c, d, v in optima:
        best.offer(c[None, :], d[None, :], np.array([v]))
    say(f"relaxation and rounding: relaxed optimum {point.objective:.6g}, best rounded design "
        f"{optima[0][2] if optima else -math.inf:.6g} ({len(optima)} roundings climbed)")
    return point


def _quick_result(program: Program, relax: _Relaxation, best: _Incumbents, point, t0: float) -> DesignResult:
    """The quick solve's result: the rounded designs and the bound of the relaxation's multipliers."""
    bound = relax.set(*point.lagrange).root_bound()   # on the coarse tables: as tight here, and faster
    designs = best.designs()
    value = designs[0].score.objective
    elapsed = time.perf_counter() - t0
    searched = (f"relaxation and rounding: relaxed optimum {point.objective:.6g}, bound {bound:.6g} from its "
                f"multipliers")
    if bound <= value + 1e-9 * max(1.0, abs(value)):
        return DesignResult(OPTIMAL, f"Optimal ({searched}).", designs, value, elapsed, 0,
                            program.family.name, program.as_dict())
    return _gap_result(program, designs, bound, elapsed, 0, f"Quick solve ({searched})",
                       "; a time limit searches further")


def _gap_result(program: Program, designs, bound: float, elapsed: float, nodes: int, head: str,
                tail: str = "") -> DesignResult:
    """A feasible-with-gap result: ``head``, then how far the best design may be from ``bound``."""
    gap = bound - designs[0].score.objective
    return DesignResult(FEASIBLE_WITH_GAP, f"{head}; the best design is within {gap:.4g} "
                        f"({gap / max(abs(bound), 1e-12):.2%}) of the optimum{tail}.", designs, bound, elapsed,
                        nodes, program.family.name, program.as_dict())


def _scored(program: Program, design: Design) -> Design:
    """``design`` with its exact figures under ``program``."""
    return Design(design.architecture, program.score(design.architecture), design.choices)


def _design(fam, slots, suffix) -> Design:
    choices = []
    for j, (c, d) in zip(range(len(slots) - 1, -1, -1), suffix):
        sl = slots[j]
        choices.append((int(sl.widths[sl.co[c]]), fam.slots[j].ops[int(sl.op[c])], int(d), int(sl.mid[c])))
    choices.reverse()
    return Design(fam.architecture(choices), None, tuple(choices))


def _min_prefix_costs(slots: list[SlotTable]):
    """Per slot j and output width: the fewest FLOPs / params of slots 0..j ending in that width."""
    fmin, pmin = [], []
    pf = pp = None
    for sl in slots:
        f = sl.first[2] + (sl.lmin - 1) * sl.rep[2]
        p = sl.first[3] + (sl.lmin - 1) * sl.rep[3]
        if pf is not None:
            f, p = f + pf[sl.ci], p + pp[sl.ci]
        tf, tp = np.full(len(sl.widths), np.inf), np.full(len(sl.widths), np.inf)
        np.minimum.at(tf, sl.co, f)
        np.minimum.at(tp, sl.co, p)
        fmin.append(tf)
        pmin.append(tp)
        pf, pp = tf, tp
    return fmin, pmin


def _infeasible_message(program: Program, fmin, pmin) -> str:
    lo_f, lo_p = float(np.min(fmin[-1])), float(np.min(pmin[-1]))
    msg = (f"No design of {program.family.name} meets the constraints. The family needs at least {lo_f:.4g} "
           f"FLOPs and {lo_p:.4g} params")
    over = []
    if program.flops is not None and lo_f > program.flops:
        over.append(f"flops budget {program.flops:.4g} is below that")
    if program.params is not None and lo_p > program.params:
        over.append(f"params budget {program.params:.4g} is below that")
    if over:
        return msg + "; the " + " and the ".join(over) + "."
    return msg + f"; within the budgets no design reaches rho <= {program.rho:.4g} (raise rho or the budgets)."
