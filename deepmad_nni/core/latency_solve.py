"""Latency and largest-feature-map budgets on top of :func:`deepmad_nni.core.solve` (a wrapper, not a new solver).

``solve(family, ..., latency=ms, latency_table=table, max_feature_map=elements)`` lands here.  The core solver
knows FLOPs, params and rho only; the two budgets are added around it:

* ``max_feature_map`` (elements per sample of the largest block input/output tensor,
  :func:`~deepmad_nni.core.latency_units.feature_map`) is a bound on each slot's output width alone
  (``c_out * r_out^2 <= max_feature_map``), so it is applied exactly by removing the widths that break it from
  the family (:func:`restrict_feature_map`) and solving the restricted family: statuses, bounds and optimality
  proofs stay those of the core solver.
* ``latency`` (milliseconds predicted by the table, :func:`~deepmad_nni.core.latency.predicted_latency`):

  - **exact** on families the core enumerates (at most ``solver.BRUTE_FORCE_MAX`` designs, or
    ``method="enumerate"``): the enumeration's top-K list (proven the K best within FLOPs/params/rho) is filtered
    by latency, K growing x4 from 64 until ``top_k`` designs pass or the list holds every feasible design.  The
    best designs that pass are the optimum of the latency-constrained program (every better design is in the
    list and fails), so the status is ``"optimal"``; none passing an exhausted list proves ``"infeasible"``.
  - **sound search** on larger families: (1) the latency-relaxed program is solved (the user's ``time_limit``);
    its designs that meet the latency are kept, and when that solve is proven optimal the first of them is the
    optimum; (2) else a geometric bisection on a tightened FLOPs budget (``BISECTION_STEPS`` quick solves
    between the relaxed design's FLOPs and 1/64 of them) keeps every design that meets the latency and moves
    the budget up after a success, down after a miss; (3) the family's fastest design by the table
    (:func:`~deepmad_nni.core.latency_fastest.fastest_design`) is kept when it meets the program.  Every returned
    design meets every budget by prediction (each is re-checked); the status is ``"feasible-with-gap"`` with
    ``bound`` the latency-relaxed program's bound (a valid upper bound: the relaxation has more designs); it is
    ``"infeasible"`` when even the fastest design exceeds the latency (a proof, since that design ignores every
    other constraint), and ``"limit-reached"`` when the search found no design that meets all budgets.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from .family import Family
from .latency import LatencyTable, as_table, predicted_latency
from .latency_fastest import fastest_design
from .latency_units import feature_map
from .program import Program, positive_number
from .result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, Design, DesignResult

BISECTION_STEPS = 10        # quick solves of the FLOPs bisection (large families)
BISECTION_RANGE = 64.0      # the bisection's lowest FLOPs budget: the relaxed design's FLOPs / this
FIRST_K = 64                # the exact path's first top-K


@dataclass
class BudgetedResult(DesignResult):
    """A :class:`DesignResult` with, per design, its predicted latency (ms; None without a table) and its
    largest feature map (elements per sample)."""

    latencies: list = field(default_factory=list)
    feature_maps: list = field(default_factory=list)
    latency_table: str = ""

    @property
    def latency(self) -> float:
        return self.latencies[0] if self.latencies and self.latencies[0] is not None else float("nan")

    @property
    def feature_map(self) -> float:
        return self.feature_maps[0] if self.feature_maps else float("nan")

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["latency_ms"] = self.latencies[0] if self.latencies else None
        d["max_feature_map"] = self.feature_maps[0] if self.feature_maps else None
        d["latency_table"] = self.latency_table or None
        for alt, ms, fm in zip(d["alternatives"], self.latencies[1:], self.feature_maps[1:]):
            alt["latency_ms"], alt["max_feature_map"] = ms, fm
        return d


def restrict_feature_map(family: Family, max_elements: float) -> Family | None:
    """``family`` without the slot widths whose output ``c_out * r_out^2`` exceeds ``max_elements``; None when
    the input image or some slot has nothing left."""
    if family.in_channels * family.resolution ** 2 > max_elements:
        return None
    slots, r = [], family.resolution
    for slot in family.slots:
        r = -(-r // slot.stride)
        widths = tuple(c for c in slot.widths if c * r * r <= max_elements)
        if not widths:
            return None
        slots.append(replace(slot, widths=widths))
    return replace(family, slots=tuple(slots))


def _distinct_best(designs, top_k: int) -> list[Design]:
    seen, out = set(), []
    for d in sorted(designs, key=lambda d: -d.score.objective):
        key = d.architecture.canonical()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out[:top_k]


def solve_with_budgets(family, *, latency=None, latency_table=None, max_feature_map=None, top_k: int = 1,
                       time_limit=None, node_limit=None, method: str = "auto", progress=None,
                       **program) -> BudgetedResult:
    """The program of :func:`deepmad_nni.core.solve` with a latency and/or feature-map budget (module docstring).
    ``program``: flops, params, rho, alpha, beta, convention, seed (passed on to the core solver)."""
    from .presets import get_family
    from .solver import BRUTE_FORCE_MAX, solve
    t0 = time.perf_counter()
    if isinstance(family, str):
        family = get_family(family)
    latency = positive_number("latency", latency)
    max_feature_map = positive_number("max_feature_map", max_feature_map)
    if latency is not None and latency_table is None:
        raise ValueError("latency needs latency_table (a LatencyTable or a table file from deepmad-nni latency "
                         "profile), but got latency_table=None.")
    table = as_table(latency_table) if latency_table is not None else None
    Program.create(family, **{k: v for k, v in program.items() if k != "seed"})      # checks the program's input
    flops = program.get("flops")
    bound_macs = table.max_macs(family.name) if table is not None else None
    if latency is not None and bound_macs is not None and (flops is None or flops > bound_macs):
        raise ValueError(f"the latency table holds units of at most {bound_macs:.4g} MACs (profiled with --flops), "
                         f"so flops must be given and at most that, but got flops={flops!r}.")
    extra = {"latency_ms": latency, "max_feature_map": max_feature_map,
             "latency_table": table.describe() if table is not None else None}
    fam = family if max_feature_map is None else restrict_feature_map(family, max_feature_map)

    def finish(status, message, designs, bound, nodes, constraints):
        lat = [predicted_latency(d.architecture, table) if table is not None else None for d in designs]
        return BudgetedResult(status, message, list(designs), bound, time.perf_counter() - t0, nodes, family.name,
                              {**constraints, **extra}, lat, [feature_map(d.architecture) for d in designs],
                              table.describe() if table is not None else "")

    if fam is None:
        smallest = family.in_channels * family.resolution ** 2
        return finish(INFEASIBLE, f"No design of {family.name} keeps its largest feature map within "
                      f"max_feature_map={max_feature_map:.6g} elements (the input alone has {smallest}, and some "
                      "slot has no width left).", [], float("-inf"), 0, Program.create(
                          family, **{k: v for k, v in program.items() if k != "seed"}).as_dict())
    kw = dict(program, time_limit=time_limit, node_limit=node_limit, progress=progress)
    if latency is None:     # feature map only (or a table to report): exact through the restricted family
        r = solve(fam, top_k=top_k, method=method, **kw)
        return finish(r.status, r.message, r.designs, r.bound, r.nodes, r.constraints)

    known: dict = {}     # canonical network -> predicted ms (the exact path sees a design once per round)

    def fits(d: Design) -> bool:
        key = d.architecture.canonical()
        if key not in known:
            known[key] = predicted_latency(d.architecture, table)
        return table.within(known[key], latency)

    if method == "enumerate" or (method == "auto" and fam.size() <= BRUTE_FORCE_MAX):
        return finish(*_exact(solve, fam, kw, top_k, fits, latency, table))
    return finish(*_search(solve, fam, kw, top_k, fits, latency, table, method, progress))


def _exact(solve, fam, kw, top_k, fits, latency, table):
    k = max(top_k, FIRST_K)
    while True:
        r = solve(fam, top_k=k, method="enumerate", **kw)
        kept = [d for d in r.designs if fits(d)]
        exhausted = len(r.designs) < k
        if len(kept) >= top_k or exhausted:
            break
        k *= 4
    kept = kept[:top_k]
    if kept:
        return (OPTIMAL, f"Optimal by enumeration: the best design of {fam.name} within the FLOPs/params/rho "
                f"budgets whose predicted latency is <= {latency:.4g} ms ({k} best designs filtered).", kept,
                kept[0].score.objective, r.nodes, r.constraints)
    if not r.designs:
        return INFEASIBLE, r.message, [], float("-inf"), r.nodes, r.constraints
    fastest = min(predicted_latency(d.architecture, table) for d in r.designs)
    return (INFEASIBLE, f"No design of {fam.name} meets latency <= {latency:.4g} ms: within the FLOPs/params/rho "
            f"budgets the fastest of its {len(r.designs)} designs takes {fastest:.4g} ms (predicted).", [],
            float("-inf"), r.nodes, r.constraints)


def bisect_flops(solve_at, hi: float, fits, *, steps: int = BISECTION_STEPS, report=None):
    """The geometric bisection of a tightened FLOPs budget between ``hi`` and ``hi / BISECTION_RANGE``:
    ``solve_at(flops)`` (a result with ``designs`` and ``nodes``) at each of ``steps`` steps; the budget moves up
    after a step whose designs include one that ``fits`` (or that has no design at all), down otherwise;
    ``report(step, flops, fitting, all fitting so far)`` after each.  (designs that fit, nodes, steps run)."""
    kept, nodes, lo, step = [], 0, hi / BISECTION_RANGE, 0
    for step in range(1, steps + 1):
        mid = math.sqrt(lo * hi)
        r = solve_at(mid)
        got = [d for d in r.designs if fits(d)]
        kept += got
        nodes += r.nodes
        if got or not r.designs:
            lo = mid
        else:
            hi = mid
        if report is not None:
            report(step, mid, got, kept)
    return kept, nodes, step


def _search(solve, fam, kw, top_k, fits, latency, table, method, progress):
    relaxed = solve(fam, top_k=max(top_k, 8), method=method, **kw)
    bound, nodes = relaxed.bound, relaxed.nodes
    if relaxed.status == OPTIMAL:
        bound = relaxed.objective
    if not relaxed.designs:
        return relaxed.status, relaxed.message, [], relaxed.bound, nodes, relaxed.constraints
    kept = [d for d in relaxed.designs if fits(d)]
    if relaxed.status == OPTIMAL and kept:
        return (OPTIMAL, f"Optimal: the proven best designs within FLOPs/params/rho, filtered by predicted latency "
                f"<= {latency:.4g} ms.", kept[:top_k], kept[0].score.objective, nodes, relaxed.constraints)
    prog = Program.create(fam, **{k: v for k, v in kw.items() if k in ("flops", "params", "rho", "alpha", "beta",
                                                                        "convention")})
    fast_ms, fast_arch = fastest_design(fam, table, max_macs=kw.get("flops"))
    if not table.within(fast_ms, latency):
        return (INFEASIBLE, f"No design of {fam.name} meets latency <= {latency:.4g} ms: its fastest design (whatever "
                f"FLOPs, params and rho) takes {fast_ms:.4g} ms (predicted).", [], float("-inf"), nodes,
                relaxed.constraints)
    steps = 0
    if len(kept) < top_k:
        quick = {k: v for k, v in kw.items() if k not in ("time_limit", "node_limit", "progress")}

        def report(step, mid, got, found):
            if progress is not None:
                best = max((d.score.objective for d in kept + found), default=float("nan"))
                progress(f"latency bisection {step}/{BISECTION_STEPS}: FLOPs budget {mid:.4g} -> "
                         f"{len(got)} design(s) within {latency:.4g} ms; best objective {best:.6g}")
        found, more_nodes, steps = bisect_flops(lambda flops: solve(fam, **{**quick, "flops": flops},
                                                                    top_k=max(top_k, 4)),
                                                float(relaxed.designs[0].score.flops), fits, report=report)
        kept += found
        nodes += more_nodes
    s = prog.score(fast_arch)
    if prog.feasible(s):
        kept.append(Design(fast_arch, s))
    kept = [d for d in _distinct_best(kept, top_k) if prog.feasible(prog.score(d.architecture))]
    if not kept:
        return (LIMIT_REACHED, f"No design within latency <= {latency:.4g} ms found ({steps} bisection steps on the "
                f"FLOPs budget); the fastest design takes {fast_ms:.4g} ms but breaks "
                f"{', '.join(prog.violations(s))}.", [], bound, nodes, relaxed.constraints)
    gap = max(0.0, bound - kept[0].score.objective)
    return (FEASIBLE_WITH_GAP, f"Latency search: the latency-relaxed program's bound {bound:.6g}, best design within "
            f"{latency:.4g} ms at {kept[0].score.objective:.6g} (gap {gap:.4g}); {steps} bisection step(s) on the "
            "FLOPs budget.", kept, bound, nodes, relaxed.constraints)
