"""Neighbourhood search: the branch and bound on a box around the incumbent, re-centred while it improves.

The box keeps, per slot, the widths and mids one grid step around the incumbent's, depths within two,
and every op.  It is a family of its own, small enough that its relaxation is much tighter than the whole
family's; the branch and bound searches it with the incumbent's objective as the floor, so it returns a
better design or none.  A primal heuristic for the branch and bound: it proves nothing about the family.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .family import Family, Slot
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


def box_family(family: Family, choices, radius: int = 1, depth_radius: int = 2) -> Family:
    """The family narrowed to a box around ``choices``: nearby widths, mids and depths, every op."""
    slots = []
    for slot, (c_out, op, depth, mid) in zip(family.slots, choices):
        mids = _near(slot.mids, mid, radius) if op.mid_from_grid else slot.mids
        depths = tuple(d for d in slot.depths if abs(d - depth) <= depth_radius) or (depth,)
        slots.append(Slot(slot.stride, _near(slot.widths, c_out, radius), slot.ops, depths, mids))
    return Family(f"{family.name}[box]", tuple(slots), family.resolution, family.in_channels, family.num_classes,
                  family.max_width_ratio, family.mid_min_ratio, default_rho=family.default_rho)


def improve(program: Program, design: Design, *, deadline: float, box_time: float,
            box_nodes: int = 20_000) -> Improvement:
    """Re-centre the box on each better design; when a box brings nothing, widen it once (two grid steps)
    and stop when that brings nothing either, or when the deadline passes.  Each box is searched for at
    most ``box_nodes`` nodes (so that, with time to spare, the same input gives the same result) and
    ``box_time`` seconds."""
    from .branch_and_bound import solve_branch_and_bound
    out = Improvement()
    current, radius = design, 1
    while time.perf_counter() + 0.2 * box_time < deadline:
        box = box_family(program.family, current.choices, radius=radius)
        sub = Program.create(box, flops=program.flops, params=program.params, rho=program.rho, alpha=program.alpha,
                             beta=program.beta, convention=program.convention)
        res = solve_branch_and_bound(sub, heuristic_share=0.0, floor=current.score.objective,
                                     node_limit=radius * box_nodes,
                                     time_limit=min(radius * box_time, deadline - time.perf_counter()))
        out.boxes += 1
        if res.designs and res.objective > current.score.objective:
            current, radius = res.designs[0], 1
            out.designs.append(current)
            out.improvements += 1
        elif radius == 1:
            radius = 2
        else:
            break
    return out
