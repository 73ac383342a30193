"""MathNAS's program: the best one-hot designs of a block space under linear budgets, solved exactly by HiGHS.

A design picks one choice ``d_i`` of each block ``i`` (a block is an NNI label: a LayerChoice, an
``nni.choice``, a Repeat depth, one input of an InputChoice).  With one binary ``x_ij`` per (block, choice)
the program is (MathNAS, Wang et al., NeurIPS 2023, eq. 4-5 with accuracy as the sum of block contributions)::

    maximise    sum_ij s_ij x_ij                       s_ij: the contribution of choice j at block i
    subject to  sum_j x_ij = 1           for every block i              (one-hot)
                lb_c <= sum_ij w^c_ij x_ij <= ub_c  for every constraint c  (budgets, cardinalities)
                sum_i x_{i,e_i} <= m - 1 for every excluded design e    (integer "no-good" cuts)
                x binary, x_ij = 0 where choice j of block i is not allowed

:func:`best_designs` returns the ``k`` best distinct designs: the optimum, then the optimum with a no-good
cut on each design found so far, and so on (``scipy.optimize.milp``, HiGHS branch and bound with
``mip_rel_gap=0``, so each is optimal up to HiGHS's absolute gap of 1e-6 on the objective).  No-good cuts
weaken the LP relaxation of a budgeted program: past ~50 cuts a solve takes ~0.3 s.  :func:`iter_designs`
yields the same sequence lazily by Lawler's partition of the remaining designs (after the best design d,
subproblem r fixes blocks 0..r-1 to d's choices and forbids d's choice at block r), each subproblem a milp
with bounds only: about ``m`` fast solves per design, however many came before.  Every design
returned is re-checked in exact arithmetic against every constraint (a design HiGHS accepted within its
feasibility tolerance but that violates a bound is cut and not returned).  The outcome is a
:class:`BlockILPResult`, never an exception: ``status`` is ``"optimal"`` (k designs), ``"exhausted"``
(fewer than k feasible designs exist; all are listed), ``"infeasible"`` (none exists) or ``"time_limit"``.

numpy and scipy (>= 1.9, for ``milp``) only.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

STATUSES = ("optimal", "exhausted", "infeasible", "time_limit")
_FEAS_TOL = 1e-9   # relative slack of the exact re-check of a design against a constraint


@dataclass(frozen=True)
class OneHotConstraint:
    """``lb <= sum_i weights[i][d_i] <= ub`` for a design ``d``: a budget (``ub``) or a cardinality (both)."""

    name: str
    weights: tuple          # one 1-d array per block, one entry per choice
    lb: float = -math.inf
    ub: float = math.inf

    def value(self, design) -> float:
        return float(sum(w[j] for w, j in zip(self.weights, design)))

    def holds(self, design) -> bool:
        v, scale = self.value(design), max(1.0, abs(self.lb) if math.isfinite(self.lb) else 0.0,
                                           abs(self.ub) if math.isfinite(self.ub) else 0.0)
        return self.lb - _FEAS_TOL * scale <= v <= self.ub + _FEAS_TOL * scale


@dataclass
class BlockILPResult:
    """What :func:`best_designs` found: designs (tuples of choice indices) best first, their objectives."""

    status: str
    message: str
    designs: list = field(default_factory=list)
    objectives: list = field(default_factory=list)
    solve_s: float = 0.0
    milp_calls: int = 0
    cut_by_recheck: int = 0     # designs HiGHS returned within its tolerance that the exact re-check refused

    @property
    def best(self):
        return self.designs[0] if self.designs else None


def _check(scores, constraints, k, exclude, allowed, time_limit):
    """The one validation at the boundary; returns normalised (scores, constraints, exclude, allowed)."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        scores = list(scores)
    try:
        scores = [np.asarray(s, dtype=float).reshape(-1) for s in scores]
    except (TypeError, ValueError):
        raise ValueError(f"scores must be a sequence of 1-d arrays of numbers, but got {scores!r}.") from None
    if not scores or any(s.size == 0 for s in scores):
        raise ValueError(f"scores must list at least one block, each with at least one choice, but got "
                         f"{[s.size for s in scores]} choices per block.")
    if not all(np.isfinite(s).all() for s in scores):
        raise ValueError("scores must be finite, but got a NaN or an infinity.")
    shape = [s.size for s in scores]
    out = []
    for c in constraints:
        if not isinstance(c, OneHotConstraint):
            raise ValueError(f"constraints must be OneHotConstraint, but got {type(c).__name__}.")
        w = [np.asarray(x, dtype=float).reshape(-1) for x in c.weights]
        if [x.size for x in w] != shape:
            raise ValueError(f"constraint {c.name!r} must have {shape} weights per block, but got "
                             f"{[x.size for x in w]}.")
        if not all(np.isfinite(x).all() for x in w) or math.isnan(c.lb) or math.isnan(c.ub) or c.lb > c.ub:
            raise ValueError(f"constraint {c.name!r} must have finite weights and lb <= ub, but got "
                             f"lb={c.lb!r}, ub={c.ub!r}.")
        out.append(OneHotConstraint(c.name, tuple(w), float(c.lb), float(c.ub)))
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, but got {k!r}.")
    ex = []
    for e in exclude:
        e = tuple(int(j) for j in e)
        if len(e) != len(shape) or any(not 0 <= j < n for j, n in zip(e, shape)):
            raise ValueError(f"exclude must hold designs of {len(shape)} choice indices within {shape}, "
                             f"but got {e!r}.")
        ex.append(e)
    if allowed is None:
        allowed = [np.ones(n, dtype=bool) for n in shape]
    else:
        allowed = [np.asarray(a, dtype=bool).reshape(-1) for a in allowed]
        if [a.size for a in allowed] != shape:
            raise ValueError(f"allowed must have {shape} entries per block, but got {[a.size for a in allowed]}.")
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None, but got {time_limit!r}.")
    return scores, out, ex, allowed


