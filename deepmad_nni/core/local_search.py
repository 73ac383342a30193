"""Local search: steepest ascent over large neighbourhoods of a design, scored exactly and in batches.

A primal heuristic of the branch and bound; it proves nothing about the family.  From a design it tries, in
this order, and moves to the best improving neighbour of the first neighbourhood that has one:

* ``global``: one slot takes any (output width, op, mid, depth) its input allows; the next slot keeps its
  own choices on the new input width;
* ``shift``: two slots move one grid step of width and up to two of depth each, ops and mids kept;
* ``trade``: a ``global`` move of one slot together with a depth change of another that pays for it (the
  fewest blocks removed to get back within the FLOPs and params budgets, or the most added within them);
* ``pair``: two slots move together within one grid step of width and mid, two of depth, and to ops that
  share the kernel or the expansion.

It stops at a design none of them improves (a local optimum) or at the deadline.  Every neighbour is
scored by :meth:`BatchScorer.evaluate`, so the objective and feasibility are exact.
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from .plan import BATCHES, CLIMB, NUMERICS, EvolveAndClimb
from .rules import expand_depths
from .slots import BatchScorer, SlotTable

NEIGHBOURHOODS = ("global", "shift", "trade", "pair")


class _Slot:
    """Lookups of one slot: (input, output, op, mid) indices -> combo, allowed depths, op neighbours."""

    def __init__(self, sl: SlotTable, ops):
        self.sl = sl
        self.mids = np.unique(sl.mid)
        self.mi = np.searchsorted(self.mids, sl.mid)
        self.grid_op = np.array([op.mid_from_grid for op in ops])
        n_in = int(sl.ci.max()) + 1
        self.by_ci = [np.flatnonzero(sl.ci == w) for w in range(n_in)]
        # combo by (input, output, op, mid index); ops whose mid follows the widths ignore the mid index
        # (a slot with only such ops keeps one mid index, 0)
        self.has_grid = bool(self.grid_op.any())
        lookup = np.full((n_in, len(sl.widths), len(ops), len(self.mids) if self.has_grid else 1), -1, np.int64)
        grid = self.grid_op[sl.op]
        lookup[sl.ci[grid], sl.co[grid], sl.op[grid], self.mi[grid]] = np.flatnonzero(grid)
        own = np.flatnonzero(~grid)
        lookup[sl.ci[own], sl.co[own], sl.op[own], :] = own[:, None]
        self.shape, self.flat = lookup.shape, lookup.ravel()
        top = max(int(d.max()) for d in sl.depths) + 2
        self.allowed = np.zeros((len(ops), top), bool)
        for o, ds in enumerate(sl.depths):
            self.allowed[o, ds] = True
        self.near_ops = [np.array([q for q, other in enumerate(ops) if q == o or other.kernel == op.kernel
                                   or (other.expansion == op.expansion and other.base == op.base)])
                         for o, op in enumerate(ops)]

    def resolve(self, ci, co, op, mi):
        """Combos of the given index arrays; -1 where the slot has none."""
        n_in, n_out, n_op, n_mid = self.shape
        ci, co, op, mi = (np.asarray(x) for x in (ci, co, op, mi))
        if not self.has_grid:
            mi = np.zeros_like(mi)
        ok = (ci >= 0) & (ci < n_in) & (co >= 0) & (co < n_out) & (op >= 0) & (op < n_op) & (mi >= 0) & (mi < n_mid)
        flat = ((ci * n_out + co) * n_op + op) * n_mid + mi
        return np.where(ok, self.flat[np.where(ok, flat, 0)], -1)

    def depth_ok(self, combos, depths):
        d = np.clip(depths, 0, self.allowed.shape[1] - 1)
        return (combos >= 0) & (depths >= 0) & self.allowed[self.sl.op[np.maximum(combos, 0)], d]


class LocalSearch:
    """Steepest ascent over the neighbourhoods of the module docstring, for one program."""

    def __init__(self, scorer: BatchScorer):
        self.scorer = scorer
        self.slots = [_Slot(sl, fs.ops) for sl, fs in zip(scorer.slots, scorer.program.family.slots)]
        self.n = len(self.slots)
        self.family_in = scorer.program.family.in_channels
        self.evaluations = 0
        self._pair_deltas: dict = {}   # (slot, op) -> the pair neighbourhood's steps, built when first used
        self._move_cache: dict = {}
        self._best_move: dict = {}     # (design, neighbourhood) -> its best neighbour: climbs that meet share

    def encode(self, choices):
        """(combos, depths) of a design given as one (c_out, Op, depth, mid) per slot."""
        combos, depths, ci = np.zeros(self.n, np.int64), np.zeros(self.n, np.int64), 0
        for j, ((c_out, op, depth, mid), s) in enumerate(zip(choices, self.slots)):
            ops = self.scorer.program.family.slots[j].ops
            co = int(np.searchsorted(s.sl.widths, c_out))
            mi = int(np.searchsorted(s.mids, mid))
            combos[j] = int(s.resolve(np.array([ci]), co, ops.index(op), mi)[0])
            depths[j] = depth
            ci = co
        if (combos < 0).any():
            raise ValueError(f"choices {choices!r} are not a design of {self.scorer.program.family.name}.")
        return combos, depths

    # ---- scoring -------------------------------------------------------------------------------------
    def values(self, combos: np.ndarray, depths: np.ndarray, cols: dict) -> np.ndarray:
        """Objectives (-inf when infeasible or invalid) of the design (combos, depths) with columns
        ``cols`` = {slot: (combo array, depth array)} replaced, one row per neighbour.  Only the entries that
        differ from the design are looked up; rows over the FLOPs or params budget are dropped before the
        full scoring."""
        size = max(len(c) for c, _ in cols.values())
        self.evaluations += size
        base = self.scorer.features(combos[None, :], depths[None, :])
        valid = np.ones(size, bool)
        changed = {}
        for j, (c, d) in cols.items():   # the entries that differ from the design, with their FLOPs and params
            rows = np.flatnonzero((c != combos[j]) | (d != depths[j]))
            c, d = c[rows], d[rows]
            ok = self.slots[j].depth_ok(c, d)
            valid[rows[~ok]] = False
            sl, extra = self.scorer.slots[j], d - 1
            c = np.maximum(c, 0)
            changed[j] = (rows, c, d, [None, None] + [sl.first[f][c] + extra * sl.rep[f][c] for f in (2, 3)])
        costs = {j: (rows, cost) for j, (rows, _, _, cost) in changed.items()}
        for total, budget in self._costs_after(base, costs, size):
            if budget is not None:
                valid &= total <= budget
        rows = np.flatnonzero(valid)
        where = np.full(size, -1, np.int64)
        where[rows] = np.arange(len(rows))
        out = np.full(size, -np.inf)
        for lo in range(0, len(rows), BATCHES.neighbours):
            part = rows[lo:lo + BATCHES.neighbours]
            feats = [np.repeat(f, len(part), axis=0) for f in base]
            for j, (at, c, d, _) in changed.items():
                pos = where[at] - lo
                hit = (pos >= 0) & (pos < len(part))
                for f, x in zip(feats, self.scorer.column(j, c[hit], d[hit])):
                    f[pos[hit], j] = x
            res = self.scorer.evaluate(feats)
            out[part] = np.where(res["feasible"], res["objective"], -np.inf)
        return out

    def _costs_after(self, base, new, size: int):
        """(FLOPs, budget) and (params, budget) of ``size`` copies of the base design, each with the
        changes ``new`` (slot -> (rows, :meth:`BatchScorer.column` features of those rows, or at least their
        FLOPs and params at 2 and 3)) in place."""
        program = self.scorer.program
        out = []
        for k, budget in ((2, program.flops), (3, program.params)):
            total = np.full(size, base[k].sum())
            for j, (rows, col) in new.items():
                total[rows] += col[k] - base[k][0, j]
            out.append((total, budget))
        return out

    def value(self, combos, depths) -> float:
        res = self.scorer(combos[None, :], depths[None, :])
        self.evaluations += 1
        return float(res["objective"][0]) if res["feasible"][0] else -np.inf

    # ---- neighbourhoods ------------------------------------------------------------------------------
    def _attrs(self, combos, j):
        s = self.slots[j]
        c = combos[j]
        return int(s.sl.ci[c]), int(s.sl.co[c]), int(s.sl.op[c]), int(s.mi[c])

    def _follow(self, combos, j, new_co):
        """Combo of slot ``j`` + 1 on input widths ``new_co`` with its own choices kept (None if last)."""
        if j + 1 >= self.n:
            return None
        _, co, op, mi = self._attrs(combos, j + 1)
        return self.slots[j + 1].resolve(new_co, co, op, mi)

    def _global(self, combos, depths, j):
        """Slot ``j`` anywhere its input allows (the slot after it keeps its own choices)."""
        cj, dj = self._moves(j, self._attrs(combos, j)[0])
        cols = {j: (cj, dj)}
        nxt = self._follow(combos, j, self.slots[j].sl.co[cj])
        if nxt is not None:
            cols[j + 1] = (nxt, np.full(len(cj), depths[j + 1]))
        return cols

    def _trade(self, combos, depths, j):
        """A ``global`` move of slot j with the depth of another slot k set to pay for it: the fewest
        blocks removed that bring FLOPs and params back within budget, or, when it frees some, the most
        (or half as many) blocks added within budget."""
        g = self._global(combos, depths, j)
        size = len(g[j][0])
        base = self.scorer.features(combos[None, :], depths[None, :])
        new = {x: (np.arange(size), self.scorer.column(x, np.maximum(c, 0), d)) for x, (c, d) in g.items()}
        room = [None if budget is None else budget - total for total, budget in self._costs_after(base, new, size)]
        parts = []
        for k in range(self.n):
            if k == j:
                continue
            ck, dk = g.get(k, (np.full(size, combos[k]), np.full(size, depths[k])))
            sl = self.slots[k].sl
            per_block = [sl.rep[f][np.maximum(ck, 0)] for f in (2, 3)]
            steps = np.full(size, np.inf)
            for r, cost in zip(room, per_block):
                if r is not None:
                    steps = np.minimum(steps, np.floor(r / np.maximum(cost, NUMERICS.log_floor)))
            if np.isinf(steps).all():   # no FLOPs or params budget: one block more or less
                deltas = (np.ones(size, np.int64), -np.ones(size, np.int64))
            else:
                cap = CLIMB.trade_blocks
                steps = np.where(np.isfinite(steps), steps, 0).clip(-cap, cap).astype(np.int64)
                deltas = (steps, np.where(steps > 0, steps // 2, steps))
            for delta in deltas:
                cols = {x: (c, d.copy()) for x, (c, d) in g.items()}
                cols[k] = (ck, dk + delta)
                parts.append(cols)
        return self._merge(combos, depths, parts)

    @staticmethod
    def _merge(combos, depths, parts):
        """One set of columns holding the rows of every part (slots a part leaves alone keep their choices)."""
        sizes = [len(next(iter(part.values()))[0]) for part in parts]
        c, d = np.tile(combos, (sum(sizes), 1)), np.tile(depths, (sum(sizes), 1))
        lo = 0
        for part, size in zip(parts, sizes):
            for k, (ck, dk) in part.items():
                c[lo:lo + size, k], d[lo:lo + size, k] = ck, dk
            lo += size
        keys = sorted(set().union(*parts))
        return {k: (c[:, k], d[:, k]) for k in keys}

    def _local_deltas(self, j: int, o: int) -> np.ndarray:
        """Steps (width, op, mid, depth) of slot ``j`` at op ``o`` in the ``pair`` neighbourhood."""
        if (j, o) not in self._pair_deltas:
            s = self.slots[j]
            self._pair_deltas[j, o] = np.array(list(itertools.product(
                CLIMB.width_steps, s.near_ops[o], CLIMB.width_steps if s.grid_op[o] else (0,), CLIMB.depth_steps)))
        return self._pair_deltas[j, o]

    def _pair(self, combos, depths, j, k):
        """Slots j < k within one grid step each (with the slots after them following)."""
        ci_j, co_j, op_j, mi_j = self._attrs(combos, j)
        ci_k, co_k, op_k, mi_k = self._attrs(combos, k)
        dj_, dk_ = self._local_deltas(j, op_j), self._local_deltas(k, op_k)
        a, b = (x.ravel() for x in np.meshgrid(np.arange(len(dj_)), np.arange(len(dk_)), indexing="ij"))
        dj, dk = dj_[a], dk_[b]
        new_co_j, new_co_k = co_j + dj[:, 0], co_k + dk[:, 0]
        cj = self.slots[j].resolve(ci_j, new_co_j, dj[:, 1], mi_j + dj[:, 2])
        ci_for_k = new_co_j if k == j + 1 else np.full(len(a), ci_k)
        ck = self.slots[k].resolve(ci_for_k, new_co_k, dk[:, 1], mi_k + dk[:, 2])
        cols = {j: (cj, depths[j] + dj[:, 3]), k: (ck, depths[k] + dk[:, 3])}
        if k != j + 1 and j + 1 < self.n:
            cols[j + 1] = (self._follow(combos, j, new_co_j), np.full(len(a), depths[j + 1]))
        if k + 1 < self.n:
            cols[k + 1] = (self._follow(combos, k, new_co_k), np.full(len(a), depths[k + 1]))
        return cols

    # ---- neighbourhoods built on attributes: (output width, op, mid index, depth) per slot --------------
    def _attribute_rows(self, combos, depths, count: int):
        """``count`` copies of the design as attribute arrays (B, N): width index, op, mid index, depth."""
        base = np.array([self._attrs(combos, j)[1:] for j in range(self.n)]).T        # (3, N)
        return [np.tile(row, (count, 1)) for row in base] + [np.tile(depths, (count, 1))]

    def _columns(self, co, op, mi, d) -> dict:
        """Columns of every slot for attribute rows: each slot's combo on the width before it (-1 if none)."""
        ci, cols = np.zeros(len(co), np.int64), {}
        for j in range(self.n):
            cols[j] = (self.slots[j].resolve(ci, co[:, j], op[:, j], mi[:, j]), d[:, j])
            ci = co[:, j]
        return cols

    def _moves(self, j: int, w: int):
        """(combos, depths): every combo and depth slot ``j`` allows on input width ``w`` (cached)."""
        key = (j, w)
        if key not in self._move_cache:
            s = self.slots[j]
            self._move_cache[key] = expand_depths(s.sl, s.by_ci[w])
        return self._move_cache[key]

    def _global_all(self, combos, depths):
        """The ``global`` moves of every slot as one batch (the slot after a move keeps its choices)."""
        return self._merge(combos, depths, [self._global(combos, depths, j) for j in range(self.n)])

    def _shift_all(self, combos, depths):
        """The ``shift`` moves of every pair of slots as one batch."""
        steps = np.array(list(itertools.product(CLIMB.width_steps, CLIMB.depth_steps, CLIMB.width_steps,
                                                CLIMB.depth_steps)))
        parts = []
        for j, k in itertools.combinations(range(self.n), 2):
            co, op, mi, d = self._attribute_rows(combos, depths, len(steps))
            co[:, j] += steps[:, 0]
            d[:, j] += steps[:, 1]
            co[:, k] += steps[:, 2]
            d[:, k] += steps[:, 3]
            parts.append((co, op, mi, d))
        return self._columns(*(np.concatenate([p[i] for p in parts]) for i in range(4)))

    def _neighbourhoods(self, combos, depths, kinds=NEIGHBOURHOODS):
        """(name, build) per neighbourhood, cheapest first; the climb restarts from the first after every
        move.  Names tell the neighbourhoods apart (the climb caches the best neighbour per design and name)."""
        pairs = list(itertools.combinations(range(self.n), 2))
        if "global" in kinds:   # every slot at once: one batch
            yield ("global",), lambda: self._global_all(combos, depths)
        if "shift" in kinds:
            yield ("shift",), lambda: self._shift_all(combos, depths)
        if "trade" in kinds:
            yield from ((("trade", j), lambda j=j: self._trade(combos, depths, j)) for j in range(self.n))
        if "pair" in kinds:
            yield from ((("pair", j, k), lambda j=j, k=k: self._pair(combos, depths, j, k)) for j, k in pairs)

    # ---- the search ----------------------------------------------------------------------------------
    def climb(self, combos, depths, *, deadline: float = float("inf"), kinds=NEIGHBOURHOODS):
        """Local optimum reached from (combos, depths) over the neighbourhoods ``kinds``, or the best design
        when the deadline passes.  From an infeasible design the first move goes to its best feasible
        neighbour, if it has one."""
        combos, depths = np.array(combos, np.int64), np.array(depths, np.int64)
        value = self.value(combos, depths)
        while time.perf_counter() < deadline:
            improved = False
            for name, build in self._neighbourhoods(combos, depths, kinds):
                if time.perf_counter() > deadline:
                    break
                key = (combos.tobytes(), depths.tobytes(), name)
                if key not in self._best_move:
                    cols = build()
                    vals = self.values(combos, depths, cols)
                    i = int(np.argmax(vals))
                    to_c, to_d = combos.copy(), depths.copy()
                    for j, (c, d) in cols.items():
                        to_c[j], to_d[j] = c[i], d[i]
                    if len(self._best_move) >= BATCHES.move_cache:
                        self._best_move.clear()
                    self._best_move[key] = (float(vals[i]), to_c, to_d)
                best, to_c, to_d = self._best_move[key]
                if best > (value + NUMERICS.same * max(1.0, abs(value)) if np.isfinite(value) else value):
                    combos, depths, value = to_c.copy(), to_d.copy(), best
                    improved = True
                    break   # neighbourhoods are built from the current design: start again
            if not improved:
                break
        return combos, depths, value


