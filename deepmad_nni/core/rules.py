"""Rules of the DeepMAD program, each written once, for core/score.py (one design) and the solver (families
and batches of designs).

* :data:`CONVENTION_RULES`: how each convention reads the program (core/score.py's module docstring).
* :func:`stage_ends`: a new stage starts at every stride-2 entry after the first (the spec's "Objects").
* :func:`penalised_depth_arrays`: the depths Q = exp(std) is taken over, for designs given as arrays;
  :func:`penalised_groups` is the same rule on a family's slots, when it does not depend on the design.
* :func:`expand_depths`: a slot's combos, each repeated once per depth its op allows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arch import REPEATABLE


@dataclass(frozen=True)
class Convention:
    """How a convention reads the program (core/score.py's module docstring)."""

    s: float                 # entropy scale: H_i = s * log(r_i^2 c_i) * sum log(w_l)
    prefix_rho: bool         # rho is the maximum over the stage prefixes (else the whole network's)
    entry_depths: bool       # Q over each repeated stage entry's depth, TinyNAS's bottleneck rule (else per stage)
    se_resolution_one: bool  # an SE block reports output resolution 1 (the TinyNAS code's quirk)


CONVENTION_RULES: dict[str, Convention] = {
    "official": Convention(s=0.5, prefix_rho=True, entry_depths=True, se_resolution_one=False),
    "paper": Convention(s=1.0, prefix_rho=False, entry_depths=False, se_resolution_one=False),
    "tinynas": Convention(s=0.5, prefix_rho=True, entry_depths=True, se_resolution_one=True),
}
CONVENTIONS = {name: c.s for name, c in CONVENTION_RULES.items()}   # convention -> entropy scale s


def convention_rules(convention: str) -> Convention:
    """The :class:`Convention` named ``convention``; a ValueError naming the choices otherwise."""
    if convention not in CONVENTION_RULES:
        raise ValueError(f"convention must be one of {sorted(CONVENTION_RULES)}, but got {convention!r}.")
    return CONVENTION_RULES[convention]


def stage_ends(entries) -> list[int]:
    """Index of the last entry (family slot or design stage, anything with a ``stride``) of each stage: an
    entry before a stride-2 entry, and the last entry."""
    n = len(entries)
    return [j for j in range(n) if j == n - 1 or entries[j + 1].stride == 2]


def stage_index(entries) -> np.ndarray:
    """The stage of each entry (0-based)."""
    return np.searchsorted(np.array(stage_ends(entries)), np.arange(len(entries)))


def penalised_depth_arrays(depths, repeatable, bottleneck, stage, entry_depths: bool):
    """(values, mask), each (B, K): the depths Q is taken over are ``values[b][mask[b]]`` for design b, given
    its entries' ``depths``, whether they are ``repeatable`` and ``bottleneck`` blocks (each (B, N)) and the
    ``stage`` (N,) of each entry.  ``entry_depths`` (the official/tinynas conventions): the depth of every
    repeated entry, less the first two when the first is a bottleneck (the TinyNAS code); else (paper) one
    depth per stage with repeated entries, the sum of theirs (K = the number of stages)."""
    depths, rep, btn = np.asarray(depths), np.asarray(repeatable, bool), np.asarray(bottleneck, bool)
    if entry_depths:
        rank = np.cumsum(rep, axis=1)
        first = np.argmax(rep, axis=1)
        btn_first = btn[np.arange(len(rep)), first] & rep.any(axis=1)
        mask = rep & ~(btn_first[:, None] & (rank <= 2))
        return np.where(mask, depths, 0).astype(float), mask
    m = int(np.max(stage)) + 1
    values, mask = np.zeros((len(rep), m)), np.zeros((len(rep), m), bool)
    np.add.at(values.T, stage, np.where(rep, depths, 0).T)
    np.logical_or.at(mask.T, stage, rep.T)
    return values, mask


def penalised_groups(family, convention: str) -> np.ndarray | None:
    """(slots, groups) 0/1 matrix: the depths Q is taken over are ``depths @ groups`` (the rule of
    :func:`penalised_depth_arrays` applied to unit depth vectors); None when that depends on the design (a
    slot with repeatable and other ops, or a first repeated slot with and without bottlenecks)."""
    n = len(family.slots)
    rep, btn = [], []
    for slot in family.slots:
        flags = {op.block in REPEATABLE for op in slot.ops}
        kinds = {op.block == "bottleneck" for op in slot.ops}
        if len(flags) > 1:
            return None
        rep.append(flags.pop())
        btn.append(kinds.pop() if len(kinds) == 1 else None)
    rules = convention_rules(convention)
    if rules.entry_depths and any(rep) and btn[rep.index(True)] is None:
        return None
    flags = np.array([rep] * n), np.array([[bool(b) for b in btn]] * n)
    values, mask = penalised_depth_arrays(np.eye(n, dtype=np.int64), *flags, stage_index(family.slots),
                                          rules.entry_depths)
    return values[:, mask[0]]


def counted_slots(family, convention: str) -> list[bool] | None:
    """Per slot, whether its depth is one of Q's, when each of Q's depths is one slot's (else None)."""
    groups = penalised_groups(family, convention)
    if groups is None or (groups.sum(axis=0) > 1).any():
        return None
    return [bool(x) for x in groups.sum(axis=1) > 0]


def expand_depths(sl, idx: np.ndarray):
    """(combos, depths): each combo of ``idx`` (a slot table's) once per depth its op allows."""
    idx = np.asarray(idx, np.int64)
    if not len(idx):
        return idx, np.zeros(0, np.int64)
    ops = sl.op[idx]
    reps = np.array([len(sl.depths[o]) for o in ops], dtype=np.int64)
    return np.repeat(idx, reps), np.concatenate([sl.depths[o] for o in ops])
