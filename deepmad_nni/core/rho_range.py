"""The range of the effectiveness rho over which the constraint rho <= rho_0 matters, for one budget.

* ``low``: the smallest rho of any design within the FLOPs/params budgets; below it the program is
  infeasible.
* ``high``: the rho of the optimum with the rho constraint removed; at or above it the constraint no
  longer changes the optimum, so any rho_0 >= ``high`` gives the same design.

Families small enough to enumerate get both exactly (``exact=True``).  Larger ones: ``high`` from a quick
solve with no rho limit, ``low`` by bisection on rho_0 with quick solves (the smallest rho_0 for which a
design was found, to a relative tolerance of ``BISECTION_TOLERANCE``); both then come from the quick
solve's designs, not proofs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

NO_RHO_LIMIT = 1e6          # a rho_0 no design reaches: the constraint is off
from .plan import RHO_RANGE

BISECTION_TOLERANCE = RHO_RANGE.tolerance  # relative width of the last bisection interval for ``low`` (large families)
BISECTION_STEPS = RHO_RANGE.steps          # at most this many quick solves for ``low``


@dataclass(frozen=True)
class RhoRange:
    """``low`` <= rho_0 <= ``high`` is where the rho constraint binds (see the module docstring)."""

    low: float
    high: float
    exact: bool

    def clip(self, rho: float) -> float:
        return min(max(rho, self.low), self.high)

    def __str__(self) -> str:
        how = "exact" if self.exact else "estimated"
        return f"rho {self.low:.4g}-{self.high:.4g} ({how})"


def rho_range(family, *, flops=None, params=None, alpha=None, beta=10.0, convention="official") -> RhoRange:
    """The :class:`RhoRange` of ``family`` (a Family or its name) within ``flops`` / ``params``.

    Raises a ValueError naming the budget when no design of the family meets it.
    """
    from .presets import get_family
    from .program import Program
    from .plan import ENUMERATE_MAX, QUICK_PLAN
    from .runner import run_plan
    if isinstance(family, str):
        family = get_family(family)
    program = Program.create(family, flops=flops, params=params, rho=NO_RHO_LIMIT, alpha=alpha, beta=beta,
                             convention=convention)
    if family.size() <= ENUMERATE_MAX:
        return _enumerated(program)

    def found(rho):  # the quick solve, without its fallback search when it rounds nothing feasible
        return run_plan(replace(program, rho=rho), QUICK_PLAN, fallback=False)

    top = found(NO_RHO_LIMIT)
    if not top.success:
        raise ValueError(f"No design of {family.name} meets flops={flops} and params={params}: {top.message}")
    high = float(top.effectiveness)
    lo, hi = high * RHO_RANGE.lowest, high   # found(hi) holds; below that rho_0 is out of any practical use
    for _ in range(BISECTION_STEPS):
        if hi / lo - 1 <= BISECTION_TOLERANCE:
            break
        mid = math.sqrt(lo * hi)
        result = found(mid)
        if result.success:
            hi = float(result.effectiveness)
        else:
            lo = mid
    return RhoRange(hi, high, exact=False)


def _enumerated(program) -> RhoRange:
    from .slots import BatchScorer, all_designs, build_slot_tables
    slots = build_slot_tables(program)
    combos, depths = all_designs(slots)
    out = BatchScorer(program, slots)(combos, depths)
    within = np.ones(len(combos), dtype=bool)
    if program.flops is not None:
        within &= out["flops"] <= program.flops
    if program.params is not None:
        within &= out["params"] <= program.params
    if not within.any():
        raise ValueError(f"No design of {program.family.name} meets flops={program.flops} and "
                         f"params={program.params}: the family needs at least {out['flops'].min():.4g} FLOPs and "
                         f"{out['params'].min():.4g} params.")
    rho, objective = out["rho"][within], out["objective"][within]
    return RhoRange(float(rho.min()), float(rho[np.argmax(objective)]), exact=True)
