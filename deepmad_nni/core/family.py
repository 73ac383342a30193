"""Search families: a staged CNN family as a chain of searchable stage entries ("slots").

A :class:`Family` fixes the input, the strides and the block type of every slot; each slot chooses its
output width, kernel, depth and bottleneck width / expansion from finite lists.  Guideline 3 and the
official mutator's rules are family-level constraints: stage output widths never decrease along the
network (``c_out >= c_in`` for every slot after the stem), a slot's output stays within
``max_width_ratio`` x its input, and a bottleneck width lies in ``[c_out / 10, c_out]``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .arch import Architecture, Stage
from .rules import stage_ends


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

    def mids(self, c_in: np.ndarray, c_out: np.ndarray) -> np.ndarray:
        """:meth:`mid` of many (c_in, c_out) pairs (ops with ``mid_from_grid`` aside)."""
        if not self.expansion:
            return np.zeros(len(c_in), np.int64)
        base = np.asarray(c_in if self.base == "in" else c_out, dtype=np.float64)
        return np.maximum(8, np.round(self.expansion * base / 8.0) * 8).astype(np.int64)


@dataclass(frozen=True)
class Slot:
    """One searchable stage entry: its stride and the choices of width, op, depth and mid width."""

    stride: int
    widths: tuple[int, ...]
    ops: tuple[Op, ...]
    depths: tuple[int, ...] = (1,)
    mids: tuple[int, ...] = ()  # grid of bottleneck widths, for ops with mid_from_grid

    def depths_of(self, op: Op) -> tuple[int, ...]:
        return (1,) if op.block in ("conv", "skip") else self.depths

    def combos(self, c_ins, *, monotone: bool, max_width_ratio: float | None, mid_min_ratio: float) -> dict:
        """Every allowed (c_in, c_out, op index, mid) for inputs ``c_ins``, as numpy arrays (depth aside)."""
        c_in, c_out, op = (a.ravel() for a in np.meshgrid(np.asarray(c_ins), np.asarray(self.widths),
                                                           np.arange(len(self.ops)), indexing="ij"))
        keep = np.ones(c_in.shape, bool)
        if monotone:
            keep &= c_out >= c_in
        if max_width_ratio is not None:
            keep &= c_out <= max_width_ratio * c_in
        c_in, c_out, op = c_in[keep], c_out[keep], op[keep]
        rows = []
        for o, spec in enumerate(self.ops):
            sel = op == o
            if spec.mid_from_grid:
                mids = np.asarray(self.mids)
                ci, m = (a.ravel() for a in np.meshgrid(c_in[sel], mids, indexing="ij"))
                co = np.repeat(c_out[sel], len(mids))
                ok = (m >= mid_min_ratio * co) & (m <= co)
                rows.append((ci[ok], co[ok], np.full(ok.sum(), o), m[ok]))
            else:
                rows.append((c_in[sel], c_out[sel], np.full(sel.sum(), o), spec.mids(c_in[sel], c_out[sel])))
        cols = [np.concatenate([r[i] for r in rows]).astype(np.int64) for i in range(4)]
        return dict(zip(("c_in", "c_out", "op", "mid"), cols))

    def options(self, c_in: int, *, monotone: bool, max_width_ratio: float | None, mid_min_ratio: float):
        """Every (c_out, op, depth, mid) allowed after an input of ``c_in`` channels."""
        cb = self.combos([c_in], monotone=monotone, max_width_ratio=max_width_ratio, mid_min_ratio=mid_min_ratio)
        for c_out, o, mid in zip(cb["c_out"].tolist(), cb["op"].tolist(), cb["mid"].tolist()):
            for depth in self.depths_of(self.ops[o]):
                yield c_out, self.ops[o], depth, mid


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

    def slot_rules(self, j: int) -> dict:
        """The width rules of slot ``j``: monotone after the stem; the ratio cap spares stem and 1x1 head."""
        repeatable = any(op.block != "conv" for op in self.slots[j].ops)
        return {"monotone": j > 0, "max_width_ratio": self.max_width_ratio if j > 0 and repeatable else None,
                "mid_min_ratio": self.mid_min_ratio}

    def slot_options(self, j: int, c_in: int) -> list[tuple]:
        return list(self.slots[j].options(c_in, **self.slot_rules(j)))

    def slot_inputs(self, j: int) -> tuple[int, ...]:
        """The input widths slot ``j`` can see."""
        return (self.in_channels,) if j == 0 else tuple(sorted(set(self.slots[j - 1].widths)))

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
        """Number of architectures (counted by dynamic programming over the chain; cached)."""
        return _size(self)

    def _count(self) -> int:
        counts = {self.in_channels: 1}
        for j, slot in enumerate(self.slots):
            cb = slot.combos(sorted(counts), **self.slot_rules(j))
            ways = np.array([len(slot.depths_of(op)) for op in slot.ops])[cb["op"]]
            pairs, index = np.unique(np.stack([cb["c_in"], cb["c_out"]], axis=1), axis=0, return_inverse=True)
            per_pair = np.bincount(index.ravel(), weights=ways).astype(np.int64)
            nxt: dict[int, int] = {}
            for (c_in, c_out), k in zip(pairs.tolist(), per_pair.tolist()):
                nxt[c_out] = nxt.get(c_out, 0) + counts[c_in] * k
            counts = nxt
        return sum(counts.values())

    def num_stages(self) -> int:
        return len(stage_ends(self.slots))


@functools.lru_cache(maxsize=64)
def _size(family: Family) -> int:
    return family._count()


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
