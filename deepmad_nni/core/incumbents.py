"""The incumbents (the ``top_k`` best distinct feasible designs found so far) and designs decoded from
slot-table rows; the family's smallest prefixes, which prove budgets infeasible."""
from __future__ import annotations

import heapq
import math

import numpy as np

from .program import Program
from .result import Design
from .slots import SlotTable


class Incumbents:
    """The ``top_k`` best distinct feasible designs seen (a min-heap on the objective)."""

    def __init__(self, program: Program, slots, top_k: int, floor: float = -math.inf):
        self.program, self.slots, self.top_k, self.floor = program, slots, top_k, floor
        self.heap: list = []
        self.keys: set = set()
        self.count = 0

    def threshold(self) -> float:
        return self.heap[0][0] if len(self.heap) >= self.top_k else self.floor

    def offer_design(self, design: Design):
        key = design.architecture.canonical()
        s = design.score
        if key in self.keys or not self.program.feasible(s) or not s.objective > self.threshold():
            return
        self.count += 1
        item = (s.objective, -self.count, design)
        if len(self.heap) < self.top_k:
            heapq.heappush(self.heap, item)
        else:
            old = heapq.heapreplace(self.heap, item)
            self.keys.discard(old[2].architecture.canonical())
        self.keys.add(key)

    def offer(self, combos: np.ndarray, depths: np.ndarray, values: np.ndarray):
        """Designs (rows) with their exact objectives (-inf when infeasible)."""
        for r in np.argsort(-values, kind="stable"):
            if not values[r] > self.threshold():
                break
            design = decode(self.program.family, self.slots,
                             tuple((int(combos[r, j]), int(depths[r, j])) for j in range(len(self.slots) - 1, -1, -1)))
            if design.architecture.canonical() in self.keys:
                continue
            self.offer_design(scored(self.program, design))

    def designs(self) -> list[Design]:
        return [d for _, _, d in sorted(self.heap, key=lambda x: (-x[0], -x[1]))]


def scored(program: Program, design: Design) -> Design:
    """``design`` with its exact figures under ``program``."""
    return Design(design.architecture, program.score(design.architecture), design.choices)


def decode(fam, slots, suffix) -> Design:
    """The design of ``suffix``: one (combo, depth) per slot, the last slot first (unscored)."""
    choices = []
    for j, (c, d) in zip(range(len(slots) - 1, -1, -1), suffix):
        sl = slots[j]
        choices.append((int(sl.widths[sl.co[c]]), fam.slots[j].ops[int(sl.op[c])], int(d), int(sl.mid[c])))
    choices.reverse()
    return Design(fam.architecture(choices), None, tuple(choices))


def min_prefix_costs(slots: list[SlotTable]):
    """Per slot j and output width: the fewest FLOPs / params of slots 0..j ending in that width."""
    fmin, pmin = [], []
    pf = pp = None
    for sl in slots:
        f = sl.first[2] + (sl.lmin - 1) * sl.rep[2]
        p = sl.first[3] + (sl.lmin - 1) * sl.rep[3]
        if pf is not None:
            f, p = f + pf[sl.ci], p + pp[sl.ci]
        tf, tp = np.full(len(sl.widths), np.inf), np.full(len(sl.widths), np.inf)
        np.minimum.at(tf, sl.co, f)
        np.minimum.at(tp, sl.co, p)
        fmin.append(tf)
        pmin.append(tp)
        pf, pp = tf, tp
    return fmin, pmin


def infeasible_message(program: Program, fmin, pmin) -> str:
    lo_f, lo_p = float(np.min(fmin[-1])), float(np.min(pmin[-1]))
    msg = (f"No design of {program.family.name} meets the constraints. The family needs at least {lo_f:.4g} "
           f"FLOPs and {lo_p:.4g} params")
    over = []
    if program.flops is not None and lo_f > program.flops:
        over.append(f"flops budget {program.flops:.4g} is below that")
    if program.params is not None and lo_p > program.params:
        over.append(f"params budget {program.params:.4g} is below that")
    if over:
        return msg + "; the " + " and the ".join(over) + "."
    return msg + f"; within the budgets no design reaches rho <= {program.rho:.4g} (raise rho or the budgets)."
