"""The official DeepMAD search, re-implemented: evolution over the same program (vectorised).

As in the TinyNAS code (settings: core/plan.py's ``Evolution``): a population (256) of designs; each child
copies a random member and mutates ``mutations`` (2) randomly chosen slots, one attribute each (output width +-1 or 2 grid steps, kernel /
op, bottleneck width or expansion +-1 or 2 steps, depth -2..+2); children outside the constraints are
dropped and the population keeps its best distinct members.  It serves as the baseline of
experiments/bench_solver.py and as the branch and bound's first incumbent; it proves nothing.

A design is held as attributes per slot: width index, op index, mid index (into the slot's sorted mids)
and depth; ``_Grid.combos`` maps them to the nearest valid combo of every slot (or -1).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .plan import EVOLUTION, Evolution
from .program import Program
from .slots import BatchScorer, SlotTable, build_slot_tables, sample_designs


@dataclass
class EvolutionResult:
    objective: float
    combos: np.ndarray
    depths: np.ndarray
    evaluations: int
    time_s: float
    history: list          # (evaluations, best objective so far)
    population: tuple = ()  # final (combos, depths, values), best first


class _Grid:
    """Dense lookup per slot: (c_in index, c_out index, op, mid index) -> nearest valid combo, or -1."""

    def __init__(self, slots: list[SlotTable]):
        self.slots = slots
        self.mids, self.table, self.snap = [], [], []
        for sl in slots:
            mids = np.unique(sl.mid)
            n_in = int(sl.ci.max()) + 1
            exact = np.full((n_in, len(sl.widths), len(sl.depths), len(mids)), -1, np.int64)
            exact[sl.ci, sl.co, sl.op, np.searchsorted(mids, sl.mid)] = np.arange(len(sl.ci))
            tab = _nearest_fill(exact)
            self.mids.append(mids)
            self.table.append(tab)
            top = max(int(d.max()) for d in sl.depths) + 3
            # snap[op, d]: the allowed depth of ``op`` nearest to d (depth sets need not be contiguous)
            self.snap.append(np.array([[d[np.argmin(np.abs(d - x))] for x in range(top)] for d in sl.depths]))

    def attributes(self, combos, depths):
        w = np.stack([sl.co[combos[:, j]] for j, sl in enumerate(self.slots)], 1)
        op = np.stack([sl.op[combos[:, j]] for j, sl in enumerate(self.slots)], 1)
        m = np.stack([np.searchsorted(self.mids[j], sl.mid[combos[:, j]]) for j, sl in enumerate(self.slots)], 1)
        return w, op, m, depths.copy()

    def combos(self, w, op, m, d):
        """Combos of the attributes (mids snapped in place to valid ones); -1 where none exists."""
        out = np.empty_like(w)
        for j, sl in enumerate(self.slots):
            tab = self.table[j]
            ci = w[:, j - 1] if j else np.zeros(len(w), np.int64)
            inside = ci < tab.shape[0]
            c = np.full(len(w), -1, np.int64)
            c[inside] = tab[ci[inside], w[inside, j], op[inside, j], m[inside, j]]
            out[:, j] = c
            ok = c >= 0
            m[ok, j] = np.searchsorted(self.mids[j], sl.mid[c[ok]])
            snap = self.snap[j]
            d[:, j] = snap[op[:, j], np.clip(d[:, j], 0, snap.shape[1] - 1)]
        return out


def _nearest_fill(exact: np.ndarray) -> np.ndarray:
    """Along the last axis, replace each -1 by the nearest non-negative entry (ties: the lower index)."""
    k = exact.shape[-1]
    pos = np.arange(k)
    have = exact >= 0
    last = np.maximum.accumulate(np.where(have, pos, -1), axis=-1)                       # nearest at or below
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(have, pos, k), -1), axis=-1), -1)  # nearest at or above
    use_low = (last >= 0) & ((nxt >= k) | (pos - last <= nxt - pos))
    pick = np.where(use_low, last, np.minimum(nxt, k - 1))
    out = np.take_along_axis(exact, pick, axis=-1)
    return np.where(have.any(axis=-1, keepdims=True), out, -1)


def _mutate(grid: _Grid, w, op, m, d, rng, mutations: int, steps: tuple):
    n = w.shape[1]
    rows = np.arange(len(w))
    for _ in range(mutations):
        j = rng.integers(0, n, len(w))
        what = rng.integers(0, 4, len(w))
        step = rng.choice(np.array(steps), len(w))
        n_w = np.array([len(s.widths) for s in grid.slots])[j]
        n_op = np.array([len(s.depths) for s in grid.slots])[j]
        n_m = np.array([len(mm) for mm in grid.mids])[j]
        sel = what == 0
        w[rows[sel], j[sel]] = np.clip(w[rows[sel], j[sel]] + step[sel], 0, n_w[sel] - 1)
        sel = what == 1
        op[rows[sel], j[sel]] = (rng.random(sel.sum()) * n_op[sel]).astype(np.int64)
        sel = what == 2
        m[rows[sel], j[sel]] = np.clip(m[rows[sel], j[sel]] + step[sel], 0, n_m[sel] - 1)
        sel = what == 3
        d[rows[sel], j[sel]] += step[sel]


def evolve(program: Program, settings: Evolution = EVOLUTION, *, evaluations: int | None = None, seed: int = 0,
           time_limit: float | None = None, slots=None, patience: int | None = None, progress=None) -> EvolutionResult:
    """Run the evolutionary baseline (``settings``: population, mutations, batch, ...; core/plan.py); stops
    after ``evaluations`` candidates (default ``settings.evaluations``), ``time_limit`` seconds, or
    ``patience`` generations without improvement."""
    population, batch = settings.population, settings.batch
    evaluations = settings.evaluations if evaluations is None else evaluations
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    slots = slots or build_slot_tables(program)
    scorer = BatchScorer(program, slots)
    grid = _Grid(slots)

    def value(c, d):
        v = np.full(len(c), -np.inf)
        ok = (c >= 0).all(axis=1)
        if ok.any():
            out = scorer(c[ok], d[ok])
            v[ok] = np.where(out["feasible"], out["objective"], -np.inf)
        return v

    pop_c, pop_d = sample_designs(slots, population, rng, shallow=settings.shallow)
    pop_v = value(pop_c, pop_d)
    done, history = len(pop_v), [(len(pop_v), float(pop_v.max()))]
    stale = 0
    try:
        while done < evaluations and (time_limit is None or time.perf_counter() - t0 < time_limit):
            if patience is not None and stale >= patience:
                break
            parents = rng.integers(0, len(pop_v), batch)
            w, op, m, d = grid.attributes(pop_c[parents], pop_d[parents])
            _mutate(grid, w, op, m, d, rng, settings.mutations, settings.steps)
            kids_c = grid.combos(w, op, m, d)
            kid_v = value(kids_c, d)
            done += batch
            all_c, all_d = np.concatenate([pop_c, np.maximum(kids_c, 0)]), np.concatenate([pop_d, d])
            all_v = np.concatenate([pop_v, kid_v])
            _, first = np.unique(np.concatenate([all_c, all_d], axis=1), axis=0, return_index=True)
            first = first[np.argsort(-all_v[first], kind="stable")][:population]
            pop_c, pop_d, pop_v = all_c[first], all_d[first], all_v[first]
            stale = stale + 1 if pop_v.max() <= history[-1][1] else 0
            history.append((done, float(pop_v.max())))
            if progress is not None:
                progress(done, float(pop_v.max()))
    except KeyboardInterrupt:   # keep what was found
        pass
    i = int(np.argmax(pop_v))
    return EvolutionResult(float(pop_v[i]), pop_c[i], pop_d[i], done, time.perf_counter() - t0, history,
                           (pop_c, pop_d, pop_v))
