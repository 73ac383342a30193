"""Latency budgets on spaces read by the reader: :func:`solve_space` with ``latency <= L`` (ms, by a table).

The predicted latency of a sample is the sum of its active layers' units (:mod:`.space_units`), each
:meth:`~deepmad_nni.core.latency.LatencyTable.unit_ms` (its entry, calibrated when the table is); a design
meets ``latency`` when that prediction raised by the table's ``margin`` is within it
(:meth:`~deepmad_nni.core.latency.LatencyTable.within`, the core's rule).  The solver
(:func:`deepmad_nni.nas.solver.solve_space`) knows FLOPs, params and rho only; the latency budget is added
around it, as :mod:`deepmad_nni.core.latency_solve` does for the core families:

* **exact** on spaces the solver enumerates (at most ``enumerate_limit`` samples): the enumeration's top-K
  list (the K best distinct networks within FLOPs/params/rho, proven) is filtered by latency, K growing x4 from
  ``FIRST_K`` until ``top_k`` designs pass or the list holds every feasible network.  What passes is the optimum
  of the latency-constrained program (every better network is in the list and fails): ``"optimal"``; none
  passing an exhausted list proves ``"infeasible"``.
* **sound search** on larger spaces: (1) the latency-relaxed program is solved (the user's ``time_limit``); its
  designs within the latency are kept, and when that solve is proven optimal and its best design is within
  the latency, that design is the optimum (``"optimal"``); (2) else ``BISECTION_STEPS`` quick solves bisect a
  tightened FLOPs budget geometrically between the relaxed design's FLOPs and 1/``BISECTION_RANGE`` of them,
  keeping every design within the latency; (3) the space's fastest network by the table (min-sum variable
  elimination over the layers' latency tables, :func:`fastest`) is kept when it meets the program.  Every
  returned design is re-checked against every budget.  The status is then ``"feasible-with-gap"`` with
  ``bound`` the latency-relaxed program's bound (valid: the relaxation has more designs); ``"infeasible"`` when
  the smallest latency of any network (the elimination's value, a lower bound even where it is split in
  mini-buckets) exceeds the budget, a proof since it ignores every other constraint; ``"limit-reached"`` when no
  design meeting every budget was found.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np

from deepmad_nni.core.latency import as_table
from deepmad_nni.core.latency_solve import BISECTION_STEPS, FIRST_K, BudgetedResult, bisect_flops
from deepmad_nni.core.program import positive_number
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL

from .max_sum import Eliminator
from .solver import ENUMERATE_LIMIT, solve_space
from .space_program import checked_program


def fastest(units, table) -> tuple[float, dict, bool]:
    """(smallest predicted latency of any sample, a sample reaching it, exact): min over samples of the sum of
    the layers' latency tables (each over its unit's labels and its conditions'), by variable elimination.
    Where a bucket is split (``exact`` False) the value is a lower bound and the sample need not reach it."""
    units.check(table)
    labels = list(units.mutables)
    index = {lab: i for i, lab in enumerate(labels)}
    sizes = [len(units.mutables[lab].values) for lab in labels]
    tables: dict[tuple, np.ndarray] = {}
    for layer in units.layers:
        scope = tuple(sorted(index[lab] for lab in layer.scope))
        values = [units.mutables[labels[i]].values for i in scope]
        flat = []
        for combo in itertools.product(*values):
            sample = {labels[i]: v for i, v in zip(scope, combo)}
            flat.append(table.unit_ms(layer.unit(sample)) if layer.active(sample) else 0.0)
        grid = np.array(flat, dtype=float).reshape([len(v) for v in values])
        tables[scope] = tables[scope] + grid if scope in tables else grid
    constant = float(tables.pop((), np.zeros(())).sum())
    scopes = list(tables)
    elim = Eliminator(scopes, sizes)
    value, x = elim.maximise([-tables[s] for s in scopes])
    sample = {lab: units.mutables[lab].values[i] for lab, i in zip(labels, x)}
    return constant - value, sample, elim.exact


def solve_with_latency(desc, units, *, latency=None, latency_table, flops=None, params=None, rho, alpha=None,
                       beta=10.0, convention="official", top_k=1, time_limit=None, seed=0,
                       enumerate_limit=ENUMERATE_LIMIT) -> BudgetedResult:
    """DeepMAD's program over ``desc`` with ``latency`` (ms predicted by ``latency_table`` through ``units``, a
    :class:`~deepmad_nni.nas.space_units.SpaceUnits` of the same space) as a budget (module docstring);
    ``latency=None`` only reports each design's predicted latency.  ``latency_table``: a LatencyTable or its file."""
    t0 = time.perf_counter()
    table = as_table(latency_table)
    latency = positive_number("latency", latency)
    lim, _, _ = checked_program(desc, flops, params, rho, alpha, beta, convention)
    units.check(table)
    program = dict(flops=flops, params=params, rho=rho, alpha=alpha, beta=beta, convention=convention, seed=seed,
                   enumerate_limit=enumerate_limit)
    known: dict = {}

    def ms(design) -> float:
        key = desc.signature(design.sample)
        if key not in known:
            known[key] = units.predicted_latency(design.sample, table)
        return known[key]

    def fits(design) -> bool:
        return latency is None or table.within(ms(design), latency)

    if latency is None:
        r = solve_space(desc, top_k=top_k, time_limit=time_limit, **program)
        outcome = r.status, r.message, r.designs, r.bound, r.nodes
    elif desc.size() <= enumerate_limit:
        outcome = _exact(desc, program, top_k, time_limit, fits, ms, latency)
    else:
        outcome = _search(desc, units, table, program, lim, top_k, time_limit, fits, ms, latency)
    status, message, designs, bound, nodes = outcome
    return BudgetedResult(status, message, list(designs), bound, time.perf_counter() - t0, nodes, "",
                          {"flops": flops, "params": params, "rho": rho, "latency_ms": latency,
                           "max_feature_map": None, "latency_table": table.describe()},
                          [ms(d) for d in designs], [None] * len(designs), table.describe())


