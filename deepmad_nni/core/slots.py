"""The family as arrays: every candidate block of every slot, and a vectorised exact scorer.

``SlotTable`` lists, for one slot, every allowed (c_in, c_out, op, mid) combination with the closed-form
terms of its first and of its repeated blocks (core/terms.py).  A design is one (combo, depth) per slot;
:class:`BatchScorer` computes DeepMAD's exact figures (core/score.py) for many designs at once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .arch import REPEATABLE
from .plan import BATCHES, NUMERICS
from .program import Program
from .rules import CONVENTIONS, convention_rules, expand_depths, penalised_depth_arrays, stage_ends, stage_index
from .score import family_entropy_resolutions
from .terms import block_terms


@dataclass(eq=False)
class SlotTable:
    """All candidate blocks of one slot: (c_in, c_out, op, mid) combos with first/repeated block terms.
    Tables are compared and hashed by identity (structures derived from one are cached per table)."""

    widths: np.ndarray          # sorted output widths of the slot
    ci: np.ndarray              # index into the previous slot's widths (0 for the stem)
    co: np.ndarray              # index into ``widths``
    op: np.ndarray
    mid: np.ndarray
    first: tuple                # (t, n, macs, params) of the first block
    rep: tuple                  # (t, n, macs, params) of each repeated block
    lmin: np.ndarray
    lmax: np.ndarray
    depths: list                # per op, the allowed depths
    delta: np.ndarray           # per output width: s * alpha_i * log(r_i^2 c) when the slot ends stage i
    by_co: list                 # per output width index: the combo indices


def build_slot_tables(program: Program) -> list[SlotTable]:
    """The slot tables of ``program``'s family.  They do not depend on the budgets, so they are built once per
    (family, convention, alpha) and kept (read-only arrays: every solver stage shares them)."""
    return list(_slot_tables(program.family, program.convention, tuple(program.alpha)))


@functools.lru_cache(maxsize=BATCHES.families)
def _slot_tables(fam, convention: str, alpha: tuple) -> tuple:
    s = CONVENTIONS[convention]
    n = len(fam.slots)
    ends = stage_ends(fam.slots)
    stage_of_end = {e: i for i, e in enumerate(ends)}
    area_res = family_entropy_resolutions(fam, convention)   # the r_i the entropy reads
    slots, r = [], fam.resolution
    prev_widths = np.array([fam.in_channels])
    for j, slot in enumerate(fam.slots):
        r_out = -(-r // slot.stride)
        cb = slot.combos(prev_widths, **fam.slot_rules(j))
        widths = np.array(sorted(set(slot.widths)))
        ci = np.searchsorted(prev_widths, cb["c_in"])
        co = np.searchsorted(widths, cb["c_out"])
        blocks = np.array([o.block for o in slot.ops])[cb["op"]]
        kernels = np.array([o.kernel for o in slot.ops])[cb["op"]]
        first = [np.zeros(len(ci)) for _ in range(4)]
        rep = [np.zeros(len(ci)) for _ in range(4)]
        for b in set(blocks.tolist()):
            sel = blocks == b
            mid = np.maximum(cb["mid"][sel], 1)
            for dst, args in ((first, (cb["c_in"][sel], r, slot.stride)), (rep, (cb["c_out"][sel], r_out, 1))):
                c_in, r_in, stride = args
                for arr, val in zip(dst, block_terms(b, c_in, cb["c_out"][sel], kernels[sel], mid, stride, r_in)):
                    arr[sel] = val
        if j == n - 1:  # the classifier (global pool + linear) costs as part of the last slot
            first[2] = first[2] + cb["c_out"] * fam.num_classes
            first[3] = first[3] + cb["c_out"] * fam.num_classes + fam.num_classes
        depths = [np.array(slot.depths_of(o)) for o in slot.ops]
        lmin = np.array([d.min() for d in depths])[cb["op"]]
        lmax = np.array([d.max() for d in depths])[cb["op"]]
        if j in stage_of_end:
            delta = s * alpha[stage_of_end[j]] * np.log(area_res[j] ** 2 * widths.astype(float))
        else:
            delta = np.zeros(len(widths))
        by_co = [np.flatnonzero(co == k) for k in range(len(widths))]
        slots.append(SlotTable(widths, ci, co, cb["op"], cb["mid"], tuple(first), tuple(rep), lmin, lmax, depths,
                           delta, by_co))
        prev_widths, r = widths, r_out
    for sl in slots:
        for value in vars(sl).values():
            for array in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(array, np.ndarray):
                    array.setflags(write=False)
    return tuple(slots)


def totals(sl: SlotTable, idx, depth):
    """(t, n, macs, params) of slot blocks: combos ``idx`` repeated ``depth`` times."""
    return _repeated(sl.first, sl.rep, idx, depth)


def _repeated(first, rep, idx, depth) -> tuple:
    """Each term of ``first`` (the first block's) plus ``depth - 1`` times that of ``rep``, at entries ``idx``."""
    extra = np.asarray(depth) - 1
    return tuple(a[idx] + extra * b[idx] for a, b in zip(first, rep))


class BatchScorer:
    """Exact objective, rho, FLOPs, params and feasibility of many designs (arrays of shape (B, N))."""

    def __init__(self, program: Program, slots: list[SlotTable]):
        fam = program.family
        self.program, self.slots = program, slots
        self.ends = stage_ends(fam.slots)
        self.res = []
        r = fam.resolution
        for slot in fam.slots:
            r = -(-r // slot.stride)
            self.res.append(r)
        self.stage_of = stage_index(fam.slots)
        self.s = CONVENTIONS[program.convention]
        self.rules = convention_rules(program.convention)
        area_res = family_entropy_resolutions(fam, program.convention)
        self.area = np.array([area_res[e] ** 2 for e in self.ends], float)
        # every slot's combos in one table (slot j's from _offsets[j]): a batch's features are one lookup each
        self._offsets = np.cumsum([0] + [len(sl.ci) for sl in slots[:-1]])
        self._first, self._rep = ([np.concatenate([getattr(sl, part)[k] for sl in slots]) for k in range(4)]
                                  for part in ("first", "rep"))
        # and per combo its output width and whether its op repeats and is a bottleneck (Q's op flags)
        self._flags = [np.concatenate([sl.widths[sl.co] for sl in slots])] + [
            np.concatenate([np.array([flag(o) for o in s.ops])[sl.op] for s, sl in zip(fam.slots, slots)])
            for flag in (lambda o: o.block in REPEATABLE, lambda o: o.block == "bottleneck")]

    def column(self, j: int, idx, depth) -> tuple:
        """Features of slot ``j`` for combos ``idx`` at ``depth`` (1-D arrays): t, n, macs, params, width,
        depth, repeatable, bottleneck."""
        return self._lookup(np.asarray(idx) + self._offsets[j], depth)

    def features(self, combos: np.ndarray, depths: np.ndarray) -> list[np.ndarray]:
        """The per-slot features of :meth:`column` as (B, N) arrays, one per feature."""
        return list(self._lookup(combos + self._offsets, np.array(depths)))

    def _lookup(self, at, depth) -> tuple:
        """The features of :meth:`column` at entries ``at`` of the flat table."""
        width, rep, btn = (flag[at] for flag in self._flags)
        return (*_repeated(self._first, self._rep, at, depth), width, depth, rep, btn)

    def __call__(self, combos: np.ndarray, depths: np.ndarray) -> dict:
        combos, depths = np.atleast_2d(combos), np.atleast_2d(depths)
        return self.evaluate(self.features(combos, depths))

    def q(self, depths, repeatable, bottleneck) -> np.ndarray:
        """Q = exp(std of the penalised depths) of designs given as (B, N) depths and op flags (1 below two)."""
        vals, mask = penalised_depth_arrays(depths, repeatable, bottleneck, self.stage_of, self.rules.entry_depths)
        cnt = mask.sum(axis=1)
        mean = np.where(cnt > 0, vals.sum(axis=1) / np.maximum(cnt, 1), 0.0)
        var = np.where(mask, (vals - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        return np.where(cnt > 1, np.exp(np.sqrt(var)), 1.0)

    def within_budgets(self, flops, params) -> np.ndarray:
        """Whether FLOPs and params meet the program's budgets."""
        p = self.program
        ok = np.ones(np.shape(flops), bool)
        if p.flops is not None:
            ok &= flops <= p.flops
        if p.params is not None:
            ok &= params <= p.params
        return ok

    def within_rho(self, rho) -> np.ndarray:
        """Whether rho meets rho_0 (up to the tolerance of Program.violations)."""
        return rho <= self.program.rho * (1 + NUMERICS.same)

    def within(self, rho, flops, params) -> np.ndarray:
        """Whether rho, FLOPs and params meet the program's limits (as Program.violations)."""
        return self.within_rho(rho) & self.within_budgets(flops, params)

    def evaluate(self, features) -> dict:
        """Exact figures of designs given as per-slot features (:meth:`features`)."""
        p = self.program
        t, nl, f, pa, width, depths, rep, btn = features
        s_cum, n_cum = np.cumsum(t, axis=1), np.cumsum(nl, axis=1)
        ends = self.ends
        h = self.s * np.log(self.area[None, :] * width[:, ends]) * s_cum[:, ends]
        entropy = h @ np.array(p.alpha)
        rho_prefix = n_cum[:, ends] / np.exp(s_cum[:, ends] / n_cum[:, ends])
        rho = rho_prefix.max(axis=1) if self.rules.prefix_rho else rho_prefix[:, -1]
        q = self.q(depths, rep, btn)
        flops, params = f.sum(axis=1), pa.sum(axis=1)   # the last slot's terms include the classifier
        ok = self.within(rho, flops, params)
        return {"objective": entropy - p.beta * q, "entropy": entropy, "rho": rho, "q": q, "flops": flops,
                "params": params, "feasible": ok}


def sample_designs(slots: list[SlotTable], count: int, rng: np.random.Generator, *, shallow: float = 0.0):
    """``count`` random designs (combos, depths), drawn slot by slot from the last; dead ends are redrawn.

    With probability ``shallow`` a slot takes its smallest depth and its smallest output width.
    """
    n = len(slots)
    combos, depths = np.zeros((count, n), np.int64), np.zeros((count, n), np.int64)
    b = tries = 0
    while b < count and tries < 50 * count:
        tries += 1
        idx = np.arange(len(slots[-1].ci))
        for j in range(n - 1, -1, -1):
            sl = slots[j]
            if not len(idx):
                break
            small = rng.random() < shallow
            if small:
                idx = idx[sl.co[idx] == sl.co[idx].min()] if j == n - 1 else idx
            c = int(rng.choice(idx))
            ds = sl.depths[sl.op[c]]
            combos[b, j], depths[b, j] = c, (ds.min() if small else rng.choice(ds))
            if j:
                idx = slots[j - 1].by_co[sl.ci[c]]
                if small and len(idx):
                    idx = idx[slots[j - 1].co[idx] == slots[j - 1].co[idx].min()]
        else:
            b += 1
    return combos[:b], depths[:b]


def all_designs(slots: list[SlotTable], limit: int = 2_000_000):
    """Every design of the family as (combos, depths) arrays; ValueError beyond ``limit`` designs."""
    n = len(slots)
    c, d = expand_depths(slots[-1], np.arange(len(slots[-1].ci)))
    combos, depths = c[:, None], d[:, None]
    for j in range(n - 2, -1, -1):
        sl, nxt = slots[j], slots[j + 1]
        parts = [expand_depths(sl, sl.by_co[w]) for w in range(len(sl.widths))]
        need = nxt.ci[combos[:, 0]]
        counts = np.array([len(parts[w][0]) for w in range(len(sl.widths))])[need]
        if counts.sum() > limit:
            raise ValueError(f"The family has more than {limit} designs; enumeration is not possible.")
        rows = np.repeat(np.arange(len(combos)), counts)
        new_c = np.concatenate([parts[w][0] for w in need]) if len(need) else np.zeros(0, np.int64)
        new_d = np.concatenate([parts[w][1] for w in need]) if len(need) else np.zeros(0, np.int64)
        combos = np.concatenate([new_c[:, None], combos[rows]], axis=1)
        depths = np.concatenate([new_d[:, None], depths[rows]], axis=1)
    return combos, depths
