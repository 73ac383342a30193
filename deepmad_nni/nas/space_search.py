"""Local search over index samples (:class:`Search`): repair to feasibility, best-improvement ascent with pair
moves; and the restarts that give it new starts (a kick across the budget's edge, a perturbed incumbent, a
Lagrangian maximiser at perturbed multipliers)."""
from __future__ import annotations

import heapq

import numpy as np

from .space_settings import IMPROVEMENT, KICK_PENALTIES, MULTIPLIER_NOISE, PAIR_CANDIDATES, PERTURBED_LABELS


class State:
    """An index sample with its factor positions, totals and figures (objective, rho, F, P, T, N)."""

    __slots__ = ("x", "idx", "totals", "fig", "value", "excess")


class Search:
    """Best-improvement search over index samples.  ``key(fig) -> (value, excess)`` says what is maximised
    (``value``) and how far over the limits a sample is (``excess``, 0 when feasible).  Every feasible
    sample met is offered to the pool of the ``top_k`` best distinct networks (by the reader's signature)."""

    def __init__(self, model, key, top_k):
        self.model, self.key, self.top_k = model, key, top_k
        self.touch = [[(f, model.factors[f][0].strides[model.factors[f][0].axes.index(k)])
                       for f in model.of_label[k]] for k in range(len(model.sizes))]
        self.pool: list = []                 # min-heap of (value, -order, x, signature)
        self.signatures: set = set()
        self.evaluated = 0                   # samples scored (a sample met twice counts twice)
        self.order = 0

    def state(self, x) -> State:
        m, st = self.model, State()
        st.x = list(x)
        st.idx = [cost.index(st.x) for cost, _, _ in m.factors]
        st.totals = m.totals(st.x)
        st.fig = m.figures(st.x, st.totals)
        st.value, st.excess = self.key(st.fig)
        self._met(st.x, st.value, st.excess)
        return st

    def _moved(self, st, k, v):
        """(sample, totals) of ``st`` with label k at index v, updated through the factors reading k."""
        flops, params, t, n = st.totals
        t, n = list(t), list(n)
        dv = v - st.x[k]
        factors, idx = self.model.factors, st.idx
        for f, stride in self.touch[k]:
            cost, stages, per = factors[f]
            i0 = idx[f]
            i1 = i0 + dv * stride
            (f0, p0), (f1, p1) = cost.values[i0], cost.values[i1]
            flops += f1 - f0
            params += p1 - p0
            for j, (a0, c0), (a1, c1) in zip(stages, per.values[i0], per.values[i1]):
                t[j] += a1 - a0
                n[j] += c1 - c0
        y = list(st.x)
        y[k] = v
        return y, (flops, params, t, n)

    def moves(self, st, score=None):
        """Every single-label move of ``st``: (value, excess, k, v), or (score(figures), 0, k, v)."""
        out = []
        for k, size in enumerate(self.model.sizes):
            for v in range(size):
                if v != st.x[k]:
                    y, totals = self._moved(st, k, v)
                    fig = self.model.figures(y, totals)
                    value, excess = self.key(fig)
                    self._met(y, value, excess)
                    out.append((value, excess, k, v) if score is None else (score(fig), 0.0, k, v))
        return out

    def ascend(self, st, score):
        """Best-improvement ascent on ``score(figures)``, limits ignored (a kick across the budget's edge)."""
        current = score(st.fig)
        while True:
            value, _, k, v = max(self.moves(st, score), key=lambda mv: (mv[0], -mv[2], -mv[3]))
            if value <= current + IMPROVEMENT * abs(current):
                return st
            st, current = self.state(self._apply(st, k, v)), value

    def _met(self, y, value, excess):
        self.evaluated += 1
        if excess <= 0 and (len(self.pool) < self.top_k or value > self.pool[0][0]):
            self._offer(tuple(y))

    def _offer(self, key):
        """Into the pool, checked exactly (the reader's sums) and kept one per network."""
        m = self.model
        value, excess = self.key(m.figures(list(key)))
        if excess > 0 or (len(self.pool) >= self.top_k and value <= self.pool[0][0]):
            return
        signature = m.desc.signature(m.sample(key))
        if signature in self.signatures:
            return
        self.order += 1
        item = (value, -self.order, key, signature)
        self.signatures.add(signature)
        if len(self.pool) < self.top_k:
            heapq.heappush(self.pool, item)
        else:
            self.signatures.discard(heapq.heapreplace(self.pool, item)[3])

    def best(self):
        return sorted(self.pool, reverse=True)

    def repair(self, st):
        """Until feasible: the best move that reaches feasibility, else the move losing least value per unit
        of excess removed (stops when no move reduces the excess)."""
        while st.excess > 0:
            moves = self.moves(st)
            feasible = [mv for mv in moves if mv[1] <= 0]
            if feasible:
                _, _, k, v = max(feasible, key=lambda mv: (mv[0], -mv[2], -mv[3]))
            else:
                better = [mv for mv in moves if mv[1] < st.excess]
                if not better:
                    break
                _, _, k, v = max(better, key=lambda mv: ((mv[0] - st.value) / (st.excess - mv[1]), -mv[2], -mv[3]))
            st = self.state(self._apply(st, k, v))
        return st

    @staticmethod
    def _apply(st, k, v):
        y = list(st.x)
        y[k] = v
        return y

    def climb(self, st):
        """Best feasible single move while one improves, then the best (over-budget move, repair) pair."""
        while st.excess <= 0:
            moves = self.moves(st)
            floor = st.value + IMPROVEMENT * abs(st.value)
            up = [mv for mv in moves if mv[1] <= 0 and mv[0] > floor]
            if up:
                _, _, k, v = max(up, key=lambda mv: (mv[0], -mv[2], -mv[3]))
                nxt = self.state(self._apply(st, k, v))
                if nxt.excess <= 0 and nxt.value > st.value:
                    st = nxt
                    continue
            pair = self._pair(st, moves, floor)
            if pair is None:
                break
            st = pair
        return st

    def _pair(self, st, moves, floor):
        """The best feasible result of an improving over-budget move followed by any single move."""
        over = sorted((mv for mv in moves if mv[1] > 0 and mv[0] > floor), key=lambda mv: (-mv[0], mv[2], mv[3]))
        best = None
        for _, _, k, v in over[:PAIR_CANDIDATES]:
            mid = self.state(self._apply(st, k, v))
            for value, excess, k2, v2 in self.moves(mid):
                if excess <= 0 and value > floor and (best is None or value > best[0]):
                    best = (value, mid, k2, v2)
        if best is None:
            return None
        nxt = self.state(self._apply(best[1], best[2], best[3]))
        return nxt if nxt.excess <= 0 and nxt.value > st.value else None


