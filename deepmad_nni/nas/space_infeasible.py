"""What is proven and said when no design fits: the budget floor (:func:`floor_message`), the dual certificate
of infeasibility and its lower bound of rho (:func:`certificate`), the message with the rho range
(:func:`rho_message`)."""
from __future__ import annotations

import numpy as np

from .space_dual import Dual, DualProgram
from .space_program import amount


def floor_message(comp, lim) -> str | None:
    """Why no sample meets the FLOPs/params budgets, when the smallest network already breaks one (exact:
    both are sums of label factors, minimised by elimination)."""
    for name, limit, what in (("F", lim.flops, "FLOPs"), ("P", lim.params, "params")):
        if limit is not None:
            smallest = comp.extreme(name, -1.0)[0]
            if smallest > limit:
                return (f"No sample has {what} <= {amount(limit)}: the smallest network of the space needs "
                        f"{amount(smallest)} {what}.")
    return None


def certificate(comp, lim):
    """The program without objective, dual over (lam_F, lam_P, nu) with mu = 1: (proven infeasible, proven
    lower bound of rho within the budgets, the dual's maximisers).  G_0(theta) < 0 proves that no sample
    meets the limits; every theta also gives, for budget-feasible x, T - nu N <= U(theta), hence
    rho >= min_n n exp(-U / n - nu)."""
    dual = Dual(comp.lagrangian(), DualProgram({}, lim.flops, lim.params, lim.rho), comp.layer_range(), fixed_mu=1.0)
    value, _ = dual.minimise()
    with np.errstate(over="ignore"):
        lower = max(float(np.min(dual.n * np.exp(-u / dual.n - th["nu"]))) for th, u in dual.history)
    return value < 0, lower, dual.maximisers


def rho_message(lim, low, high, proven_low=None, certified_low=None, found=None, exact=False) -> str:
    """Why there is no design although the budgets can be met: the rho range the space reaches within them
    (``proven_low``, ``certified_low``: proven lower bounds of rho within them, the larger is given)."""
    budgets = lim.flops is not None or lim.params is not None
    within = f" within {lim.describe()}" if budgets else ""
    head = (f"No sample has rho <= {lim.rho:.4g}{within}" if found is None else
            f"No sample with rho <= {lim.rho:.4g}{within} found ({found} samples scored)")
    if low is None or high is None:
        return f"{head}; no sample{within} was found either."
    proven = max((v for v in (proven_low, certified_low) if v is not None), default=None)
    how = " (exact)" if exact else f" (none below {proven:.4g}, proven)" if proven else ""
    return (f"{head}: the space reaches rho {low:.4g}-{high:.4g}{' within these budgets' if budgets else ''}"
            f"{how}; choose rho_0 >= {low:.4g}.")