def _exact(desc, program, top_k, time_limit, fits, ms, latency):
    k = max(top_k, FIRST_K)
    while True:
        r = solve_space(desc, top_k=k, time_limit=time_limit, **program)
        kept = [d for d in r.designs if fits(d)]
        if len(kept) >= top_k or len(r.designs) < k:
            break
        k *= 4
    kept = kept[:top_k]
    if kept:
        return (OPTIMAL, f"Optimal by enumeration: the best network within the FLOPs/params/rho budgets whose "
                f"predicted latency is <= {latency:.4g} ms ({k} best networks filtered).", kept,
                kept[0].score.objective, r.nodes)
    if not r.designs:
        return INFEASIBLE, r.message, [], -math.inf, r.nodes
    return (INFEASIBLE, f"No network meets latency <= {latency:.4g} ms: within the FLOPs/params/rho budgets the "
            f"fastest of its {len(r.designs)} networks takes {min(ms(d) for d in r.designs):.4g} ms (predicted).",
            [], -math.inf, r.nodes)


def _search(desc, units, table, program, lim, top_k, time_limit, fits, ms, latency):
    relaxed = solve_space(desc, top_k=max(top_k, 8), time_limit=time_limit, **program)
    bound, nodes = (relaxed.objective if relaxed.status == OPTIMAL else relaxed.bound), relaxed.nodes
    if not relaxed.designs:
        return relaxed.status, relaxed.message, [], relaxed.bound, nodes
    kept = [d for d in relaxed.designs if fits(d)]
    if relaxed.status == OPTIMAL and fits(relaxed.designs[0]):
        return (OPTIMAL, f"Optimal: the proven best network within FLOPs/params/rho has a predicted latency <= "
                f"{latency:.4g} ms.", kept[:top_k], relaxed.objective, nodes)
    fast_ms, fast_sample, _ = fastest(units, table)
    if not table.within(fast_ms, latency):
        return (INFEASIBLE, f"No network meets latency <= {latency:.4g} ms: the fastest network of the space "
                f"(whatever FLOPs, params and rho) takes {fast_ms:.4g} ms (predicted).", [], -math.inf, nodes)
    steps = 0
    if len(kept) < top_k:
        found, more_nodes, steps = bisect_flops(
            lambda flops: solve_space(desc, top_k=max(top_k, 4), **{**program, "flops": flops}),
            float(relaxed.designs[0].score.flops), fits, steps=BISECTION_STEPS)
        kept += found
        nodes += more_nodes
    from .space_design import SpaceDesign
    sample = desc.canonical(fast_sample)
    kept.append(SpaceDesign(sample, desc.evaluate(sample, alpha=program["alpha"], beta=program["beta"],
                                                  convention=program["convention"])))
    seen, best = set(), []
    for d in sorted(kept, key=lambda d: -d.score.objective):
        key = desc.signature(d.sample)
        s = d.score
        if key not in seen and fits(d) and lim.excess(s.effectiveness, s.flops, s.params) <= 0:
            seen.add(key)
            best.append(d)
    best = best[:top_k]
    if not best:
        s = kept[-1].score      # the fastest network's
        broken = [f"{name} <= {limit:.4g} (it has {value:.4g})" for name, limit, value in (
            ("flops", lim.flops, s.flops), ("params", lim.params, s.params), ("rho", lim.rho, s.effectiveness))
            if limit is not None and value > limit]
        return (LIMIT_REACHED, f"No network within latency <= {latency:.4g} ms found ({steps} bisection steps on "
                f"the FLOPs budget); the fastest network ({fast_ms:.4g} ms predicted) breaks "
                f"{', '.join(broken) or 'the latency (the elimination was split in mini-buckets)'}.",
                [], bound, nodes)
    gap = max(0.0, bound - best[0].score.objective)
    return (FEASIBLE_WITH_GAP, f"Latency search: the latency-relaxed program's bound {bound:.6g}, best network within "
            f"{latency:.4g} ms at {best[0].score.objective:.6g} (gap {gap:.4g}); {steps} bisection step(s) on the "
            "FLOPs budget.", best, bound, nodes)
