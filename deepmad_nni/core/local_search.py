"""Local search: steepest ascent over large neighbourhoods of a design, scored exactly and in batches.

A primal heuristic of the branch and bound; it proves nothing about the family.  From a design it tries, in
this order, and moves to the best improving neighbour of the first neighbourhood that has one (each
neighbourhood covers every slot, or every pair of slots, at once):

* ``global``: one slot takes any (output width, op, mid, depth) its input allows; the next slot keeps its
  own choices on the new input width;
* ``shift``: two slots move one grid step of width and up to two of depth each, ops and mids kept;
* ``trade``: a ``global`` move of one slot together with a depth change of another that pays for it (the
  fewest blocks removed to get back within the FLOPs and params budgets, or the most added within them);
* ``pair``: two slots move together within one grid step of width and mid, two of depth, and to ops that
  share the kernel or the expansion.

It stops at a design none of them improves (a local optimum) or at the deadline.  Neighbours are scored by
their changes against the design (core/change_scores.py: the figures BatchScorer gives, up to rounding), and
the best one again by :class:`BatchScorer`, so the objective and feasibility of every move are exact.
"""
from __future__ import annotations

import functools
import itertools
import time

import numpy as np

from .change_scores import ChangeScorer
from .plan import BATCHES, CLIMB, NUMERICS, EvolveAndClimb
from .rules import expand_depths
from .slots import BatchScorer, SlotTable, totals

NEIGHBOURHOODS = ("global", "shift", "trade", "pair")


def _rows(side: dict) -> int:
    """The number of rows of a side {slot: (combos, depths)}."""
    return len(next(iter(side.values()))[0])


@functools.lru_cache(maxsize=BATCHES.slot_lookups)
def _slot_lookups(sl: SlotTable, ops: tuple) -> "_Slot":
    """The lookups of a slot table, built once per table (tables are kept per family: core/slots.py)."""
    return _Slot(sl, ops)


class _Slot:
    """Lookups of one slot: (input, output, op, mid) indices -> combo, allowed depths, op neighbours; and
    its moves per input width, built when first asked for.  Shared by every local search on the table, so
    its arrays are read-only."""

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
        # padded by one -1 entry on both sides of every index: an index beyond the range reads the padding
        self.padded = tuple(n + 2 for n in lookup.shape)
        self.flat = np.pad(lookup, 1, constant_values=-1).ravel()
        top = max(int(d.max()) for d in sl.depths) + 2
        self.allowed = np.zeros((len(ops), top), bool)
        for o, ds in enumerate(sl.depths):
            self.allowed[o, ds] = True
        self.near_ops = [np.array([q for q, other in enumerate(ops) if q == o or other.kernel == op.kernel
                                   or (other.expansion == op.expansion and other.base == op.base)])
                         for o, op in enumerate(ops)]
        for array in (self.mids, self.mi, self.grid_op, self.flat, self.allowed, *self.by_ci,
                      *self.near_ops):
            array.setflags(write=False)
        self._moves: dict = {}

    def moves(self, w: int):
        """(combos, depths): every combo and depth the slot allows on input width ``w``."""
        if w not in self._moves:
            combos, depths = expand_depths(self.sl, self.by_ci[w])
            combos.setflags(write=False)
            depths.setflags(write=False)
            self._moves[w] = combos, depths
        return self._moves[w]

    def resolve(self, ci, co, op, mi):
        """Combos of the given index arrays; -1 where the slot has none."""
        index = tuple(np.asarray(x) + 1 for x in (ci, co, op, mi if self.has_grid else 0))
        return self.flat[np.ravel_multi_index(index, self.padded, mode="clip")]

    def depth_ok(self, combos, depths):
        d = np.minimum(np.maximum(depths, 0), self.allowed.shape[1] - 1)
        return (combos >= 0) & (depths >= 0) & self.allowed[self.sl.op[np.maximum(combos, 0)], d]


