"""The Lagrangian relaxation of the DeepMAD program and its prefix tables: the branch and bound's bound.

Write the objective as ``sum_j G_j T_j - beta Q`` over the slots j of the family: ``T_j`` is the sum of
log-widths of slot j's main-path convs, and ``G_j = s * sum_{stages i ending at or after j} alpha_i
log(r_i^2 c_i)`` is fixed once the widths of the slots after j are.

Relax FLOPs, params and rho with multipliers lambda_F, lambda_P, mu >= 0 (rho <= rho_0 is
``S >= phi(n) = n log(n / rho_0)``, S the total log-width sum and n the number of counted convs; phi is
convex, so it is replaced by its tangent at n0) and use ``Q >= 1``.  What remains is a sum over slots; the
free slots 0..j-1 are bounded by a table ``W_{j-1}(c; g)``, the best relaxed value of a prefix that ends in
width c when the fixed suffix weighs its log-widths by g.  ``W`` is convex in g (a maximum of lines), so
storing it on a grid and interpolating linearly over-estimates it: the bound stays valid.  Within a slot the
relaxed value is linear in the depth, so the table only needs its smallest and largest depth.  Any
multipliers give a valid bound; core/multipliers.py fits them, core/continuous.py reads them off SLSQP.
"""
from __future__ import annotations

import math

import numpy as np

from .plan import NUMERICS
from .program import Program
from .slots import SlotTable, totals as _totals

NEG = -1e200   # a table entry no prefix reaches


def _interp(table: np.ndarray, grid: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``table[rows, :]`` (on ``grid``) at ``x`` (same shape as rows, or broadcast)."""
    if len(grid) == 1:
        return table[rows, 0] if np.ndim(x) == np.ndim(rows) else table[rows, 0][..., None] + 0 * x
    step = grid[1] - grid[0]
    pos = np.clip((x - grid[0]) / step, 0, len(grid) - 1 - NUMERICS.log_floor)
    i0 = np.floor(pos).astype(np.int64)
    w = pos - i0
    v0, v1 = table[rows, i0], table[rows, i0 + 1]
    return v0 + w * (v1 - v0)


def weight_grids(slots: list[SlotTable], size: int) -> list[np.ndarray]:
    """Per slot j, ``size`` points over the range of G_{j+1} (the weight of the stages ending after j), the
    argument g of the prefix tables W_j (one point where the range is a point)."""
    n = len(slots)
    lo, hi = [0.0] * (n + 1), [0.0] * (n + 1)
    for j in range(n - 1, -1, -1):
        lo[j] = lo[j + 1] + slots[j].delta.min()
        hi[j] = hi[j + 1] + slots[j].delta.max()
    return [np.linspace(lo[j + 1], hi[j + 1], size if hi[j + 1] > lo[j + 1] else 1) for j in range(n)]


def layer_price(program: Program, mu: float, n0: float) -> float:
    """nu, the price of one layer: rho's multiplier ``mu`` times the slope of the tangent of
    n log(n / rho_0) at ``n0``."""
    return mu * (math.log(n0 / program.rho) + 1.0)


def relaxed_term(sl: SlotTable, idx, depth, weight, nu: float, lam_f: float, lam_p: float) -> np.ndarray:
    """Lagrangian value of slot blocks (combos ``idx`` at ``depth``): their log-widths weighted by
    ``weight`` (mu included), less the prices of their layers, FLOPs and params."""
    t, n, f, p = _totals(sl, idx, depth)
    return weight * t - nu * n - lam_f * f - lam_p * p


class PrefixTables:
    """Multipliers theta = (lambda_F, lambda_P, mu, n0) and the prefix tables W_j(c; g) they induce."""

    def __init__(self, program: Program, slots: list[SlotTable], grid: int):
        self.program, self.slots = program, slots
        self.groups = []     # per slot: combo order by output width, and where each width's run starts
        for sl in slots:
            order = np.argsort(sl.co, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(sl.co[order]) != 0])
            self.groups.append((order, starts, sl.co[order][starts]))
        self.resize(grid)

    def resize(self, size: int):
        """Grid points per table (more points: tighter bounds, slower tables)."""
        self.size = size
        self.grids = weight_grids(self.slots, size)
        return self

    def set(self, lam_f: float, lam_p: float, mu: float, n0: float, depth_penalty=None):
        """Tables for these multipliers.  ``depth_penalty`` = (m, c, counted) also subtracts
        ``c * |depth - m|`` in the slots flagged by ``counted`` (see core/spread_bound.py)."""
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

    # the node-bound interface of core/branch_and_bound.py (shared with core/count_tables.py's CountNodeBounds)
    multiplier_sets = 1

    def child_values(self, j: int, idx: np.ndarray, depth: np.ndarray, g: np.ndarray) -> np.ndarray:
        """(1, children): :meth:`term` of slot j's blocks."""
        return self.term(self.slots[j], idx, depth, g)[None, :]

    def child_steps(self, j: int, idx: np.ndarray, depth: np.ndarray) -> np.ndarray:
        return np.zeros(len(idx), np.int64)   # these tables keep no count

    def node_bounds(self, j: int, ci: np.ndarray, g: np.ndarray, lags: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Bounds of children with relaxed suffix values ``lags[0]`` (the prefix table added)."""
        return lags[0] + self.prefix(j, ci, g) + self.const
