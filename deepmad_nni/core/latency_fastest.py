"""The fastest design of a family under a latency table, by dynamic programming over the chain of slots.

A design's predicted latency is a sum over its slots (each slot's blocks depend only on its own choice and its
input width) plus the head, so the minimum over all designs is a shortest path: state = a slot's output width,
step = one (c_out, op, mid) choice at the op's smallest depth.  It ignores rho, FLOPs and params, so it is a
lower bound on the latency of every feasible design (an infeasibility proof when it exceeds a budget) and a
candidate design to check against the program.
"""
from __future__ import annotations

import math

from .arch import Stage
from .latency import LatencyTable
from .latency_units import Unit, stage_units


def _cost(units: list[Unit], table: LatencyTable, max_macs: float | None) -> float:
    total = 0.0
    for u in units:
        if u.key() in table.entries:
            total += table.unit_ms(u)
        elif max_macs is not None and u.macs > max_macs:
            return math.inf      # a unit over the FLOPs budget: no feasible design runs it
        else:
            table.ms(u)          # raises the table's error naming the unit
    return total


def fastest_design(family, table: LatencyTable, *, max_macs: float | None = None):
    """(milliseconds, Architecture) of the family's fastest design by ``table``; ``(inf, None)`` when every
    design runs a unit over ``max_macs`` MACs.  Units missing from the table raise its ValueError unless their
    MACs exceed ``max_macs``."""
    best = {family.in_channels: (0.0, ())}     # output width -> (ms so far, choices)
    r = family.resolution
    for j, slot in enumerate(family.slots):
        nxt: dict[int, tuple] = {}
        for c_in, (ms_in, choices) in best.items():
            if math.isinf(ms_in):
                continue
            for c_out, op, depth, mid in family.slot_options(j, c_in):
                if depth != min(slot.depths_of(op)):
                    continue
                stage = Stage(op.block, c_in, c_out, slot.stride, op.kernel, depth, mid)
                first, rep = stage_units(stage, r)
                ms = ms_in + _cost(first, table, max_macs) + (depth - 1) * _cost(rep, table, max_macs)
                if ms < nxt.get(c_out, (math.inf,))[0]:
                    nxt[c_out] = (ms, choices + ((c_out, op, depth, mid),))
        best, r = nxt, -(-r // slot.stride)
    done = []
    for c, (ms, choices) in best.items():
        head = Unit("head", c, family.num_classes, r_in=r)
        done.append((ms + _cost([head], table, max_macs), choices))
    ms, choices = min(done, key=lambda t: t[0], default=(math.inf, None))
    if not math.isfinite(ms):
        return math.inf, None
    return ms, family.architecture(choices)
