"""Runs a :class:`~deepmad_nni.core.plan.Plan`: its stages in order, each until its deadline.

Each stage name of core/plan.py has one runner below, ``_stage(run, settings, deadline)``; they share a
:class:`_Run` (the program, its slot tables and scorer, the incumbents, the relaxation's point, the proven
bounds).  The result is built once, at the end, from what the stages left (:func:`_result`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import branch_and_bound
from .continuous import ContinuousPoint, relaxable
from .count_bound import count_bound
from .count_tables import CountNodeBounds, CountTables, depth_count_applies
from .evolution import evolve
from .incumbents import Incumbents, decode, infeasible_message, min_prefix_costs, scored
from .lagrangian import PrefixTables
from .local_search import LocalSearch, climb_with_restarts
from .multipliers import fit_multipliers
from .neighbourhood import improve
from .partition_bound import partition_bound
from .plan import BOX_PLAN, NUMERICS, Plan
from .program import Program
from .result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, DesignResult
from .rounding import relax_and_round
from .slots import BatchScorer, build_slot_tables
from .spread_bound import depth_spread_bound


@dataclass
class _Run:
    program: Program
    slots: list
    scorer: BatchScorer
    best: Incumbents
    t0: float
    limit: float | None              # seconds; None while the quick plan runs
    node_limit: int | None
    seed: int
    say: object
    fmin: list
    pmin: list
    point: ContinuousPoint | None = None   # the relaxation's optimum (its multipliers seed the bounds)
    tables: PrefixTables | None = None
    bounds: list = field(default_factory=list)   # proven upper bounds of the optimum
    notes: list = field(default_factory=list)    # what the stages did, for the message
    evaluated: int = 0
    tree: branch_and_bound.TreeOutcome | None = None
    node_bounds: tuple | None = None     # (its root bound, CountNodeBounds) when a count bound gave them

    def prefix_tables(self, grid: int) -> PrefixTables:
        """The Lagrangian tables on ``grid`` points, at the multipliers set last (the relaxation's, at first)."""
        if self.tables is None:
            self.tables = PrefixTables(self.program, self.slots, grid)
            self.tables.set(*(self.point.lagrange if self.point is not None else (0.0, 0.0, 0.0, 1.0)))
        elif self.tables.size != grid:
            t = self.tables.resize(grid)
            t.set(t.lam_f, t.lam_p, t.mu, t.n0)
        return self.tables


def _relax_and_round(run: _Run, settings, deadline: float):
    if not relaxable(run.program):
        return
    optima, point = relax_and_round(LocalSearch(run.scorer), settings, deadline=deadline)
    for c, d, v in optima:
        run.best.offer(c[None, :], d[None, :], np.array([v]))
    run.point = point
    run.say(f"relaxation and rounding: relaxed optimum {point.objective:.6g}, best rounded design "
            f"{optima[0][2] if optima else -math.inf:.6g} ({len(optima)} roundings climbed)")
    run.notes.append(f"relaxation and rounding: relaxed optimum {point.objective:.6g}")


def _multiplier_bound(run: _Run, settings, deadline: float):
    if run.point is None:
        return
    bound = PrefixTables(run.program, run.slots, settings.grid).set(*run.point.lagrange).root_bound()
    run.bounds.append(bound)
    run.notes.append(f"bound {bound:.6g} from its multipliers")


def _box_search_of(run: _Run):
    """The ``search`` of core/neighbourhood.py: the box plan on a box family."""
    def search(sub, *, floor, node_limit, time_limit):
        return run_plan(sub, BOX_PLAN, time_limit=time_limit, node_limit=node_limit, floor=floor)
    return search


def _evolve_and_climb(run: _Run, settings, deadline: float):
    program, scorer, limit = run.program, run.scorer, run.limit

    def polish(ls, combos, depths, value):   # the box search around each promising local optimum
        start = scored(program, decode(program.family, scorer.slots, tuple(zip(combos[::-1], depths[::-1]))))
        box = improve(program, start, settings.polish_box, box_time=settings.polish_box.time_share * limit,
                      deadline=min(deadline, time.perf_counter() + settings.polish_share * limit),
                      search=_box_search_of(run))
        if not box.designs:
            return combos, depths, value
        return (*ls.encode(box.designs[-1].choices), box.designs[-1].score.objective)

    optima, evaluated = climb_with_restarts(scorer, settings, deadline=deadline, first_time=settings.first_share * limit,
                                            seed=run.seed, polish=polish, progress=run.say)
    for c, d, v in optima:
        run.best.offer(c[None, :], d[None, :], np.array([v]))
    run.evaluated += evaluated
    run.notes.append(f"local search and box search from {len(optima)} evolved starts")


def _evolution(run: _Run, settings, deadline: float):
    evo = evolve(run.program, settings.evolution, time_limit=max(deadline - time.perf_counter(), 0.0),
                 slots=run.slots, seed=run.seed, patience=settings.patience)
    run.best.offer(*evo.population)
    run.evaluated += evo.evaluations
    run.say(f"evolution: {evo.evaluations} candidates in {evo.time_s:.1f} s, best objective {evo.objective:.6g}")


def _box_search(run: _Run, settings, deadline: float):
    if not run.best.heap:
        return
    box = improve(run.program, run.best.designs()[0], settings.box, box_time=settings.box.time_share * run.limit,
                  deadline=deadline, search=_box_search_of(run))
    for design in box.designs:
        run.best.offer_design(design)
    run.say(f"box search: {box.boxes} boxes, best objective {run.best.designs()[0].score.objective:.6g}")
    run.notes.append(f"{box.boxes} boxes around the incumbent, {box.improvements} improving it")


def _fit_multipliers(run: _Run, settings, deadline: float):
    tables = run.prefix_tables(settings.grid)
    fit_multipliers(tables, run.program, settings, deadline=deadline,
                    start=run.point.lagrange if run.point is not None else None)
    run.bounds.append(tables.root_bound())


def _spread_bound(run: _Run, settings, deadline: float):
    tables = run.prefix_tables(settings.grid)
    run.bounds.append(depth_spread_bound(tables, run.program, settings, deadline=deadline))


def _count_bound(run: _Run, settings, deadline: float):
    if run.tables is not None:
        start = (run.tables.lam_f, run.tables.lam_p, run.tables.mu, run.tables.n0)
    else:
        start = run.point.lagrange if run.point is not None else (0.0, 0.0, 0.0, 1.0)
    floor = run.best.designs()[0].score.objective if run.best.heap else -math.inf
    counts = [CountTables(run.program, run.slots, settings.grid, "layers")]
    if counts[0].depth_sum is None and depth_count_applies(run.program):   # Q's depth sum needs its own count
        counts.insert(0, CountTables(run.program, run.slots, settings.grid, "depths"))

    def fit(tables, until, resume=None):   # (its bound, whether the deadline cut it short, its best multiplier set)
        bound, thetas = count_bound(tables, run.program, settings, run.fmin, run.pmin, start=start, floor=floor,
                                    deadline=until, resume=resume)
        run.bounds.append(bound)
        run.say(f"count bound ({tables.count}): {bound:.6g}")
        if thetas and (run.node_bounds is None or bound < run.node_bounds[0]):
            run.node_bounds = (bound, CountNodeBounds(tables, thetas))
        return bound, time.perf_counter() >= until, thetas[0]

    if len(counts) == 1:
        fits = [fit(counts[0], deadline)]
    else:   # each count's fit, briefly
        probe = settings.probe_share * max(deadline - time.perf_counter(), 0.0)
        fits = [fit(tables, time.perf_counter() + probe) for tables in counts]
    while time.perf_counter() < deadline:
        k = count_to_go_on([f[:2] for f in fits], floor)
        if k is None:
            break
        fits[k] = fit(counts[k], deadline, resume=fits[k][2])


def count_to_go_on(fits: list, floor: float) -> int | None:
    """Given each count's last fit ((bound, whether the deadline cut it short) per count): the count whose fit
    goes on, from its best multipliers, until the stage's deadline, or None.  It is the one of the smallest
    bound among those cut short (a fit that ended by itself has converged, and the time it leaves goes to the
    next count); none when a bound already reaches the incumbent's objective ``floor``."""
    if min(bound for bound, _ in fits) <= floor:
        return None
    cut = [k for k, (_, short) in enumerate(fits) if short]
    return min(cut, key=lambda k: fits[k][0]) if cut else None


def _partition_bound(run: _Run, settings, deadline: float):
    tables = run.prefix_tables(settings.fit.grid)
    floor = run.best.designs()[0].score.objective if run.best.heap else -math.inf
    bound = partition_bound(tables, run.program, settings, run.fmin, run.pmin, floor=floor, deadline=deadline)
    run.bounds.append(bound)
    run.say(f"partition bound: {bound:.6g}")


def _branch_and_bound(run: _Run, settings, deadline: float):
    tables = run.prefix_tables(settings.grid)
    root = min([tables.root_bound()] + run.bounds)
    run.bounds.append(root)
    if run.node_bounds is not None and run.node_bounds[0] < tables.root_bound():   # the tighter tables
        tables = run.node_bounds[1]
    run.say(f"branch and bound: root bound {root:.6g} ({type(tables).__name__})")
    run.tree = branch_and_bound.search(run.program, run.scorer, run.best, tables, root, run.fmin, run.pmin,
                                       deadline=deadline, node_limit=run.node_limit)


STAGES = {"relax-and-round": _relax_and_round, "multiplier-bound": _multiplier_bound,
          "evolve-and-climb": _evolve_and_climb, "evolution": _evolution, "box-search": _box_search,
          "fit-multipliers": _fit_multipliers, "spread-bound": _spread_bound,
          "partition-bound": _partition_bound, "count-bound": _count_bound, "branch-and-bound": _branch_and_bound}


def _run_stages(run: _Run, plan: Plan):
    stages = plan.stages_for(run.program.family.size())
    share = 0.0
    for k, stage in enumerate(stages):
        share += stage.time_share
        if run.limit is None:
            deadline = math.inf
        elif k == len(stages) - 1:
            deadline = run.t0 + run.limit
        else:
            deadline = run.t0 + min(share, 1.0) * run.limit
        STAGES[stage.name](run, stage.settings, deadline)


def run_plan(program: Program, plan: Plan, *, time_limit: float | None = None, top_k: int = 1,
             node_limit: int | None = None, seed: int = 0, progress=None, floor: float = -math.inf,
             fallback: bool = True) -> DesignResult:
    """Run ``plan`` on ``program`` (``time_limit=None``: untimed, as the quick plan runs; its fallback plan,
    if any and ``fallback``, runs with ``plan.fallback_seconds`` when no feasible design came out).
    ``floor`` prunes every design whose objective cannot exceed it (the result is then "infeasible" when
    nothing beats it).  Ctrl-C ends the branch and bound early like a time limit."""
    t0 = time.perf_counter()
    slots = build_slot_tables(program)
    fmin, pmin = min_prefix_costs(slots)
    run = _Run(program, slots, BatchScorer(program, slots), Incumbents(program, slots, top_k, floor), t0,
               time_limit, node_limit, seed, progress or (lambda line: None), fmin, pmin)
    if ((program.flops is not None and float(np.min(fmin[-1])) > program.flops)
            or (program.params is not None and float(np.min(pmin[-1])) > program.params)):
        return _final(run, INFEASIBLE, infeasible_message(program, fmin, pmin), -math.inf)   # no design is that small
    _run_stages(run, plan)
    if not run.best.heap and run.tree is None and plan.fallback is not None and fallback:
        run.limit = plan.fallback_seconds
        _run_stages(run, plan.fallback)
    return _result(run, top_k)


def _final(run: _Run, status: str, message: str, bound: float) -> DesignResult:
    nodes = run.tree.nodes if run.tree is not None else 0
    return DesignResult(status, message, run.best.designs(), bound, time.perf_counter() - run.t0, nodes,
                        run.program.family.name, run.program.as_dict())


def _gap(run: _Run, bound: float, head: str, tail: str = "") -> DesignResult:
    """A feasible-with-gap result: ``head``, then how far the best design may be from ``bound``."""
    gap = bound - run.best.designs()[0].score.objective
    return _final(run, FEASIBLE_WITH_GAP, f"{head}; the best design is within {gap:.4g} "
                  f"({gap / max(abs(bound), NUMERICS.log_floor):.2%}) of the optimum{tail}.", bound)


def _result(run: _Run, top_k: int) -> DesignResult:
    designs = run.best.designs()
    bound = min(run.bounds, default=math.inf)
    if run.tree is None:   # no exact search: the quick plan's bound
        if not designs:
            return _final(run, LIMIT_REACHED, "The quick solve rounded no feasible design (no fallback search).",
                          math.nan)
        value = designs[0].score.objective
        searched = ", ".join(run.notes)
        if bound <= value + NUMERICS.same * max(1.0, abs(value)):
            return _final(run, OPTIMAL, f"Optimal ({searched}).", value)
        return _gap(run, bound, f"Quick solve ({searched})", "; a time limit searches further")
    tree = run.tree
    scored_note = f"{'; '.join(run.notes[1:] if run.point is not None else run.notes)}: " if run.notes else ""
    heuristics = f"{scored_note}{run.evaluated} designs scored; " if run.evaluated else ""
    searched = f"{heuristics}{tree.nodes} branch-and-bound nodes, root bound {bound:.6g}"
    if tree.closed:
        if not designs:
            return _final(run, INFEASIBLE, infeasible_message(run.program, run.fmin, run.pmin), -math.inf)
        return _final(run, OPTIMAL, f"Optimal: the branch and bound closed ({searched}).", designs[0].score.objective)
    k_th = designs[-1].score.objective if len(designs) >= top_k else -math.inf
    limited = bound if tree.interrupted else min(max(tree.open_bound, designs[0].score.objective if designs
                                                     else -math.inf), bound)
    if not designs:
        return _final(run, LIMIT_REACHED, f"The time/node limit stopped the search before any feasible design "
                      f"({searched}); the optimum is at most {limited:.6g}.", limited)
    if tree.open_bound <= k_th:   # the open nodes could not have improved the top_k
        return _final(run, OPTIMAL, f"Optimal ({searched}).", designs[0].score.objective)
    return _gap(run, limited, f"The time limit stopped the search ({searched})")
