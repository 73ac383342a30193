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
(Nelder-Mead on their logarithms).  Leaves are scored exactly (core.score), including the official
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
from .result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, Design, DesignResult
from .score import CONVENTIONS
from .terms import block_terms

NEG = -1e200
GRID = 48


@dataclass
class _Slot:
    """All candidate blocks of one slot: (c_in, c_out, op, mid) combos with first/repeated block terms."""

    widths: np.ndarray          # sorted output widths of the slot
    ci: np.ndarray              # index into the previous slot's widths (0 for the stem)
    co: np.ndarray              # index into ``widths``
    op: np.ndarray
    mid: np.ndarray
    first: tuple                # (t, n, macs, params) of the first block
    rep: tuple                  # (t, n, macs, params) of each repeated block
    lmin: np.ndarray
    lmax: np.ndarray
    depths: list                # per op, the allowed depths
    delta: np.ndarray           # per output width: s * alpha_i * log(r_i^2 c) when the slot ends stage i
    by_co: list                 # per output width index: the combo indices


def _build_slots(program: Program) -> list[_Slot]:
    fam = program.family
    s = CONVENTIONS[program.convention]
    n = len(fam.slots)
    ends = [j for j in range(n) if j == n - 1 or fam.slots[j + 1].stride == 2]
    stage_of_end = {e: i for i, e in enumerate(ends)}
    slots, r = [], fam.resolution
    prev_widths = np.array([fam.in_channels])
    for j, slot in enumerate(fam.slots):
        r_out = -(-r // slot.stride)
        cb = slot.combos(prev_widths, **fam.slot_rules(j))
        widths = np.array(sorted(set(slot.widths)))
        ci = np.searchsorted(prev_widths, cb["c_in"])
        co = np.searchsorted(widths, cb["c_out"])
        blocks = np.array([o.block for o in slot.ops])[cb["op"]]
        kernels = np.array([o.kernel for o in slot.ops])[cb["op"]]
        first = [np.zeros(len(ci)) for _ in range(4)]
        rep = [np.zeros(len(ci)) for _ in range(4)]
        for b in set(blocks.tolist()):
            sel = blocks == b
            mid = np.maximum(cb["mid"][sel], 1)
            for dst, args in ((first, (cb["c_in"][sel], r, slot.stride)), (rep, (cb["c_out"][sel], r_out, 1))):
                c_in, r_in, stride = args
                for arr, val in zip(dst, block_terms(b, c_in, cb["c_out"][sel], kernels[sel], mid, stride, r_in)):
                    arr[sel] = val
        depths = [np.array(slot.depths_of(o)) for o in slot.ops]
        lmin = np.array([d.min() for d in depths])[cb["op"]]
        lmax = np.array([d.max() for d in depths])[cb["op"]]
        if j in stage_of_end:
            delta = s * program.alpha[stage_of_end[j]] * np.log(r_out * r_out * widths.astype(float))
        else:
            delta = np.zeros(len(widths))
        by_co = [np.flatnonzero(co == k) for k in range(len(widths))]
        slots.append(_Slot(widths, ci, co, cb["op"], cb["mid"], tuple(first), tuple(rep), lmin, lmax, depths,
                           delta, by_co))
        prev_widths, r = widths, r_out
    return slots


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


class _Relaxation:
    """Multipliers theta = (lambda_F, lambda_P, mu, n0) and the prefix tables W_j(c; g) they induce."""

    def __init__(self, program: Program, slots: list[_Slot]):
        self.program, self.slots = program, slots
        n = len(slots)
        lo, hi = [0.0] * (n + 1), [0.0] * (n + 1)   # range of G_j (weight of the stages ending at or after j)
        for j in range(n - 1, -1, -1):
            lo[j] = lo[j + 1] + slots[j].delta.min()
            hi[j] = hi[j + 1] + slots[j].delta.max()
        # W_j takes g = G_{j+1}; its grid spans [lo[j+1], hi[j+1]].
        self.grids = [np.linspace(lo[j + 1], hi[j + 1], GRID if hi[j + 1] > lo[j + 1] else 1) for j in range(n)]

    def set(self, lam_f: float, lam_p: float, mu: float, n0: float):
        p = self.program
        self.lam_f, self.lam_p, self.mu, self.n0 = lam_f, lam_p, mu, n0
        self.nu = mu * (math.log(n0 / p.rho) + 1.0)
        self.const = (lam_f * (p.flops or 0.0) + lam_p * (p.params or 0.0) - mu * n0 * math.log(n0 / p.rho)
                      + self.nu * n0 - p.beta)
        self.tables = []
        prev = None
        for j, sl in enumerate(self.slots):
            g = self.grids[j]
            weight = g[None, :] + sl.delta[sl.co][:, None] + mu                       # (C, K)
            base = weight * sl.first[0][:, None] - self._cost(sl.first)[:, None]
            slope = weight * sl.rep[0][:, None] - self._cost(sl.rep)[:, None]
            val = base + np.maximum((sl.lmin - 1)[:, None] * slope, (sl.lmax - 1)[:, None] * slope)
            if prev is not None:
                x = g[None, :] + sl.delta[sl.co][:, None]
                val = val + _interp(prev, self.grids[j - 1], np.broadcast_to(sl.ci[:, None], x.shape), x)
            table = np.full((len(sl.widths), len(g)), NEG)
            np.maximum.at(table, sl.co, val)
            prev = np.maximum(table, NEG)
            self.tables.append(prev)
        return self

    def _cost(self, terms) -> np.ndarray:
        _, n, macs, params = terms
        return self.nu * n + self.lam_f * macs + self.lam_p * params

    def root_bound(self) -> float:
        return float(self.tables[-1][:, 0].max() + self.const)

    def term(self, sl: _Slot, idx: np.ndarray, depth: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Relaxed value of slot blocks (combos ``idx`` at ``depth``) whose log-widths weigh ``weight``."""
        t, n, f, p = _totals(sl, idx, depth)
        return (weight + self.mu) * t - self.nu * n - self.lam_f * f - self.lam_p * p

    def prefix(self, j: int, ci: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Upper bound of the free slots 0..j-1 given slot j's input width index ``ci`` and weight ``g``."""
        if j == 0:
            return np.zeros(np.shape(ci))
        return _interp(self.tables[j - 1], self.grids[j - 1], ci, g)


def _totals(sl: _Slot, idx, depth):
    extra = depth - 1
    return tuple(a[idx] + extra * b[idx] for a, b in zip(sl.first, sl.rep))


def _fit_multipliers(relax: _Relaxation, program: Program, max_evals: int = 120):
    """Multipliers minimising the root bound (Nelder-Mead on logs; missing budgets keep lambda = 0)."""
    fb, pb = program.flops is not None, program.params is not None
    scale = max(abs(relax.set(0, 0, 0, 1.0).root_bound()), 1.0)
    n_ref = 50.0

    def unpack(x):
        lam_f = math.exp(x[0]) * scale / program.flops if fb else 0.0
        lam_p = math.exp(x[1]) * scale / program.params if pb else 0.0
        return lam_f, lam_p, math.exp(x[2]) * scale / 1000.0, math.exp(x[3]) * n_ref

    def f(x):
        x = np.clip(x, -40, 40)
        return relax.set(*unpack(x)).root_bound()

    best = None
    for x0 in ([0.0, 0.0, 0.0, 0.0], [-2.0, -2.0, 2.0, 0.5]):
        res = minimize(f, np.array(x0), method="Nelder-Mead",
                       options={"maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-9 * scale})
        if best is None or res.fun < best.fun:
            best = res
    relax.set(*unpack(np.clip(best.x, -40, 40)))
    return relax


@dataclass
class _Frame:
    j: int
    bounds: np.ndarray       # children's bounds, best first
    idx: np.ndarray          # combo index per child
    depth: np.ndarray
    pos: int
    suffix: tuple            # ((combo, depth) per fixed slot j+1..N-1), last slot first
    g_next: float            # G_{j+1}
    lag: float               # relaxed value of the fixed suffix
    flops: float
    params: float


def solve_branch_and_bound(program: Program, *, top_k: int = 1, time_limit: float = 10.0,
                           node_limit: int | None = None) -> DesignResult:
    t0 = time.perf_counter()
    fam = program.family
    slots = _build_slots(program)
    relax = _fit_multipliers(_Relaxation(program, slots), program)
    root_bound = relax.root_bound()
    fmin, pmin = _min_prefix_costs(slots)
    best: list = []                       # min-heap of (objective, tiebreak, Design)
    seen: set = set()
    nodes = leaves = 0
    n = len(slots)

    def threshold():
        return best[0][0] if len(best) >= top_k else -math.inf

    def expand(j, idx, suffix, g_next, lag, flops, params):
        sl = slots[j]
        reps = np.array([len(sl.depths[o]) for o in sl.op[idx]])
        cidx = np.repeat(idx, reps)
        depth = np.concatenate([sl.depths[o] for o in sl.op[idx]]) if len(idx) else np.zeros(0, int)
        t, nl, f, p = _totals(sl, cidx, depth)
        g = g_next + sl.delta[sl.co[cidx]]
        child_lag = lag + relax.term(sl, cidx, depth, g)
        bound = child_lag + relax.prefix(j, sl.ci[cidx], g) + relax.const
        ok = np.ones(len(cidx), bool)
        if program.flops is not None:
            ok &= flops + f + (fmin[j - 1][sl.ci[cidx]] if j else 0) <= program.flops
        if program.params is not None:
            ok &= params + p + (pmin[j - 1][sl.ci[cidx]] if j else 0) <= program.params
        order = np.argsort(-bound[ok], kind="stable")
        keep = np.flatnonzero(ok)[order]
        return _Frame(j, bound[keep], cidx[keep], depth[keep], 0, suffix, g_next, lag, flops, params)

    all_last = np.arange(len(slots[-1].ci))
    stack = [expand(n - 1, all_last, (), 0.0, 0.0, 0.0, 0.0)]
    status = None
    while stack:
        fr = stack[-1]
        thr = threshold()
        if fr.pos >= len(fr.bounds) or fr.bounds[fr.pos] <= thr + 1e-9 * max(1.0, abs(thr)):
            stack.pop()
            continue
        if time.perf_counter() - t0 > time_limit or (node_limit is not None and nodes >= node_limit):
            status = "limit"
            break
        i = fr.pos
        fr.pos += 1
        nodes += 1
        sl = slots[fr.j]
        c, d = int(fr.idx[i]), int(fr.depth[i])
        t, nl, f, p = _totals(sl, c, d)
        g = fr.g_next + sl.delta[sl.co[c]]
        lag = fr.lag + float(relax.term(sl, np.array([c]), np.array([d]), np.array([g]))[0])
        suffix = fr.suffix + ((c, d),)
        if fr.j == 0:
            leaves += 1
            design = _design(fam, slots, suffix)
            s = program.score(design.architecture)
            key = design.architecture.canonical()
            if program.feasible(s) and key not in seen:
                if len(best) < top_k:
                    heapq.heappush(best, (s.objective, leaves, Design(design.architecture, s, design.choices)))
                    seen.add(key)
                elif s.objective > best[0][0]:
                    _, _, old = heapq.heapreplace(best, (s.objective, leaves,
                                                         Design(design.architecture, s, design.choices)))
                    seen.discard(old.architecture.canonical())
                    seen.add(key)
            continue
        idx = slots[fr.j - 1].by_co[sl.ci[c]]
        stack.append(expand(fr.j - 1, idx, suffix, g, lag, fr.flops + float(f), fr.params + float(p)))

    designs = [d for _, _, d in sorted(best, key=lambda x: (-x[0], x[1]))]
    elapsed = time.perf_counter() - t0
    info = program.as_dict()
    if status == "limit":
        open_bound = max((float(fr.bounds[fr.pos]) for fr in stack if fr.pos < len(fr.bounds)), default=-math.inf)
        bound = max(open_bound, designs[0].score.objective if designs else -math.inf)
        bound = min(bound, root_bound) if math.isfinite(bound) else root_bound
        if not designs:
            return DesignResult(LIMIT_REACHED, f"The limit stopped the search after {nodes} nodes before any "
                                f"feasible design; the optimum is at most {bound:.6g}.", [], bound, elapsed,
                                nodes, fam.name, info)
        gap = bound - designs[0].score.objective
        return DesignResult(FEASIBLE_WITH_GAP, f"The limit stopped the search after {nodes} nodes; the best "
                            f"design is within {gap:.4g} ({gap / max(abs(bound), 1e-12):.3%}) of the optimum.",
                            designs, bound, elapsed, nodes, fam.name, info)
    if not designs:
        return DesignResult(INFEASIBLE, _infeasible_message(program, fmin, pmin), [], -math.inf, elapsed, nodes,
                            fam.name, info)
    return DesignResult(OPTIMAL, f"Optimal: branch and bound closed after {nodes} nodes ({leaves} leaves "
                        f"scored); root bound {root_bound:.6g}.", designs, designs[0].score.objective, elapsed,
                        nodes, fam.name, info)


def _design(fam, slots, suffix) -> Design:
    choices = []
    for j, (c, d) in zip(range(len(slots) - 1, -1, -1), suffix):
        sl = slots[j]
        choices.append((int(sl.widths[sl.co[c]]), fam.slots[j].ops[int(sl.op[c])], int(d), int(sl.mid[c])))
    choices.reverse()
    return Design(fam.architecture(choices), None, tuple(choices))


def _min_prefix_costs(slots: list[_Slot]):
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
