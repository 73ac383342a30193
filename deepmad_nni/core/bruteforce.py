"""Exhaustive enumeration.

``solve_enumerate`` scores every design of a small family at once (vectorised) and is the solver's
method for tiny families; ``solve_brute_force`` builds and scores every :class:`Architecture` one by one
with :func:`core.score.score` and serves as the independent oracle of the tests.
"""
from __future__ import annotations

import heapq
import time

import numpy as np

from .incumbents import Incumbents, infeasible_message, min_prefix_costs
from .program import Program
from .result import INFEASIBLE, OPTIMAL, Design, DesignResult
from .slots import BatchScorer, all_designs, build_slot_tables


def solve_enumerate(program: Program, top_k: int = 1) -> DesignResult:
    """Score every design (vectorised); the ``top_k`` best distinct feasible ones, proven optimal."""
    t0 = time.perf_counter()
    slots = build_slot_tables(program)
    combos, depths = all_designs(slots)
    out = BatchScorer(program, slots)(combos, depths)
    best = Incumbents(program, slots, top_k)
    best.offer(combos, depths, np.where(out["feasible"], out["objective"], -np.inf))
    designs = best.designs()
    elapsed = time.perf_counter() - t0
    if not designs:
        fmin, pmin = min_prefix_costs(slots)
        return DesignResult(INFEASIBLE, infeasible_message(program, fmin, pmin), [], float("-inf"), elapsed,
                            len(combos), program.family.name, program.as_dict())
    return DesignResult(OPTIMAL, f"Optimal by enumeration of {len(combos)} designs.", designs,
                        designs[0].score.objective, elapsed, len(combos), program.family.name, program.as_dict())


def solve_brute_force(program: Program, top_k: int = 1) -> DesignResult:
    """Score every architecture of the family; return the ``top_k`` best feasible ones."""
    t0 = time.perf_counter()
    heap: list = []
    seen: set = set()
    n = 0
    min_flops = min_params = float("inf")
    for arch in program.family.enumerate():
        n += 1
        s = program.score(arch)
        min_flops, min_params = min(min_flops, s.flops), min(min_params, s.params)
        key = arch.canonical()
        if program.feasible(s) and key not in seen:
            item = (s.objective, n, arch, s)
            if len(heap) < top_k:
                heapq.heappush(heap, item)
                seen.add(key)
            elif item[0] > heap[0][0]:
                old = heapq.heapreplace(heap, item)
                seen.discard(old[2].canonical())
                seen.add(key)
    designs = [Design(a, s) for _, _, a, s in sorted(heap, key=lambda t: (-t[0], t[1]))]
    elapsed = time.perf_counter() - t0
    if not designs:
        return DesignResult(INFEASIBLE, f"No design meets the constraints; the family reaches at least "
                            f"{min_flops:.4g} FLOPs and {min_params:.4g} params.", [], float("-inf"), elapsed, n,
                            program.family.name, program.as_dict())
    return DesignResult(OPTIMAL, f"Optimal by enumeration of {n} architectures.", designs,
                        designs[0].score.objective, elapsed, n, program.family.name, program.as_dict())
