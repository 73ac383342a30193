"""Neighbourhood search: the branch and bound on a box around the incumbent, re-centred while it improves.

The box keeps, per slot, the widths and mids ``radius`` grid steps around the incumbent's, depths within
``depth_radius``, and every op.  It is a family of its own, small enough that its relaxation is much
tighter than the whole family's; the caller's ``search`` (the box plan, core/plan.py) searches it with the
incumbent's objective as the floor, so it returns a better design or none.  A primal heuristic: it proves
nothing about the family.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .family import Family, Slot
from .plan import Box
from .program import Program
from .result import Design


@dataclass
class Improvement:
    designs: list = field(default_factory=list)   # every improved design, best last
    boxes: int = 0
    improvements: int = 0


def _near(values, x, radius: int):
    values = sorted(set(values))
    i = min(range(len(values)), key=lambda k: abs(values[k] - x))
    return tuple(values[max(0, i - radius): i + radius + 1])


def box_family(family: Family, choices, radius: int, depth_radius: int) -> Family:
    """The family narrowed to a box around ``choices``: nearby widths, mids and depths, every op."""
    slots = []
    for slot, (c_out, op, depth, mid) in zip(family.slots, choices):
        mids = _near(slot.mids, mid, radius) if op.mid_from_grid else slot.mids
        depths = tuple(d for d in slot.depths if abs(d - depth) <= depth_radius) or (depth,)
        slots.append(Slot(slot.stride, _near(slot.widths, c_out, radius), slot.ops, depths, mids))
    return Family(f"{family.name}[box]", tuple(slots), family.resolution, family.in_channels, family.num_classes,
                  family.max_width_ratio, family.mid_min_ratio, default_rho=family.default_rho)


def improve(program: Program, design: Design, box: Box, *, box_time: float, deadline: float, search) -> Improvement:
    """Re-centre the box on each better design; when a box brings nothing, widen it once (``box.wide_radius``)
    and stop when that brings nothing either, or when the deadline passes.  Each box is searched by
    ``search(program, floor=, node_limit=, time_limit=)`` (a DesignResult) for at most ``radius * box.nodes``
    nodes (so that, with time to spare, the same input gives the same result) and ``radius * box_time``
    seconds."""
    out = Improvement()
    current, radius = design, box.radius
    while time.perf_counter() + box.last_share * box_time < deadline:
        fam = box_family(program.family, current.choices, radius, box.depth_radius)
        sub = Program.create(fam, flops=program.flops, params=program.params, rho=program.rho, alpha=program.alpha,
                             beta=program.beta, convention=program.convention)
        res = search(sub, floor=current.score.objective, node_limit=radius * box.nodes,
                     time_limit=min(radius * box_time, deadline - time.perf_counter()))
        out.boxes += 1
        if res.designs and res.objective > current.score.objective:
            current, radius = res.designs[0], box.radius
            out.designs.append(current)
            out.improvements += 1
        elif radius == box.radius:
            radius = box.wide_radius
        else:
            break
    return out