def unique(items) -> list:
    seen, out = set(), []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out


def ranked_starts(states, weight, count):
    """The ``count`` best distinct states: feasible ones by value, then the others by penalised value."""
    ranked = sorted(states, key=lambda st: (st.excess > 0, -(st.value - weight * st.excess)))
    out, seen = [], set()
    for st in ranked:
        if tuple(st.x) not in seen:
            seen.add(tuple(st.x))
            out.append(st)
    return out[:count]


def climbed(search, starts):
    for st in starts:
        search.climb(search.repair(st))


def restarted(search, rng, dual, u, states, k, scale):
    """Restart k, in turn: the incumbent after an ascent on objective - p * scale * excess for each loose
    penalty p of KICK_PENALTIES (it crosses the budget's edge; the repair brings it back), the incumbent with
    PERTURBED_LABELS labels redrawn, the Lagrangian maximiser at u * exp(MULTIPLIER_NOISE * normal draws)."""
    best, turn = search.best(), k % (len(KICK_PENALTIES) + 2)
    if best and turn < len(KICK_PENALTIES):
        weight = KICK_PENALTIES[turn] * scale
        return search.ascend(search.state(best[0][2]), lambda fig: search.key(fig)[0] - weight * search.key(fig)[1])
    if best and turn == len(KICK_PENALTIES):
        return perturbed(search, rng, states)
    if len(u):
        dual(np.clip(np.asarray(u) * np.exp(MULTIPLIER_NOISE * np.array([rng.gauss(0, 1) for _ in u])),
                     dual.lower, dual.upper))
        return search.state(dual.maximisers[-1])
    return perturbed(search, rng, states)


def perturbed(search, rng, states):
    """The incumbent (else a Lagrangian maximiser) with PERTURBED_LABELS labels redrawn."""
    best = search.best()
    x = list(best[0][2]) if best else list(states[rng.randrange(len(states))].x)
    for k in rng.sample(range(len(x)), min(PERTURBED_LABELS, len(x))):
        x[k] = rng.randrange(search.model.sizes[k])
    return search.state(x)
