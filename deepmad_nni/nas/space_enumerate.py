"""Spaces small enough to enumerate: every sample scored, the optimum proven (:func:`enumerated`), and the exact
rho range within the budgets (:func:`enumerated_reach`)."""
from __future__ import annotations

import itertools
import math

from deepmad_nni.core.result import INFEASIBLE, OPTIMAL

from .space_design import as_designs
from .space_infeasible import floor_message, rho_message


def within_budgets(model, lim) -> list:
    """(objective, rho, index sample) of every sample within the FLOPs/params budgets, in enumeration order."""
    out = []
    for x in itertools.product(*(range(size) for size in model.sizes)):
        fig = model.figures(x)
        if lim.excess(0.0, fig[2], fig[3]) <= 0:
            out.append((fig[0], fig[1], x))
    return out


def enumerated(comp, lim, top_k):
    """Every sample scored: (status, message, designs, bound, samples) with the optimum proven."""
    model = comp.model
    budget_fit, count = within_budgets(model, lim), math.prod(model.sizes)
    feasible = [(v, i, x) for i, (v, rho, x) in enumerate(budget_fit) if lim.rho is None or rho <= lim.rho]
    if not feasible:
        if not budget_fit:
            return INFEASIBLE, floor_message(comp, lim) or f"No sample meets {lim.describe()}.", [], -math.inf, count
        low, high = enumerated_reach(budget_fit)
        return INFEASIBLE, rho_message(lim, low, high, exact=True), [], -math.inf, count
    feasible.sort(key=lambda t: (-t[0], t[1]))
    designs, networks = [], set()
    for value, _, x in feasible:
        signature = model.desc.signature(model.sample(x))
        if signature not in networks:
            networks.add(signature)
            designs.append(x)
            if len(designs) == top_k:
                break
    out = as_designs(model, designs)
    return OPTIMAL, f"Optimal by enumeration of {count} samples.", out, out[0].score.objective, count


def enumerated_reach(budget_fit):
    """Exact (smallest rho, rho of the best sample) over the samples within the budgets."""
    low = min(rho for _, rho, _ in budget_fit)
    best = max(range(len(budget_fit)), key=lambda i: (budget_fit[i][0], -i))
    return low, budget_fit[best][1]