def best_designs(scores: Sequence, *, constraints: Sequence[OneHotConstraint] = (), k: int = 1,
                 exclude: Sequence = (), allowed: Sequence | None = None,
                 time_limit: float | None = None) -> BlockILPResult:
    """The ``k`` best distinct designs maximising ``sum_i scores[i][d_i]`` under ``constraints``.

    ``scores``: one 1-d array per block (ragged).  ``exclude``: designs never returned (evaluated ones, or
    ones found over a budget by a profiler).  ``allowed``: per block a boolean mask of the choices that may
    be picked (default all).  ``time_limit``: seconds for all solves together (None: no limit)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    scores, constraints, exclude, allowed = _check(scores, constraints, k, exclude, allowed, time_limit)
    t0 = time.perf_counter()
    shape = [s.size for s in scores]
    offsets = np.concatenate([[0], np.cumsum(shape)])
    nvar, m = int(offsets[-1]), len(shape)
    c = -np.concatenate(scores)
    upper = np.concatenate([a.astype(float) for a in allowed])
    onehot = np.zeros((m, nvar))
    for i in range(m):
        onehot[i, offsets[i]:offsets[i + 1]] = 1.0
    rows, lbs, ubs = [onehot], [np.ones(m)], [np.ones(m)]
    for con in constraints:
        w = np.concatenate(con.weights)
        scale = max(np.abs(w).max(), abs(con.lb) if math.isfinite(con.lb) else 0.0,
                    abs(con.ub) if math.isfinite(con.ub) else 0.0, 1e-300)
        rows.append(w[None, :] / scale)      # rows scaled to O(1) for HiGHS's absolute tolerances
        lbs.append(np.array([con.lb / scale]))
        ubs.append(np.array([con.ub / scale]))

    def cut(design):
        row = np.zeros(nvar)
        row[[offsets[i] + j for i, j in enumerate(design)]] = 1.0
        rows.append(row[None, :])
        lbs.append(np.array([-np.inf]))
        ubs.append(np.array([m - 1.0]))

    for e in exclude:
        cut(e)
    result = BlockILPResult("optimal", "")
    while len(result.designs) < k:
        options = {"mip_rel_gap": 0.0, "presolve": True}
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - t0)
            if left <= 0:
                result.status = "time_limit"
                break
            options["time_limit"] = left
        res = milp(c, integrality=np.ones(nvar), bounds=Bounds(np.zeros(nvar), upper),
                   constraints=LinearConstraint(np.vstack(rows), np.concatenate(lbs), np.concatenate(ubs)),
                   options=options)
        result.milp_calls += 1
        if res.status == 2 or (res.x is None and res.status != 1):   # infeasible (or no solution at all)
            result.status = "exhausted" if result.designs else "infeasible"
            break
        if res.x is None or res.status == 1:                            # time or node limit
            result.status = "time_limit"
            break
        x = np.round(res.x).astype(int)
        design = tuple(int(np.argmax(x[offsets[i]:offsets[i + 1]])) for i in range(m))
        cut(design)
        if not all(allowed[i][j] for i, j in enumerate(design)) or not all(con.holds(design) for con in constraints):
            result.cut_by_recheck += 1
            continue
        result.designs.append(design)
        result.objectives.append(float(sum(s[j] for s, j in zip(scores, design))))
    result.solve_s = time.perf_counter() - t0
    n = len(result.designs)
    result.message = {
        "optimal": f"{n} best design(s) found",
        "exhausted": f"only {n} feasible design(s) exist; all listed",
        "infeasible": "no design meets the constraints" + "".join(
            f"; {con.name} needs >= {_least(con, allowed):.6g} (ub {con.ub:.6g})" for con in constraints
            if math.isfinite(con.ub) and _least(con, allowed) > con.ub),
        "time_limit": f"time limit reached after {n} design(s)",
    }[result.status]
    return result


def _least(con: OneHotConstraint, allowed) -> float:
    """The smallest value of ``con`` over all allowed designs (the block-wise minima)."""
    return float(sum(w[a].min() if a.any() else math.inf for w, a in zip(con.weights, allowed)))


def iter_designs(scores: Sequence, *, constraints: Sequence[OneHotConstraint] = (), allowed: Sequence | None = None,
                 stats: dict | None = None):
    """Every feasible design, best first (Lawler's k-best partition, see the module docstring); exact like
    :func:`best_designs` (same HiGHS options, same exact re-check).  ``stats`` (a dict), when given, is kept
    up to date with ``milp_calls`` and ``solve_s``."""
    import heapq
    from itertools import count

    scores, constraints, _, allowed = _check(scores, constraints, 1, (), allowed, None)
    stats = {} if stats is None else stats
    stats.setdefault("milp_calls", 0)
    stats.setdefault("solve_s", 0.0)
    solve = _Subproblem(scores, constraints)
    heap, tie = [], count()

    def push(mask):
        t0 = time.perf_counter()
        design = solve(mask)
        stats["milp_calls"] += 1
        stats["solve_s"] += time.perf_counter() - t0
        if design is not None:
            value = float(sum(s[j] for s, j in zip(scores, design)))
            heapq.heappush(heap, (-value, next(tie), design, mask))

    push([a.copy() for a in allowed])
    while heap:
        neg, _, design, mask = heapq.heappop(heap)
        for r, j in enumerate(design):          # partition the rest of this subproblem around ``design``
            if mask[r].sum() > 1:
                sub = [a.copy() for a in mask]
                for i in range(r):
                    sub[i][:] = False
                    sub[i][design[i]] = True
                sub[r][j] = False
                push(sub)
        if all(con.holds(design) for con in constraints):
            yield design, -neg


class _Subproblem:
    """milp over the one-hot program with per-choice upper bounds (the mask); the best design or None."""

    def __init__(self, scores, constraints):
        self.shape = [s.size for s in scores]
        self.offsets = np.concatenate([[0], np.cumsum(self.shape)]).astype(int)
        nvar, m = int(self.offsets[-1]), len(self.shape)
        self.c = -np.concatenate(scores)
        rows, lbs, ubs = [np.zeros((m, nvar))], [np.ones(m)], [np.ones(m)]
        for i in range(m):
            rows[0][i, self.offsets[i]:self.offsets[i + 1]] = 1.0
        for con in constraints:
            w = np.concatenate(con.weights)
            scale = max(np.abs(w).max(), abs(con.lb) if math.isfinite(con.lb) else 0.0,
                        abs(con.ub) if math.isfinite(con.ub) else 0.0, 1e-300)
            rows.append(w[None, :] / scale)
            lbs.append(np.array([con.lb / scale]))
            ubs.append(np.array([con.ub / scale]))
        self.a, self.lb, self.ub = np.vstack(rows), np.concatenate(lbs), np.concatenate(ubs)

    def __call__(self, mask):
        from scipy.optimize import Bounds, LinearConstraint, milp
        if not all(a.any() for a in mask):
            return None
        upper = np.concatenate([a.astype(float) for a in mask])
        res = milp(self.c, integrality=np.ones(upper.size), bounds=Bounds(np.zeros(upper.size), upper),
                   constraints=LinearConstraint(self.a, self.lb, self.ub),
                   options={"mip_rel_gap": 0.0, "presolve": True})
        if res.x is None or res.status != 0:
            return None
        x = np.round(res.x).astype(int)
        return tuple(int(np.argmax(x[self.offsets[i]:self.offsets[i + 1]])) for i in range(len(self.shape)))
