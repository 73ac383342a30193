"""Best-first branch and bound over prefixes of the labels, each node bounded by the dual with its labels fixed
(:class:`BranchAndBound`)."""
from __future__ import annotations

import heapq
import itertools

import numpy as np

from .space_search import unique
from .space_settings import NODE_ROUNDS, OPTIMAL_TOLERANCE


class BranchAndBound:
    """Best-first branch and bound over the labels in the order ``axes`` (those N(x) depends on first: the
    depths, on the hub spaces; fixing them makes the rho term exact): a node fixes a prefix of them; its bound
    is the dual G minimised with those labels fixed (``NODE_ROUNDS`` rounds from the parent's multipliers),
    valid for every sample of the node.  The program's bound is the largest bound of an open node (or the
    incumbent); a node whose bound is at most the incumbent is closed.  It stops when every node is closed
    (the incumbent is optimal) or the best open node fixes every label."""

    def __init__(self, dual, axes, bound, u, search):
        self.dual, self.axes, self.search = dual, list(axes), search
        self.heap = [(-bound, 0, (), np.asarray(u))]
        self.order = itertools.count(1)
        self.done = not self.axes

    def bound(self, incumbent) -> float:
        return max(incumbent, -self.heap[0][0]) if self.heap else incumbent

    def children(self) -> int:
        """Nodes the next step evaluates (the values of the label the best open node fixes next)."""
        if not self.heap or len(self.heap[0][2]) == len(self.axes):
            return 0
        return self.dual.lag.sizes[self.axes[len(self.heap[0][2])]]

    def step(self, incumbent):
        """Expand the open node of largest bound (or close the search)."""
        tolerance = OPTIMAL_TOLERANCE * max(abs(incumbent), 1.0)
        while self.heap and -self.heap[0][0] <= incumbent + tolerance:
            self.heap = []                       # best-first: every open node is at most the incumbent
        if not self.heap or len(self.heap[0][2]) == len(self.axes):
            self.done = True
            return
        _, _, fixed, u = heapq.heappop(self.heap)
        axis = self.axes[len(fixed)]
        for v in range(self.dual.lag.sizes[axis]):
            child = fixed + ((axis, v),)
            self.dual.fixed = dict(child)
            seen = len(self.dual.maximisers)
            bound, cu = self.dual.minimise(rounds=NODE_ROUNDS, start=u)
            for x in unique(self.dual.maximisers[seen:]):
                self.search.state(x)             # the node's Lagrangian maximisers: candidate designs
            if bound > incumbent + tolerance:
                heapq.heappush(self.heap, (-bound, next(self.order), child, cu))
        self.dual.fixed = None