class LocalSearch:
    """Steepest ascent over the neighbourhoods of the module docstring, for one program."""

    def __init__(self, scorer: BatchScorer):
        self.scorer = scorer
        self.slots = [_slot_lookups(sl, tuple(fs.ops)) for sl, fs in zip(scorer.slots, scorer.program.family.slots)]
        self.n = len(self.slots)
        self.family_in = scorer.program.family.in_channels
        self.evaluations = 0
        self._pair_deltas: dict = {}   # (slot, op) -> the pair neighbourhood's steps, built when first used
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
    def values(self, combos: np.ndarray, depths: np.ndarray, parts) -> np.ndarray:
        """Objectives (-inf when infeasible or invalid) of the neighbours of the design (combos, depths), the
        rows of every part in turn.  A part is a side {slot: (combo array, depth array)}, the design with
        those slots' columns replaced, one row per neighbour, or a pair of sides with disjoint slots, every
        row of the first with every row of the second (core/change_scores.py).  Invalid rows (no such
        combo, a depth its op does not allow) are dropped first."""
        parts = [parts] if isinstance(parts, dict) else parts
        base, seen, out = ChangeScorer(self.scorer, combos, depths), {}, []
        for chunk in self._chunks(parts):
            sides, index, known = [], [], {}   # a side shared by several parts is scored once
            for part in chunk:
                at = []
                for side in part if isinstance(part, tuple) else (part,):
                    if id(side) not in known:
                        known[id(side)] = len(sides)
                        sides.append(side)
                    at.append(known[id(side)])
                index.append(tuple(at) if len(at) > 1 else at[0])
            out.append(base.objective(sides, [self._valid(s, seen) for s in sides], index))
        value = np.concatenate(out) if out else np.zeros(0)
        self.evaluations += len(value)
        return value

    @staticmethod
    def _chunks(parts):
        """The parts in runs of at most BATCHES.neighbours side rows (a larger part alone)."""
        chunk, rows = [], 0
        for part in parts:
            size = sum(_rows(side) for side in (part if isinstance(part, tuple) else (part,)))
            if chunk and rows + size > BATCHES.neighbours:
                yield chunk
                chunk, rows = [], 0
            chunk.append(part)
            rows += size
        if chunk:
            yield chunk

    def _valid(self, side: dict, seen: dict) -> np.ndarray:
        """Whether each row's combos exist at its depths; ``seen`` keeps the columns checked already (sides
        of one neighbourhood share columns)."""
        ok = None
        for j, (c, d) in side.items():
            key = (j, id(c), id(d))
            if key not in seen:
                seen[key] = (c, d, self.slots[j].depth_ok(c, d))   # the arrays are kept so that ids stay theirs
            here = seen[key][2]
            ok = here if ok is None else ok & here
        return ok

    @staticmethod
    def rows(part) -> dict:
        """A part as one side: a pair of sides becomes every row of the first with every row of the second."""
        if isinstance(part, dict):
            return part
        one, other = part
        a, b = _rows(one), _rows(other)
        out = {j: (np.repeat(c, b), np.repeat(d, b)) for j, (c, d) in one.items()}
        out.update({j: (np.tile(c, a), np.tile(d, a)) for j, (c, d) in other.items()})
        return out

    @staticmethod
    def _neighbour(combos, depths, parts, i: int):
        """(combos, depths) of row ``i`` of :meth:`values` over ``parts``."""
        to_c, to_d = combos.copy(), depths.copy()
        for part in parts:
            sides = part if isinstance(part, tuple) else (part,)
            sizes = [_rows(side) for side in sides]
            if i < int(np.prod(sizes)):
                for side, at in zip(sides, np.unravel_index(i, sizes)):
                    for j, (c, d) in side.items():
                        to_c[j], to_d[j] = c[at], d[at]
                return to_c, to_d
            i -= int(np.prod(sizes))
        raise IndexError(i)

    def value(self, combos, depths) -> float:
        res = self.scorer(combos[None, :], depths[None, :])
        self.evaluations += 1
        return float(res["objective"][0]) if res["feasible"][0] else -np.inf

    # ---- neighbourhoods: lists of parts, each {slot: (combos, depths)} ---------------------------------
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
        part = {j: (cj, dj)}
        nxt = self._follow(combos, j, self.slots[j].sl.co[cj])
        if nxt is not None:
            part[j + 1] = (nxt, np.full(len(cj), depths[j + 1]))
        return part

    def _trade(self, combos, depths, j):
        """A ``global`` move of slot j with the depth of another slot k set to pay for it: the fewest
        blocks removed that bring FLOPs and params back within budget, or, when it frees some, the most
        (or half as many) blocks added within budget.  One part per k and depth rule."""
        g = self._global(combos, depths, j)
        size = len(g[j][0])
        program, sc = self.scorer.program, self.scorer
        base = [totals(sc.slots[x], combos[x], depths[x]) for x in range(self.n)]
        room = []
        for f, budget in ((2, program.flops), (3, program.params)):
            if budget is None:
                room.append(None)
                continue
            total = np.full(size, sum(b[f] for b in base), float)
            for x, (c, d) in g.items():
                total += totals(sc.slots[x], np.maximum(c, 0), d)[f] - base[x][f]
            room.append(budget - total)
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
                part = dict(g)
                part[k] = (ck, dk + delta)
                parts.append(part)
        return parts

    def _local_deltas(self, j: int, o: int) -> np.ndarray:
        """Steps (width, op, mid, depth) of slot ``j`` at op ``o`` in the ``pair`` neighbourhood."""
        if (j, o) not in self._pair_deltas:
            s = self.slots[j]
            self._pair_deltas[j, o] = np.array(list(itertools.product(
                CLIMB.width_steps, s.near_ops[o], CLIMB.width_steps if s.grid_op[o] else (0,), CLIMB.depth_steps)))
        return self._pair_deltas[j, o]

    def _shift_deltas(self, combos, j: int) -> np.ndarray:
        """Steps (width, op, mid, depth) of slot ``j`` in the ``shift`` neighbourhood: its op and mid kept."""
        op = self._attrs(combos, j)[2]
        return np.array([(w, op, 0, d) for w in CLIMB.width_steps for d in CLIMB.depth_steps])

    def _two(self, combos, depths, steps):
        """Every pair of slots j < k moved by every pair of rows of ``steps[j]`` and ``steps[k]`` (width step,
        op, mid step, depth step), with the slots after them following, as pairs of sides (:meth:`values`; slot
        j's side is shared by all its pairs); when k = j + 1, one pair per width slot j moves to (slot k's
        combo depends on it)."""
        alone = [self._moved(combos, depths, j, steps[j]) for j in range(self.n)]
        parts = []
        for j, k in itertools.combinations(range(self.n), 2):
            if k > j + 1:
                parts.append((alone[j], alone[k]))
                continue
            co_j = self._attrs(combos, j)[1]
            for w in np.unique(steps[j][:, 0]):   # slot k on each width slot j moves to
                at = steps[j][:, 0] == w
                parts.append((self._moved(combos, depths, j, steps[j][at], follow=False),
                              self._moved(combos, depths, k, steps[k], ci=co_j + w)))
        return parts

    def _moved(self, combos, depths, j, steps, *, ci=None, follow: bool = True) -> dict:
        """Slot ``j`` moved by each row of ``steps`` (width step, op, mid step, depth step), on input widths
        ``ci`` (its own when None), with slot j + 1 following unless ``follow`` is false."""
        own_ci, co, _, mi = self._attrs(combos, j)
        new_co = co + steps[:, 0]
        side = {j: (self.slots[j].resolve(own_ci if ci is None else ci, new_co, steps[:, 1], mi + steps[:, 2]),
                    depths[j] + steps[:, 3])}
        if follow and j + 1 < self.n:
            side[j + 1] = (self._follow(combos, j, new_co), np.full(len(steps), depths[j + 1]))
        return side

    def _moves(self, j: int, w: int):
        """(combos, depths): every combo and depth slot ``j`` allows on input width ``w``."""
        return self.slots[j].moves(w)

    def _neighbourhoods(self, combos, depths, kinds=NEIGHBOURHOODS):
        """(name, build) per neighbourhood, cheapest first; ``build()`` gives its parts (:meth:`values`).  The
        climb restarts from the first after every move; names tell the neighbourhoods apart (the climb caches
        the best neighbour per design and name)."""
        builds = {
            "global": lambda: [self._global(combos, depths, j) for j in range(self.n)],
            "shift": lambda: self._two(combos, depths, [self._shift_deltas(combos, j) for j in range(self.n)]),
            "trade": lambda: [p for j in range(self.n) for p in self._trade(combos, depths, j)],
            "pair": lambda: self._two(combos, depths, [self._local_deltas(j, self._attrs(combos, j)[2])
                                                       for j in range(self.n)]),
        }
        for name in NEIGHBOURHOODS:
            if name in kinds:
                yield (name,), builds[name]

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
                    parts = build()
                    vals = self.values(combos, depths, parts)
                    to_c, to_d = self._neighbour(combos, depths, parts, int(np.argmax(vals)))
                    if len(self._best_move) >= BATCHES.move_cache:
                        self._best_move.clear()
                    # the move's value as the full scorer gives it (equal to the neighbour's up to rounding)
                    self._best_move[key] = (self.value(to_c, to_d) if np.isfinite(vals.max()) else -np.inf, to_c, to_d)
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
