"""Lagrangian tables that keep a count exact, over (width, count, weight), and the node bounds they give.

The tables of core/lagrangian.py relax rho <= rho_0 by a multiplier and the tangent of the convex
``phi(n) = n log(n / rho_0)`` at one n0, and bound the depth penalty Q by 1.  Here a prefix's count ``k`` is
part of the table's index:

* ``"layers"``: k is the number of counted convs n, so every stage's rho constraint ``S_i >= phi(n_i)``
  (S_i, n_i the log-width sum and the layers up to the end of stage i) is priced at its own multiplier mu_i
  with phi exact;
* ``"depths"``: k is the sum D of Q's depths, rho priced as in core/lagrangian.py (a layer price at n0).

For Q = exp(std of Q's K depths), exp(sqrt(v)) >= a + b v on v >= 0 (:func:`spread_line`) and
``v = sum d_j^2 / K - (D / K)^2``: a price ``beta b d_j^2 / K`` on each of Q's depths and ``beta b (D / K)^2``
at the end, where D is known (the ``"depths"`` count, or a ``"layers"`` count of a family where every slot of
Q adds the same number of layers per block and the other slots a fixed number).  So

    W_j(c, k; g) = max over prefixes 0..j ending in width c with count k of
                   sum_{l <= j} (g + D_l + mu_l) T_l - (prices of F_l, P_l, layers, d_l^2)
                   - sum_{i: e_i <= j} mu_i phi(n_{e_i})

(``D_l`` the prefix's own stage-end weights, ``mu_l`` the multipliers of the stages that end at or after l),
and the bound of the designs of count k is ``max_c W_{N-1}(c, k; 0)`` plus the constants, valid at any
multipliers (core/count_bound.py fits them part by part; :class:`CountNodeBounds` gives the branch and bound's
node bounds from the same tables).  W is convex in g, so linear interpolation between grid points
over-estimates it and the bound stays valid.  Within one (c_in, c_out, count step) triple a slot's candidates
share the next index, so only the best at each g is kept.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.optimize import brentq

from .lagrangian import NEG, layer_price, weight_grids
from .plan import BATCHES, NUMERICS
from .program import Program
from .rules import convention_rules, counted_slots, expand_depths, stage_ends
from .slots import SlotTable, totals

COUNTS = ("layers", "depths")

#: exp(sqrt(v)) is concave below v = 1 and convex above; its convex envelope on v >= 0 is the line from
#: (0, 1) to the tangent point v = X_ENVELOPE^2, where e^x (1 - x / 2) = 1, then the function itself.
X_ENVELOPE = float(brentq(lambda x: math.exp(x) * (1 - x / 2) - 1, 1.0, 2.0))


def spread_line(x0: float) -> tuple[float, float]:
    """(a, b) with exp(sqrt(v)) >= a + b v for every v >= 0: the tangent at v = x0^2 of the convex envelope
    of exp(sqrt(v)) (for x0 below :data:`X_ENVELOPE`, the envelope's chord from v = 0)."""
    x0 = max(x0, X_ENVELOPE)
    return math.exp(x0) * (1 - x0 / 2), math.exp(x0) / (2 * x0)


def _interp_rows(table: np.ndarray, grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``table`` (C, K, len(grid)) interpolated linearly at each row of ``x`` (R, G): shape (R, C, K, G)."""
    if len(grid) == 1:
        return np.broadcast_to(table[None, :, :, :1], (len(x),) + table.shape[:2] + (x.shape[1],))
    pos = np.clip((x - grid[0]) / (grid[1] - grid[0]), 0, len(grid) - 1 - NUMERICS.log_floor)
    i0 = np.floor(pos).astype(np.int64)
    w = (pos - i0)[:, None, None, :]
    v0, v1 = np.moveaxis(table[:, :, i0], 2, 0), np.moveaxis(table[:, :, i0 + 1], 2, 0)
    return v0 + w * (v1 - v0)


@functools.lru_cache(maxsize=BATCHES.slot_lookups)
def _slot_moves(sl: SlotTable, step: str) -> "_SlotMoves":
    """A slot table's :class:`_SlotMoves`, built once per table and step (they do not depend on the budgets)."""
    return _SlotMoves(sl, step)


class _SlotMoves:
    """One slot's (combo, depth) candidates grouped by (count step, c_out, c_in), with their terms; the step is
    the layers they add (``"layers"``), their depth (``"depth"``: a slot of Q under the depth count) or 0.
    Shared by every table of the slot (:func:`_slot_moves`), so its arrays are read-only."""

    def __init__(self, sl: SlotTable, step: str):
        c, d = expand_depths(sl, np.arange(len(sl.ci)))
        t, nl, f, p = totals(sl, c, d)
        dn = np.rint(nl).astype(np.int64)
        step = {"layers": dn, "depth": d, "none": np.zeros_like(d)}[step]
        co, ci = sl.co[c], sl.ci[c]
        order = np.lexsort((ci, co, step))
        self.t, self.n, self.f, self.p, self.d = t[order], nl[order], f[order], p[order], d[order]
        self.co = co[order]
        self.t_delta = self.t * sl.delta[self.co]   # log-widths weighted by the slot's own stage-end term
        step, co, ci = step[order], co[order], ci[order]
        self.pairs = np.unique(np.stack([dn, d], axis=1), axis=0)   # the (layers, depth) pairs it adds
        new = np.r_[True, (np.diff(step) != 0) | (np.diff(co) != 0) | (np.diff(ci) != 0)]
        self.starts = np.flatnonzero(new)                      # one group per (step, co, ci)
        self.step, self.kco, self.kci = step[self.starts], co[self.starts], ci[self.starts]
        self.by_step = []                                      # per count step: its groups, runs of equal c_out
        for value in np.unique(self.step):
            keys = np.flatnonzero(self.step == value)
            runs = np.flatnonzero(np.r_[True, np.diff(self.kco[keys]) != 0])
            self.by_step.append((int(value), keys, runs, self.kco[keys][runs]))
        for array in (self.t, self.t_delta, self.n, self.f, self.p, self.d, self.co, self.pairs, self.starts,
                      self.step, self.kco, self.kci, *(a for _, *arrays in self.by_step for a in arrays)):
            array.setflags(write=False)


class CountTables:
    """The tables ``W_j(c, k; g)`` (module docstring) of one count, at multipliers (lambda_F, lambda_P, a mu
    per constrained prefix, n0 under ``"depths"``) and, optionally, a line under Q."""

    def __init__(self, program: Program, slots: list[SlotTable], grid: int, count: str = "layers"):
        if count not in COUNTS:
            raise ValueError(f"count must be one of {list(COUNTS)}, but got {count!r}.")
        self.program, self.slots, self.count = program, slots, count
        counted = counted_slots(program.family, program.convention)
        if count == "depths" and counted is None:
            raise ValueError(f"count 'depths' needs each of Q's depths to be one slot's, but {program.family.name} "
                             f"under the {program.convention!r} convention has no such slots.")
        ends = stage_ends(program.family.slots)
        # the stage ends whose rho is priced: every stage's (exact phi) or the whole network's (tangent)
        exact = count == "layers" and convention_rules(program.convention).prefix_rho
        self.rho_ends = ends if exact else ends[-1:]
        self.grids = weight_grids(slots, grid)
        self.moves = [_slot_moves(sl, "layers" if count == "layers" else "depth" if counted[j] else "none")
                      for j, sl in enumerate(slots)]
        self.counts = []                                        # per slot: the counts its prefixes reach
        reach = np.zeros(1, np.int64)
        for mv in self.moves:
            reach = np.unique(reach[:, None] + np.unique(mv.step)[None, :])
            self.counts.append(reach)
        self.counted = counted                                  # per slot, whether its depth is one of Q's (or None)
        self.depth_sum = self._depth_sum()

    def _depth_sum(self):
        """The sum D of Q's depths at each final count when D follows from the count, else None (Q is then
        only bounded by 1)."""
        counted = self.counted
        if not depth_count_applies(self.program):
            return None
        if self.count == "depths":
            return self.counts[-1].astype(float)
        fixed, slopes, own = 0, set(), []   # layers = fixed + a D: a layers per block of Q's slots
        for mv, c in zip(self.moves, counted):
            dn, d = mv.pairs[:, 0], mv.pairs[:, 1]
            if not c:
                if len(np.unique(dn)) > 1:
                    return None
                fixed += int(dn[0])
            else:
                if d.max() > d.min():
                    slopes.add(float((dn[-1] - dn[0]) / (d[-1] - d[0])))
                own.append((dn, d))
        a = slopes.pop() if len(slopes) == 1 else 0.0
        if a <= 0 or a != int(a):
            return None
        for dn, d in own:
            offset = np.unique(dn - int(a) * d)
            if len(offset) > 1:
                return None
            fixed += int(offset[0])
        return (self.counts[-1] - fixed) / a

    def set(self, lam_f: float, lam_p: float, mus, spread: float | None = None, n0: float | None = None):
        """Tables at these multipliers: ``mus`` has one per priced prefix (:attr:`rho_ends`), the whole
        network's last; ``n0`` is the tangent point of the ``"depths"`` count's layer price; ``spread`` (a std
        x0) bounds Q by the line of :func:`spread_line` instead of 1 (where :attr:`depth_sum` is known)."""
        p = self.program
        mus = np.asarray(mus, float)
        if mus.shape != (len(self.rho_ends),):
            raise ValueError(f"mus must hold {len(self.rho_ends)} multipliers, but got {mus.tolist()!r}.")
        if (self.count == "depths") != (n0 is not None):
            raise ValueError(f"n0 must be given for the 'depths' count only, but got n0={n0!r} for {self.count!r}.")
        self.lam_f, self.lam_p, self.mus = lam_f, lam_p, mus
        self.spread = spread if self.depth_sum is not None else None
        mu_of = np.zeros(len(self.slots))                      # per slot: the mus of the prefixes holding it
        for e, mu in zip(self.rho_ends, mus):
            mu_of[:e + 1] += mu
        nu, self.const = 0.0, lam_f * (p.flops or 0.0) + lam_p * (p.params or 0.0)
        exact_phi = dict(zip(self.rho_ends, mus))
        if self.count == "depths":   # mu (S - phi(n)) <= mu S - nu n + nu n0 - mu phi(n0)
            nu, exact_phi = layer_price(p, mus[-1], n0), {}
            self.const += nu * n0 - mus[-1] * n0 * math.log(n0 / p.rho)
        if self.spread is None:
            self.const, square, self.final = self.const - p.beta, 0.0, 0.0
        else:   # -beta Q <= -beta (a + b v), v = sum d^2 / K - (D / K)^2
            a, b = spread_line(self.spread)
            k = sum(self.counted)
            self.const, square = self.const - p.beta * a, p.beta * b / k
            self.final = p.beta * b * (self.depth_sum / k) ** 2
        self.mu_of, self.nu, self.square = mu_of, nu, square
        prev, prev_counts, self.per_slot = None, np.zeros(1, np.int64), []
        for j, (sl, mv) in enumerate(zip(self.slots, self.moves)):
            g = self.grids[j]
            cost = lam_f * mv.f + lam_p * mv.p + nu * mv.n
            if square and self.counted[j]:
                cost = cost + square * mv.d ** 2
            # (g + delta(c_out) + mu_j) t - cost: a line in g per candidate, its best per group at each g
            lines = np.multiply.outer(mv.t, g + mu_of[j]) + (mv.t_delta - cost)[:, None]
            best = np.maximum.reduceat(lines, mv.starts, axis=0)   # (groups, G)
            counts = self.counts[j]
            table = np.full((len(sl.widths), len(counts), len(g)), NEG)
            shared = prev is None or not np.any(sl.delta)
            if prev is None:
                ahead = np.zeros((1, 1, 1, len(g)))                         # (co, ci, k, G): the empty prefix
            else:
                x = g[None, :] + sl.delta[:, None]                          # (co, G): G_j for each c_out
                ahead = _interp_rows(prev, self.grids[j - 1], x[:1] if shared else x)
            for step, keys, runs, cos in mv.by_step:
                src = ahead[0 if shared else mv.kco[keys], mv.kci[keys]]   # (keys, k_prev, G)
                cand = np.maximum.reduceat(src + best[keys][:, None, :], runs, axis=0)
                at = np.searchsorted(counts, prev_counts + step)
                table[cos[:, None], at[None, :]] = np.maximum(table[cos[:, None], at[None, :]], cand)
            if exact_phi.get(j):
                table -= exact_phi[j] * (counts * np.log(np.maximum(counts, 1) / p.rho))[None, :, None]
            prev, prev_counts = np.maximum(table, NEG), counts
            self.per_slot.append(prev)
        self.tables = prev
        return self

    def bounds(self) -> np.ndarray:
        """The bound of each count of :attr:`counts`[-1] at these multipliers."""
        return self.tables[:, :, 0].max(axis=0) + self.const + self.final

    def root_bound(self) -> float:
        return float(self.bounds().max())


def depth_count_applies(program: Program) -> bool:
    """Whether the ``"depths"`` count exists: each of Q's depths (at least two) is one slot's, and beta > 0."""
    counted = counted_slots(program.family, program.convention)
    return counted is not None and sum(counted) >= 2 and program.beta > 0


class CountNodeBounds:
    """The branch and bound's node bounds (core/branch_and_bound.py) from count tables at several multiplier
    sets: a node whose fixed suffix (slots j.. N-1) has count k_s and relaxed value L_theta is bounded by

        max over the free prefix's counts k of  min over theta of  W_theta,j-1(c_in, k; g) + close_theta(k + k_s) + L_theta

    (``close`` the end's terms of a total count: the line under Q's ``(D / K)^2`` and, for the layer count,
    the whole network's exact rho price).  Each set bounds every design below the node with prefix count k,
    so the smallest of them does too.  The multiplier sets must price only the whole network's rho."""

    def __init__(self, tables: CountTables, thetas=None):
        """Node bounds at each multiplier set of ``thetas`` (arguments of :meth:`CountTables.set`), or at the
        tables' own when None."""
        self.slots, self.grids, self.count = tables.slots, tables.grids, tables.count
        self.counts, self.total = tables.counts, tables.counts[-1]
        self.counted = tables.counted
        self.sets = []
        for theta in thetas if thetas is not None else [None]:
            if theta is not None:
                tables.set(*theta)
            if np.any(tables.mus[:-1]):
                raise ValueError(f"The node bounds price the whole network's rho only, but got mus "
                                 f"{tables.mus.tolist()!r}.")
            close = np.zeros(len(self.total)) + tables.final
            if self.count == "layers":
                close = close - tables.mus[-1] * self.total * np.log(np.maximum(self.total, 1) / tables.program.rho)
            self.sets.append((tables.per_slot, close, tables.const, tables.mu_of, tables.nu, tables.square,
                              tables.lam_f, tables.lam_p))
        self.multiplier_sets = len(self.sets)

    def child_values(self, j: int, idx: np.ndarray, depth: np.ndarray, g: np.ndarray) -> np.ndarray:
        """(sets, children): the relaxed value of slot j's blocks (combos ``idx`` at ``depth``, weight ``g``)."""
        t, n, f, p = totals(self.slots[j], idx, depth)
        rows = []
        for _, _, _, mu_of, nu, square, lam_f, lam_p in self.sets:
            value = (g + mu_of[j]) * t - lam_f * f - lam_p * p - nu * n
            if square and self.counted[j]:
                value = value - square * depth ** 2
            rows.append(value)
        return np.array(rows)

    def child_steps(self, j: int, idx: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """The count each child adds."""
        if self.count == "layers":
            return np.rint(totals(self.slots[j], idx, depth)[1]).astype(np.int64)
        return np.asarray(depth, np.int64) if self.counted[j] else np.zeros(len(idx), np.int64)

    def values(self, j: int, ci: np.ndarray, g: np.ndarray, lags: np.ndarray, counts: np.ndarray):
        """Per multiplier set, (children, free prefix counts :attr:`counts`[j - 1]): the bounds of the children
        whose suffix (slots j.. N-1) has input width ``ci``, weight ``g`` (of slot j - 1's log-widths), relaxed
        values ``lags`` (sets, children) and counts ``counts``, for each count of the free prefix."""
        prev = self.counts[j - 1] if j else np.zeros(1, np.int64)
        at = np.searchsorted(self.total, prev[None, :] + counts[:, None])
        for (tables, close, const, *_), lag in zip(self.sets, lags):
            own = close[at] + (lag + const)[:, None]
            yield own + _interp_at(tables[j - 1], self.grids[j - 1], ci, g) if j else own

    def node_bounds(self, j: int, ci: np.ndarray, g: np.ndarray, lags: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The children's bounds (:meth:`values`: the smallest over the sets, the largest over the counts)."""
        out = None
        for own in self.values(j, ci, g, lags, counts):
            out = own if out is None else np.minimum(out, own)
        return out.max(axis=1)


def _interp_at(table: np.ndarray, grid: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``table[rows[i], :, ·]`` (C, K, len(grid)) interpolated linearly at ``x[i]``: shape (len(rows), K)."""
    if len(grid) == 1:
        return table[rows, :, 0]
    pos = np.clip((x - grid[0]) / (grid[1] - grid[0]), 0, len(grid) - 1 - NUMERICS.log_floor)
    i0 = np.floor(pos).astype(np.int64)
    w = (pos - i0)[:, None]
    v0, v1 = table[rows, :, i0], table[rows, :, i0 + 1]
    return v0 + w * (v1 - v0)
