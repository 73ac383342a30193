"""Rounding a point of the continuous relaxation (core/continuous.py) to designs of the family.

Per slot the candidates are the two grid widths nearest the point's width (in log), the ops of its kernel
with the two mids or expansions nearest its own, and the two depths around its depth.  Every combination
(or, beyond ``limit``, a seeded sample of them) is scored exactly; the best feasible one is returned.
"""
from __future__ import annotations

import math

import numpy as np

from .continuous import ContinuousPoint
from .local_search import LocalSearch


def _nearest_two(grid, x: float) -> list[int]:
    """Indices of the grid values just below and just above ``x`` (in log; one when x is off the grid)."""
    logs = np.log(np.asarray(grid, float))
    i = int(np.searchsorted(logs, math.log(max(x, 1e-12))))
    return sorted({min(max(i - 1, 0), len(logs) - 1), min(i, len(logs) - 1)})


def _slot_options(ls: LocalSearch, j: int, point: ContinuousPoint) -> np.ndarray:
    """Rows (output width index, op, mid index, depth) for slot ``j``."""
    s, slot = ls.slots[j], ls.scorer.program.family.slots[j]
    width, mid, depth, kernel = point.widths[j], point.mids[j], point.depths[j], point.kernels[j]
    ops = [o for o, op in enumerate(slot.ops) if op.kernel == kernel]
    rows = []
    for co in _nearest_two(s.sl.widths, width):
        if slot.ops[ops[0]].mid_from_grid:
            pairs = [(o, mi) for o in ops for mi in _nearest_two(s.mids, mid)]
        elif slot.ops[ops[0]].expansion:
            base = width if slot.ops[ops[0]].base == "out" else (point.widths[j - 1] if j else ls.family_in)
            es = np.array([slot.ops[o].expansion for o in ops])
            order = np.argsort(es)
            pairs = [(ops[order[i]], 0) for i in _nearest_two(es[order], mid / base)]
        else:
            pairs = [(o, 0) for o in ops]
        for o, mi in pairs:
            allowed = np.asarray(s.sl.depths[o])
            ds = {int(allowed[np.argmin(np.abs(allowed - d))]) for d in (math.floor(depth), math.ceil(depth))}
            rows += [(co, o, mi, d) for d in sorted(ds)]
    return np.array(rows, np.int64)


def round_point(ls: LocalSearch, point: ContinuousPoint, *, limit: int = 8192, seed: int = 0):
    """(combos, depths, value) of the best feasible rounding of ``point``, or None when none is feasible."""
    options = [_slot_options(ls, j, point) for j in range(ls.n)]
    sizes = [len(o) for o in options]
    total = math.prod(sizes)
    if total <= limit:
        pick = np.stack([a.ravel() for a in np.meshgrid(*[np.arange(k) for k in sizes], indexing="ij")], axis=1)
    else:
        rng = np.random.default_rng(seed)
        pick = np.stack([rng.integers(0, k, limit) for k in sizes], axis=1)
    combos = np.zeros(pick.shape, np.int64)
    depths = np.zeros(pick.shape, np.int64)
    ci = np.zeros(len(pick), np.int64)
    for j, opts in enumerate(options):
        row = opts[pick[:, j]]
        combos[:, j] = ls.slots[j].resolve(ci, row[:, 0], row[:, 1], row[:, 2])
        depths[:, j] = row[:, 3]
        ci = row[:, 0]
    ok = (combos >= 0).all(axis=1)
    if not ok.any():
        return None
    combos, depths = combos[ok], depths[ok]
    out = ls.scorer(combos, depths)
    values = np.where(out["feasible"], out["objective"], -np.inf)
    i = int(np.argmax(values))
    if not np.isfinite(values[i]):
        return None
    return combos[i], depths[i], float(values[i])


MARGINS = (0.0, 0.01, 0.03)   # relative room left in the budgets and rho when rounding keeps failing


def relax_and_round(ls: LocalSearch, *, start: float = 0.3, kinds=("global", "shift"), seed: int = 0):
    """A design from the continuous relaxation: solve it from ``start`` (core/continuous.py), round its point
    (:func:`round_point`), and climb (core/local_search.py, neighbourhoods ``kinds``).  When no rounding is
    feasible, solve again with a margin (:data:`MARGINS`) from the last point.  Returns (combos, depths,
    value, point); combos is None when every margin failed."""
    from .continuous import ContinuousRelaxation
    relaxation = ContinuousRelaxation(ls.scorer.program)
    x, point, found = relaxation.start(start), None, None
    for margin in MARGINS:
        point = relaxation.solve(x, margin=margin)
        found = round_point(ls, point, seed=seed)
        if found is not None:
            break
        x = point.x
    if found is None:
        return None, None, -math.inf, point
    combos, depths, value = ls.climb(found[0], found[1], kinds=kinds)
    return combos, depths, value, point
