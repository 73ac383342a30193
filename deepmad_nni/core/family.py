"""Search families: a staged CNN family as a chain of searchable stage entries ("slots").

A :class:`Family` fixes the input, the strides and the block type of every slot; each slot chooses its
output width, kernel, depth and bottleneck width / expansion from finite lists.  Guideline 3 and the
official mutator's rules are family-level constraints: stage output widths never decrease along the
network (``c_out >= c_in`` for every slot after the stem), a slot's output stays within
``max_width_ratio`` x its input, and a bottleneck width lies in ``[c_out / 10, c_out]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product

from .arch import Architecture, Stage


def round8(x: float) -> int:
    """Nearest multiple of 8, at least 8."""
    return max(8, int(round(x / 8.0)) * 8)


@dataclass(frozen=True)
class Op:
    """A block variant of a slot: block type, kernel, and how the middle width is set.

    ``expansion`` sets ``mid = round8(expansion * base)`` with ``base`` the slot's input (``"in"``) or
    output (``"out"``) width; ``mid_from_grid`` takes ``mid`` from the slot's ``mids`` list instead.
    """

    block: str
    kernel: int = 3
    expansion: float = 0.0
    base: str = "out"
    mid_from_grid: bool = False

    def mid(self, c_in: int, c_out: int, grid_mid: int = 0) -> int:
        if self.mid_from_grid:
            return grid_mid
        if self.expansion:
            return round8(self.expansion * (c_in if self.base == "in" else c_out))
        return 0


@dataclass(frozen=True)
class Slot:
    """One searchable stage entry: its stride and the choices of width, op, depth and mid width."""

    stride: int
    widths: tuple[int, ...]
    ops: tuple[Op, ...]
    depths: tuple[int, ...] = (1,)
    mids: tuple[int, ...] = ()  # grid of bottleneck widths, for ops with mid_from_grid

    def options(self, c_in: int, *, monotone: bool, max_width_ratio: float | None, mid_min_ratio: float):
        """Every (c_out, op, depth, mid) allowed after an input of ``c_in`` channels."""
        for c_out, op, depth in product(self.widths, self.ops, self.depths):
            if monotone and c_out < c_in:
                continue
            if max_width_ratio is not None and c_out > max_width_ratio * c_in:
                continue
            if op.block in ("conv", "skip") and depth != 1:
                continue
            if op.mid_from_grid:
                for m in self.mids:
                    if mid_min_ratio * c_out <= m <= c_out:
                        yield c_out, op, depth, m
            else:
                yield c_out, op, depth, op.mid(c_in, c_out)


@dataclass(frozen=True)
class Family:
    """A staged CNN family: input, slots (stem first), classifier, and the width rules."""

    name: str
    slots: tuple[Slot, ...]
    resolution: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    max_width_ratio: float | None = 4.0
    mid_min_ratio: float = 0.1
    description: str = ""
    default_rho: float = 0.3
    tags: tuple[str, ...] = field(default=())

    def slot_options(self, j: int, c_in: int) -> list[tuple]:
        monotone = j > 0  # the stem takes the image channels
        repeatable = any(op.block not in ("conv",) for op in self.slots[j].ops)
        ratio = self.max_width_ratio if j > 0 and repeatable else None  # stem and 1x1 head are exempt
        return list(self.slots[j].options(c_in, monotone=monotone, max_width_ratio=ratio,
                                          mid_min_ratio=self.mid_min_ratio))

    def architecture(self, choices) -> Architecture:
        """Architecture from one (c_out, op, depth, mid) choice per slot."""
        if len(choices) != len(self.slots):
            raise ValueError(f"choices must have one entry per slot ({len(self.slots)}), but got {len(choices)}.")
        stages, c_in = [], self.in_channels
        for slot, (c_out, op, depth, mid) in zip(self.slots, choices):
            stages.append(Stage(op.block, c_in, c_out, slot.stride, op.kernel, depth, mid))
            c_in = c_out
        return Architecture(tuple(stages), self.resolution, self.in_channels, self.num_classes)

    def enumerate(self):
        """Every architecture of the family (brute force; only for small families)."""
        def rec(j, c_in, prefix):
            if j == len(self.slots):
                yield self.architecture(prefix)
                return
            for opt in self.slot_options(j, c_in):
                yield from rec(j + 1, opt[0], prefix + [opt])
        yield from rec(0, self.in_channels, [])

    def size(self) -> int:
        """Number of architectures (counted by dynamic programming over the chain)."""
        counts = {self.in_channels: 1}
        for j in range(len(self.slots)):
            nxt: dict[int, int] = {}
            for c_in, n in counts.items():
                for opt in self.slot_options(j, c_in):
                    nxt[opt[0]] = nxt.get(opt[0], 0) + n
            counts = nxt
        return sum(counts.values())

    def num_stages(self) -> int:
        return 1 + sum(1 for j, s in enumerate(self.slots) if j > 0 and s.stride == 2)


def log_grid(lo: int, hi: int, ratio: float = 1.2) -> tuple[int, ...]:
    """Multiples of 8 from ``lo`` to ``hi``, about ``ratio`` apart (every multiple of 8 up to 64)."""
    vals, x = set(), float(lo)
    while x <= hi * 1.0001:
        vals.add(round8(x))
        x = max(x * ratio, x + 8)
    vals.add(round8(hi))
    return tuple(sorted(v for v in vals if lo <= v <= hi))


def describe(family: Family) -> str:
    return (f"{family.name}: {len(family.slots)} slots, {family.num_stages()} stages, "
            f"{family.resolution}x{family.resolution}, ~10^{math.log10(max(family.size(), 1)):.1f} architectures")
