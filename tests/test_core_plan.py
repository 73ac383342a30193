"""The solver's plan is data that solve runs; the quick solve on random small families against brute force."""
import math
import time
from dataclasses import replace

import numpy as np
import pytest

from core_families import SMALL_FAMILIES
from deepmad_nni.core import Program
from deepmad_nni.core.bruteforce import solve_brute_force
from deepmad_nni.core.family import Family, Op, Slot
from deepmad_nni.core.incumbents import min_prefix_costs
from deepmad_nni.core.lagrangian import PrefixTables
from deepmad_nni.core.multipliers import fit_multipliers
from deepmad_nni.core.partition_bound import partition_bound
from deepmad_nni.core.plan import BOX_PLAN, PARTITION_BOUND, QUICK_PLAN, TIMED_PLAN, Plan, Stage, explain_all
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL
from deepmad_nni.core.runner import STAGES, run_plan
from deepmad_nni.core.slots import build_slot_tables


def test_every_stage_of_every_plan_has_a_runner_and_the_explanation_names_it():
    text = explain_all()
    for plan in (QUICK_PLAN, TIMED_PLAN, BOX_PLAN, QUICK_PLAN.fallback):
        for stage in plan.stages:
            assert stage.name in STAGES and stage.name in text


def test_shares_beyond_the_limit_are_refused():
    with pytest.raises(ValueError, match="must sum to at most 1"):
        Plan("bad", (Stage("box-search", None, 0.7), Stage("fit-multipliers", None, 0.6)))


def test_a_modified_plan_changes_what_runs(monkeypatch):
    """The runner runs the plan's stages and nothing else: dropping one, or changing its settings, shows."""
    ran = []
    for name, fn in list(STAGES.items()):
        monkeypatch.setitem(STAGES, name, lambda run, settings, deadline, fn=fn, name=name: (ran.append(name),
                                                                                           fn(run, settings, deadline)))
    fam = SMALL_FAMILIES[0]
    prog = Program.create(fam, flops=30e6, params=1e6, rho=0.5)
    no_box = TIMED_PLAN.without("box-search")
    run_plan(prog, no_box, time_limit=5.0)
    assert ran == [s.name for s in no_box.stages_for(fam.size())]
    ran.clear()
    run_plan(prog, TIMED_PLAN.without("spread-bound"), time_limit=5.0)   # each box runs the box plan
    at = ran.index("box-search")
    assert ran[at + 1:at + 1 + len(BOX_PLAN.stages)] == [s.name for s in BOX_PLAN.stages]
    assert ran.count("spread-bound") == ran.count("branch-and-bound") - 1   # the boxes' only
    ran.clear()
    proof_only = TIMED_PLAN.without("evolution", "box-search")
    res = run_plan(prog, proof_only, time_limit=5.0)
    assert ran == ["fit-multipliers", "count-bound", "spread-bound", "branch-and-bound"] and \
        res.status == OPTIMAL
    # settings are read from the plan
    stopped = TIMED_PLAN.with_settings("branch-and-bound", grid=3)
    assert next(s for s in stopped.stages if s.name == "branch-and-bound").settings.grid == 3
    assert run_plan(prog, stopped, time_limit=5.0).objective == res.objective   # any grid: still exact


def test_without_passes_the_time_share_on():
    plan = TIMED_PLAN.without("relax-and-round")
    share = {s.name: s.time_share for s in TIMED_PLAN.stages}
    assert next(s for s in plan.stages if s.name == "evolve-and-climb").time_share == pytest.approx(
        share["relax-and-round"] + share["evolve-and-climb"])


