"""Exact figures of designs that differ from one base design in a few slots: the local search's scorer.

A neighbour of a design (core/local_search.py) changes the combos and depths of a few slots.  Every figure
of the program but Q is a sum over the slots or a prefix sum at the stage ends (``BatchScorer.evaluate``),
so a neighbour's figures are the base design's plus the changes of its slots.  A neighbourhood is given as
*sides* (each {slot: (combos, depths)}, one row per change) and *parts*: a side alone, or the cross product
of two sides with disjoint slots (every row of the one with every row of the other, as when two distant
slots move at once).  The changes of every side's rows are summed once, in one batch; a part adds them by
broadcasting and drops the neighbours over the FLOPs and params budgets; rho, the entropy and Q are then
computed for the neighbours left of every part at once.  The figures equal BatchScorer's up to rounding
(tests/test_core_local_search.py).
"""
from __future__ import annotations

import numpy as np

from .slots import BatchScorer


class ChangeScorer:
    """The base design (combos, depths) of a neighbourhood, and the objective of its neighbours."""

    def __init__(self, scorer: BatchScorer, combos: np.ndarray, depths: np.ndarray):
        self.scorer = scorer
        self.combos, self.depths = combos, depths
        self.ends = np.asarray(scorer.ends)
        self.base = scorer.features(combos[None, :], depths[None, :])   # the design's per-slot figures
        t, n, f, p = (x[0] for x in self.base[:4])
        self.flops, self.params = f.sum(), p.sum()
        self.s_end, self.n_end = np.cumsum(t)[self.ends], np.cumsum(n)[self.ends]
        self.stage_of_end = {int(e): i for i, e in enumerate(self.ends)}
        self.first_end = np.searchsorted(self.ends, np.arange(len(combos)))   # per slot: its stage's index
        self.coef = scorer.s * np.asarray(scorer.program.alpha, float)   # entropy = sum_i coef_i log(r_i^2 c_i) S_i

    def _changes(self, combos: np.ndarray, depths: np.ndarray, changed: np.ndarray):
        """Of designs given as (A, N) arrays that differ from the base where ``changed``: the changes of
        FLOPs and params, and of the log-width sums and layer counts at the stage ends; log(r_i^2 c_i) at
        the ends; the depths and op flags of Q.  Only the changed entries are looked up."""
        sc, ends, base, stage_of_end = self.scorer, self.ends, self.base, self.stage_of_end
        total = len(combos)
        d_f, d_p = np.zeros(total), np.zeros(total)                          # changes of FLOPs and params
        d_s, d_n = np.zeros((total, len(ends))), np.zeros((total, len(ends)))  # and of S and n at the stage ends
        log_width = np.repeat(np.log(sc.area * base[4][0, ends])[None, :], total, axis=0)
        depth, rep, btn = (np.repeat(x, total, axis=0) for x in base[5:])
        for j in range(len(self.combos)):   # slot by slot, as the prefix sums add them
            r = np.flatnonzero(changed[:, j])
            if not len(r):
                continue
            t, n, f, p, width, depth[r, j], rep[r, j], btn[r, j] = sc.column(j, combos[r, j], depths[r, j])
            d_f[r] += f - base[2][0, j]
            d_p[r] += p - base[3][0, j]
            after = self.first_end[j]   # the stage ends at or after slot j
            d_s[r, after:] += (t - base[0][0, j])[:, None]
            d_n[r, after:] += (n - base[1][0, j])[:, None]
            if j in stage_of_end:
                log_width[r, stage_of_end[j]] = np.log(sc.area[stage_of_end[j]] * width)
        return (d_f, d_p, d_s, d_n), log_width, depth, rep, btn

    def objective(self, sides: list, valid: list, parts: list) -> np.ndarray:
        """Objectives (-inf where infeasible or invalid) of the rows of every part in turn: a part is a side's
        index (its rows) or a pair of indices (every row of the first side with every row of the second,
        the first's row major); ``valid[i]`` masks side i's rows whose combos and depths exist."""
        sc, program = self.scorer, self.scorer.program
        n = len(self.combos)
        sizes = [len(v) for v in valid]
        rows = [np.flatnonzero(v) for v in valid]
        start = np.cumsum([1] + [len(r) for r in rows])          # batch row 0 is the base design
        total = int(start[-1])
        combos = np.repeat(self.combos[None, :], total, axis=0)
        depths = np.repeat(self.depths[None, :], total, axis=0)
        changed = np.zeros((total, n), bool)
        for side, r, lo in zip(sides, rows, start):
            for j, (c, d) in side.items():
                combos[lo:lo + len(r), j], depths[lo:lo + len(r), j] = c[r], d[r]
                changed[lo:lo + len(r), j] = True
        (d_flops, d_params, d_s, d_n), log_width, depth, rep, btn = self._changes(combos, depths, changed)
        flops, params, s_end, n_end = self.flops, self.params, self.s_end, self.n_end

        at_a, at_b, where = [], [], []   # the surviving (a, b) batch rows, where their values go
        single = [not isinstance(part, tuple) for part in parts]
        sizes_of = [sizes[p] if one else sizes[p[0]] * sizes[p[1]] for p, one in zip(parts, single)]
        offsets = np.cumsum([0] + sizes_of)
        if any(single):   # every single side's rows at once, against the base (batch row 0)
            ra = np.concatenate([start[p] + np.arange(len(rows[p])) for p, one in zip(parts, single) if one])
            own = np.concatenate([offsets[k] + rows[p] for k, (p, one) in enumerate(zip(parts, single)) if one])
            ok = sc.within_budgets(flops + d_flops[ra], params + d_params[ra])
            at_a.append(ra[ok])
            at_b.append(np.zeros(int(ok.sum()), np.int64))
            where.append(own[ok])
        cross = [(k, part) for k, part in enumerate(parts) if not single[k]]
        if cross:   # every row of one side with every row of the other, all pairs of sides at once
            ra = [start[one] + np.arange(len(rows[one])) for _, (one, _) in cross]
            rb = [start[other] + np.arange(len(rows[other])) for _, (_, other) in cross]
            a = np.concatenate([np.repeat(x, len(y)) for x, y in zip(ra, rb)])
            b = np.concatenate([np.tile(y, len(x)) for x, y in zip(ra, rb)])
            own = np.concatenate([offsets[k] + np.add.outer(rows[one] * sizes[other], rows[other]).ravel()
                                  for k, (one, other) in cross])
            ok = sc.within_budgets(flops + d_flops[a] + d_flops[b], params + d_params[a] + d_params[b])
            at_a.append(a[ok])
            at_b.append(b[ok])
            where.append(own[ok])
        offset = int(offsets[-1])
        value = np.full(offset, -np.inf)
        a, b, where = np.concatenate(at_a), np.concatenate(at_b), np.concatenate(where)
        s, nl = s_end + d_s[a] + d_s[b], n_end + d_n[a] + d_n[b]
        rho_end = nl / np.exp(s / nl)
        rho = rho_end.max(axis=1) if sc.rules.prefix_rho else rho_end[:, -1]
        keep = sc.within_rho(rho)
        a, b, s, where = a[keep], b[keep], s[keep], where[keep]
        from_a = changed[a]
        ends_a = from_a[:, self.ends]
        log_w = np.where(ends_a, log_width[a], log_width[b])
        q = sc.q(np.where(from_a, depth[a], depth[b]), np.where(from_a, rep[a], rep[b]),
                 np.where(from_a, btn[a], btn[b]))
        entropy = (log_w * s) @ self.coef
        value[where] = entropy - program.beta * q
        return value
