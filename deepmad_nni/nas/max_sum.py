"""Max-sum variable elimination over tables on label scopes (:class:`Eliminator`), split in mini-buckets past
``ELIMINATION_CELL_LIMIT`` cells (then an upper bound)."""
from __future__ import annotations

import math

import numpy as np

from .space_settings import ELIMINATION_CELL_LIMIT


class Eliminator:
    """max_x sum_k f_k(x_{S_k}) for tables f_k over sorted axis tuples S_k, by variable elimination in a
    greedy smallest-bucket order (planned once per set of scopes).  A bucket over more than
    ``ELIMINATION_CELL_LIMIT`` cells is split in mini-buckets, each maximised on its own: the value is then an
    upper bound (max of a sum <= sum of maxima) and ``exact`` is False."""

    def __init__(self, scopes, sizes):
        self.scopes, self.sizes = [tuple(s) for s in scopes], sizes
        self.scope_of = list(self.scopes)          # tables, then messages, by id
        self.steps, self.exact = self._plan()
        self.cells = sum(self._cells(union) for _, groups in self.steps for _, union, _ in groups)

    def _cells(self, axes) -> int:
        return math.prod(self.sizes[a] for a in axes)

    def _plan(self):
        live = {i: s for i, s in enumerate(self.scopes) if s}
        holders: dict[int, set] = {}
        for i, s in live.items():
            for a in s:
                holders.setdefault(a, set()).add(i)
        next_id, steps, exact = len(self.scopes), [], True
        while holders:
            def cost(a):
                return self._cells(set().union(*(live[i] for i in holders[a]))), a
            v = min(holders, key=cost)
            groups = []
            for members in self._split(sorted(holders.pop(v)), live):
                union = tuple(sorted(set().union(*(live[i] for i in members))))
                msg = tuple(a for a in union if a != v)
                for i in members:
                    for a in live.pop(i):
                        if a != v:
                            holders[a].discard(i)
                live[next_id] = msg
                self.scope_of.append(msg)
                for a in msg:
                    holders[a].add(next_id)
                groups.append((members, union, next_id))
                next_id += 1
            exact &= len(groups) == 1
            steps.append((v, groups))
        return steps, exact

    def _split(self, members, live):
        """The bucket, or mini-buckets of at most ELIMINATION_CELL_LIMIT cells (largest scopes first)."""
        if self._cells(set().union(*(live[i] for i in members))) <= ELIMINATION_CELL_LIMIT:
            return [members]
        groups: list[list] = []
        for i in sorted(members, key=lambda i: (-self._cells(live[i]), i)):
            for g in groups:
                if self._cells(set().union(live[i], *(live[j] for j in g))) <= ELIMINATION_CELL_LIMIT:
                    g.append(i)
                    break
            else:
                groups.append([i])
        return [sorted(g) for g in groups]

    def maximise(self, tables):
        """(max value, a maximiser as a list of indices) of the sum of ``tables`` (one per scope; a table has
        one axis per scope axis, in order).  Labels in no scope get index 0."""
        arrays = dict(enumerate(tables))
        kept = []
        for v, groups in self.steps:
            parts = []
            for members, union, msg in groups:
                acc = None
                for i in members:
                    scope = self.scope_of[i]
                    a = arrays.pop(i).reshape([self.sizes[u] if u in scope else 1 for u in union])
                    acc = a if acc is None else acc + a
                arrays[msg] = acc.max(axis=union.index(v))
                parts.append((union, acc))
            kept.append((v, parts))
        value = math.fsum(float(a) for a in arrays.values())
        x = [0] * len(self.sizes)
        for v, parts in reversed(kept):
            total = sum(acc[tuple(slice(None) if u == v else x[u] for u in union)] for union, acc in parts)
            x[v] = int(np.argmax(total))
        return value, x