def _random_family(rng: np.random.Generator, k: int) -> Family:
    """A small random family: a stem and 2-3 bottleneck or MBConv+SE slots (widths, kernels, depths drawn)."""
    block = "bottleneck" if rng.random() < 0.5 else "mbconv_se"
    slots, width = [Slot(2, tuple(sorted(rng.choice([8, 16, 24], 2, replace=False).tolist())), (Op("conv", 3),))], 24
    for j in range(int(rng.integers(2, 4))):
        widths = tuple(sorted({width + 8 * int(x) for x in rng.choice([1, 2, 3, 4, 6], 2, replace=False)}))
        width = widths[-1]
        kernels = sorted(rng.choice([3, 5, 7], int(rng.integers(1, 3)), replace=False).tolist())
        depths = tuple(sorted(rng.choice([1, 2, 3, 4], int(rng.integers(1, 4)), replace=False).tolist()))
        if block == "bottleneck":
            ops = tuple(Op("bottleneck", int(kk), mid_from_grid=True) for kk in kernels)
            slots.append(Slot(int(rng.choice([1, 2])), widths, ops, depths, (8, 16, 32)))
        else:
            ops = tuple(Op("mbconv_se", int(kk), float(e)) for kk in kernels for e in (2.0, 4.0))
            slots.append(Slot(int(rng.choice([1, 2])), widths, ops, depths))
    return Family(f"random-{k}", tuple(slots), resolution=32, num_classes=10, default_rho=0.5)


@pytest.mark.parametrize("k", range(6))
def test_quick_and_timed_solves_of_random_small_families_agree_with_brute_force(k):
    """Seeded random families (seed 14 + k): the quick plan (run as on a large family) and a timed solve
    either find the brute-force optimum or report a bound that contains it; every design is feasible."""
    rng = np.random.default_rng(14 + k)
    fam = _random_family(rng, k)
    scores = [Program.create(fam).score(a) for a in fam.enumerate()]
    f = np.quantile([s.flops for s in scores], rng.uniform(0.2, 0.8))
    p = np.quantile([s.params for s in scores], rng.uniform(0.2, 0.8))
    rho = float(np.quantile([s.effectiveness for s in scores], rng.uniform(0.3, 0.9)))
    prog = Program.create(fam, flops=float(f), params=float(p), rho=rho)
    truth = solve_brute_force(prog)
    quick = replace(QUICK_PLAN, stages=tuple(replace(s, min_designs=0) for s in QUICK_PLAN.stages))
    for res in (run_plan(prog, quick), run_plan(prog, quick, fallback=False), run_plan(prog, TIMED_PLAN, time_limit=20)):
        if truth.status == INFEASIBLE:
            assert not res.designs and res.status in (INFEASIBLE, LIMIT_REACHED)
            continue
        if not res.designs:
            assert res.status == LIMIT_REACHED
            continue
        s = prog.score(res.architecture)
        assert prog.feasible(s) and s.objective <= truth.objective * (1 + 1e-9)
        assert res.bound >= truth.objective - 1e-9 * abs(truth.objective)   # the bound contains the optimum
        if res.status == OPTIMAL:
            assert res.objective == pytest.approx(truth.objective, rel=1e-9)
        else:
            assert res.status == FEASIBLE_WITH_GAP


@pytest.mark.parametrize("fam", SMALL_FAMILIES, ids=lambda f: f.name)
def test_partition_bound_is_at_least_the_optimum(fam):
    fit = next(s.settings for s in TIMED_PLAN.stages if s.name == "fit-multipliers")
    part = PARTITION_BOUND
    for levels in (1, 2):
        for q in (0.3, 0.6):
            scores = [Program.create(fam).score(a) for a in fam.enumerate()]
            prog = Program.create(fam, flops=float(np.quantile([s.flops for s in scores], q)),
                                  params=float(np.quantile([s.params for s in scores], q)), rho=0.5)
            truth = solve_brute_force(prog)
            slots = build_slot_tables(prog)
            relax = fit_multipliers(PrefixTables(prog, slots, 12), prog, replace(fit, evaluations=30))
            fmin, pmin = min_prefix_costs(slots)
            bound = partition_bound(relax, prog, replace(part, levels=levels, rounds=5), fmin, pmin,
                                    floor=-math.inf, deadline=time.perf_counter() + 30)
            if truth.designs:
                assert bound >= truth.objective - 1e-9 * abs(truth.objective)
                assert bound <= relax.root_bound() + 1e-9 * abs(relax.root_bound())
