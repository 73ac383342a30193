"""Rules of the DeepMAD program that the solver's modules share, each written once.

* :func:`stage_ends`: a new stage starts at every stride-2 slot after the first (the spec's "Objects").
* :func:`penalised_groups`: which slots' depths Q = exp(std) is taken over (core/score.py's
  ``penalised_depths`` on designs; here on the family's slots).
* :func:`expand_depths`: a slot's combos, each repeated once per depth its op allows.
"""
from __future__ import annotations

import numpy as np

from .arch import REPEATABLE
from .score import convention_rules


def stage_ends(slots) -> list[int]:
    """Index of the last slot of each stage: a slot before a stride-2 slot, and the last slot."""
    n = len(slots)
    return [j for j in range(n) if j == n - 1 or slots[j + 1].stride == 2]


def penalised_groups(family, convention: str) -> np.ndarray | None:
    """(slots, groups) 0/1 matrix: the depths Q is taken over are ``depths @ groups``; None when that
    depends on the design (a slot with repeatable and other ops, or a first repeated slot with and without
    bottlenecks).  Official/tinynas conventions: one group per repeatable slot, less the first two when the
    first repeatable slot is a bottleneck (the TinyNAS code); paper: one group per stage, its repeatable
    slots summed."""
    n = len(family.slots)
    rep = []
    for slot in family.slots:
        flags = {op.block in REPEATABLE for op in slot.ops}
        if len(flags) > 1:
            return None
        rep.append(flags.pop())
    if convention_rules(convention).entry_depths:
        counted = [j for j in range(n) if rep[j]]
        if counted:
            btn = {op.block == "bottleneck" for op in family.slots[counted[0]].ops}
            if len(btn) > 1:
                return None
            if btn.pop():
                counted = counted[2:]
        g = np.zeros((n, len(counted)))
        g[counted, np.arange(len(counted))] = 1.0
        return g
    stage = np.searchsorted(stage_ends(family.slots), np.arange(n))
    cols = [[1.0 if rep[j] and stage[j] == i else 0.0 for j in range(n)] for i in range(int(stage.max()) + 1)]
    return np.array([c for c in cols if any(c)]).T.reshape(n, -1)


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