def climb_with_restarts(scorer: BatchScorer, settings: EvolveAndClimb, *, deadline: float,
                        first_time: float = float("inf"), seed: int = 0, polish=None, progress=None):
    """Until the deadline, at most ``settings.starts`` times: a run of the official evolution, then a climb
    from its best design.  The first evolution runs for up to ``settings.evolution.evaluations`` candidates
    and ``first_time`` seconds, the later ones (restarts, seed + k * ``settings.seed_stride``) for
    ``settings.restart_evaluations``.  Local optima differ a lot between starts, so restarts pay.
    ``polish(local_search, combos, depths, value)``, if given, may return a better (combos, depths, value),
    from which the climb goes on; only local optima within ``settings.polish_within`` of the best so far
    are polished.  Returns every local optimum reached as (combos, depths, value), best first, and the
    number of designs scored."""
    from .evolution import evolve
    ls = LocalSearch(scorer)
    optima, evaluations, k = [], 0, 0
    while time.perf_counter() < deadline and k < settings.starts:
        left = max(deadline - time.perf_counter(), 0.0)
        evo = evolve(scorer.program, settings.evolution,
                     evaluations=settings.restart_evaluations if k else settings.evolution.evaluations,
                     seed=seed + settings.seed_stride * k, slots=scorer.slots,
                     time_limit=left if k else min(left, first_time))
        k += 1
        evaluations += evo.evaluations
        if not np.isfinite(evo.objective):
            continue
        found = ls.climb(evo.combos, evo.depths, deadline=deadline)
        record = max((v for _, _, v in optima), default=-np.inf)
        promising = found[2] >= record - settings.polish_within * abs(record)
        while polish is not None and promising and time.perf_counter() < deadline:
            better = polish(ls, *found)
            if not better[2] > found[2]:
                break
            found = ls.climb(better[0], better[1], deadline=deadline)
        if progress is not None and (not optima or found[2] > max(v for _, _, v in optima)):
            progress(f"local search: start {k} (evolution {evo.evaluations} candidates, best "
                     f"{evo.objective:.6g}) reaches {found[2]:.6g}, the best so far")
        optima.append(found)
    optima.sort(key=lambda x: -x[2])
    return optima, evaluations + ls.evaluations
